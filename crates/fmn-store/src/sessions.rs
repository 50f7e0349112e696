//! Web sessions and sign-ins in progress, in the API table, stored by the SHA-256 of their
//! secret only, each with a TTL (`expires_at`).
//!
//! Items: `SESSION#<hash>`/`SESSION` (a signed-in browser: user, admin, CSRF token) and
//! `LOGIN#<hash of state>`/`LOGIN` (an OpenID Connect sign-in between the redirect to the
//! issuer and its callback: PKCE verifier, nonce, where to return). A sign-in is taken
//! once (a delete returning the item), so a replayed callback finds nothing.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::StoreError;
use crate::api_table::{Item, expired, get_bool, get_n_opt, get_s, key, n, now, s};

/// A signed-in browser, as stored (never the cookie's secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The SHA-256 of the cookie's secret (hex).
    pub hash: String,
    /// Whose session it is.
    pub user: String,
    /// Whether the user was an admin when signing in.
    pub admin: bool,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
    /// When it stops working, seconds since the epoch.
    pub expires_at: i64,
}

/// An OpenID Connect sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The SHA-256 of the `state` parameter (hex).
    pub state_hash: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The local path to return to after signing in.
    pub return_to: String,
    /// When it stops working, seconds since the epoch.
    pub expires_at: i64,
}

/// Sessions and pending sign-ins in the API table.
#[derive(Debug, Clone)]
pub struct SessionStore {
    client: Client,
    table: String,
}

impl SessionStore {
    /// The API table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        SessionStore {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// Stores a new session.
    pub async fn create(&self, r: &SessionRecord) -> Result<(), StoreError> {
        let mut item = key(format!("SESSION#{}", r.hash), "SESSION");
        item.insert("user".into(), s(&r.user));
        item.insert("admin".into(), AttributeValue::Bool(r.admin));
        item.insert("csrf".into(), s(&r.csrf));
        item.insert("expires_at".into(), n(r.expires_at));
        self.put(item).await
    }

    /// The live session whose secret hashes to `hash` (expired sessions are absent).
    pub async fn lookup(&self, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("SESSION#{hash}"), "SESSION")))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        let Some(item) = out.item.filter(|i| !expired(i, now())) else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            hash: hash.to_owned(),
            user: get_s(&item, "user")?,
            admin: get_bool(&item, "admin"),
            csrf: get_s(&item, "csrf")?,
            expires_at: get_n_opt(&item, "expires_at").unwrap_or_default(),
        }))
    }

    /// Ends a session (signing out); nothing happens when there is none.
    pub async fn delete(&self, hash: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("SESSION#{hash}"), "SESSION")))
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// Stores a sign-in in progress.
    pub async fn begin_login(&self, p: &PendingLogin) -> Result<(), StoreError> {
        let mut item = key(format!("LOGIN#{}", p.state_hash), "LOGIN");
        item.insert("verifier".into(), s(&p.verifier));
        item.insert("nonce".into(), s(&p.nonce));
        item.insert("return_to".into(), s(&p.return_to));
        item.insert("expires_at".into(), n(p.expires_at));
        self.put(item).await
    }

    /// Takes the live sign-in whose `state` hashes to `state_hash`, once.
    pub async fn take_login(&self, state_hash: &str) -> Result<Option<PendingLogin>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("LOGIN#{state_hash}"), "LOGIN")))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        let Some(item) = out.attributes.filter(|i| !expired(i, now())) else {
            return Ok(None);
        };
        Ok(Some(PendingLogin {
            state_hash: state_hash.to_owned(),
            verifier: get_s(&item, "verifier")?,
            nonce: get_s(&item, "nonce")?,
            return_to: get_s(&item, "return_to")?,
            expires_at: get_n_opt(&item, "expires_at").unwrap_or_default(),
        }))
    }
}
