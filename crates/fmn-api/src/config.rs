//! The API's configuration: raw environment → validated [`ApiConfig`].

use std::collections::BTreeMap;

use fmn_rules::ContextKind;

/// Bounds on what one request and one user may hold (documented in `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest name (filter name, token name, subject prefix), characters.
    pub max_name_chars: usize,
    /// Longest rule argument string (glob, regex, pointer, username), characters.
    pub max_arg_chars: usize,
    /// Longest list in a rule argument (names, usernames, artifacts, one_of).
    pub max_list_items: usize,
    /// Largest JSON value in a `field` rule (`equals`, each of `one_of`), bytes.
    pub max_json_bytes: usize,
    /// Rules per filter.
    pub max_rules_per_filter: usize,
    /// Filters per context.
    pub max_filters_per_context: usize,
    /// Filters per user, over all contexts.
    pub max_filters_per_user: usize,
    /// Addresses per context.
    pub max_addresses_per_context: usize,
    /// Live personal tokens per user.
    pub max_tokens_per_user: usize,
    /// Regex rules per user, over all contexts (`topic_regex`, `artifact_regex`,
    /// `body_regex`, `field` with a regex): each is run against bus traffic.
    pub max_regex_rules_per_user: usize,
    /// Recent messages a preview looks at.
    pub preview_messages: usize,
    /// Matches a preview returns.
    pub preview_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 256 * 1024,
            max_name_chars: 100,
            max_arg_chars: 500,
            max_list_items: 100,
            max_json_bytes: 1000,
            max_rules_per_filter: 20,
            max_filters_per_context: 50,
            max_filters_per_user: 200,
            max_addresses_per_context: 10,
            max_tokens_per_user: 20,
            max_regex_rules_per_user: 10,
            preview_messages: 500,
            preview_results: 100,
        }
    }
}

/// How OpenID Connect access tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL (`iss`); its `/.well-known/openid-configuration` names the JWKS.
    pub issuer: String,
    /// The audience tokens must carry (`aud`), if any is required.
    pub audience: Option<String>,
    /// The claim holding the Fedora account name.
    pub username_claim: String,
    /// The claim listing the user's groups.
    pub groups_claim: String,
}

/// The web app's sign-in: an OpenID Connect client of [`ApiConfig::oidc`]'s issuer
/// (authorization code with PKCE), and its sessions.
#[derive(Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// The client id registered with the issuer; without it the pages cannot sign anyone in.
    pub client_id: Option<String>,
    /// The client secret, for issuers that require one (sent with the token request).
    pub client_secret: Option<String>,
    /// How long a session lives, seconds.
    pub session_ttl_secs: i64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            client_id: None,
            client_secret: None,
            session_ttl_secs: 8 * 3600,
        }
    }
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("WebConfig")
            .field("client_id", &self.client_id)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Everything the API needs besides its clients.
#[derive(Clone)]
pub struct ApiConfig {
    /// Public base URL of the API (links in confirmations and feeds), without trailing `/`.
    pub base_url: String,
    /// The secret signing unsubscribe links (shared with the senders).
    pub link_secret: Vec<u8>,
    /// OIDC verification; without it only personal tokens are accepted.
    pub oidc: Option<OidcConfig>,
    /// Members of these groups (OIDC groups claim) are admins.
    pub admin_groups: Vec<String>,
    /// These users are admins.
    pub admin_users: Vec<String>,
    /// How long a confirmation code or link lives, seconds.
    pub confirmation_ttl_secs: i64,
    /// How often confirmations may be sent and how many wrong codes count.
    pub confirmation_limits: fmn_store::ConfirmationLimits,
    /// The preferences table.
    pub preferences_table: String,
    /// The API table (tokens, confirmations, recent messages).
    pub api_table: String,
    /// The feed table, if feeds are deployed.
    pub feed_table: Option<String>,
    /// The maintainer data table (previews of `owned_by` filters read it), if deployed.
    pub ownership_table: Option<String>,
    /// The deliveries table, whose users' delivery history the history page reads.
    pub deliveries_table: Option<String>,
    /// The inbox table (`FMN_INBOX_TABLE`), if the inbox context is deployed.
    pub inbox_table: Option<String>,
    /// The inbox's WebSocket URL clients connect to (`FMN_INBOX_SOCKET_URL`).
    pub inbox_socket_url: Option<String>,
    /// Each delivery context's job queue (confirmations go there).
    pub context_queues: BTreeMap<ContextKind, String>,
    /// Bounds.
    pub limits: Limits,
    /// The web app's sign-in and sessions.
    pub web: WebConfig,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("oidc", &self.oidc)
            .field("admin_groups", &self.admin_groups)
            .field("admin_users", &self.admin_users)
            .field("preferences_table", &self.preferences_table)
            .field("api_table", &self.api_table)
            .field("feed_table", &self.feed_table)
            .field("ownership_table", &self.ownership_table)
            .field("deliveries_table", &self.deliveries_table)
            .field("inbox_table", &self.inbox_table)
            .field("inbox_socket_url", &self.inbox_socket_url)
            .field("context_queues", &self.context_queues)
            .field("web", &self.web)
            .finish_non_exhaustive()
    }
}

/// A setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, String),
}

/// Every context, in the order of the `FMN_<CONTEXT>_QUEUE_URL` variables.
pub const CONTEXTS: [ContextKind; 7] = [
    ContextKind::Email,
    ContextKind::Irc,
    ContextKind::Matrix,
    ContextKind::Webhook,
    ContextKind::Feed,
    ContextKind::Push,
    ContextKind::Inbox,
];

impl ApiConfig {
    /// A configuration with defaults for everything but the tables and the link secret.
    pub fn new(preferences_table: &str, api_table: &str, link_secret: &[u8]) -> Self {
        ApiConfig {
            base_url: "http://127.0.0.1:8080".into(),
            link_secret: link_secret.to_vec(),
            oidc: None,
            admin_groups: Vec::new(),
            admin_users: Vec::new(),
            confirmation_ttl_secs: 24 * 3600,
            confirmation_limits: fmn_store::ConfirmationLimits::default(),
            preferences_table: preferences_table.into(),
            api_table: api_table.into(),
            feed_table: None,
            ownership_table: None,
            deliveries_table: None,
            inbox_table: None,
            inbox_socket_url: None,
            context_queues: BTreeMap::new(),
            limits: Limits::default(),
            web: WebConfig::default(),
        }
    }

    /// Reads the configuration from the environment the template sets:
    /// `FMN_PREFERENCES_TABLE`, `FMN_API_TABLE`, `FMN_LINK_SECRET`, `FMN_API_BASE_URL`;
    /// optional `FMN_FEED_TABLE`, `FMN_OWNERSHIP_TABLE`, `FMN_DELIVERIES_TABLE` (the delivery
    /// history), `FMN_INBOX_TABLE` and `FMN_INBOX_SOCKET_URL` (the inbox and its
    /// WebSocket), `FMN_<CONTEXT>_QUEUE_URL`, `FMN_OIDC_ISSUER`,
    /// `FMN_OIDC_AUDIENCE`, `FMN_OIDC_USERNAME_CLAIM` (default `preferred_username`),
    /// `FMN_OIDC_GROUPS_CLAIM` (default `groups`), `FMN_ADMIN_GROUPS`, `FMN_ADMIN_USERS`
    /// (comma-separated), `FMN_CONFIRMATION_TTL_SECS` (default 86400), the confirmation
    /// limits `FMN_CONFIRMATION_ADDRESS_INTERVAL_SECS` (default 600),
    /// `FMN_CONFIRMATION_USER_DAILY` (10) and `FMN_CONFIRMATION_WRONG_CODES_DAILY` (5), and for the web app's
    /// sign-in `FMN_OIDC_CLIENT_ID`, `FMN_OIDC_CLIENT_SECRET`, `FMN_SESSION_TTL_SECS`
    /// (default 28800).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&fmn_lambda::Vars::from_env())
    }

    /// [`ApiConfig::from_env`] over `vars` (on Lambda, the environment with its secrets read
    /// from SSM: [`fmn_lambda::Vars::load`]). A link secret anyone could guess
    /// ([`fmn_links::check_secret`]) and an OIDC issuer without an audience are refused:
    /// without an audience, any application's token from the issuer would be accepted.
    pub fn from_vars(vars: &fmn_lambda::Vars) -> Result<Self, ConfigError> {
        let var = |name: &str| vars.get(name);
        let need = |name: &'static str| var(name).ok_or(ConfigError::Missing(name));
        let list = |name: &'static str| {
            var(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let secret = need("FMN_LINK_SECRET")?;
        fmn_links::check_secret(secret.as_bytes())
            .map_err(|e| ConfigError::Invalid("FMN_LINK_SECRET", e.to_string()))?;
        let mut config = ApiConfig::new(
            &need("FMN_PREFERENCES_TABLE")?,
            &need("FMN_API_TABLE")?,
            secret.as_bytes(),
        );
        config.base_url = need("FMN_API_BASE_URL")?.trim_end_matches('/').to_owned();
        config.feed_table = var("FMN_FEED_TABLE");
        config.ownership_table = var("FMN_OWNERSHIP_TABLE");
        config.deliveries_table = var("FMN_DELIVERIES_TABLE");
        config.inbox_table = var("FMN_INBOX_TABLE");
        config.inbox_socket_url = var("FMN_INBOX_SOCKET_URL");
        for kind in CONTEXTS {
            let name = format!("FMN_{}_QUEUE_URL", kind.as_str().to_uppercase());
            if let Some(url) = var(&name) {
                config.context_queues.insert(kind, url);
            }
        }
        if var("FMN_OIDC_ISSUER").is_some() && var("FMN_OIDC_AUDIENCE").is_none() {
            return Err(ConfigError::Invalid(
                "FMN_OIDC_AUDIENCE",
                "required with FMN_OIDC_ISSUER: without it any application's token from the \
                 issuer is accepted"
                    .into(),
            ));
        }
        config.oidc = var("FMN_OIDC_ISSUER").map(|issuer| OidcConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: var("FMN_OIDC_AUDIENCE"),
            username_claim: var("FMN_OIDC_USERNAME_CLAIM")
                .unwrap_or_else(|| "preferred_username".into()),
            groups_claim: var("FMN_OIDC_GROUPS_CLAIM").unwrap_or_else(|| "groups".into()),
        });
        config.admin_groups = list("FMN_ADMIN_GROUPS");
        config.admin_users = list("FMN_ADMIN_USERS");
        if let Some(ttl) = var("FMN_CONFIRMATION_TTL_SECS") {
            config.confirmation_ttl_secs = ttl
                .parse()
                .ok()
                .filter(|t| *t > 0)
                .ok_or(ConfigError::Invalid("FMN_CONFIRMATION_TTL_SECS", ttl))?;
        }
        let number = |name: &'static str, min: i64| -> Result<Option<i64>, ConfigError> {
            var(name)
                .map(|v| {
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n >= min && *n <= i64::from(u32::MAX))
                        .ok_or(ConfigError::Invalid(name, v))
                })
                .transpose()
        };
        let limits = &mut config.confirmation_limits;
        if let Some(n) = number("FMN_CONFIRMATION_ADDRESS_INTERVAL_SECS", 0)? {
            limits.address_interval_secs = n;
        }
        if let Some(n) = number("FMN_CONFIRMATION_USER_DAILY", 1)? {
            limits.user_daily = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("FMN_CONFIRMATION_WRONG_CODES_DAILY", 1)? {
            limits.wrong_codes_daily = u32::try_from(n).unwrap_or(u32::MAX);
        }
        config.web.client_id = var("FMN_OIDC_CLIENT_ID");
        config.web.client_secret = var("FMN_OIDC_CLIENT_SECRET");
        if let Some(ttl) = var("FMN_SESSION_TTL_SECS") {
            config.web.session_ttl_secs = ttl
                .parse()
                .ok()
                .filter(|t| *t > 0)
                .ok_or(ConfigError::Invalid("FMN_SESSION_TTL_SECS", ttl))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> fmn_lambda::Vars {
        let mut map: std::collections::HashMap<String, String> = [
            ("FMN_PREFERENCES_TABLE", "prefs"),
            ("FMN_API_TABLE", "api"),
            ("FMN_API_BASE_URL", "https://fmn.example.org/"),
            ("FMN_LINK_SECRET", "kT3q9Vx2LmP8wR5nZc7bYh4sJd6fGa1e"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in extra {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        fmn_lambda::Vars::new(map)
    }

    #[test]
    fn unsafe_settings_refuse_to_start() {
        assert!(ApiConfig::from_vars(&vars(&[])).is_ok());
        let weak = ApiConfig::from_vars(&vars(&[(
            "FMN_LINK_SECRET",
            "change-me-to-a-long-random-secret",
        )]));
        assert!(
            matches!(weak, Err(ConfigError::Invalid("FMN_LINK_SECRET", _))),
            "the former template default: {weak:?}"
        );
        let short = ApiConfig::from_vars(&vars(&[("FMN_LINK_SECRET", "sixteen chars!!!")]));
        assert!(matches!(
            short,
            Err(ConfigError::Invalid("FMN_LINK_SECRET", _))
        ));
        let no_audience = ApiConfig::from_vars(&vars(&[(
            "FMN_OIDC_ISSUER",
            "https://id.fedoraproject.org",
        )]));
        assert!(
            matches!(
                no_audience,
                Err(ConfigError::Invalid("FMN_OIDC_AUDIENCE", _))
            ),
            "{no_audience:?}"
        );
        let with_audience = ApiConfig::from_vars(&vars(&[
            ("FMN_OIDC_ISSUER", "https://id.fedoraproject.org"),
            ("FMN_OIDC_AUDIENCE", "fmn"),
        ]))
        .expect("issuer and audience");
        assert_eq!(
            with_audience.oidc.and_then(|o| o.audience).as_deref(),
            Some("fmn")
        );
    }
}
