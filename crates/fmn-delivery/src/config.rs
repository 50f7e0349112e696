//! The configuration the senders that POST to addresses their users give (push endpoints,
//! webhooks) read the same way: one reader, each sender naming its own switches.

use fmn_lambda::{ConfigError, Vars};

/// The push and webhook senders' shared configuration, from the environment the template
/// sets. `<CHANNEL>` is the sender's own part of a switch's name (`PUSH`, `WEBHOOK`).
#[derive(Debug, Clone)]
pub struct HttpSenderConfig {
    /// `FMN_DELIVERIES_TABLE`: idempotency records (and the webhook sender's failure
    /// counters).
    pub deliveries_table: String,
    /// `FMN_PREFERENCES_TABLE`: which addresses are deliverable (the webhooks' secrets),
    /// and where a failing address is disabled.
    pub preferences_table: String,
    /// `FMN_HELD_TABLE` (optional): digests and the flood limit.
    pub held_table: Option<String>,
    /// `FMN_EMAIL_QUEUE_URL` (optional): where an owner with a confirmed email address is
    /// told that their address was disabled.
    pub email_queue_url: Option<String>,
    /// `FMN_FEED_QUEUE_URL` (optional): where other owners are told.
    pub feed_queue_url: Option<String>,
    /// `FMN_<CHANNEL>_ALLOW_PRIVATE` (`1`, `true` or `yes`; never in AWS): POST to private
    /// and loopback targets too (tests, the local run).
    pub allow_private: bool,
    /// `FMN_<CHANNEL>_ALLOW_PORTS` (comma-separated, optional): ports the addresses may use
    /// besides 80 and 443.
    pub allow_ports: Vec<u16>,
    /// `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS`: the flood limit.
    pub flood: fmn_digest::FloodLimit,
}

impl HttpSenderConfig {
    /// Reads the configuration from `vars`, the switches of `channel` (`PUSH` reads
    /// `FMN_PUSH_ALLOW_PRIVATE` and `FMN_PUSH_ALLOW_PORTS`).
    pub fn from_vars(vars: &Vars, channel: &str) -> Result<HttpSenderConfig, ConfigError> {
        let ports = format!("FMN_{channel}_ALLOW_PORTS");
        Ok(HttpSenderConfig {
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
            preferences_table: vars.required("FMN_PREFERENCES_TABLE")?,
            held_table: vars.get("FMN_HELD_TABLE"),
            email_queue_url: vars.get("FMN_EMAIL_QUEUE_URL"),
            feed_queue_url: vars.get("FMN_FEED_QUEUE_URL"),
            allow_private: vars.flag(&format!("FMN_{channel}_ALLOW_PRIVATE")),
            allow_ports: match vars.get(&ports) {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(|p| p.trim().parse::<u16>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| ConfigError::invalid(&ports, format!("{list:?}: {e}")))?,
            },
            flood: fmn_digest::FloodLimit::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn each_sender_reads_its_own_switches() {
        let v = vars(&[
            ("FMN_DELIVERIES_TABLE", "deliveries"),
            ("FMN_PREFERENCES_TABLE", "prefs"),
            ("FMN_FEED_QUEUE_URL", "http://feed"),
            ("FMN_PUSH_ALLOW_PRIVATE", "1"),
            ("FMN_PUSH_ALLOW_PORTS", "8080, 8443"),
            ("FMN_WEBHOOK_ALLOW_PORTS", "9000"),
        ]);
        let push = HttpSenderConfig::from_vars(&v, "PUSH").unwrap();
        assert_eq!(push.deliveries_table, "deliveries");
        assert_eq!(push.preferences_table, "prefs");
        assert_eq!(push.held_table, None);
        assert_eq!(push.email_queue_url, None);
        assert_eq!(push.feed_queue_url.as_deref(), Some("http://feed"));
        assert!(push.allow_private);
        assert_eq!(push.allow_ports, [8080, 8443]);
        let webhook = HttpSenderConfig::from_vars(&v, "WEBHOOK").unwrap();
        assert!(!webhook.allow_private);
        assert_eq!(webhook.allow_ports, [9000]);
    }

    #[test]
    fn errors_name_the_variable() {
        let v = vars(&[
            ("FMN_DELIVERIES_TABLE", "deliveries"),
            ("FMN_WEBHOOK_ALLOW_PORTS", "80,http"),
        ]);
        assert_eq!(
            HttpSenderConfig::from_vars(&v, "WEBHOOK").unwrap_err(),
            ConfigError::Missing("FMN_PREFERENCES_TABLE".into())
        );
        let v = vars(&[
            ("FMN_DELIVERIES_TABLE", "deliveries"),
            ("FMN_PREFERENCES_TABLE", "prefs"),
            ("FMN_WEBHOOK_ALLOW_PORTS", "80,http"),
        ]);
        let e = HttpSenderConfig::from_vars(&v, "WEBHOOK").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable FMN_WEBHOOK_ALLOW_PORTS: \"80,http\": "),
            "{e}"
        );
    }
}
