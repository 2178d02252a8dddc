//! The Feza Live HTTP API, as a seller uses it.

use live_core::Outcome;
use live_core::api::{
    Comment, CommentPage, CreateStream, EndResponse, EndStream, ErrorBody, NewBlock, SellerRef,
    StartResponse, Stream, StreamPage, UpdateStream,
};
use serde::de::DeserializeOwned;
use std::time::Duration;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL {0:?} is not valid: {1}")]
    BadUrl(String, String),
    #[error("the seller's token {0}: copy it again from where it was given")]
    BadToken(&'static str),
    #[error("cannot reach the server at {url}: {reason}; {hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("the server refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that is no refusal of Feza Live's: a server error, a proxy in front
    /// of a server that is down, or another web server altogether.
    #[error("{url} answered {status}: {hint}")]
    Unavailable {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
}

/// What to do about a server whose certificate this computer does not trust.
pub(crate) const UNTRUSTED_HINT: &str = "its certificate is not trusted here: check the \
    address; a marketplace with its own certificate authority has it added to the \
    system's (update-ca-certificates) or named in SSL_CERT_FILE";

/// Why a request failed, in the words of its first cause (a refused connection, an
/// unknown host, a certificate; `reqwest`'s own, "error sending request", say nothing
/// of it), and whether the server's certificate is what failed.
pub(crate) fn cause(e: reqwest::Error) -> (String, bool) {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut untrusted = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why = s.to_string();
        untrusted |= why.contains("certificate");
        source = s.source();
    }
    (why, untrusted)
}

#[derive(Clone)]
pub struct ApiClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of `server` for the seller whose token is `token`; both as pasted (the
    /// spaces and line ends around them do not count).
    pub fn new(server: &str, token: &str) -> Result<Self, ClientError> {
        let server = server.trim();
        let base = Url::parse(server).map_err(|e| {
            ClientError::BadUrl(
                server.into(),
                match e {
                    url::ParseError::RelativeUrlWithoutBase => {
                        "put https:// (or http://) before it".into()
                    }
                    e => e.to_string(),
                },
            )
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::BadToken("is empty"));
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ClientError::BadToken(
                "has spaces or characters no token has",
            ));
        }
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
        let resp = req.bearer_auth(&self.token).send().await.map_err(|e| {
            let (reason, untrusted) = cause(e);
            ClientError::Unreachable {
                url: self.base.to_string(),
                reason,
                hint: if untrusted {
                    UNTRUSTED_HINT
                } else {
                    "check the address and your connection"
                },
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.without_url().to_string()))?;
        if status.is_success() {
            // No body (204) reads as JSON null: what a call answered with nothing asks for.
            let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(body).map_err(|e| ClientError::Protocol(e.to_string()))
        } else {
            // A refusal is Feza Live's own (4xx with its error body); anything else may
            // go away by itself, or means the address is wrong, and is said so.
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) if status.is_client_error() => Err(ClientError::Refused {
                    status: status.as_u16(),
                    code: body.error.code,
                    message: body.error.message,
                }),
                _ => Err(ClientError::Unavailable {
                    url: self.base.to_string(),
                    status: status.as_u16(),
                    hint: if status.is_server_error() {
                        "the server is down or failing; try again in a moment"
                    } else {
                        "not as a Feza Live server; check the server address"
                    },
                }),
            }
        }
    }

    pub async fn create_stream(&self, title: &str) -> Result<Stream, ClientError> {
        let body = CreateStream {
            title: title.to_owned(),
            ..Default::default()
        };
        self.schedule(&body).await
    }

    /// A show planned for later (or now, without a time), with its description.
    pub async fn schedule(&self, show: &CreateStream) -> Result<Stream, ClientError> {
        self.send(self.http.post(self.url("/api/streams")).json(show))
            .await
    }

    /// Changes a scheduled show.
    pub async fn update(&self, id: &str, change: &UpdateStream) -> Result<Stream, ClientError> {
        self.send(
            self.http
                .patch(self.url(&format!("/api/streams/{id}")))
                .json(change),
        )
        .await
    }

    /// The latest comments of a show (up to 50), oldest first.
    pub async fn comments(&self, id: &str) -> Result<Vec<Comment>, ClientError> {
        let page: CommentPage = self
            .send(
                self.http
                    .get(self.url(&format!("/api/streams/{id}/comments"))),
            )
            .await?;
        Ok(page.comments)
    }

    /// Removes a comment from the seller's show (its text leaves every viewer's chat).
    pub async fn remove_comment(&self, id: &str, comment_id: &str) -> Result<(), ClientError> {
        self.send_empty(
            self.http
                .delete(self.url(&format!("/api/streams/{id}/comments/{comment_id}"))),
        )
        .await
    }

    /// Blocks a viewer from commenting and reacting on the seller's shows.
    pub async fn block(&self, id: &str, viewer_id: &str) -> Result<(), ClientError> {
        self.send_empty(
            self.http
                .post(self.url(&format!("/api/streams/{id}/blocks")))
                .json(&NewBlock {
                    viewer_id: viewer_id.to_owned(),
                }),
        )
        .await
    }

    /// [`Self::send`] for a call answered with no body.
    async fn send_empty(&self, req: reqwest::RequestBuilder) -> Result<(), ClientError> {
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }

    /// The seller this client's token belongs to: a refused token is
    /// [`ClientError::Refused`] with status 401.
    pub async fn me(&self) -> Result<SellerRef, ClientError> {
        self.send(self.http.get(self.url("/api/me"))).await
    }

    /// The seller's own shows, every status, newest first (all pages).
    pub async fn my_streams(&self) -> Result<Vec<Stream>, ClientError> {
        let mut shows = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(self.url("/api/me/streams"))
                .query(&[("limit", "100")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: StreamPage = self.send(req).await?;
            shows.extend(page.streams);
            match page.next_cursor {
                Some(next) if shows.len() < 10_000 => cursor = Some(next),
                _ => return Ok(shows),
            }
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `response`.
    pub(crate) async fn answering(response: &'static str) -> ApiClient {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        ApiClient::new(&url, "fzs_token").unwrap()
    }

    #[test]
    fn an_address_and_token_are_taken_as_pasted_and_told_when_wrong() {
        let client = ApiClient::new(" https://market.example/ \n", " fzs_abc123\r\n").unwrap();
        assert_eq!(
            client.url("/api/streams").as_str(),
            "https://market.example/api/streams"
        );
        assert_eq!(client.token(), "fzs_abc123");
        let told =
            |server: &str, token: &str| ApiClient::new(server, token).err().unwrap().to_string();
        assert!(told("market.example", "t").contains("put https://"));
        assert!(told("localhost:8080", "t").contains("use http:// or https://"));
        assert!(told("https://market.example", " ").contains("token is empty"));
        let e = told("https://market.example", "fzs_abc 123");
        assert!(e.contains("token has spaces") && !e.contains("abc"), "{e}");
    }

    #[tokio::test]
    async fn only_feza_lives_own_errors_are_refusals() {
        let feza = answering(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 62\r\n\r\n\
             {\"error\":{\"code\":\"illegal_transition\",\"message\":\"it is live\"}}",
        )
        .await;
        let e = feza.create_stream("x").await.unwrap_err();
        assert!(
            matches!(&e, ClientError::Refused { status: 409, code, .. } if code == "illegal_transition"),
            "{e:?}"
        );
        // A proxy in front of a server that is down: not a refusal, it passes.
        let proxy =
            answering("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 11\r\n\r\nBad Gateway").await;
        let e = proxy.create_stream("x").await.unwrap_err();
        assert!(
            matches!(e, ClientError::Unavailable { status: 502, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("try again"), "{e}");
        // Another web server: the address is wrong.
        let other = answering("HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno such!!").await;
        let e = other.create_stream("x").await.unwrap_err();
        assert!(e.to_string().contains("check the server address"), "{e}");
    }
}
