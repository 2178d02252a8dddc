//! Configuration: flags mirrored by environment variables, with defaults that run on
//! one machine (DESIGN.md, "Configuration"). A bad value stops the server at start.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "FEZA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/feza.db")]
    pub database_url: String,

    /// Directory for replays, uploads and local state.
    #[arg(long, env = "FEZA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// RTMP URL sellers publish to; their stream key is appended.
    #[arg(long, env = "FEZA_INGEST_URL", default_value = "rtmp://127.0.0.1:1935/live", value_parser = parse_ingest_url)]
    pub ingest_url: Url,

    /// Public base URL of the ingest's HLS output (`<base>/<name>.m3u8`).
    #[arg(long, env = "FEZA_PLAYBACK_BASE", default_value = "http://127.0.0.1:8088/hls", value_parser = parse_http_url)]
    pub playback_base: Url,

    /// Public base URL of this server, for share links; http://LISTEN when unset.
    #[arg(long, env = "FEZA_PUBLIC_URL", value_parser = parse_http_url)]
    pub public_url: Option<Url>,

    /// Secret the ingest hooks must carry; generated into the data dir when unset.
    #[arg(long, env = "FEZA_HOOK_SECRET", hide_env_values = true)]
    pub hook_secret: Option<String>,

    /// Seconds a dropped ingest may come back before the show ends (ingest_lost).
    #[arg(long, env = "FEZA_RECONNECT_GRACE_S", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub reconnect_grace_s: u32,

    /// Seconds a go-live waits for media before its stream key lapses.
    #[arg(long, env = "FEZA_INGEST_WAIT_S", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub ingest_wait_s: u32,

    /// Seconds without word of a publisher from the ingest (its publish, then its periodic updates) after which it is taken as gone.
    #[arg(long, env = "FEZA_INGEST_STALE_S", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3_600))]
    pub ingest_stale_s: u32,

    /// Largest replay upload accepted, in bytes.
    #[arg(long, env = "FEZA_UPLOAD_MAX_BYTES", default_value_t = 8 * 1024 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_max_bytes: u64,

    /// Where replays are stored: `local` (under the data dir) or s3://BUCKET/PREFIX
    /// (credentials and endpoint from AWS_* variables or `?endpoint=…&region=…` pairs).
    #[arg(long, env = "FEZA_STORAGE", default_value = "local")]
    pub storage: String,

    /// Seconds without a heartbeat after which a viewer stops counting as watching.
    #[arg(long, env = "FEZA_VIEWER_TIMEOUT_S", default_value_t = 45, value_parser = clap::value_parser!(u32).range(5..=3_600))]
    pub viewer_timeout_s: u32,

    /// Comments a viewer may post per minute (bursts of a quarter of it).
    #[arg(long, env = "FEZA_RATE_COMMENTS_PER_MIN", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_comments_per_min: u32,

    /// Reactions and shares a viewer may send per minute.
    #[arg(long, env = "FEZA_RATE_REACTIONS_PER_MIN", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_reactions_per_min: u32,

    /// Shows a viewer may join per minute.
    #[arg(long, env = "FEZA_RATE_JOINS_PER_MIN", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_joins_per_min: u32,

    /// Viewer identities one source address may make per minute (bursts of a quarter).
    #[arg(long, env = "FEZA_RATE_VIEWERS_PER_MIN", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_viewers_per_min: u32,

    /// Heartbeats a viewer may send per minute (one every 15 s per show it watches).
    #[arg(long, env = "FEZA_RATE_HEARTBEATS_PER_MIN", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_heartbeats_per_min: u32,

    /// Requests of viewers (joins, heartbeats, reactions, comments, shares) per minute
    /// from one source address.
    #[arg(long, env = "FEZA_RATE_IP_PER_MIN", default_value_t = 1200, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_ip_per_min: u32,

    /// How long real-time events are kept for clients that resume with
    /// `Last-Event-ID` (`24h`, `90m`, `3600s`); one resuming from before is told to
    /// reload.
    #[arg(long, env = "FEZA_EVENT_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub event_retention: std::time::Duration,

    /// Hours an unfinished upload is kept without progress before it expires.
    #[arg(long, env = "FEZA_UPLOAD_EXPIRY_H", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub upload_expiry_h: u32,
}

fn parse_ingest_url(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s).with_context(|| format!("{s:?} is not a URL"))?;
    if !matches!(url.scheme(), "rtmp" | "rtmps" | "srt") {
        bail!("the ingest URL must be rtmp://, rtmps:// or srt:// (got {s:?})");
    }
    if url.host_str().is_none() {
        bail!("the ingest URL {s:?} has no host");
    }
    Ok(url)
}

fn parse_http_url(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s).with_context(|| format!("{s:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{s:?} must be an http:// or https:// URL with a host");
    }
    Ok(url)
}

impl Config {
    /// The share-link base, without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The hook secret: configured, or the one stored in the data dir (made on first run).
    pub fn resolve_hook_secret(&self) -> anyhow::Result<String> {
        if let Some(s) = &self.hook_secret {
            if s.len() < 16 {
                bail!("FEZA_HOOK_SECRET must be at least 16 characters");
            }
            return Ok(s.clone());
        }
        load_or_create_secret(&self.data_dir.join("hook_secret"))
    }
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("Failed to read {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create the data dir {}", dir.display()))?;
    }
    let secret = crate::auth::random_token("");
    std::fs::write(path, &secret).with_context(|| format!("Failed to write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("Failed to restrict {}", path.display()))?;
    }
    Ok(secret)
}
