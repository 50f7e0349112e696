//! What a notification looks like on IRC: one line of text, safe to put in a PRIVMSG.

use fmn_queue::{ConfirmationJob, NotificationJob};

/// The protocol's limit on one line, CR LF included (RFC 1459 §2.3, RFC 2812 §2.3).
pub const MAX_LINE: usize = 512;

/// The longest host a server may show in our prefix when we do not know ours yet (RFC 1035
/// labels; ngircd's limit is 63).
pub const ASSUMED_HOST_LEN: usize = 63;

/// Makes `text` safe for one IRC line: CR and LF (and every other line or paragraph
/// separator) become a space, other control characters are dropped (this removes CTCP's
/// `\x01` and mIRC formatting codes), runs of whitespace collapse to one space, and the
/// ends are trimmed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = match c {
            '\r' | '\n' | '\t' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() => continue,
            // Zero-width and bidi controls are not `is_control`, but can disguise a line.
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                continue;
            }
            c => c,
        };
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// The text of a notification: summary, link, and (when the context's settings ask for it)
/// which filters fired. Sanitized, but not yet split.
pub fn notification_text(job: &NotificationJob) -> String {
    let mut text = sanitize(&job.message.summary);
    if text.is_empty() {
        text = sanitize(&job.message.topic);
    }
    if let Some(link) = job.message.link.as_deref().map(sanitize) {
        if !link.is_empty() {
            text.push(' ');
            text.push_str(&link);
        }
    }
    if job.settings.triggered_by && !job.filters.is_empty() {
        let names: Vec<String> = job
            .filters
            .iter()
            .map(|f| sanitize(&f.name))
            .filter(|n| !n.is_empty())
            .collect();
        if !names.is_empty() {
            text.push_str(" (triggered by ");
            text.push_str(&names.join(", "));
            text.push(')');
        }
    }
    text
}

/// The text sent to an address being confirmed: the code and how to use it.
pub fn confirmation_text(job: &ConfirmationJob) -> String {
    let what = match (&job.code, &job.link) {
        (Some(code), _) => format!("your confirmation code is {}", sanitize(code)),
        (None, Some(link)) => format!("confirm by opening {}", sanitize(link)),
        (None, None) => "a confirmation was requested, but it carries no code".to_owned(),
    };
    sanitize(&format!(
        "fmn: {} asked to receive notifications at this nick; {what}. If that was not you, \
         ignore this message.",
        job.user
    ))
}

/// How many bytes of text fit in one PRIVMSG as the recipient receives it:
/// `:nick!user@host PRIVMSG target :text\r\n` must be at most [`MAX_LINE`] bytes.
pub fn max_text_bytes(nick: &str, user: &str, host_len: usize, target: &str) -> usize {
    let overhead = 1 + nick.len() + 1 + user.len() + 1 + host_len // :nick!user@host
        + " PRIVMSG ".len() + target.len() + " :".len() + "\r\n".len();
    MAX_LINE.saturating_sub(overhead).max(1)
}

/// Splits `text` into pieces of at most `max` bytes, never inside a UTF-8 character, at the
/// last space when there is one in the second half of a piece. Empty text gives no piece.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let max = max.max(4); // room for any one character
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.len() <= max {
            out.push(rest.to_owned());
            break;
        }
        let mut end = max;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if let Some(space) = rest[..end].rfind(' ').filter(|&i| i >= end / 2) {
            end = space;
        }
        out.push(rest[..end].trim_end().to_owned());
        rest = rest[end..].trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = include_str!("../../fmn-queue/tests/fixtures/email-job.json");

    #[test]
    fn hostile_text_becomes_one_clean_line() {
        let text =
            sanitize("built\r\nPRIVMSG #ops :pwned\x01ACTION x\x01 \x02bold\x0f\u{202e}  ok\t");
        assert_eq!(text, "built PRIVMSG #ops :pwnedACTION x bold ok");
        assert!(!text.chars().any(char::is_control));
    }

    #[test]
    fn notification_has_summary_link_and_filters() {
        let mut job: NotificationJob = serde_json::from_str(JOB).unwrap();
        job.message.summary = "a\r\nb".into();
        job.message.link = Some("https://x.example/1\n".into());
        let text = notification_text(&job);
        assert!(
            text.starts_with("a b https://x.example/1 (triggered by "),
            "{text}"
        );
        job.settings.triggered_by = false;
        assert_eq!(notification_text(&job), "a b https://x.example/1");
    }

    #[test]
    fn split_respects_bytes_and_characters() {
        let text = "é".repeat(300); // 600 bytes, no spaces
        let pieces = split(&text, 101);
        assert!(pieces.iter().all(|p| p.len() <= 101));
        assert_eq!(pieces.concat(), text);
        let words = "word ".repeat(100);
        let pieces = split(&words, 50);
        assert!(pieces.iter().all(|p| p.len() <= 50 && !p.ends_with(' ')));
        assert_eq!(pieces.join(" "), words.trim());
        assert!(split("", 10).is_empty());
        assert_eq!(split("short", 10), ["short"]);
    }

    #[test]
    fn payload_budget_counts_the_relayed_prefix() {
        let max = max_text_bytes("fmn", "~fmn", 9, "alice");
        let line = format!(":fmn!~fmn@localhost PRIVMSG alice :{}\r\n", "x".repeat(max));
        assert_eq!(line.len(), MAX_LINE);
    }
}
