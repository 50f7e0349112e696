//! Messages over SQS's size limit: the body goes to S3 and the queue carries a pointer.
//!
//! SQS takes at most 256 KiB per message (body and attributes). A bus message bigger than
//! [`MAX_INLINE_BYTES`] is stored as an S3 object and the queue message body becomes a
//! pointer, a JSON object with one member:
//!
//! ```json
//! {"fmn_s3_pointer": {"bucket": "fmn-oversize-…", "key": "incoming/2f1c….json", "bytes": 400123}}
//! ```
//!
//! `bytes` is the stored body's length, checked when it is read back. Message attributes (the
//! topic) stay on the queue message as usual. Consumers call [`Resolver::resolve`] on every
//! body: a pointer is replaced by the object's content, anything else is returned unchanged
//! (no bus message has a top-level `fmn_s3_pointer` member). Objects are not deleted by
//! consumers (a redelivery must find them again); the bucket's lifecycle rule expires them.

use serde::{Deserialize, Serialize};

/// Bodies up to this many bytes travel inline; SQS's limit is 262,144 bytes for body and
/// attributes together, and this leaves room for the attributes.
pub const MAX_INLINE_BYTES: usize = 256 * 1024 - 4 * 1024;

/// The key under which a queue body is a pointer.
pub const POINTER_MEMBER: &str = "fmn_s3_pointer";

/// Where an oversized body is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// The S3 bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The body's length in bytes.
    pub bytes: usize,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    fmn_s3_pointer: Pointer,
}

impl Pointer {
    /// The queue message body for this pointer.
    pub fn to_body(&self) -> String {
        // Serialising these strings and a number cannot fail.
        serde_json::to_string(&Envelope {
            fmn_s3_pointer: self.clone(),
        })
        .unwrap_or_default()
    }

    /// The pointer a queue body holds, if it is one. Cheap for ordinary bodies: only a body
    /// that starts like a pointer is parsed.
    pub fn from_body(body: &str) -> Option<Pointer> {
        let head = body.trim_start();
        if !(head.starts_with('{') && head[1..].trim_start().starts_with("\"fmn_s3_pointer\"")) {
            return None;
        }
        serde_json::from_str::<Envelope>(body)
            .ok()
            .map(|e| e.fmn_s3_pointer)
    }
}

/// Storing or fetching an oversized body failed.
#[derive(Debug, thiserror::Error)]
pub enum OversizeError {
    /// S3 refused or could not be reached (retryable).
    #[error("s3://{bucket}/{key}: {message}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// The object is not what the pointer promised.
    #[error("s3://{bucket}/{key}: {message}")]
    Mismatch {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A body is over the limit and no bucket is configured to hold it.
    #[error("message of {0} bytes is over SQS's limit and no oversize bucket is configured")]
    NoBucket(usize),
}

/// Stores oversized bodies in a bucket.
#[derive(Debug, Clone)]
pub struct Offloader {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Offloader {
    /// Offloads into `bucket`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Offloader {
            s3,
            bucket: bucket.into(),
        }
    }

    /// Stores `body` under a fresh key and returns the pointer to send instead.
    pub async fn store(&self, body: &str) -> Result<Pointer, OversizeError> {
        let key = format!("incoming/{}.json", uuid::Uuid::new_v4());
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(|e| OversizeError::S3 {
                bucket: self.bucket.clone(),
                key: key.clone(),
                message: crate::sqs::error_chain(&e),
            })?;
        Ok(Pointer {
            bucket: self.bucket.clone(),
            key,
            bytes: body.len(),
        })
    }
}

/// Replaces pointers by the bodies they point to.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    s3: Option<aws_sdk_s3::Client>,
}

impl Resolver {
    /// Resolves through `s3`.
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Resolver { s3: Some(s3) }
    }

    /// Resolves through an S3 client built from `conf` (an `&aws_config::SdkConfig` will do).
    pub fn from_conf(conf: impl Into<aws_sdk_s3::Config>) -> Self {
        let conf: aws_sdk_s3::Config = conf.into();
        let conf = conf.to_builder().interceptor(fmn_calls::CountCalls).build();
        Resolver::new(aws_sdk_s3::Client::from_conf(conf))
    }

    /// The body itself, or, for a pointer, the stored body.
    pub async fn resolve(&self, body: String) -> Result<String, OversizeError> {
        let Some(pointer) = Pointer::from_body(&body) else {
            return Ok(body);
        };
        let s3_error = |message: String| OversizeError::S3 {
            bucket: pointer.bucket.clone(),
            key: pointer.key.clone(),
            message,
        };
        let Some(s3) = &self.s3 else {
            return Err(s3_error("no S3 client to resolve a pointer".into()));
        };
        let object = s3
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send()
            .await
            .map_err(|e| s3_error(crate::sqs::error_chain(&e)))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| s3_error(e.to_string()))?
            .into_bytes();
        let mismatch = |message: String| OversizeError::Mismatch {
            bucket: pointer.bucket.clone(),
            key: pointer.key.clone(),
            message,
        };
        if bytes.len() != pointer.bytes {
            return Err(mismatch(format!(
                "{} bytes stored, {} expected",
                bytes.len(),
                pointer.bytes
            )));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| mismatch("not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_round_trips_and_ordinary_bodies_are_not_pointers() {
        let p = Pointer {
            bucket: "b".into(),
            key: "incoming/k.json".into(),
            bytes: 300_000,
        };
        let body = p.to_body();
        assert_eq!(
            body,
            r#"{"fmn_s3_pointer":{"bucket":"b","key":"incoming/k.json","bytes":300000}}"#
        );
        assert_eq!(Pointer::from_body(&body), Some(p));
        assert_eq!(Pointer::from_body(r#"{"topic": "t", "body": {}}"#), None);
        assert_eq!(Pointer::from_body(r#"{"fmn_s3_pointer": 3}"#), None);
        assert_eq!(Pointer::from_body("not json"), None);
        assert_eq!(Pointer::from_body(""), None);
    }

    #[tokio::test]
    async fn ordinary_bodies_resolve_to_themselves_without_s3() {
        let body = r#"{"msg": {"x": 1}}"#.to_owned();
        assert_eq!(
            Resolver::default().resolve(body.clone()).await.unwrap(),
            body
        );
        let pointer = Pointer {
            bucket: "b".into(),
            key: "k".into(),
            bytes: 1,
        };
        assert!(
            Resolver::default()
                .resolve(pointer.to_body())
                .await
                .is_err()
        );
    }
}
