//! What every handler shares.

use crate::config::Config;
use crate::db::Db;
use chrono::TimeDelta;
use live_core::Policy;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    /// One request at a time per upload.
    pub uploads: crate::uploads::UploadLocks,
    /// Wakes the replay worker.
    pub replay_work: Arc<tokio::sync::Notify>,
    /// Fans real-time events out to this instance's subscribers.
    pub events: Arc<crate::events::Bus>,
    /// Shows whose counts changed, and the ticker that announces them.
    pub dirty: Arc<crate::api::engagement::Dirty>,
    pub counts_wake: Arc<tokio::sync::Notify>,
    pub limits: Arc<crate::limits::Limits>,
    /// Writes reactions in batches.
    pub reactions: Arc<crate::api::engagement::ReactionWriter>,
    /// For PostgreSQL's LISTEN (other instances' events); never logged.
    pub database_url: Arc<str>,
}

/// The configuration, resolved once at start.
#[derive(Debug)]
pub struct Settings {
    pub policy: Policy,
    /// Share links: `<public_base>/live/<id>`.
    pub public_base: String,
    /// `<playback_base>/<public name>.m3u8`.
    pub playback_base: String,
    /// Publish URL without the key.
    pub ingest_url: String,
    pub hook_secret: String,
    /// Where uploads and replays are stored.
    pub data_dir: std::path::PathBuf,
    pub upload_max_bytes: u64,
    pub upload_expiry: TimeDelta,
    pub storage: crate::storage::Storage,
    /// A viewer session silent this long stops counting.
    pub viewer_timeout_ms: i64,
    /// Real-time events older than this are pruned.
    pub event_retention: TimeDelta,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            policy: Policy {
                wait_timeout: TimeDelta::seconds(cfg.ingest_wait_s.into()),
                reconnect_grace: TimeDelta::seconds(cfg.reconnect_grace_s.into()),
                stale_after: TimeDelta::seconds(cfg.ingest_stale_s.into()),
                // Whatever the ingest said while this server was down went unheard.
                listening_since: Some(chrono::Utc::now()),
                ..Policy::default()
            },
            public_base: cfg.public_base(),
            playback_base: cfg.playback_base.as_str().trim_end_matches('/').to_owned(),
            ingest_url: cfg.ingest_url.as_str().trim_end_matches('/').to_owned(),
            hook_secret: cfg.resolve_hook_secret()?,
            data_dir: cfg.data_dir.clone(),
            upload_max_bytes: cfg.upload_max_bytes,
            upload_expiry: TimeDelta::hours(cfg.upload_expiry_h.into()),
            storage: crate::storage::Storage::from_setting(&cfg.storage, &cfg.data_dir)?,
            viewer_timeout_ms: i64::from(cfg.viewer_timeout_s) * 1000,
            event_retention: TimeDelta::from_std(cfg.event_retention)
                .map_err(|_| anyhow::anyhow!("FEZA_EVENT_RETENTION is too long"))?,
        })
    }

    pub fn share_url(&self, id: &str) -> String {
        format!("{}/live/{id}", self.public_base)
    }

    pub fn uploads_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("uploads")
    }

    /// Where replays are made (and, with local storage, kept).
    pub fn replays_work_dir(&self) -> std::path::PathBuf {
        self.storage.work_dir(&self.data_dir)
    }

    pub fn playback_url(&self, public_name: &str) -> String {
        format!("{}/{public_name}.m3u8", self.playback_base)
    }
}
