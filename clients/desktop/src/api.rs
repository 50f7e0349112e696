//! The few API calls the client makes: who am I, where is the socket, what did I miss.

use std::time::Duration;

use serde::Deserialize;

pub use fmn_inbox::InboxPage;
use fmn_inbox::SocketInfo;

use crate::config::Token;

/// A failure of an API call: refused credentials end the program, the rest is retried.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 or 403: the token is wrong, expired or revoked.
    #[error("the API refused the token ({0}): create a new one and update the configuration")]
    Refused(u16),
    #[error("{0}")]
    Other(String),
}

/// `GET /api/v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub user: String,
    #[serde(default)]
    pub admin: bool,
}

/// A client of one deployment's API.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: url::Url,
    token: Token,
}

impl Api {
    /// `base` ends with `/` (see [`crate::config::Config`]).
    pub fn new(base: url::Url, token: Token) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("fmn-desktop/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api { http, base, token })
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Other(format!("{} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        Ok(url)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: url::Url) -> Result<T, ApiError> {
        let path = url.path().to_owned();
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.secret())
            .send()
            .await
            .map_err(|e| ApiError::Other(format!("GET {path}: {e}")))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ApiError::Refused(status));
        }
        if !response.status().is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(ApiError::Other(format!("GET {path}: {status} {body}")));
        }
        response
            .json()
            .await
            .map_err(|e| ApiError::Other(format!("GET {path}: {e}")))
    }

    /// Who the token belongs to.
    pub async fn me(&self) -> Result<Me, ApiError> {
        self.get(self.url(&["me"])?).await
    }

    /// The WebSocket URL to connect to.
    pub async fn socket_url(&self) -> Result<String, ApiError> {
        Ok(self
            .get::<SocketInfo>(self.url(&["inbox", "socket"])?)
            .await?
            .url)
    }

    /// At most `limit` items newer than `after` (all when `None`), newest first.
    pub async fn inbox(
        &self,
        user: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InboxPage, ApiError> {
        let mut url = self.url(&["users", user, "inbox"])?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(after) = after {
                q.append_pair("after", after);
            }
            q.append_pair(
                "limit",
                &limit.clamp(1, fmn_inbox::MAX_PAGE_LIMIT).to_string(),
            );
        }
        self.get(url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_the_user() {
        let base = url::Url::parse("https://fmn.example.org/prefix/").unwrap();
        let api = Api::new(base, Token::new("fmn_x").unwrap()).unwrap();
        assert_eq!(
            api.url(&["users", "a/b", "inbox"]).unwrap().as_str(),
            "https://fmn.example.org/prefix/api/v1/users/a%2Fb/inbox"
        );
        assert_eq!(
            api.url(&["me"]).unwrap().as_str(),
            "https://fmn.example.org/prefix/api/v1/me"
        );
    }
}
