//! fedmsg signature validation, as fedmsg's own `fedmsg.crypto.x509` does it.
//!
//! A signed envelope carries `crypto: "x509"`, `certificate` (base64 of the signer's PEM
//! certificate) and `signature` (base64 of an RSA PKCS#1 v1.5 SHA-1 signature). What is signed
//! is the envelope without `signature` and `certificate`, serialised as Python's
//! `json.dumps(…, sort_keys=True, separators=(",", ":"))` writes it: keys sorted, compact,
//! non-ASCII escaped as `\uXXXX`, and floats the way Python's `repr` writes them (`1e+16`,
//! `-0.0`, `1e-07`), which [`canonical_json`] reproduces. The certificate must be issued by
//! a configured CA (signature and validity checked), not be revoked by the configured CRL,
//! and its common name must be allowed to send the topic by the routing policy (fedmsg's
//! `routing_policy` and `routing_nitpicky`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use x509_parser::prelude::*;

/// Why a message was rejected (the quarantine reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// No signature or certificate.
    #[error("unsigned: no signature or certificate")]
    Unsigned,
    /// `crypto` names another scheme.
    #[error("unsupported crypto scheme {0:?}")]
    Scheme(String),
    /// The certificate or signature fields are not what fedmsg writes.
    #[error("malformed {0}: {1}")]
    Malformed(&'static str, String),
    /// The certificate is not issued by a trusted CA.
    #[error("certificate {subject:?} not issued by a trusted CA")]
    Untrusted {
        /// The certificate's subject.
        subject: String,
    },
    /// The certificate (or its CA) is outside its validity period.
    #[error("certificate {0:?} expired or not yet valid")]
    Expired(String),
    /// The CRL revokes the certificate.
    #[error("certificate {subject:?} (serial {serial}) is revoked")]
    Revoked {
        /// The certificate's subject.
        subject: String,
        /// Its serial number, in hex.
        serial: String,
    },
    /// The signature does not match the message.
    #[error("signature does not match the message")]
    BadSignature,
    /// The routing policy does not let this signer send this topic.
    #[error("routing policy: {signer:?} may not send {topic:?}")]
    NotAuthorized {
        /// The topic.
        topic: String,
        /// The certificate's common name.
        signer: String,
    },
    /// `routing_nitpicky` and the policy does not name the topic.
    #[error("routing policy names no signer for {0:?} (routing_nitpicky)")]
    NoPolicy(String),
}

/// The validator's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A file is not PEM certificates or a CRL.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
}

/// Signature validation settings (fedmsg's `ssldir` files, `routing_policy`,
/// `routing_nitpicky`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureConfig {
    /// CA certificates (PEM, one or more) that issue signing certificates.
    pub ca: PathBuf,
    /// A certificate revocation list (PEM or DER) from that CA.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// Topic → the certificate common names allowed to send it.
    #[serde(default)]
    pub routing_policy: BTreeMap<String, Vec<String>>,
    /// Reject topics the routing policy does not name.
    #[serde(default)]
    pub routing_nitpicky: bool,
}

/// Validates signed fedmsg envelopes; cheap to share.
#[derive(Debug, Clone)]
pub struct Validator {
    /// DER of each trusted CA certificate.
    cas: Vec<Vec<u8>>,
    /// Revoked serial numbers (big-endian bytes, no leading zeros), from a CRL whose
    /// signature a trusted CA verified.
    revoked: Option<BTreeSet<Vec<u8>>>,
    routing_policy: BTreeMap<String, Vec<String>>,
    routing_nitpicky: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::Io(path.to_owned(), e))
}

/// The DER blocks of a PEM file (or the file itself if it is not PEM).
fn der_blocks(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ConfigError> {
    if !bytes.trim_ascii_start().starts_with(b"-----") {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| ConfigError::Parse(path.to_owned(), e.to_string()))?;
        blocks.push(pem.contents);
    }
    Ok(blocks)
}

fn strip_zeros(serial: &[u8]) -> Vec<u8> {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial[start..].to_vec()
}

impl Validator {
    /// Loads the CA certificates and the CRL; a CRL must be signed by one of the CAs.
    pub fn load(config: &SignatureConfig) -> Result<Validator, ConfigError> {
        let bytes = read(&config.ca)?;
        let mut cas = Vec::new();
        for der in der_blocks(&config.ca, &bytes)? {
            parse_x509_certificate(&der)
                .map_err(|e| ConfigError::Parse(config.ca.clone(), e.to_string()))?;
            cas.push(der);
        }
        if cas.is_empty() {
            return Err(ConfigError::Parse(
                config.ca.clone(),
                "no certificate".into(),
            ));
        }
        let revoked = match &config.crl {
            None => None,
            Some(path) => {
                let bytes = read(path)?;
                let mut revoked = BTreeSet::new();
                for der in der_blocks(path, &bytes)? {
                    let (_, crl) = parse_x509_crl(&der)
                        .map_err(|e| ConfigError::Parse(path.clone(), e.to_string()))?;
                    let signed_by_ca = cas.iter().any(|ca| {
                        parse_x509_certificate(ca)
                            .is_ok_and(|(_, ca)| crl.verify_signature(ca.public_key()).is_ok())
                    });
                    if !signed_by_ca {
                        return Err(ConfigError::Parse(
                            path.clone(),
                            "CRL not signed by a configured CA".into(),
                        ));
                    }
                    revoked.extend(
                        crl.iter_revoked_certificates()
                            .map(|r| strip_zeros(r.raw_serial())),
                    );
                }
                Some(revoked)
            }
        };
        Ok(Validator {
            cas,
            revoked,
            routing_policy: config.routing_policy.clone(),
            routing_nitpicky: config.routing_nitpicky,
        })
    }

    /// Checks a fedmsg envelope (its JSON text). `Ok` means: forward it.
    pub fn validate(&self, envelope: &str) -> Result<(), Invalid> {
        let value: Value =
            serde_json::from_str(envelope).map_err(|e| Invalid::NotJson(e.to_string()))?;
        let Value::Object(mut fields) = value else {
            return Err(Invalid::NotJson("not an object".into()));
        };
        let (Some(signature), Some(certificate)) =
            (fields.remove("signature"), fields.remove("certificate"))
        else {
            return Err(Invalid::Unsigned);
        };
        // fedmsg takes an envelope with a signature and certificate but no `crypto` as x509.
        match fields.get("crypto") {
            None => {}
            Some(Value::String(s)) if s == "x509" => {}
            Some(other) => return Err(Invalid::Scheme(other.to_string())),
        }
        let b64 = |field: &'static str, v: &Value| {
            let text = v
                .as_str()
                .ok_or_else(|| Invalid::Malformed(field, "not a string".into()))?;
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| Invalid::Malformed(field, e.to_string()))
        };
        let signature = b64("signature", &signature)?;
        let pem = b64("certificate", &certificate)?;
        let (_, pem) =
            parse_x509_pem(&pem).map_err(|e| Invalid::Malformed("certificate", e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| Invalid::Malformed("certificate", e.to_string()))?;
        let subject = cert.subject().to_string();
        if !cert.validity().is_valid() {
            return Err(Invalid::Expired(subject));
        }
        let issuer_ok = self.cas.iter().any(|der| {
            parse_x509_certificate(der).is_ok_and(|(_, ca)| {
                ca.subject().as_raw() == cert.issuer().as_raw()
                    && ca.validity().is_valid()
                    && cert.verify_signature(Some(ca.public_key())).is_ok()
            })
        });
        if !issuer_ok {
            return Err(Invalid::Untrusted { subject });
        }
        if let Some(revoked) = &self.revoked
            && revoked.contains(&strip_zeros(cert.raw_serial()))
        {
            return Err(Invalid::Revoked {
                subject,
                serial: cert.raw_serial_as_string(),
            });
        }
        let signed = canonical_json(&Value::Object(fields.clone()));
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &cert.public_key().subject_public_key.data,
        );
        key.verify(signed.as_bytes(), &signature)
            .map_err(|_| Invalid::BadSignature)?;
        let topic = fields
            .get("topic")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let signer = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default();
        match self.routing_policy.get(topic) {
            Some(allowed) if allowed.iter().any(|a| a == signer) => Ok(()),
            Some(_) => Err(Invalid::NotAuthorized {
                topic: topic.to_owned(),
                signer: signer.to_owned(),
            }),
            None if self.routing_nitpicky => Err(Invalid::NoPolicy(topic.to_owned())),
            None => Ok(()),
        }
    }
}

/// `value` as Python's `json.dumps(value, sort_keys=True, separators=(",", ":"))` writes it
/// (what fedmsg signs). Integers beyond 64 bits, which serde_json reads as floats, are the
/// one thing not reproduced.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                out.push_str(&python_float_repr(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Python sorts by code point, which is UTF-8 byte order.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A string as Python's `json.dumps` (with `ensure_ascii`) writes it.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it: the shortest digits that round-trip, in positional
/// notation when the decimal exponent is in [-4, 16), with `.0` for integral values, else as
/// `d.ddde±XX`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // The value is 0.DIGITS × 10^decpt.
    let decpt = exponent + 1;
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let body = if decpt > -4 && decpt <= 16 {
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let e = decpt - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        if rest.is_empty() {
            format!("{first}e{e_sign}{:02}", e.abs())
        } else {
            format!("{first}.{rest}e{e_sign}{:02}", e.abs())
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_does() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e-7, "1e-07"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1344447839.891876, "1344447839.891876"),
            (1.5, "1.5"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (-2.5e-10, "-2.5e-10"),
        ];
        for (x, python) in cases {
            assert_eq!(python_float_repr(x), python, "{x:e}");
        }
    }

    #[test]
    fn canonical_json_is_sorted_compact_and_ascii() {
        let v: Value = serde_json::from_str(
            r#"{"z": [1, 2.0, {"b": null, "a": true}], "a": "J\u0119drzejewski \u2603 \ud83d\ude00 a/b\\c\"d\n", "big": 12345678901234567890, "neg": -3}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"J\u0119drzejewski \u2603 \ud83d\ude00 a/b\\c\"d\n","big":12345678901234567890,"neg":-3,"z":[1,2.0,{"a":true,"b":null}]}"#
        );
    }
}
