//! Links fmn puts in notifications, and the signed tokens inside them.
//!
//! - [`LinkSigner`] makes and checks one-click unsubscribe tokens: an HMAC-SHA256 over
//!   `(user, context, filter id)` with the operator's link secret (env `FMN_LINK_SECRET`), so
//!   the API can trust a token without storing anything and without a bearer token (RFC 8058).
//! - [`unsubscribe_url`], [`filter_url`] and [`confirm_url`] build the web app's URLs a sender
//!   writes into a notification, given the API's base URL (env `FMN_API_BASE_URL`).
//!
//! ```
//! use fmn_links::LinkSigner;
//! use fmn_rules::ContextKind;
//! let signer = LinkSigner::new(b"operator secret");
//! let token = signer.unsubscribe_token("alice", ContextKind::Email, "f1");
//! let link = signer.verify_unsubscribe(&token).unwrap();
//! assert_eq!((link.user.as_str(), link.context, link.filter_id.as_str()),
//!            ("alice", ContextKind::Email, "f1"));
//! assert_eq!(fmn_links::unsubscribe_url("https://fmn.example.org/", &token),
//!            format!("https://fmn.example.org/unsubscribe/{token}"));
//! assert!(LinkSigner::new(b"another secret").verify_unsubscribe(&token).is_err());
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fmn_rules::ContextKind;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The environment variable holding the link secret.
pub const LINK_SECRET_ENV: &str = "FMN_LINK_SECRET";
/// The environment variable holding the API's public base URL.
pub const API_BASE_URL_ENV: &str = "FMN_API_BASE_URL";

/// The shortest link secret accepted (bytes): 256 bits, HMAC-SHA256's own strength.
pub const MIN_SECRET_LEN: usize = 32;

/// Values seen as defaults and examples (fmn's own former template default among them): a
/// secret equal to one of them, in any case, is refused however long it is.
const KNOWN_WEAK: [&str; 6] = [
    "change-me-to-a-long-random-secret",
    "changeme",
    "change-me",
    "secret",
    "password",
    "fmn",
];

/// Why a link secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// Shorter than [`MIN_SECRET_LEN`].
    #[error(
        "must be at least {MIN_SECRET_LEN} bytes (it has {0}); generate one with `openssl rand -base64 48`"
    )]
    TooShort(usize),
    /// A known default or example value.
    #[error("is a published default or example value; generate one with `openssl rand -base64 48`")]
    Known,
    /// Too few distinct bytes to be random (`aaaa…`, `abab…`).
    #[error(
        "has only {0} distinct bytes, not a random value; generate one with `openssl rand -base64 48`"
    )]
    Repetitive(usize),
}

/// Refuses a link secret anyone could guess: too short, a known default, or repetitive.
///
/// ```
/// assert!(fmn_links::check_secret(b"change-me-to-a-long-random-secret").is_err());
/// assert!(fmn_links::check_secret(&[b'a'; 64]).is_err());
/// assert!(fmn_links::check_secret(b"kT3q9Vx2LmP8wR5nZc7bYh4sJd6fGa1e").is_ok());
/// ```
pub fn check_secret(secret: &[u8]) -> Result<(), WeakSecret> {
    let lower = secret.to_ascii_lowercase();
    if KNOWN_WEAK.iter().any(|w| lower == w.as_bytes()) {
        return Err(WeakSecret::Known);
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(WeakSecret::TooShort(secret.len()));
    }
    let distinct = secret
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if distinct < 10 {
        return Err(WeakSecret::Repetitive(distinct));
    }
    Ok(())
}

/// Longest token [`LinkSigner::verify_unsubscribe`] looks at (anything longer is refused
/// before decoding).
const MAX_TOKEN_LEN: usize = 2048;

/// What a valid unsubscribe token names: the filter to deactivate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeLink {
    /// The filter's owner.
    pub user: String,
    /// The filter's context.
    pub context: ContextKind,
    /// The filter's id.
    pub filter_id: String,
}

/// A token that is not one this signer made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not `payload.signature` in base64url, or too long.
    #[error("malformed link token")]
    Malformed,
    /// The signature does not match (another secret, or a tampered payload).
    #[error("link token signature does not match")]
    BadSignature,
}

/// Signs and verifies link tokens with one secret.
#[derive(Clone)]
pub struct LinkSigner {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("LinkSigner").finish_non_exhaustive()
    }
}

/// The signed payload, short field names to keep URLs short.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// Purpose, so a token signed for one use is never accepted for another.
    p: String,
    u: String,
    c: ContextKind,
    f: String,
}

const UNSUBSCRIBE: &str = "unsub";

impl LinkSigner {
    /// A signer with `secret` (any length; HMAC hashes long keys).
    pub fn new(secret: &[u8]) -> Self {
        // `new_from_slice` accepts keys of every length for HMAC.
        let key = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(k) => k,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        LinkSigner { key }
    }

    /// The one-click unsubscribe token for a filter.
    pub fn unsubscribe_token(&self, user: &str, context: ContextKind, filter_id: &str) -> String {
        let payload = Payload {
            p: UNSUBSCRIBE.into(),
            u: user.into(),
            c: context,
            f: filter_id.into(),
        };
        // Serialising a struct of strings cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let mut mac = self.key.clone();
        mac.update(&json);
        let sig = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// Checks an unsubscribe token and says which filter it names.
    pub fn verify_unsubscribe(&self, token: &str) -> Result<UnsubscribeLink, LinkError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(LinkError::Malformed);
        }
        let (payload, sig) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Malformed)?;
        let mut mac = self.key.clone();
        mac.update(&json);
        // Constant-time comparison.
        mac.verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        if payload.p != UNSUBSCRIBE {
            return Err(LinkError::Malformed);
        }
        Ok(UnsubscribeLink {
            user: payload.u,
            context: payload.c,
            filter_id: payload.f,
        })
    }
}

fn base(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{base}/unsubscribe/{token}`: the web app's unsubscribe page (GET: a page with a
/// button), and RFC 8058 one-click unsubscribe (POST). The API's
/// `/api/v1/unsubscribe/{token}` does the same, for links sent before the web app.
pub fn unsubscribe_url(base_url: &str, token: &str) -> String {
    format!("{}/unsubscribe/{}", base(base_url), segment(token))
}

/// `{base}/users/{user}/contexts/{context}/filters/{filter_id}`: the web app's editor of
/// the filter that fired (for "why did I get this?", with its preview).
pub fn filter_url(base_url: &str, user: &str, context: ContextKind, filter_id: &str) -> String {
    format!(
        "{}/users/{}/contexts/{}/filters/{}",
        base(base_url),
        segment(user),
        context.as_str(),
        segment(filter_id)
    )
}

/// `{base}/confirm/{token}`: the web app's page of the one-time link confirming an email
/// address (a button that confirms).
pub fn confirm_url(base_url: &str, token: &str) -> String {
    format!("{}/confirm/{}", base(base_url), segment(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_tokens_are_refused() {
        let s = LinkSigner::new(b"k");
        let token = s.unsubscribe_token("alice", ContextKind::Irc, "f/1 x");
        assert_eq!(s.verify_unsubscribe(&token).unwrap().filter_id, "f/1 x");
        let (payload, sig) = token.split_once('.').unwrap();
        let other = s.unsubscribe_token("bob", ContextKind::Irc, "f/1 x");
        let (other_payload, _) = other.split_once('.').unwrap();
        assert_eq!(
            s.verify_unsubscribe(&format!("{other_payload}.{sig}")),
            Err(LinkError::BadSignature)
        );
        assert_eq!(s.verify_unsubscribe(payload), Err(LinkError::Malformed));
        assert_eq!(s.verify_unsubscribe("!!.??"), Err(LinkError::Malformed));
        assert_eq!(s.verify_unsubscribe(""), Err(LinkError::Malformed));
        assert_eq!(
            s.verify_unsubscribe(&"a".repeat(5000)),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn urls_escape_their_segments() {
        assert_eq!(
            filter_url("http://h:1/", "al ice", ContextKind::Email, "a/b"),
            "http://h:1/users/al%20ice/contexts/email/filters/a%2Fb"
        );
        assert_eq!(confirm_url("http://h", "abc"), "http://h/confirm/abc");
    }
}
