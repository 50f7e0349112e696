//! How the sender reaches its IRC network.

use std::time::Duration;

/// SASL PLAIN credentials (IRCv3 `sasl` capability).
#[derive(Clone)]
pub struct SaslPlain {
    /// The account name.
    pub account: String,
    /// The account's password.
    pub password: String,
}

impl std::fmt::Debug for SaslPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslPlain")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The sender's IRC settings, validated.
#[derive(Clone)]
pub struct IrcConfig {
    /// Server host name or address.
    pub server: String,
    /// Server port.
    pub port: u16,
    /// Connect with TLS.
    pub tls: bool,
    /// A PEM file of extra trusted certificates (e.g. a private network's CA).
    pub ca_file: Option<String>,
    /// The bot's nick; on collision `<nick>_`, `<nick>1` … `<nick>9` are tried.
    pub nick: String,
    /// The connection password (`PASS`), if the server wants one.
    pub server_password: Option<String>,
    /// SASL PLAIN identification, if configured.
    pub sasl: Option<SaslPlain>,
    /// `NICKSERV IDENTIFY <password>` after registration, if configured.
    pub nickserv_password: Option<String>,
    /// Lines that may be sent at once before pacing starts.
    pub burst: u32,
    /// One more line may be sent after each such interval.
    pub interval: Duration,
    /// How long to wait for registration or for the server to acknowledge what was sent.
    pub reply_timeout: Duration,
    /// A connection idle longer than this is replaced rather than reused (a frozen Lambda's
    /// connection may have been dropped by the server meanwhile).
    pub max_idle: Duration,
}

impl std::fmt::Debug for IrcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrcConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("nick", &self.nick)
            .field("sasl", &self.sasl)
            .field("nickserv", &self.nickserv_password.is_some())
            .field("burst", &self.burst)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// A setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl IrcConfig {
    /// Plain-text defaults for `server:port` and `nick`.
    pub fn new(server: impl Into<String>, port: u16, nick: impl Into<String>) -> Self {
        IrcConfig {
            server: server.into(),
            port,
            tls: false,
            ca_file: None,
            nick: nick.into(),
            server_password: None,
            sasl: None,
            nickserv_password: None,
            burst: 5,
            interval: Duration::from_millis(1000),
            reply_timeout: Duration::from_secs(10),
            max_idle: Duration::from_secs(60),
        }
    }

    /// Reads `FMN_IRC_SERVER` (required), `FMN_IRC_PORT` (6697 with TLS, else 6667),
    /// `FMN_IRC_TLS` (`true`/`false`), `FMN_IRC_CA_FILE`, `FMN_IRC_NICK` (default `fmn`),
    /// `FMN_IRC_SERVER_PASSWORD`, `FMN_IRC_SASL_ACCOUNT` + `FMN_IRC_SASL_PASSWORD`,
    /// `FMN_IRC_NICKSERV_PASSWORD`, `FMN_IRC_BURST`, `FMN_IRC_INTERVAL_MS` through `var`
    /// (e.g. `|n| std::env::var(n).ok()`). Empty values count as absent.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            value: Option<String>,
        ) -> Result<Option<T>, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value
                .map(|v| {
                    v.trim().parse::<T>().map_err(|e| ConfigError {
                        name,
                        problem: format!("{v:?}: {e}"),
                    })
                })
                .transpose()
        }
        let server = get("FMN_IRC_SERVER").ok_or(ConfigError {
            name: "FMN_IRC_SERVER",
            problem: "missing".into(),
        })?;
        let tls = parse::<bool>("FMN_IRC_TLS", get("FMN_IRC_TLS"))?.unwrap_or(false);
        let port = parse::<u16>("FMN_IRC_PORT", get("FMN_IRC_PORT"))?.unwrap_or(if tls {
            6697
        } else {
            6667
        });
        let nick = get("FMN_IRC_NICK").unwrap_or_else(|| "fmn".into());
        if !crate::valid_nick(&nick) {
            return Err(ConfigError {
                name: "FMN_IRC_NICK",
                problem: format!("{nick:?} is not a valid nick"),
            });
        }
        let sasl = match (get("FMN_IRC_SASL_ACCOUNT"), get("FMN_IRC_SASL_PASSWORD")) {
            (Some(account), Some(password)) => Some(SaslPlain { account, password }),
            (None, None) => None,
            _ => {
                return Err(ConfigError {
                    name: "FMN_IRC_SASL_ACCOUNT",
                    problem: "SASL needs both FMN_IRC_SASL_ACCOUNT and FMN_IRC_SASL_PASSWORD"
                        .into(),
                });
            }
        };
        let mut config = IrcConfig::new(server, port, nick);
        config.tls = tls;
        config.ca_file = get("FMN_IRC_CA_FILE");
        config.server_password = get("FMN_IRC_SERVER_PASSWORD");
        config.sasl = sasl;
        config.nickserv_password = get("FMN_IRC_NICKSERV_PASSWORD");
        if let Some(burst) = parse::<u32>("FMN_IRC_BURST", get("FMN_IRC_BURST"))? {
            config.burst = burst.max(1);
        }
        if let Some(ms) = parse::<u64>("FMN_IRC_INTERVAL_MS", get("FMN_IRC_INTERVAL_MS"))? {
            config.interval = Duration::from_millis(ms);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_and_validates_settings() {
        let c = IrcConfig::from_vars(vars(&[
            ("FMN_IRC_SERVER", "irc.libera.chat"),
            ("FMN_IRC_TLS", "true"),
            ("FMN_IRC_SASL_ACCOUNT", "fmn"),
            ("FMN_IRC_SASL_PASSWORD", "hunter2"),
        ]))
        .unwrap();
        assert_eq!((c.port, c.tls, c.nick.as_str()), (6697, true, "fmn"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = IrcConfig::from_vars(vars(&[])).unwrap_err();
        assert_eq!(e.name, "FMN_IRC_SERVER");
        let e = IrcConfig::from_vars(vars(&[("FMN_IRC_SERVER", "x"), ("FMN_IRC_PORT", "99999")]))
            .unwrap_err();
        assert_eq!(e.name, "FMN_IRC_PORT");
        let e = IrcConfig::from_vars(vars(&[("FMN_IRC_SERVER", "x"), ("FMN_IRC_NICK", "a b")]))
            .unwrap_err();
        assert_eq!(e.name, "FMN_IRC_NICK");
        let e = IrcConfig::from_vars(vars(&[
            ("FMN_IRC_SERVER", "x"),
            ("FMN_IRC_SASL_ACCOUNT", "fmn"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "FMN_IRC_SASL_ACCOUNT");
    }
}
