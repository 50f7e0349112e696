//! Matrix delivery for fmn: a message into a direct room with each user, through the
//! client-server API over `reqwest`.
//!
//! - [`notification_content`] / [`confirmation_content`]: `m.notice` messages with a plain
//!   `body` and, per the context's `markup` setting, an escaped HTML `formatted_body`.
//! - [`MatrixClient`]: the few API calls needed, retrying `429 M_LIMIT_EXCEEDED` after the
//!   homeserver's `retry_after_ms`, a bounded number of times.
//! - [`DirectMessenger`]: finds the user's direct room (remembered in a [`RoomStore`],
//!   created with `is_direct` and an invite on first use, replaced if the user left it) and
//!   sends under a transaction id derived from the delivery key ([`txn_id`]), so a retried
//!   delivery is deduplicated by the homeserver as well.
//!
//! ```
//! assert_eq!(fmn_matrix::escape_html("<a & b>"), "&lt;a &amp; b&gt;");
//! assert!(fmn_matrix::valid_user_id("@alice:fedora.im"));
//! assert!(!fmn_matrix::valid_user_id("alice"));
//! ```

mod client;
mod format;
mod rooms;

use std::collections::HashMap;
use std::time::Duration;

pub use client::{MatrixClient, MatrixError};
pub use format::{confirmation_content, escape_html, notification_content};
pub use rooms::{DynamoRooms, RoomStore};
use serde_json::Value;

/// How the sender reaches its homeserver.
#[derive(Clone)]
pub struct MatrixConfig {
    /// Base URL of the homeserver (`https://matrix.example.org`).
    pub homeserver: String,
    /// The bot account's access token.
    pub access_token: String,
    /// Rate-limited retries of one request before giving up (the job is retried later).
    pub max_retries: u32,
    /// The longest single wait a rate limit may impose within one invocation.
    pub max_retry_wait: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for MatrixConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixConfig")
            .field("homeserver", &self.homeserver)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish_non_exhaustive()
    }
}

/// A Matrix setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl MatrixConfig {
    /// Defaults (5 retries, waits of at most 10 s, 10 s requests) for a homeserver and token.
    pub fn new(homeserver: impl Into<String>, access_token: impl Into<String>) -> Self {
        MatrixConfig {
            homeserver: homeserver.into(),
            access_token: access_token.into(),
            max_retries: 5,
            max_retry_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Reads `FMN_MATRIX_HOMESERVER` and `FMN_MATRIX_ACCESS_TOKEN` through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let homeserver = var("FMN_MATRIX_HOMESERVER")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError {
                name: "FMN_MATRIX_HOMESERVER",
                problem: "missing".into(),
            })?;
        if !(homeserver.starts_with("https://") || homeserver.starts_with("http://")) {
            return Err(ConfigError {
                name: "FMN_MATRIX_HOMESERVER",
                problem: format!("{homeserver:?} is not an http(s) URL"),
            });
        }
        // An empty token is allowed at start-up: every delivery then fails (retryably) with
        // the homeserver's M_MISSING_TOKEN, visible in the logs and the DLQ.
        let token = var("FMN_MATRIX_ACCESS_TOKEN").unwrap_or_default();
        Ok(MatrixConfig::new(homeserver, token))
    }
}

/// Whether `address` is a Matrix user id (`@localpart:server`), safe to put in a request.
pub fn valid_user_id(address: &str) -> bool {
    let Some(rest) = address.strip_prefix('@') else {
        return false;
    };
    let Some((local, server)) = rest.split_once(':') else {
        return false;
    };
    address.len() <= 255
        && !local.is_empty()
        && !server.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The transaction id of a delivery: a UUID v5 of its key, the same on every retry.
pub fn txn_id(delivery_key: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, delivery_key.as_bytes())
        .simple()
        .to_string()
}

/// Something that delivers a message to a Matrix user: the real [`DirectMessenger`], or an
/// in-memory one in unit tests.
pub trait MatrixLink {
    /// Sends `content` to `user_id` under the transaction id `txn_id`.
    fn deliver(
        &self,
        user_id: &str,
        txn_id: &str,
        content: &Value,
    ) -> impl Future<Output = Result<(), MatrixError>> + Send;
}

/// Delivers into a direct room per user, creating and remembering it on first use.
#[derive(Debug)]
pub struct DirectMessenger<R> {
    client: MatrixClient,
    rooms: R,
    /// Rooms known to be usable in this warm instance.
    cache: tokio::sync::Mutex<HashMap<String, String>>,
}

impl<R: RoomStore + Sync> DirectMessenger<R> {
    /// A messenger through `client`, remembering rooms in `rooms`.
    pub fn new(client: MatrixClient, rooms: R) -> Self {
        DirectMessenger {
            client,
            rooms,
            cache: Default::default(),
        }
    }

    async fn room_for(&self, user_id: &str) -> Result<String, MatrixError> {
        // Held while a room is looked up or created, so that concurrent deliveries to one
        // user in this instance create one room, not one each.
        let mut cache = self.cache.lock().await;
        if let Some(room) = cache.get(user_id) {
            return Ok(room.clone());
        }
        let store = |e: anyhow::Error| MatrixError::Temporary(format!("room store: {e}"));
        let stored = self.rooms.get(user_id).await.map_err(store)?;
        let room = match stored {
            Some(room) => match self.client.membership(&room, user_id).await? {
                // Invited (not yet accepted) or joined: the room still reaches them.
                Some(m) if m == "join" || m == "invite" => room,
                _ => {
                    tracing::info!(
                        user_id,
                        room,
                        "user left their direct room; making a new one"
                    );
                    let new = self.client.create_direct_room(user_id).await?;
                    self.rooms
                        .put(user_id, &new, Some(&room))
                        .await
                        .map_err(store)?
                }
            },
            None => {
                let new = self.client.create_direct_room(user_id).await?;
                self.rooms.put(user_id, &new, None).await.map_err(store)?
            }
        };
        cache.insert(user_id.to_owned(), room.clone());
        Ok(room)
    }

    /// The API client.
    pub fn client(&self) -> &MatrixClient {
        &self.client
    }
}

impl<R: RoomStore + Sync> MatrixLink for DirectMessenger<R> {
    async fn deliver(
        &self,
        user_id: &str,
        txn_id: &str,
        content: &Value,
    ) -> Result<(), MatrixError> {
        if !valid_user_id(user_id) {
            return Err(MatrixError::InvalidUserId(user_id.to_owned()));
        }
        let room = self.room_for(user_id).await?;
        match self.client.send_message(&room, txn_id, content).await {
            Ok(event_id) => {
                tracing::debug!(user_id, room, event_id, "matrix message sent");
                Ok(())
            }
            Err(e) => {
                // Forget the room in this instance: the next attempt re-checks it.
                self.cache.lock().await.remove(user_id);
                Err(match e {
                    // The bot was removed from the room: a retry will make a new one.
                    MatrixError::Refused { status: 403, .. } => {
                        MatrixError::Temporary(e.to_string())
                    }
                    e => e,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_and_txn_ids() {
        assert!(valid_user_id("@alice:localhost:8008"));
        for bad in ["", "@", "@:x", "@a:", "alice:x", "@a b:x", "@a\n:x"] {
            assert!(!valid_user_id(bad), "{bad:?}");
        }
        assert_eq!(txn_id("m|alice|matrix|@a:x"), txn_id("m|alice|matrix|@a:x"));
        assert_ne!(txn_id("m|alice|matrix|@a:x"), txn_id("m|bob|matrix|@a:x"));
    }

    #[test]
    fn config_from_vars() {
        let c = MatrixConfig::from_vars(|k| match k {
            "FMN_MATRIX_HOMESERVER" => Some("http://127.0.0.1:8008".into()),
            "FMN_MATRIX_ACCESS_TOKEN" => Some("secret".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.homeserver, "http://127.0.0.1:8008");
        assert!(!format!("{c:?}").contains("secret"));
        assert!(MatrixConfig::from_vars(|_| None).is_err());
        assert!(MatrixConfig::from_vars(|_| Some("ftp://x".into())).is_err());
    }
}
