//! The HTTP API's request and response bodies (API.md), shared by server and clients.

use crate::lifecycle::{EndReason, IngestState, Outcome, StreamStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// When the show is planned; now when absent.
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndStream {
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SellerRef {
    pub id: String,
    pub name: String,
}

/// Real counts only (DESIGN.md, "Engagement is real").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub viewers: i64,
    pub peak_viewers: i64,
    pub unique_viewers: i64,
    pub likes: i64,
    pub dislikes: i64,
    pub comments: i64,
    pub shares: i64,
    pub reminders: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayState {
    Uploading,
    Processing,
    Ready,
    Failed,
}

impl ReplayState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "uploading" => Self::Uploading,
            "processing" => Self::Processing,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Replay {
    pub video_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub duration_s: Option<f64>,
    pub state: ReplayState,
    /// Why a replay failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A show. The public view; `ingest_state` and `overdue` only for its owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stream {
    pub id: String,
    pub seller: SellerRef,
    pub title: String,
    pub description: String,
    pub status: StreamStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<EndReason>,
    pub share_url: String,
    /// HLS playlist, while live.
    pub playback_url: Option<String>,
    /// When archived.
    pub replay: Option<Replay>,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_state: Option<IngestState>,
    /// Owner only: a scheduled show more than an hour past its time, no longer listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamPage {
    pub streams: Vec<Stream>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestTarget {
    /// RTMP URL to publish to, without the key.
    pub url: String,
    /// Secret; valid for this go-live only.
    pub stream_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StartResponse {
    pub ingest: IngestTarget,
    pub stream: Stream,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadTarget {
    /// tus endpoint.
    pub endpoint: String,
    /// `Upload-Metadata` to send on creation.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The upload already running for this show (progressive upload), to finish
    /// rather than start over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EndResponse {
    pub stream: Stream,
    /// Where to upload the recording (on save).
    pub upload: Option<UploadTarget>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateViewer {
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ViewerCreated {
    pub viewer_id: String,
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Joined {
    pub session_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    Like,
    Dislike,
    None,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetReaction {
    pub reaction: Reaction,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reacted {
    pub reaction: Reaction,
    pub counts: Counts,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    pub id: String,
    /// Who said it (what a seller blocks).
    #[serde(default)]
    pub viewer_id: String,
    pub viewer_name: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    pub viewer_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reminded {
    pub reminded: bool,
    pub reminders: i64,
}
