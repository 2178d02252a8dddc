//! An ingest URL, parsed at the edge. Its stream key never leaves in a log line,
//! a stats line or an error message: `Display` and [`IngestUrl::scrub`] hide it.

use crate::MediaError;
use std::fmt;
use url::Url;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestScheme {
    Rtmp,
    Rtmps,
    Srt,
}

#[derive(Clone, PartialEq, Eq)]
pub struct IngestUrl {
    url: Url,
    scheme: IngestScheme,
    /// The secret part: the last path segment (RTMP) or the `streamid`/`passphrase` (SRT).
    secrets: Vec<String>,
}

impl IngestUrl {
    pub fn parse(raw: &str) -> Result<Self, MediaError> {
        let bad =
            |why: &str| MediaError::InvalidUrl(format!("ingest URL {}: {why}", redact_raw(raw)));
        let url = Url::parse(raw).map_err(|_| bad("is not a URL"))?;
        let scheme = match url.scheme() {
            "rtmp" => IngestScheme::Rtmp,
            "rtmps" => IngestScheme::Rtmps,
            "srt" => IngestScheme::Srt,
            other => {
                return Err(bad(&format!(
                    "the scheme {other}:// is not supported; use rtmp://, rtmps:// or srt://"
                )));
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        let mut secrets = Vec::new();
        // rtmp://USER:PASSWORD@HOST/…: the password is as secret as the key.
        if let Some(password) = url.password().filter(|p| !p.is_empty()) {
            secrets.push(password.to_owned());
        }
        match scheme {
            IngestScheme::Rtmp | IngestScheme::Rtmps => {
                let segments: Vec<&str> =
                    url.path_segments().map(|s| s.collect()).unwrap_or_default();
                if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
                    return Err(bad("must be rtmp://HOST/APP/STREAM_KEY"));
                }
                secrets.push(segments[segments.len() - 1].to_owned());
                // A query belongs to the key (the publish name carries it): some
                // services put part of the key there (`…/KEY?s_bl=1&a=SECRET`).
                if let Some(query) = url.query().filter(|q| !q.is_empty()) {
                    secrets.push(query.to_owned());
                }
            }
            IngestScheme::Srt => {
                for (k, v) in url.query_pairs() {
                    if matches!(k.as_ref(), "streamid" | "passphrase") && !v.is_empty() {
                        secrets.push(v.into_owned());
                    }
                }
            }
        }
        Ok(Self {
            url,
            scheme,
            secrets,
        })
    }

    pub fn scheme(&self) -> IngestScheme {
        self.scheme
    }

    /// The full URL, secret included: only for the element that connects.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// `text` with every secret of this URL replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| s.len() >= 4)
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
    }
}

/// Where an RTMP URL publishes: `rtmp[s]://HOST[:PORT]/APP/STREAM`, the application
/// being every path segment but the last (as rtmp2 and OBS read it).
pub(crate) struct RtmpTarget {
    pub host: url::Host<String>,
    pub port: u16,
    pub app: String,
    /// The stream key, with any query the service wants: a secret.
    pub stream: String,
    /// The URL of the application, which the `connect` command carries.
    pub tc_url: String,
}

impl IngestUrl {
    /// The parts an RTMP connection needs (`None` for SRT).
    pub(crate) fn rtmp_target(&self) -> Option<RtmpTarget> {
        let default_port = match self.scheme {
            IngestScheme::Rtmp => 1935,
            IngestScheme::Rtmps => 443,
            IngestScheme::Srt => return None,
        };
        let host = self.url.host()?.to_owned();
        let path = self.url.path().trim_start_matches('/');
        let (app, stream) = path.rsplit_once('/')?;
        let mut stream = stream.to_owned();
        if let Some(query) = self.url.query() {
            stream = format!("{stream}?{query}");
        }
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Some(RtmpTarget {
            tc_url: format!("{}://{}{port}/{app}", self.url.scheme(), host),
            host,
            port: self.url.port().unwrap_or(default_port),
            app: app.to_owned(),
            stream,
        })
    }
}

impl IngestUrl {
    /// Free text (a mistyped command) with whatever looks like a URL's key hidden.
    pub fn redact_text(text: &str) -> String {
        text.split(' ')
            .map(|word| {
                if word.contains("://") {
                    redact_raw(word)
                } else {
                    word.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Best effort for text that did not even parse: hide whatever follows the last slash.
fn redact_raw(raw: &str) -> String {
    match raw.rsplit_once('/') {
        Some((head, tail)) if !tail.is_empty() => format!("{head}/***"),
        _ => raw.to_owned(),
    }
}

impl fmt::Display for IngestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scrub(self.url.as_str()))
    }
}

impl fmt::Debug for IngestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IngestUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_show() {
        let u = IngestUrl::parse("rtmp://ingest.example.com:1935/live/fzk_secretkey123").unwrap();
        assert_eq!(u.to_string(), "rtmp://ingest.example.com:1935/live/***");
        assert_eq!(
            format!("{u:?}"),
            "IngestUrl(rtmp://ingest.example.com:1935/live/***)"
        );
        assert_eq!(
            u.scrub("failed to publish fzk_secretkey123"),
            "failed to publish ***"
        );
        assert!(u.expose().ends_with("fzk_secretkey123"));
        let s = IngestUrl::parse("srt://127.0.0.1:9000?streamid=publish:abcd1234").unwrap();
        assert!(!s.to_string().contains("abcd1234"));
        // Part of the key in the query, as some services hand it out.
        let q = IngestUrl::parse(
            "rtmps://live-api-s.example.com:443/rtmp/FB-1234-0-AbCd?s_bl=1&s_sw=0&a=AbyZsecret99",
        )
        .unwrap();
        assert_eq!(
            q.to_string(),
            "rtmps://live-api-s.example.com:443/rtmp/***?***"
        );
        assert_eq!(
            q.scrub("publish FB-1234-0-AbCd?s_bl=1&s_sw=0&a=AbyZsecret99 refused"),
            "publish ***?*** refused"
        );
        let p = IngestUrl::parse("rtmp://seller:pa55word@ingest.example.com/live/key1").unwrap();
        assert_eq!(
            p.to_string(),
            "rtmp://seller:***@ingest.example.com/live/***"
        );
    }

    #[test]
    fn rtmp_urls_split_into_application_and_stream() {
        let u = IngestUrl::parse("rtmps://ingest.example.com/live/sub/fzk_key?bw=5").unwrap();
        let t = u.rtmp_target().unwrap();
        assert_eq!(t.host.to_string(), "ingest.example.com");
        assert_eq!((t.port, t.app.as_str()), (443, "live/sub"));
        assert_eq!(t.stream, "fzk_key?bw=5");
        assert_eq!(t.tc_url, "rtmps://ingest.example.com/live/sub");
        let u = IngestUrl::parse("rtmp://[::1]:1940/app/k").unwrap();
        let t = u.rtmp_target().unwrap();
        assert_eq!((t.port, t.tc_url.as_str()), (1940, "rtmp://[::1]:1940/app"));
        assert!(
            IngestUrl::parse("srt://127.0.0.1:9000")
                .unwrap()
                .rtmp_target()
                .is_none()
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_key_hidden() {
        let e = IngestUrl::parse("http://example.com/live/fzk_secretkey123")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtmp://, rtmps:// or srt://"), "{e}");
        assert!(!e.contains("secretkey"), "{e}");
        assert!(IngestUrl::parse("rtmp:///live/key").is_err());
        assert!(IngestUrl::parse("rtmp://host/live").is_err());
        assert!(IngestUrl::parse("not a url").is_err());
        assert_eq!(
            IngestUrl::redact_text("ad rtmp://host/live/fzk_secretkey123 now"),
            "ad rtmp://host/live/*** now"
        );
    }
}
