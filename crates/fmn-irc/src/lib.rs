//! IRC delivery for fmn: notification lines that are safe on the wire, and a client that
//! delivers them over one reused connection.
//!
//! - [`format`]: [`notification_text`] (summary, link, "triggered by"),
//!   [`confirmation_text`], [`sanitize`] (no CR/LF or control characters, so nothing from a
//!   bus message can inject a protocol line or CTCP) and [`split`] (at UTF-8 boundaries,
//!   within the 512-byte line the recipient receives, prefix included).
//! - [`IrcClient`]: connects with TLS, SASL PLAIN or NickServ identification when
//!   configured ([`IrcConfig`]), falls back to `<nick>_`, `<nick>1`… on a nick collision,
//!   paces lines with a token bucket, and confirms each delivery with a `PING` round trip.
//!
//! ```
//! let text = fmn_irc::sanitize("koji build failed\r\nQUIT :bye\x01");
//! assert_eq!(text, "koji build failed QUIT :bye");
//! let lines = fmn_irc::split(&"é".repeat(400), 300);
//! assert!(lines.iter().all(|l| l.len() <= 300));
//! ```

mod client;
mod config;
pub mod format;

pub use client::{IrcClient, IrcError, IrcLink, Outcome};
pub use config::{ConfigError, IrcConfig, SaslPlain};
pub use format::{confirmation_text, notification_text, sanitize, split};

/// Whether `nick` is a nick (RFC 2812 §2.3.1, with the usual length extension): a letter or
/// one of `[]\`_^{|}` first, then those, digits or `-`; at most 64 bytes. Anything else
/// could break out of a protocol line and is refused.
pub fn valid_nick(nick: &str) -> bool {
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = nick.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    nick.len() <= 64
        && (first.is_ascii_alphabetic() || special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || special(c) || c == '-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn nicks() {
        for ok in ["alice", "a-b", "[bot]", "x_1", "Nick`"] {
            assert!(super::valid_nick(ok), "{ok}");
        }
        for bad in ["", "1abc", "a b", "a\r\nQUIT", "#chan", ":x", "é"] {
            assert!(!super::valid_nick(bad), "{bad}");
        }
    }
}
