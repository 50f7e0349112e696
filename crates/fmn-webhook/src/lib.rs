//! Webhooks: a notification becomes a JSON [`Payload`] POSTed to the user's URL, signed so
//! the receiver can check it came from fmn and is fresh:
//!
//! ```text
//! POST /their/hook
//! Content-Type: application/json
//! X-Fmn-Timestamp: 1700000000
//! X-Fmn-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>
//! ```
//!
//! [`sign`] and [`verify`] implement the signature (receivers should also refuse timestamps
//! older than a few minutes). [`WebhookClient`] refuses private, loopback and link-local
//! targets unless allowed, checking every address the host resolves to *at connect time*
//! (its resolver is the guard, so DNS rebinding cannot slip a private address in), follows
//! no redirects, and retries with backoff a bounded number of times.
//!
//! ```
//! let sig = fmn_webhook::sign(b"secret", 1_700_000_000, br#"{"id":"m1"}"#);
//! assert!(fmn_webhook::verify(b"secret", "1700000000", br#"{"id":"m1"}"#, &sig));
//! assert!(!fmn_webhook::verify(b"other", "1700000000", br#"{"id":"m1"}"#, &sig));
//! ```

mod client;
mod guard;
mod payload;

pub use client::{
    PostError, RetryPolicy, WebhookClient, check_resolved_target, guarded_client, transport_error,
};
pub use guard::{DEFAULT_PORTS, allowed_ip, check_target, check_target_with};
pub use payload::{Payload, sign, verify};

/// Header carrying the signing timestamp (seconds since the epoch).
pub const TIMESTAMP_HEADER: &str = "X-Fmn-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Fmn-Signature";
