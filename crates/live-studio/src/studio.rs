//! The desktop app's side of a show: a whole show (go live, run, end, then send its
//! replay) told as events the app's window draws, each serializable as it is. The app
//! only wires these to its window; nothing here knows of a window.

use crate::live_events::{ChatEvent, follow_chat};
use crate::queue::{EntryState, Queue};
use crate::session::{Alert, Control, GoLive, SessionEvent, Tick};
use crate::upload::Progress;
use crate::{ApiClient, SessionError};
use live_core::api::{Counts, Stream};
use live_core::{EndReason, IngestState, StreamStatus};
use live_media::OutputState;
use serde::Serialize;
use std::time::Duration;

/// What the app hears of a show, from go-live to its replay on the server.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StudioEvent {
    /// Every second while live.
    Live(Box<LiveView>),
    Alert(Alert),
    /// The show's chat: a comment said or removed.
    Chat {
        event: ChatEvent,
    },
    /// The show ended: what the server made of it, and where its recording is.
    Ended(Box<EndedView>),
    /// The replay on its way to the server.
    Upload(UploadView),
    /// Nothing more comes: the replay is on the server (or failed, or waits for the
    /// next start of the app), or the show was discarded.
    Done(DoneView),
    /// The show could not go on (or start): why, and what to do.
    Failed {
        message: String,
    },
}

/// One tick of a live show, as the window shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LiveView {
    pub stream_id: String,
    pub title: String,
    pub share_url: String,
    /// The server's view of the show.
    pub status: StreamStatus,
    pub ingest_state: Option<IngestState>,
    pub counts: Counts,
    pub elapsed_s: u64,
    pub encoder: String,
    pub fps: f64,
    pub dropped_frames: u64,
    pub skipped_frames: u64,
    pub mic_muted: bool,
    pub mic_lost: Option<String>,
    pub camera_on: bool,
    pub camera_lost: Option<String>,
    pub recording_bytes: u64,
    pub recording_minutes_left: u64,
    pub recording_error: Option<String>,
    pub destinations: Vec<DestinationView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DestinationView {
    /// `0` is the marketplace's ingest.
    pub id: usize,
    /// Its address, the stream key hidden.
    pub url: String,
    /// `connecting`, `live`, `reconnecting` or `stopped`.
    pub state: &'static str,
    pub attempt: u32,
    /// Seconds to the next attempt, while reconnecting.
    pub retry_in_s: Option<u64>,
    pub bitrate_kbps: u64,
    pub dropped_frames: u64,
    pub behind_ms: u64,
    /// Why it is down (a refusal's reason).
    pub last_error: Option<String>,
}

impl LiveView {
    pub fn of(tick: &Tick) -> Self {
        let (stats, show) = (&tick.stats, &tick.show);
        Self {
            stream_id: show.id.clone(),
            title: show.title.clone(),
            share_url: show.share_url.clone(),
            status: show.status,
            ingest_state: show.ingest_state,
            counts: show.counts.clone(),
            elapsed_s: stats.duration.as_secs(),
            encoder: stats.encoder.to_owned(),
            fps: (stats.encoder_fps * 10.0).round() / 10.0,
            dropped_frames: stats.dropped_frames,
            skipped_frames: stats.encoder_skipped,
            mic_muted: stats.mic_muted,
            mic_lost: stats.mic_lost.clone(),
            camera_on: stats.camera_on,
            camera_lost: stats.camera_lost.clone(),
            recording_bytes: stats.recording_bytes,
            recording_minutes_left: stats.recording_minutes_left,
            recording_error: stats.recording_error.clone(),
            destinations: stats
                .outputs
                .iter()
                .map(|o| {
                    let (state, attempt, retry_in_s) = match &o.state {
                        OutputState::Connecting => ("connecting", 0, None),
                        OutputState::Live => ("live", 0, None),
                        OutputState::Reconnecting { attempt, retry_in } => (
                            "reconnecting",
                            *attempt,
                            Some(retry_in.as_secs_f64().ceil() as u64),
                        ),
                        OutputState::Stopped => ("stopped", 0, None),
                    };
                    DestinationView {
                        id: o.id,
                        url: o.url.clone(),
                        state,
                        attempt,
                        retry_in_s,
                        bitrate_kbps: o.bitrate_kbps,
                        dropped_frames: o.dropped_frames,
                        behind_ms: o.behind.as_millis() as u64,
                        last_error: o.last_error.clone(),
                    }
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EndedView {
    pub stream: Stream,
    pub saved: bool,
    /// The server ended it, its ingest lost for longer than the grace.
    pub ingest_lost: bool,
    pub duration_s: u64,
    pub recording: Option<String>,
    /// What went wrong with the recording, said in full (the show is still saved).
    pub recording_problem: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UploadView {
    pub stream_id: String,
    pub sent: u64,
    pub total: Option<u64>,
    /// Bytes a second.
    pub rate: f64,
    /// Seconds left at this rate, once the size is known.
    pub left_s: Option<u64>,
}

impl UploadView {
    fn of(stream_id: &str, p: &Progress) -> Self {
        let sent = p.reached();
        let left_s = p
            .total
            .filter(|_| p.rate > 0.0)
            .map(|t| (t.saturating_sub(sent) as f64 / p.rate).ceil() as u64);
        Self {
            stream_id: stream_id.to_owned(),
            sent,
            total: p.total,
            rate: p.rate,
            left_s,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DoneView {
    pub stream_id: String,
    /// `ready`, `processing` (the server makes it still), `queued` (sent at the next
    /// start), `failed` or `discarded`.
    pub replay: &'static str,
    pub message: Option<String>,
    pub share_url: String,
}

impl DoneView {
    /// How a replay's sending ended, from the queue's outcome.
    pub fn of(outcome: &crate::queue::Outcome) -> Self {
        Self {
            stream_id: outcome.stream_id.clone(),
            replay: match outcome.state {
                EntryState::Done => "ready",
                EntryState::Processing => "processing",
                EntryState::Failed => "failed",
                EntryState::Queued => "queued",
            },
            message: outcome.error.clone(),
            share_url: String::new(),
        }
    }
}

/// Runs a whole show as the app does: live until a [`Control::End`] (or the server
/// ends it), then, when saved, its replay sent from the queue. Everything is told to
/// `on_event`; nothing is returned but through it.
pub async fn run_show(
    client: ApiClient,
    go: GoLive,
    controls: tokio::sync::mpsc::Receiver<Control>,
    on_event: impl Fn(StudioEvent) + Clone + Send + Sync + 'static,
) {
    let queue = go.queue.clone();
    // The chat is followed from the moment the show is live.
    let mut chat: Option<tokio::task::JoinHandle<()>> = None;
    let session =
        crate::session::go_live(
            &client,
            go,
            std::future::pending(),
            controls,
            |event| match event {
                SessionEvent::Tick(tick) => {
                    if chat.is_none() && tick.show.status == StreamStatus::Live {
                        let mut said = follow_chat(&client, &tick.show.id);
                        let tell = on_event.clone();
                        chat = Some(tokio::spawn(async move {
                            while let Some(event) = said.recv().await {
                                tell(StudioEvent::Chat { event });
                            }
                        }));
                    }
                    on_event(StudioEvent::Live(Box::new(LiveView::of(&tick))));
                }
                SessionEvent::Alert(alert) => on_event(StudioEvent::Alert(alert)),
            },
        )
        .await;
    if let Some(chat) = chat {
        chat.abort();
    }
    let report = match session {
        Ok(report) => report,
        Err(e) => {
            on_event(StudioEvent::Failed {
                message: failure(&e),
            });
            return;
        }
    };
    let saved = report.stream.status == StreamStatus::Archived;
    let recording_problem = report
        .recording_error
        .clone()
        .or(report.mp4_error.clone())
        .or((!report.recording_lost.is_zero()).then(|| {
            format!(
                "the recording misses {:.0} s of the show: its disk took nothing for too long \
                 (the live show went on)",
                report.recording_lost.as_secs_f64()
            )
        }));
    let id = report.stream.id.clone();
    let share_url = report.stream.share_url.clone();
    on_event(StudioEvent::Ended(Box::new(EndedView {
        ingest_lost: report.stream.end_reason == Some(EndReason::IngestLost),
        saved,
        duration_s: report.duration.as_secs(),
        recording: report.recording.as_ref().map(|p| p.display().to_string()),
        recording_problem,
        stream: report.stream,
    })));
    let done = |replay, message| {
        StudioEvent::Done(DoneView {
            stream_id: id.clone(),
            replay,
            message,
            share_url: share_url.clone(),
        })
    };
    let Some(queue) = queue.filter(|_| saved) else {
        on_event(done(if saved { "queued" } else { "discarded" }, None));
        return;
    };
    let sent = send_replays(&client, &queue, &mut |e| on_event(e)).await;
    on_event(match sent.iter().find(|o| o.stream_id == id) {
        Some(outcome) => StudioEvent::Done(DoneView {
            share_url: share_url.clone(),
            ..DoneView::of(outcome)
        }),
        None => done("queued", None),
    });
}

/// Sends every replay waiting in `queue` (a show just saved, or left by an earlier run
/// of the app), telling its progress; returns how each went.
pub async fn send_replays(
    client: &ApiClient,
    queue: &Queue,
    on_event: &mut (impl FnMut(StudioEvent) + Send),
) -> Vec<crate::queue::Outcome> {
    let sent = crate::queue::run(
        client,
        queue,
        Default::default(),
        Duration::from_secs(120),
        std::future::pending(),
        |id, progress| on_event(StudioEvent::Upload(UploadView::of(id, progress))),
    )
    .await;
    sent.unwrap_or_else(|e| {
        on_event(StudioEvent::Failed {
            message: format!("the replays could not be sent: {e}"),
        });
        Vec::new()
    })
}

/// A session's error as the seller reads it.
fn failure(e: &SessionError) -> String {
    e.to_string()
}

/// What the app keeps between runs, beside the keyring's token: the server it signed
/// in to. A JSON file in the app's config folder.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Settings {
    pub server: Option<String>,
}

impl Settings {
    pub fn load(path: &std::path::Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let partial = path.with_extension("json.part");
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(partial, path)
    }
}

/// Checks a seller's token against the server: the client and the seller it belongs
/// to, or why not in the seller's words (a server that cannot be reached or is not
/// trusted says so in the error already).
pub async fn sign_in(
    server: &str,
    token: &str,
) -> Result<(ApiClient, live_core::api::SellerRef), String> {
    let client = ApiClient::new(server, token).map_err(|e| e.to_string())?;
    match client.me().await {
        Ok(seller) => Ok((client, seller)),
        Err(crate::ClientError::Refused { status: 401, .. }) => Err(
            "the server does not know this token: copy it again from where it was given (a \
             seller's token is shown once, when the marketplace makes the seller)"
                .into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}
