//! The Feza Live HTTP API, as a seller uses it.

use live_core::Outcome;
use live_core::api::{CreateStream, EndResponse, EndStream, ErrorBody, StartResponse, Stream};
use serde::de::DeserializeOwned;
use std::time::Duration;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL {0:?} is not valid: {1}")]
    BadUrl(String, String),
    #[error("cannot reach the server at {url}: {reason}; check the address and your connection")]
    Unreachable { url: String, reason: String },
    #[error("the server refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
}

#[derive(Clone)]
pub struct ApiClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(server: &str, token: &str) -> Result<Self, ClientError> {
        let base =
            Url::parse(server).map_err(|e| ClientError::BadUrl(server.into(), e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl(
                server.into(),
                "use http:// or https://".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Self {
            base,
            token: token.to_owned(),
            http,
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// `path` (or an absolute URL) against the server's base.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp =
            req.bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: self.base.to_string(),
                    reason: e.without_url().to_string(),
                })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.without_url().to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
        } else {
            let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            Err(ClientError::Refused {
                status: status.as_u16(),
                code: body
                    .as_ref()
                    .map(|b| b.error.code.clone())
                    .unwrap_or_default(),
                message: body
                    .map(|b| b.error.message)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
            })
        }
    }

    pub async fn create_stream(&self, title: &str) -> Result<Stream, ClientError> {
        let body = CreateStream {
            title: title.to_owned(),
            ..Default::default()
        };
        self.send(self.http.post(self.url("/api/streams")).json(&body))
            .await
    }

    pub async fn start(&self, id: &str) -> Result<StartResponse, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/streams/{id}/start"))),
        )
        .await
    }

    pub async fn end(&self, id: &str, outcome: Outcome) -> Result<EndResponse, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/streams/{id}/end")))
                .json(&EndStream { outcome }),
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> Result<Stream, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/streams/{id}/cancel"))),
        )
        .await
    }

    pub async fn replay(&self, id: &str) -> Result<live_core::api::Replay, ClientError> {
        self.send(
            self.http
                .get(self.url(&format!("/api/streams/{id}/replay"))),
        )
        .await
    }

    pub async fn stream(&self, id: &str) -> Result<Stream, ClientError> {
        self.send(self.http.get(self.url(&format!("/api/streams/{id}"))))
            .await
    }
}
