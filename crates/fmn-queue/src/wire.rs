//! What SQS accepts, and how fmn carries what it does not.
//!
//! SQS accepts in a message body and in attribute values only the characters `#x9 | #xA |
//! #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF` (its `InvalidMessageContents`
//! otherwise, for the whole message). A bus message may carry others (U+FFFE, U+FFFF in a
//! JSON string; control characters in a payload that is not JSON), and refusing it forever
//! would stall the bridge. So every sender makes a message safe first
//! ([`Outgoing::sqs_safe`], which [`SqsQueue`](crate::SqsQueue) applies to everything it
//! sends):
//!
//! - a body SQS would refuse is sent base64-encoded (standard alphabet, padded) with the
//!   attribute [`ENCODING_ATTRIBUTE`] = `base64`; consumers read bodies with
//!   [`record_body`], which undoes it, so the body arrives byte for byte;
//! - an attribute value SQS would refuse has each refused character replaced by U+FFFD:
//!   attributes are hints (the topic, a quarantine reason, the bus id), the body is the
//!   message.
//!
//! ```
//! use fmn_queue::Outgoing;
//! let poison = Outgoing::new("{\"s\": \"\u{FFFE}\"}").with_attribute("topic", "a\u{0}b");
//! let safe = poison.clone().sqs_safe();
//! assert!(fmn_queue::wire::sqs_accepts(&safe.body));
//! assert_eq!(safe.attributes[0], ("topic".to_owned(), "a\u{FFFD}b".to_owned()));
//! assert!(safe.attributes.contains(&("fmn_encoding".to_owned(), "base64".to_owned())));
//! let back = fmn_queue::wire::decode_body(safe.body, Some("base64")).unwrap();
//! assert_eq!(back, poison.body);
//! ```

use std::borrow::Cow;

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{Outgoing, RecordError};

/// Message attribute saying how the body is encoded (absent: as is).
pub const ENCODING_ATTRIBUTE: &str = "fmn_encoding";
/// The one encoding: standard base64 of the UTF-8 body.
pub const BASE64: &str = "base64";

/// Whether SQS accepts `c` in a message (its documented character set).
pub fn sqs_accepts_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Whether SQS accepts every character of `text`.
pub fn sqs_accepts(text: &str) -> bool {
    text.chars().all(sqs_accepts_char)
}

/// `text` with every character SQS refuses replaced by U+FFFD (for attribute values).
pub fn sqs_lossy(text: &str) -> Cow<'_, str> {
    if sqs_accepts(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if sqs_accepts_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

impl Outgoing {
    /// This message as SQS accepts it (see the [module](self)): unchanged when it already
    /// is.
    pub fn sqs_safe(mut self) -> Outgoing {
        if !sqs_accepts(&self.body) {
            self.body = STANDARD.encode(self.body.as_bytes());
            self.attributes.retain(|(k, _)| k != ENCODING_ATTRIBUTE);
            self.attributes
                .push((ENCODING_ATTRIBUTE.to_owned(), BASE64.to_owned()));
        }
        for (name, value) in &mut self.attributes {
            if !sqs_accepts(name) || !sqs_accepts(value) {
                *name = sqs_lossy(name).into_owned();
                *value = sqs_lossy(value).into_owned();
            }
        }
        self
    }
}

/// A string attribute of a received record.
pub fn attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record
        .message_attributes
        .get(name)
        .and_then(|a| a.string_value.as_deref())
}

/// Sets string attributes on a record (tests, and the local runtime's event building).
pub fn set_attributes(record: &mut SqsMessage, attributes: &[(String, String)]) {
    for (name, value) in attributes {
        let mut a = SqsMessageAttribute::default();
        a.string_value = Some(value.clone());
        a.data_type = Some("String".to_owned());
        record.message_attributes.insert(name.clone(), a);
    }
}

/// The body of a received record as it was sent, its encoding (if any) undone. A body
/// marked with an encoding fmn does not know, or not valid in it, is an error naming why.
pub fn record_body(record: &SqsMessage) -> Result<String, RecordError> {
    let body = record.body.clone().unwrap_or_default();
    decode_body(body, attribute(record, ENCODING_ATTRIBUTE))
}

/// `body` with `encoding` (the [`ENCODING_ATTRIBUTE`]'s value, if any) undone.
pub fn decode_body(body: String, encoding: Option<&str>) -> Result<String, RecordError> {
    match encoding {
        None => Ok(body),
        Some(BASE64) => STANDARD
            .decode(body.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| RecordError("body marked base64 is not base64 of UTF-8".into())),
        Some(other) => Err(RecordError(format!("unknown body encoding {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented set, probed at its edges.
    #[test]
    fn the_character_set_is_sqs_documented_one() {
        let table = [
            ('\u{0}', false),
            ('\u{8}', false),
            ('\u{9}', true),
            ('\u{A}', true),
            ('\u{B}', false),
            ('\u{C}', false),
            ('\u{D}', true),
            ('\u{1F}', false),
            ('\u{20}', true),
            ('\u{7F}', true),
            ('\u{D7FF}', true),
            ('\u{E000}', true),
            ('\u{FFFD}', true),
            ('\u{FFFE}', false),
            ('\u{FFFF}', false),
            ('\u{10000}', true),
            ('\u{10FFFF}', true),
        ];
        for (c, accepted) in table {
            assert_eq!(sqs_accepts_char(c), accepted, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn a_refused_body_round_trips_and_a_safe_one_is_untouched() {
        let fine = Outgoing::new("{\"a\": \"é\u{10FFFF}\"}").with_attribute("topic", "t");
        assert_eq!(fine.clone().sqs_safe(), fine);
        for body in [
            "\u{FFFF}",
            "a\u{0}b",
            "{\"x\": \"\u{FFFE}\"}",
            "\u{1F}\u{B}",
        ] {
            let safe = Outgoing::new(body).sqs_safe();
            assert!(sqs_accepts(&safe.body));
            let mut record = crate::test_util::sqs_record("r", &safe.body);
            set_attributes(&mut record, &safe.attributes);
            assert_eq!(record_body(&record).unwrap(), body);
        }
        assert!(decode_body("!!".into(), Some(BASE64)).is_err());
        assert!(decode_body("x".into(), Some("rot13")).is_err());
    }
}
