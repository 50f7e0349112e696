//! What the API reads and writes: JSON documents mirroring [`fmn_rules`]'s preference model,
//! with unknown fields refused and schemas for the OpenAPI document.

use std::borrow::Cow;
use std::collections::BTreeMap;

use fmn_rules::{Address, Context, ContextKind, ContextSettings, Filter, Preferences, Rule};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

fn yes() -> bool {
    true
}

/// A rule: `{"kind": …, "negate"?: bool, …arguments}`. See `GET /api/v1/rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDoc(pub Rule);

impl Serialize for RuleDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RuleDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let obj = value
            .as_object()
            .ok_or_else(|| D::Error::custom("a rule must be a JSON object"))?;
        let kind = obj
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| D::Error::custom("a rule needs a string `kind`"))?;
        let allowed = crate::catalog::allowed_keys(kind).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown rule kind `{kind}`, expected one of {}",
                crate::catalog::kind_names().join(", ")
            ))
        })?;
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(D::Error::custom(format!(
                "unknown field `{k}` in a {kind} rule, expected one of {}",
                allowed.join(", ")
            )));
        }
        let kind = kind.to_owned();
        serde_json::from_value(value)
            .map(RuleDoc)
            .map_err(|e| D::Error::custom(format!("{kind} rule: {e}")))
    }
}

impl utoipa::PartialSchema for RuleDoc {
    fn schema() -> RefOr<Schema> {
        // One of the kinds' schemas, each written as JSON Schema in the catalog.
        let mut one_of = utoipa::openapi::schema::OneOfBuilder::new().description(Some(
            "One condition on a message; `negate` inverts it. See GET /api/v1/rules.",
        ));
        for kind in crate::catalog::rule_kinds() {
            if let Ok(schema) = serde_json::from_value::<Schema>(kind.schema) {
                one_of = one_of.item(schema);
            }
        }
        RefOr::T(Schema::OneOf(one_of.build()))
    }
}

impl ToSchema for RuleDoc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Rule")
    }
}

/// A context's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsDoc {
    /// Send a digest once the oldest held notification is this many seconds old
    /// (60–604800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 604800)]
    pub digest_interval_secs: Option<u32>,
    /// Send a digest once this many notifications are held (1–1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub digest_count: Option<u32>,
    /// The long form rather than one line.
    #[serde(default)]
    pub verbose: bool,
    /// Include which filters fired, with a link to them.
    #[serde(default = "yes")]
    pub triggered_by: bool,
    /// Use the channel's markup (HTML mail, Matrix formatting).
    #[serde(default = "yes")]
    pub markup: bool,
    /// Prefix for email subjects, e.g. `[fmn]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub subject_prefix: Option<String>,
}

impl Default for SettingsDoc {
    fn default() -> Self {
        ContextSettings::default().into()
    }
}

impl From<ContextSettings> for SettingsDoc {
    fn from(s: ContextSettings) -> Self {
        SettingsDoc {
            digest_interval_secs: s.digest_interval_secs,
            digest_count: s.digest_count,
            verbose: s.verbose,
            triggered_by: s.triggered_by,
            markup: s.markup,
            subject_prefix: s.subject_prefix,
        }
    }
}

impl From<SettingsDoc> for ContextSettings {
    fn from(s: SettingsDoc) -> Self {
        ContextSettings {
            digest_interval_secs: s.digest_interval_secs,
            digest_count: s.digest_count,
            verbose: s.verbose,
            triggered_by: s.triggered_by,
            markup: s.markup,
            subject_prefix: s.subject_prefix,
        }
    }
}

/// A delivery address as its owner (or an admin) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressDoc {
    /// The address (email address, IRC nick, Matrix user id, webhook or push endpoint URL).
    pub address: String,
    /// Whether it was confirmed; nothing is sent to an unconfirmed address.
    pub confirmed: bool,
    /// Why delivery to it is paused, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
    /// The webhook signing secret (HMAC-SHA256), for webhook addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Address> for AddressDoc {
    fn from(a: Address) -> Self {
        AddressDoc {
            address: a.address,
            confirmed: a.confirmed,
            disabled: a.disabled,
            secret: a.secret,
        }
    }
}

/// A filter: rules AND'ed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterDoc {
    /// Stable identifier, unique within the user.
    pub id: String,
    /// Shown in notifications ("why did I get this?").
    pub name: String,
    /// Inactive filters match nothing.
    pub active: bool,
    /// Deactivate after the first match.
    pub oneshot: bool,
    /// All must hold; a filter without rules matches nothing.
    pub rules: Vec<RuleDoc>,
    /// Which of the context's addresses it delivers to; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
}

impl From<Filter> for FilterDoc {
    fn from(f: Filter) -> Self {
        FilterDoc {
            id: f.id,
            name: f.name,
            active: f.active,
            oneshot: f.oneshot,
            rules: f.rules.into_iter().map(RuleDoc).collect(),
            addresses: f.addresses,
        }
    }
}

/// A new filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterIn {
    /// Identifier (letters, digits, `.`, `_`, `-`; at most 64); generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: Option<String>,
    /// Its name (1–100 characters).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
    /// Default false.
    #[serde(default)]
    pub oneshot: bool,
    /// Default none (matches nothing until a rule is added).
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
    /// Absent or empty: all the context's addresses.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
}

impl FilterIn {
    /// The filter, with `id` when none was given.
    pub fn into_filter(self, id: String) -> Filter {
        Filter {
            id: self.id.unwrap_or(id),
            name: self.name,
            active: self.active,
            oneshot: self.oneshot,
            rules: self.rules.into_iter().map(|r| r.0).collect(),
            addresses: self.addresses.filter(|a| !a.is_empty()),
        }
    }
}

/// Changes to a filter; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterPatch {
    /// Rename (1–100 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// Activate or deactivate.
    #[serde(default)]
    pub active: Option<bool>,
    /// Oneshot or not.
    #[serde(default)]
    pub oneshot: Option<bool>,
    /// Replace all rules.
    #[serde(default)]
    pub rules: Option<Vec<RuleDoc>>,
    /// Choose addresses; an empty list means all the context's addresses.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
}

/// A context as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextDoc {
    /// A disabled context notifies nothing.
    pub enabled: bool,
    /// Shape and batching of notifications.
    pub settings: SettingsDoc,
    /// Delivery addresses (owner and admins only).
    pub addresses: Vec<AddressDoc>,
    /// Filters, OR'ed, in order.
    pub filters: Vec<FilterDoc>,
}

impl From<Context> for ContextDoc {
    fn from(c: Context) -> Self {
        ContextDoc {
            enabled: c.enabled,
            settings: c.settings.into(),
            addresses: c.addresses.into_iter().map(Into::into).collect(),
            filters: c.filters.into_iter().map(Into::into).collect(),
        }
    }
}

/// Creates a context or changes its switch and settings (addresses and filters stay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextIn {
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default settings when absent.
    #[serde(default)]
    pub settings: SettingsDoc,
}

/// All of a user's preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreferencesDoc {
    /// The account name.
    pub user: String,
    /// Contexts by name (`email`, `irc`, `matrix`, `webhook`, `feed`, `push`, `inbox`).
    pub contexts: BTreeMap<String, ContextDoc>,
}

impl From<Preferences> for PreferencesDoc {
    fn from(p: Preferences) -> Self {
        PreferencesDoc {
            user: p.user,
            contexts: p
                .contexts
                .into_iter()
                .map(|(k, c)| (k.as_str().to_owned(), c.into()))
                .collect(),
        }
    }
}

/// A new address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressIn {
    /// Email address, IRC nick, Matrix user id (`@user:server`), webhook URL or push endpoint
    /// URL.
    #[schema(min_length = 1, max_length = 500)]
    pub address: String,
}

/// What adding an address did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressAdded {
    /// The address, unconfirmed until its code or link is used.
    pub address: AddressDoc,
    /// When the code or link sent to it expires, seconds since the epoch.
    pub confirmation_expires_at: i64,
    /// How it is confirmed: `link` (email) or `code`.
    pub confirm_with: String,
}

/// A confirmation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmIn {
    /// The code the address received.
    #[schema(min_length = 1, max_length = 100)]
    pub code: String,
}

/// The new order of a context's filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterOrder {
    /// Every filter id of the context, each once, in the wanted order.
    pub ids: Vec<String>,
}

/// Where to copy a context's filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyIn {
    /// The target context (created if missing).
    pub to: ContextName,
}

/// A Fedora account name in a path (`{user}`): 1–64 of `A-Za-z0-9._-`. Documents the
/// parameter; the handlers validate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "alice")]
pub struct UserName(pub String);

/// A filter id in a path (`{filter}`): 1–64 of `A-Za-z0-9._-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "my-packages")]
pub struct FilterId(pub String);

/// A context's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContextName {
    /// Email.
    Email,
    /// IRC private message.
    Irc,
    /// Matrix.
    Matrix,
    /// Signed webhook.
    Webhook,
    /// RSS/Atom feed.
    Feed,
    /// UnifiedPush endpoint (ntfy topic or any distributor's).
    Push,
    /// The web app's inbox (live over a WebSocket).
    Inbox,
}

impl From<ContextName> for ContextKind {
    fn from(c: ContextName) -> Self {
        match c {
            ContextName::Email => ContextKind::Email,
            ContextName::Irc => ContextKind::Irc,
            ContextName::Matrix => ContextKind::Matrix,
            ContextName::Webhook => ContextKind::Webhook,
            ContextName::Feed => ContextKind::Feed,
            ContextName::Push => ContextKind::Push,
            ContextName::Inbox => ContextKind::Inbox,
        }
    }
}

/// A new personal token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// A label (at most 100 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds (60 to 31536000); absent: 90 days.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 31536000)]
    pub expires_in_secs: Option<i64>,
}

/// A personal token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenDoc {
    /// Its identifier (for revoking).
    pub id: String,
    /// Its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether it grants admin rights.
    pub admin: bool,
    /// Minted at, seconds since the epoch.
    pub created_at: i64,
    /// Stops working at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl From<fmn_store::TokenRecord> for TokenDoc {
    fn from(t: fmn_store::TokenRecord) -> Self {
        TokenDoc {
            id: t.id,
            name: t.name,
            admin: t.admin,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

/// A freshly minted token: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The secret (`fmn_…`), for `Authorization: Bearer`.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub info: TokenDoc,
}

/// The caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The account name.
    pub user: String,
    /// Whether the caller is an admin.
    pub admin: bool,
}

/// A list of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Account names with stored preferences.
    pub users: Vec<String>,
}

/// The application names the message catalog knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationList {
    /// Names, for `application` rules.
    pub applications: Vec<String>,
}

/// What to preview: one filter, or a whole context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    /// A filter to try (need not be saved); it is treated as active.
    #[serde(default)]
    pub filter: Option<FilterIn>,
    /// A saved context: its active filters, as the matcher would run them.
    #[serde(default)]
    pub context: Option<ContextName>,
    /// How many recent messages to look at (default and maximum: the preview bound).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub messages: Option<usize>,
}

/// A recent message that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreviewMatch {
    /// The bus message id.
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// Its application.
    pub app: String,
    /// One line saying what happened.
    pub summary: String,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Seconds since the epoch, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// The filters that matched it (ids).
    pub filters: Vec<String>,
}

/// The preview's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreviewOut {
    /// Recent messages looked at.
    pub scanned: usize,
    /// Those that matched, newest first (bounded).
    pub matches: Vec<PreviewMatch>,
}

/// A template.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TemplateDoc {
    /// Its name, for applying it.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The filters it adds (rules written for the user who applies it).
    pub filters: Vec<FilterDoc>,
}

/// A new feed URL, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedUrls {
    /// RSS 2.0.
    pub rss: String,
    /// Atom 1.0.
    pub atom: String,
}
