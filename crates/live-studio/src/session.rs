//! A show session: the server's lifecycle around the media engine. Check the devices
//! and the recording folder, create the show (or take the one scheduled earlier) and
//! start it, broadcast to its ingest (plus any extra destinations) while recording,
//! then end it with the seller's outcome and finish the recording. A show created for
//! a go-live that cannot start is not left announced. The server is asked in tasks of
//! their own while live: a server that is down or slow never holds up the show.

use crate::client::{ApiClient, ClientError};
use crate::queue::Queue;
use crate::upload::{SendOptions, TusClient, send_file};
use live_core::api::Stream;
use live_core::{Outcome, StreamStatus};
use live_media::{
    Broadcast, BroadcastConfig, EncoderChoice, IngestUrl, MediaError, OutputState, OutputStats,
    Stats, TlsTrust, VideoProfile,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("the server gave an ingest URL that cannot be used: {0}")]
    Ingest(String),
    #[error(
        "show {id} is {status}: only a scheduled show, or a live one whose broadcast stopped, \
         can go live (create a new one)"
    )]
    NotScheduled { id: String, status: StreamStatus },
    #[error("{0}")]
    Io(String),
}

/// Which show goes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Show {
    /// A new show with this title, created at go-live.
    New { title: String },
    /// A show of the seller's scheduled earlier (viewers may hold reminders for it).
    /// A go-live that fails leaves it scheduled. A show live already whose broadcast
    /// stopped (a crash, a power cut; the server waits a while for it) is taken up
    /// again: its viewers stay, its recording goes on in a new part, and the parts are
    /// joined into one replay at the end.
    Scheduled { id: String },
}

#[derive(Clone, Debug)]
pub struct GoLive {
    pub show: Show,
    pub source: live_media::Source,
    pub video: VideoProfile,
    pub encoder: EncoderChoice,
    pub extra_ingests: Vec<IngestUrl>,
    /// How rtmps:// destinations' certificates are checked.
    pub tls: TlsTrust,
    pub record_dir: PathBuf,
    /// Ends by itself after this long; otherwise when `stop` resolves.
    pub duration: Option<Duration>,
    pub outcome: Outcome,
    /// How often `on_stats` is called.
    pub stats_every: Duration,
    /// Where a saved recording is queued for upload (none: it stays local only).
    pub queue: Option<Queue>,
    /// Sends the recording to the server while it grows (with a queue).
    pub progressive_upload: bool,
    /// Keep the local recording once its replay is ready on the server.
    pub keep_local: bool,
}

/// What a seller changes while live; no other connection drops for any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Mic {
        muted: bool,
    },
    Camera {
        on: bool,
    },
    /// Another destination, connected at once.
    AddDestination(IngestUrl),
    /// Ends the stream to the output with this id (`outN` in the stats line).
    RemoveDestination(usize),
    /// Ends the show, with this outcome (whatever [`GoLive::outcome`] said).
    End(Outcome),
}

/// What `live-cast` accepts typed while live.
pub const CONTROL_HELP: &str =
    "mute, unmute, camera off, camera on, add <rtmp://… | rtmps://… | srt://…>, remove <N>";

impl Control {
    /// A command typed at `live-cast` (see [`CONTROL_HELP`]); the error says why not.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim();
        Ok(match line {
            "mute" => Self::Mic { muted: true },
            "unmute" => Self::Mic { muted: false },
            "camera off" => Self::Camera { on: false },
            "camera on" => Self::Camera { on: true },
            _ => {
                if let Some(url) = line.strip_prefix("add ") {
                    let url = IngestUrl::parse(url.trim()).map_err(|e| e.to_string())?;
                    Self::AddDestination(url)
                } else if let Some(n) = line.strip_prefix("remove ") {
                    let n = n.trim().trim_start_matches("out");
                    Self::RemoveDestination(n.parse().map_err(|_| {
                        "remove takes an output number, as in `remove 1` for out1".to_string()
                    })?)
                } else {
                    let shown = IngestUrl::redact_text(line);
                    return Err(format!("unknown command {shown:?}: type {CONTROL_HELP}"));
                }
            }
        })
    }
}

#[derive(Clone, Debug)]
pub struct SessionReport {
    pub stream: Stream,
    pub duration: Duration,
    /// The crash-safe recording (kept on save, deleted on discard).
    pub recording: Option<PathBuf>,
    /// The web-playable copy made on save.
    pub mp4: Option<PathBuf>,
    /// Why the MP4 copy could not be made (a full disk), if it could not: the recording
    /// is kept, its upload goes ahead, and the next `live-cast` run makes the copy.
    pub mp4_error: Option<String>,
    /// Set when the recording stopped before the show (a full disk): it holds the show
    /// up to then.
    pub recording_error: Option<String>,
    /// How much of the show is missing from the recording: its disk took nothing for
    /// longer than the recording holds (the live show went on).
    pub recording_lost: Duration,
}

/// What a show session tells while live, as it happens: the app draws it, `live-cast`
/// prints it. Neither reads the other's words.
#[derive(Clone, Debug)]
pub enum SessionEvent {
    /// Every [`GoLive::stats_every`].
    Tick(Box<Tick>),
    /// Something the seller should know, or do something about.
    Alert(Alert),
}

/// The media's stats and the server's view of the show (its status and real counts).
#[derive(Clone, Debug)]
pub struct Tick {
    pub stats: Stats,
    pub show: Stream,
}

/// A seller alert: what kind of thing happened, and a sentence saying it (with what to
/// do, where there is anything to do).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The server has not answered for a while; the show goes on without it.
    ServerSilent,
    /// The server answers again.
    ServerBack,
    /// The server ended the show (its ingest lost for longer than the grace, or ended
    /// elsewhere): the broadcast ends here too.
    EndedOnServer,
    /// The broadcaster did not run for a while (the computer slept or froze).
    Stalled,
    /// The recording's disk has few minutes of room left.
    RecordingSpaceLow,
    /// The recording's disk is not keeping up.
    DiskSlow,
    /// The computer cannot encode the show's profile in time: frames are skipped.
    TooBusy,
    /// A destination's connection is slower than the show: frames are dropped for it.
    DestinationTooSlow,
    /// A control that cannot be carried out (no such destination, the marketplace's
    /// ingest removed).
    ControlRefused,
    /// Sending the recording while live stopped for a while; it goes on after the show.
    UploadPaused,
}

/// Where a session's alerts go: its caller (as events) and the log. Tasks of the
/// session hold a copy.
#[derive(Clone)]
struct Alerts(tokio::sync::mpsc::UnboundedSender<Alert>);

impl Alerts {
    fn new() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Alert>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    fn raise(&self, kind: AlertKind, message: String) {
        if kind == AlertKind::ServerBack {
            tracing::info!(alert = ?kind, "{message}");
        } else {
            tracing::warn!(alert = ?kind, "{message}");
        }
        let _ = self.0.send(Alert { kind, message });
    }
}

/// Runs GStreamer work (which blocks) off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SessionError::Io(format!("media task failed: {e}")))
}

/// Remuxes `recording` into the MP4 `mp4`, off the runtime. A copy that takes a while
/// (a long show) says how far it has come every 5 s.
async fn mp4_copy(
    recording: &Path,
    mp4: &Path,
) -> Result<Result<(), live_media::MediaError>, SessionError> {
    let (src, dst) = (recording.to_owned(), mp4.to_owned());
    blocking(move || {
        let mut told = Instant::now();
        live_media::remux_to_mp4(&src, &dst, &mut |done| {
            if told.elapsed() >= Duration::from_secs(5) {
                told = Instant::now();
                tracing::info!(recording = %src.display(), "making the MP4 copy: {:.0} %", done * 100.0);
            }
        })
    })
    .await
}

/// Runs a whole show. `controls` change it while live; `on_event` hears what happens
/// while live ([`SessionEvent`]).
pub async fn go_live(
    client: &ApiClient,
    go: GoLive,
    stop: impl Future<Output = ()>,
    mut controls: tokio::sync::mpsc::Receiver<Control>,
    mut on_event: impl FnMut(SessionEvent),
) -> Result<SessionReport, SessionError> {
    // A show scheduled earlier, or one live already whose broadcast stopped (a crash,
    // a power cut): that one is taken up again, its viewers still there.
    let earlier = match &go.show {
        Show::New { .. } => None,
        Show::Scheduled { id } => {
            let show = client.stream(id).await?;
            if !matches!(show.status, StreamStatus::Scheduled | StreamStatus::Live) {
                return Err(SessionError::NotScheduled {
                    id: show.id,
                    status: show.status,
                });
            }
            Some(show)
        }
    };
    let resuming = earlier
        .as_ref()
        .is_some_and(|s| s.status == StreamStatus::Live);
    let mut go = go;
    if let Some(show) = earlier.as_ref().filter(|_| resuming) {
        let recording = go.record_dir.join(format!("{}.mkv", show.id));
        take_up_again(client, show, &recording, go.queue.as_ref()).await?;
        go.video = resumed_profile(&recording, go.video)?;
    }
    // A missing camera, a folder that cannot be written or a full disk is found
    // before the show is announced: no viewer is shown a show that cannot start.
    let config = BroadcastConfig {
        source: go.source.clone(),
        video: go.video,
        encoder: go.encoder,
        tls: go.tls,
        // Its folder is checked; the show's id names the file.
        recording: go.record_dir.join("show.mkv"),
        ..BroadcastConfig::default()
    };
    let prepared = blocking(move || Broadcast::prepare(config)).await??;

    let show = match (&go.show, earlier) {
        (_, Some(show)) => show,
        (Show::New { title }, None) => client.create_stream(title).await?,
        (Show::Scheduled { id }, None) => unreachable!("show {id} was looked up"),
    };
    let recording = go.record_dir.join(format!("{}.mkv", show.id));
    let started = async {
        note_made_here(&go.record_dir, &show.id)?;
        let started = client.start(&show.id).await?;
        if resuming {
            set_aside(&recording)?;
        }
        let ingest = IngestUrl::parse(&format!(
            "{}/{}",
            started.ingest.url.trim_end_matches('/'),
            started.ingest.stream_key
        ))
        .map_err(|e| SessionError::Ingest(e.to_string()))?;
        tracing::info!(stream = %show.id, ingest = %ingest, "going live");
        let mut outputs = vec![ingest];
        outputs.extend(go.extra_ingests.iter().cloned());
        let file = recording.clone();
        Ok::<_, SessionError>(blocking(move || prepared.start(file, outputs)).await??)
    };
    let broadcast = match (started.await, &go.show) {
        (Ok(broadcast), _) => broadcast,
        (Err(e), Show::New { .. }) => return Err(cancel_unstarted(client, &show.id, e).await),
        (Err(e), Show::Scheduled { .. }) => {
            tracing::warn!(stream = %show.id, "the show could not start; it stays scheduled");
            return Err(e);
        }
    };

    let mut ticker = tokio::time::interval(go.stats_every);
    // A tick held up (a busy machine) is not made up for with a burst of lines.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (alerts, mut raised) = Alerts::new();
    let server = follow_show(client, &show, go.stats_every, alerts.clone());
    let deadline = async {
        match go.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, deadline);
    let mut controls_open = true;
    let mut progressive: Option<Progressive> = None;
    let mut counts: Option<watch::Receiver<Option<live_core::api::Counts>>> = None;
    let mut last_drops = 0u64;
    let mut space = SpaceWatch::default();
    let mut busy = LossWatch::default();
    let mut stops = StopWatch::default();
    let mut stop_looks = tokio::time::interval(StopWatch::EVERY);
    stop_looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut disk = DiskWatch::default();
    let mut slow: HashMap<usize, LossWatch> = HashMap::new();
    // The server's view when it ended the show itself (or it was ended elsewhere).
    let mut ended_on_server: Option<Stream> = None;
    let media_failure = loop {
        tokio::select! {
            () = &mut stop => break None,
            () = &mut deadline => break None,
            control = controls.recv(), if controls_open => match control {
                Some(Control::Mic { muted }) => broadcast.set_mic_muted(muted),
                Some(Control::Camera { on }) => broadcast.set_camera_on(on),
                Some(Control::AddDestination(url)) => {
                    broadcast.add_output(url);
                }
                Some(Control::RemoveDestination(id)) => {
                    if id == 0 {
                        alerts.raise(
                            AlertKind::ControlRefused,
                            "out0 is the marketplace's ingest: end the show to stop it".into(),
                        );
                    } else if !broadcast.remove_output(id) {
                        alerts.raise(
                            AlertKind::ControlRefused,
                            format!("there is no destination out{id}"),
                        );
                    }
                }
                Some(Control::End(outcome)) => {
                    go.outcome = outcome;
                    break None;
                }
                None => controls_open = false,
            },
            Some(alert) = raised.recv() => on_event(SessionEvent::Alert(alert)),
            _ = stop_looks.tick() => {
                if let Some(stopped) = stops.look(std::time::SystemTime::now()) {
                    alerts.raise(
                        AlertKind::Stalled,
                        format!(
                            "the show stopped for about {:.0} s: the broadcaster did not run \
                             (the computer slept, froze or was stopped), so viewers saw the \
                             show stand still; it goes on now",
                            stopped.as_secs_f64()
                        ),
                    );
                }
            }
            _ = ticker.tick() => {
                if let Err(e) = broadcast.poll() {
                    break Some(e);
                }
                let mut view = server.borrow().clone();
                if matches!(
                    view.status,
                    StreamStatus::Ended | StreamStatus::Archived | StreamStatus::Cancelled
                ) {
                    alerts.raise(AlertKind::EndedOnServer, ended_elsewhere(&view));
                    ended_on_server = Some(view);
                    break None;
                }
                let stats = broadcast.stats();
                let is_live = view.status == StreamStatus::Live;
                // Real counts, as the server pushes them.
                if is_live && counts.is_none() {
                    counts = Some(crate::live_events::follow_counts(client, &show.id));
                }
                if let Some(Some(c)) = counts.as_ref().map(|c| c.borrow().clone()) {
                    view.counts = c;
                }
                // A show taken up again sends its replay once its parts are joined.
                if progressive.is_none() && is_live && go.progressive_upload && !resuming
                    && let Some(queue) = &go.queue
                {
                    progressive = Some(Progressive::start(
                        client,
                        queue,
                        &show.id,
                        &recording,
                        alerts.clone(),
                    ));
                }
                if let Some(p) = &progressive {
                    // The live stream comes first: the upload waits while the
                    // marketplace's connection is down or dropping frames.
                    let out0 = stats.outputs.iter().find(|o| o.id == 0);
                    let drops = out0.map_or(0, |o| o.dropped_frames);
                    let congested = drops > last_drops
                        || out0.is_some_and(|o| o.state != live_media::OutputState::Live);
                    last_drops = drops;
                    let _ = p.congested.send(congested);
                }
                if stats.recording_error.is_none()
                    && let Some(minutes) = space.crossed(stats.recording_minutes_left)
                {
                    alerts.raise(
                        AlertKind::RecordingSpaceLow,
                        format!(
                            "only {minutes} minutes of recording space left in {}: free some \
                             space, or the recording stops there (the show itself goes on)",
                            recording.parent().unwrap_or(Path::new(".")).display()
                        ),
                    );
                }
                if let Some(said) = disk.look(&stats, &go.video, &recording) {
                    alerts.raise(AlertKind::DiskSlow, said);
                }
                if let Some(skipped) = busy.lost(stats.encoder_skipped, Instant::now()) {
                    alerts.raise(
                        AlertKind::TooBusy,
                        too_busy(&go.video, skipped, stats.encoder_fps),
                    );
                }
                for o in &stats.outputs {
                    let watch = slow.entry(o.id).or_default();
                    if let Some(dropped) = watch.lost(o.dropped_frames, Instant::now()) {
                        alerts.raise(AlertKind::DestinationTooSlow, too_slow(&go.video, o, dropped));
                    }
                }
                on_event(SessionEvent::Tick(Box::new(Tick { stats, show: view })));
            }
        }
    };
    let finished = blocking(move || broadcast.stop()).await?;
    drop(server);
    // What was raised as the show ended (the server ending it) is told too.
    while let Ok(alert) = raised.try_recv() {
        on_event(SessionEvent::Alert(alert));
    }
    // A discard is noted beside the recording before anything that can take a while
    // (a server slow to answer): a live-cast quit or killed while ending leaves it to
    // the next run to carry out, not a recording that looks interrupted and is saved.
    let marker = discard_marker(&recording);
    if go.outcome == Outcome::Discard
        && let Err(e) = std::fs::write(&marker, b"")
    {
        tracing::error!("could not note the discard beside the recording ({e})");
    }
    let progressive_url = match progressive.take() {
        Some(p) => p.stop().await,
        None => None,
    };
    if let Some(e) = media_failure {
        tracing::error!(
            "the broadcast failed: {e}; the recording so far is kept at {}",
            recording.display()
        );
        return Err(e.into());
    }
    let finished = finished?;

    // The ingest never confirmed the show (it never reached viewers): nothing to end
    // or save on the server, so it is cancelled there; the footage stays the seller's.
    let never_live = client
        .stream(&show.id)
        .await
        .is_ok_and(|s| s.status == StreamStatus::Scheduled);
    let stream = if never_live {
        tracing::warn!(
            "the ingest never confirmed the show, so no viewer saw it: it is cancelled on the server"
        );
        client.cancel(&show.id).await?
    } else {
        let ended = client.end(&show.id, go.outcome).await;
        match (ended, ended_on_server) {
            // Ended elsewhere with an outcome of its own: the server's stands.
            (Err(ClientError::Refused { .. }), Some(view)) => Ok(view),
            (ended, _) => ended.map(|r| r.stream),
        }
        .map_err(|e| {
            tracing::error!(
                "the show could not be ended on the server ({e}); the recording is kept at {}",
                recording.display()
            );
            // The seller's choice, kept beside it: the next run discards the show
            // rather than save it as an interrupted one.
            if marker.exists() {
                tracing::warn!(
                    "the show will be discarded (and its recording deleted) by the next \
                     live-cast run that reaches the server"
                );
            }
            e
        })?
    };
    // What the server made of the show decides what becomes of the recording (the
    // seller's choice, unless the show was saved or discarded elsewhere).
    let outcome = if never_live {
        go.outcome
    } else if stream.status == StreamStatus::Archived {
        Outcome::Save
    } else {
        Outcome::Discard
    };
    if outcome == Outcome::Save {
        // Saved elsewhere, whatever the seller asked here: nothing is left to discard.
        let _ = std::fs::remove_file(&marker);
    }
    if outcome == Outcome::Save {
        match join_parts(&recording).await {
            Ok(true) => tracing::info!(
                recording = %recording.display(),
                "the recordings of the show's broadcasts are joined into one"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(
                    "the show is saved, but the recordings of its broadcasts could not be \
                     joined into one ({e}): they are kept in {}, and `live-cast recover` tries \
                     again",
                    recording.parent().unwrap_or(Path::new(".")).display()
                );
                return Err(e);
            }
        }
    }
    let (recording, mp4, mp4_error) = match outcome {
        Outcome::Save => {
            // Queued for upload first: the replay never waits on the seller's MP4 copy,
            // which a full disk can refuse. What the show sent while live is resumed,
            // not resent.
            if let Some(queue) = go.queue.as_ref().filter(|_| !never_live) {
                let queued = async {
                    // A disk that held the show's end may still write it: the
                    // recording, then more whole than its replay, stays.
                    let keep = go.keep_local || finished.disk_held_the_end;
                    queue.enqueue(&show.id, &recording, keep).await?;
                    if let Some(url) = progressive_url.as_deref() {
                        queue.set_url(&show.id, url).await?;
                    }
                    Ok::<_, crate::queue::QueueError>(())
                };
                if let Err(e) = queued.await {
                    tracing::error!(
                        "the recording could not be queued for upload ({e}); `live-cast upload \
                         --stream {} {}` sends it",
                        show.id,
                        recording.display()
                    );
                }
            }
            let mp4 = recording.with_extension("mp4");
            match mp4_copy(&recording, &mp4).await {
                Ok(Ok(())) => (Some(recording), Some(mp4), None),
                Ok(Err(live_media::MediaError::NoPicture(_))) => {
                    tracing::warn!(
                        "the show ended before its first frame: its recording holds nothing, \
                         so it is deleted"
                    );
                    if let Some(queue) = &go.queue {
                        let _ = queue.remove(&show.id).await;
                    }
                    let _ = std::fs::remove_file(&recording);
                    (None, None, None)
                }
                Ok(Err(e)) => {
                    tracing::warn!(
                        "the MP4 copy could not be made ({e}); the recording is kept at {} and \
                         the next live-cast run makes the copy",
                        recording.display()
                    );
                    (Some(recording), None, Some(e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        Outcome::Discard => {
            std::fs::remove_file(&recording).map_err(|e| {
                SessionError::Io(format!("could not delete {}: {e}", recording.display()))
            })?;
            remove_recordings(&recording);
            let _ = std::fs::remove_file(&marker);
            // The server terminated its copy on `end`; nothing is left to send.
            if let Some(queue) = &go.queue {
                let _ = queue.remove(&show.id).await;
            }
            (None, None, None)
        }
    };
    Ok(SessionReport {
        stream,
        duration: finished.duration,
        recording,
        mp4,
        mp4_error,
        recording_error: finished.recording_error,
        recording_lost: Duration::from_secs_f64(
            finished.recording_lost_frames as f64 / f64::from(go.video.fps.max(1)),
        ),
    })
}

/// The profile a show taken up again goes on with: the one its recording so far was
/// made with (its parts are joined at the end, which needs one picture size), else
/// `asked`.
fn resumed_profile(recording: &Path, asked: VideoProfile) -> Result<VideoProfile, SessionError> {
    let latest = parts_of(recording)
        .into_iter()
        .chain(std::iter::once(recording.to_owned()))
        .filter_map(|p| live_media::picture_size(&p))
        .next_back();
    let Some((width, height)) = latest else {
        return Ok(asked);
    };
    let (name, profile) = VideoProfile::NAMED
        .into_iter()
        .find(|(_, p)| (p.width, p.height) == (width, height))
        .ok_or_else(|| {
            SessionError::Io(format!(
                "the show was recorded at {width}x{height}, which no profile makes: its \
                 recording so far ({}) cannot be joined to a new one",
                recording.display()
            ))
        })?;
    if profile != asked {
        tracing::info!("the show goes on at {name}, as it was recorded so far");
    }
    Ok(profile)
}

/// How long a show taken up again waits for its ingest to let go of the broadcast that
/// stopped (a connection the ingest has not yet seen die: nginx-rtmp's is 10 s).
const INGEST_LETS_GO: Duration = Duration::from_secs(30);

/// Readies a live show whose broadcast stopped to be taken up again here: no other
/// broadcast of it runs on this computer, its ingest has let go of the old one, and an
/// upload of its recording so far is forgotten (the replay is sent whole at the end).
async fn take_up_again(
    client: &ApiClient,
    show: &Stream,
    recording: &Path,
    queue: Option<&Queue>,
) -> Result<(), SessionError> {
    if live_media::is_recording(recording) {
        return Err(SessionError::Io(format!(
            "show {} is being broadcast from this computer already (its recording {} is \
             open): end that broadcast first",
            show.id,
            recording.display()
        )));
    }
    tracing::info!(stream = %show.id, "taking the show up again (it is live)");
    let since = Instant::now();
    let mut told = false;
    loop {
        let now = client.stream(&show.id).await?;
        if now.status != StreamStatus::Live {
            return Err(SessionError::NotScheduled {
                id: now.id,
                status: now.status,
            });
        }
        if now.ingest_state != Some(live_core::IngestState::Connected) {
            break;
        }
        if since.elapsed() >= INGEST_LETS_GO {
            return Err(SessionError::Io(format!(
                "show {} is still being broadcast (its ingest has been receiving it for the \
                 last {} s): end that broadcast, or wait until the ingest lets it go, and try \
                 again",
                show.id,
                INGEST_LETS_GO.as_secs()
            )));
        }
        if !told {
            tracing::info!(
                "the show's ingest still receives a broadcast of it (one that stopped is let \
                 go within seconds); waiting up to {} s",
                INGEST_LETS_GO.as_secs()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(queue) = queue
        && let Err(e) = queue.remove(&show.id).await
    {
        tracing::warn!("could not forget the earlier upload of the show: {e}");
    }
    if !recording.exists() && parts_of(recording).is_empty() {
        tracing::warn!(
            "no recording of the show so far is in {}: its replay will hold what is broadcast \
             from here on",
            recording.parent().unwrap_or(Path::new(".")).display()
        );
    }
    Ok(())
}

/// A show announced but never broadcast is cancelled on the server (nothing reached
/// its ingest), so it is not left among the upcoming ones; returns `cause`.
async fn cancel_unstarted(client: &ApiClient, id: &str, cause: SessionError) -> SessionError {
    match client.cancel(id).await {
        Ok(_) => {
            tracing::warn!(stream = %id, "the show could not start, so it is cancelled on the server")
        }
        Err(e) => {
            tracing::error!(stream = %id, "the show could not start and could not be cancelled ({e}): cancel it on the server")
        }
    }
    cause
}

/// How often a progressive upload the server did not take is asked for again.
const PROGRESSIVE_RETRY: Duration = Duration::from_secs(5);

/// The recording sent to the server while it grows. Everything it asks of the server
/// happens in a task of its own: a slow server never holds up the show.
struct Progressive {
    congested: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    /// Ends with the upload's URL, if the server gave one.
    task: tokio::task::JoinHandle<Option<String>>,
}

impl Progressive {
    fn start(
        client: &ApiClient,
        queue: &Queue,
        stream_id: &str,
        recording: &Path,
        alerts: Alerts,
    ) -> Self {
        let tus = TusClient::new(client);
        let (queue, stream_id, path) = (queue.clone(), stream_id.to_owned(), recording.to_owned());
        let (congested, mut congested_rx) = watch::channel(false);
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let filename = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Until the server takes it (or the show ends first: then the queue sends
            // it all after the show).
            let mut told = false;
            let url = loop {
                tokio::select! {
                    created = tus.create(&stream_id, None, &filename) => match created {
                        Ok(url) => break url,
                        Err(e) if !told => {
                            alerts.raise(
                                AlertKind::UploadPaused,
                                format!(
                                    "the replay's upload could not start while live ({e}); it \
                                     is tried again every {} s, or the recording uploads after \
                                     the show",
                                    PROGRESSIVE_RETRY.as_secs()
                                ),
                            );
                            told = true;
                        }
                        Err(e) => tracing::debug!("progressive upload not started: {e}"),
                    },
                    _ = stop_rx.changed() => return None,
                }
                tokio::select! {
                    _ = stop_rx.changed() => return None,
                    () = tokio::time::sleep(PROGRESSIVE_RETRY) => {}
                }
            };
            // Remembered now, so a crash mid-show resumes this upload.
            if let Err(e) = async {
                queue.enqueue(&stream_id, &path, false).await?;
                queue.set_url(&stream_id, &url).await
            }
            .await
            {
                tracing::warn!("could not note the progressive upload in the queue: {e}");
            }
            tracing::info!("progressive upload started");
            loop {
                if *stop_rx.borrow() {
                    break;
                }
                if !*congested_rx.borrow_and_update() {
                    let opts = SendOptions::default();
                    tokio::select! {
                        sent = send_file(&tus, &url, &path, false, opts, |_| {}) => {
                            if let Err(e) = sent {
                                tracing::warn!("progressive upload paused: {e}");
                            }
                        }
                        // The end of the show: the queue sends the rest, from the
                        // server's offset.
                        _ = stop_rx.changed() => break,
                    }
                }
                tokio::select! {
                    _ = stop_rx.changed() => {}
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Some(url)
        });
        Self {
            congested,
            stop,
            task,
        }
    }

    /// Stops (a request in flight is cut; the server keeps what arrived); returns the
    /// upload's URL for the queue, if it was created.
    async fn stop(self) -> Option<String> {
        let _ = self.stop.send(true);
        self.task.await.ok().flatten()
    }
}

/// How long one look at the show on the server may take before it counts as silence.
const SERVER_LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// After this long without an answer from the server, the seller is told (once).
const SERVER_SILENCE_WARNING: Duration = Duration::from_secs(10);

/// Follows the server's view of `show` (its status and counts) every `every` until
/// the receiver is dropped, in a task of its own: a server that is slow or gone never
/// holds up the stats, the controls or the end of the show, none of which needs it.
/// The seller is told when it stops answering, and when it answers again.
fn follow_show(
    client: &ApiClient,
    show: &Stream,
    every: Duration,
    alerts: Alerts,
) -> watch::Receiver<Stream> {
    let (tx, rx) = watch::channel(show.clone());
    let (client, id) = (client.clone(), show.id.clone());
    tokio::spawn(async move {
        let mut answered = Instant::now();
        let mut warned = false;
        loop {
            let look = tokio::time::timeout(SERVER_LOOK_TIMEOUT, client.stream(&id));
            let seen = tokio::select! {
                () = tx.closed() => return,
                seen = look => seen,
            };
            match seen {
                Ok(Ok(stream)) => {
                    if warned {
                        alerts.raise(AlertKind::ServerBack, "the server answers again".into());
                    }
                    (answered, warned) = (Instant::now(), false);
                    let _ = tx.send(stream);
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {} s", SERVER_LOOK_TIMEOUT.as_secs()),
                    };
                    tracing::debug!("the server's view of the show is unavailable: {why}");
                    if !warned && answered.elapsed() >= SERVER_SILENCE_WARNING {
                        alerts.raise(
                            AlertKind::ServerSilent,
                            format!(
                                "the server has not answered for {} s ({why}); the show goes on: \
                                 the ingest and the recording do not need it",
                                answered.elapsed().as_secs()
                            ),
                        );
                        warned = true;
                    }
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
    rx
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Tells the seller, once per step, that the recording space is running out while
/// live (going live already warned under 30 minutes).
#[derive(Debug, Default)]
struct SpaceWatch {
    /// The lowest step already told.
    told: Option<u64>,
}

impl SpaceWatch {
    /// Minutes left under which the seller is told.
    const STEPS: [u64; 3] = [10, 5, 2];

    /// `minutes_left` when it has just gone under a step not told yet.
    fn crossed(&mut self, minutes_left: u64) -> Option<u64> {
        let step = Self::STEPS
            .into_iter()
            .filter(|s| minutes_left < *s)
            .min()?;
        if self.told.is_some_and(|t| t <= step) {
            return None;
        }
        self.told = Some(step);
        Some(minutes_left)
    }
}

/// Tells the seller when the recording's disk does not keep up (a drive waking up or
/// failing, a network folder): once as the show starts waiting for it, once more when
/// it has caught up, and as frames are lost to it (past what the recording holds).
#[derive(Debug, Default)]
struct DiskWatch {
    /// Told that the disk is behind, and not yet that it caught up.
    behind: bool,
    /// Lost frames when the seller was told it was behind.
    lost_then: u64,
    lost: LossWatch,
}

impl DiskWatch {
    /// Waiting this long for the disk, the seller is told…
    const BEHIND: Duration = Duration::from_secs(3);
    /// …and, once told, that it caught up when no more than this waits.
    const CAUGHT_UP: Duration = Duration::from_secs(1);

    /// What to tell the seller about the recording's disk now, if anything.
    fn look(&mut self, stats: &Stats, video: &VideoProfile, recording: &Path) -> Option<String> {
        let dir = recording.parent().unwrap_or(Path::new(".")).display();
        let waiting = stats.recording_waiting;
        if let Some(lost) = self.lost.lost(stats.recording_lost_frames, Instant::now()) {
            return Some(format!(
                "the recording's disk ({dir}) took nothing for longer than the recording can \
                 hold: {lost} frames ({:.0} s of the show) are missing from the recording; the \
                 live show goes on; record to a local disk (--record-dir) next time",
                lost as f64 / f64::from(video.fps.max(1))
            ));
        }
        if !self.behind && waiting >= Self::BEHIND && stats.recording_error.is_none() {
            self.behind = true;
            self.lost_then = stats.recording_lost_frames;
            return Some(format!(
                "the recording's disk ({dir}) is not keeping up: {:.0} s of the show wait in \
                 memory for it (up to {} s are held, nothing is lost yet); the live show goes \
                 on",
                waiting.as_secs_f64(),
                live_media::RECORDING_HOLD.as_secs()
            ));
        }
        if self.behind && waiting <= Self::CAUGHT_UP {
            self.behind = false;
            let lost = stats.recording_lost_frames - self.lost_then;
            tracing::info!(
                "the recording's disk caught up: {}",
                if lost == 0 {
                    "the recording is whole".to_owned()
                } else {
                    format!("{lost} frames are missing from the recording")
                }
            );
        }
        None
    }
}

/// Tells the seller when frames are lost (the machine cannot keep up with the profile,
/// or a connection with the show): as they are being lost, at once the first time, then
/// at most once a minute while it goes on.
#[derive(Debug, Default)]
struct LossWatch {
    /// When last told.
    told: Option<Instant>,
    /// The count of lost frames then, and at the last look.
    told_count: u64,
    seen: u64,
}

impl LossWatch {
    const EVERY: Duration = Duration::from_secs(60);

    /// Frames lost since the seller was last told, when some were lost since the last
    /// look and it is time to tell again.
    fn lost(&mut self, lost: u64, now: Instant) -> Option<u64> {
        let losing = lost > self.seen;
        self.seen = lost;
        if !losing
            || self
                .told
                .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return None;
        }
        self.told = Some(now);
        let new = lost - self.told_count;
        self.told_count = lost;
        Some(new)
    }
}

/// Notices that live-cast did not run for a while (the computer slept, froze or was
/// stopped): the wall clock went on much further between two looks than they are
/// apart. (The monotonic clock stands still while the computer sleeps.)
#[derive(Debug, Default)]
struct StopWatch {
    last: Option<std::time::SystemTime>,
}

impl StopWatch {
    /// How often it looks.
    const EVERY: Duration = Duration::from_millis(500);
    /// Stops shorter than this are not told (a busy moment).
    const TOLD_FROM: Duration = Duration::from_secs(3);

    /// How long live-cast stood still since the last look (give or take a look's
    /// time), when that is worth telling.
    fn look(&mut self, now: std::time::SystemTime) -> Option<Duration> {
        let last = self.last.replace(now)?;
        let apart = now.duration_since(last).ok()?;
        (apart > Self::EVERY + Self::TOLD_FROM).then(|| apart - Self::EVERY)
    }
}

/// What to say when the server ended the show (`view`) while it was being broadcast.
fn ended_elsewhere(view: &Stream) -> String {
    if view.end_reason == Some(live_core::EndReason::IngestLost) {
        "the server ended the show: its ingest heard nothing for longer than the reconnect \
         grace, so viewers no longer see it. live-cast ends it here (saved or discarded as \
         asked); go live again to start a new show"
            .to_owned()
    } else {
        format!(
            "the show was ended elsewhere (it is {} on the server); live-cast ends it here",
            view.status
        )
    }
}

/// `video`'s name, as `--profile` takes it.
fn profile_name(video: &VideoProfile) -> String {
    video
        .name()
        .map_or_else(|| format!("{}p{}", video.height, video.fps), str::to_owned)
}

/// What to say when output `o` dropped `dropped` frames of `video` for a connection
/// too slow for it.
fn too_slow(video: &VideoProfile, o: &OutputStats, dropped: u64) -> String {
    let help = match video.smaller() {
        Some((smaller, _)) => {
            format!(
                "go live with a smaller profile ({smaller}), or free the connection (other uploads, streams)"
            )
        }
        None => "free the connection (other uploads, streams) or use a faster one".to_owned(),
    };
    format!(
        "the connection to out{} ({}) is too slow for {}: {dropped} frames dropped there, so \
         viewers see the picture pause (never the show late); it carries {} kb/s; {help}",
        o.id,
        o.url,
        profile_name(video),
        o.bitrate_kbps
    )
}

/// What to say when the encoder skipped `skipped` frames of `video`.
fn too_busy(video: &VideoProfile, skipped: u64, fps: f64) -> String {
    let profile = profile_name(video);
    let help = match video.smaller() {
        Some((smaller, _)) => {
            format!("close other programs, or go live with a smaller profile ({smaller})")
        }
        None => "close other programs".to_owned(),
    };
    format!(
        "this computer is too busy to encode {profile}: {skipped} frames skipped, viewers see \
         {fps:.0} fps instead of {}; {help}",
        video.fps
    )
}

/// The first clause of a GStreamer error (without its source location).
fn short_error(e: &str) -> &str {
    e.split(" (").next().unwrap_or(e)
}

/// One line of stats for a terminal or a log; stream keys never appear in it.
pub fn stats_line(stats: &Stats, show: Option<&Stream>) -> String {
    let t = stats.duration.as_secs();
    let mut frames = format!(
        "{} {:.0} fps, {} dropped",
        stats.encoder, stats.encoder_fps, stats.dropped_frames
    );
    if stats.encoder_skipped > 0 {
        frames.push_str(&format!(
            ", {} skipped (CPU too busy)",
            stats.encoder_skipped
        ));
    }
    let mut line = format!(
        "{:02}:{:02}:{:02} | show {} | {frames} | ",
        t / 3600,
        t / 60 % 60,
        t % 60,
        show.map_or("?".to_owned(), |s| s.status.to_string()),
    );
    match &stats.recording_error {
        None => {
            line.push_str(&format!(
                "rec {} ({} min of disk left",
                mb(stats.recording_bytes),
                stats.recording_minutes_left
            ));
            if stats.recording_waiting >= Duration::from_secs(2) {
                line.push_str(&format!(
                    ", {:.0} s waiting for the disk",
                    stats.recording_waiting.as_secs_f64()
                ));
            }
            if stats.recording_lost_frames > 0 {
                line.push_str(&format!(
                    ", {} frames lost to the disk",
                    stats.recording_lost_frames
                ));
            }
            line.push(')');
        }
        Some(e) => line.push_str(&format!(
            "rec STOPPED at {}: {e}",
            mb(stats.recording_bytes)
        )),
    }
    if stats.mic_muted {
        line.push_str(" | mic muted");
    }
    if let Some(why) = &stats.mic_lost {
        line.push_str(&format!(" | mic LOST ({why}): silence until it is back"));
    }
    if !stats.camera_on {
        line.push_str(" | camera off");
    }
    if let Some(why) = &stats.camera_lost {
        line.push_str(&format!(" | camera LOST ({why}): black until it is back"));
    }
    if let Some(c) = show.map(|s| &s.counts) {
        line.push_str(&format!(
            " | {} watching, {} likes, {} dislikes, {} comments",
            c.viewers, c.likes, c.dislikes, c.comments
        ));
    }
    for o in &stats.outputs {
        let state = match &o.state {
            OutputState::Connecting => "connecting".to_owned(),
            // A connection slower than the show (it drops frames past 2 s).
            OutputState::Live if o.behind >= Duration::from_secs(2) => {
                format!("live ({:.1} s behind)", o.behind.as_secs_f64())
            }
            OutputState::Live => "live".to_owned(),
            // Counted down in whole seconds rounded up, as a countdown is read: "0 s"
            // only once the retry is due.
            OutputState::Reconnecting { attempt, retry_in } => format!(
                "reconnecting (attempt {attempt}, retry in {} s: {})",
                retry_in.as_millis().div_ceil(1000),
                o.last_error.as_deref().map_or("", short_error)
            ),
            OutputState::Stopped => "stopped".to_owned(),
        };
        line.push_str(&format!(
            " | out{} {} {state} {} kb/s sent {} dropped {} reconnects {}",
            o.id,
            o.url,
            o.bitrate_kbps,
            mb(o.bytes_sent),
            o.dropped_frames,
            o.reconnects
        ));
    }
    line
}

/// Where a recording's pending discard is noted.
fn discard_marker(recording: &Path) -> PathBuf {
    recording.with_extension("discard")
}

/// The recordings of a show's earlier broadcasts, oldest first: a broadcast that
/// stopped (a crash, a power cut) and whose show was taken up again left its recording
/// as `<id>.part<N>.mkv`; the current one is `<id>.mkv`.
fn parts_of(recording: &Path) -> Vec<PathBuf> {
    numbered_parts(recording)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// [`parts_of`], each with its number.
fn numbered_parts(recording: &Path) -> Vec<(u32, PathBuf)> {
    let (Some(dir), Some(id)) = (
        recording.parent(),
        recording.file_stem().and_then(|s| s.to_str()),
    ) else {
        return Vec::new();
    };
    let prefix = format!("{id}.part");
    let mut parts: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix(&prefix)?
                .strip_suffix(".mkv")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    parts.sort();
    parts
}

/// Where the parts of a show are joined: once there, it is whole and stands for them
/// all (a crash while they are put away leaves it for the next run to finish).
fn whole_of(recording: &Path) -> PathBuf {
    recording.with_extension("whole.mkv")
}

/// Puts the recording of a show's earlier broadcast aside as its next part; a
/// recording without a picture is deleted instead.
fn set_aside(recording: &Path) -> Result<(), SessionError> {
    if !recording.exists() {
        return Ok(());
    }
    if live_media::picture_size(recording).is_none() {
        let _ = std::fs::remove_file(recording);
        return Ok(());
    }
    let next = numbered_parts(recording).last().map_or(1, |(n, _)| n + 1);
    let part = recording.with_extension(format!("part{next}.mkv"));
    std::fs::rename(recording, &part).map_err(|e| {
        SessionError::Io(format!(
            "could not put the earlier recording {} aside: {e}",
            recording.display()
        ))
    })?;
    tracing::info!(part = %part.display(), "the recording of the show's earlier broadcast is kept as a part");
    Ok(())
}

/// Joins a show's parts and its current recording, in order, into `recording` (no
/// re-encode): its replay and MP4 copy are then the whole show. Whether there were
/// parts to join.
async fn join_parts(recording: &Path) -> Result<bool, SessionError> {
    let recording = recording.to_owned();
    blocking(move || {
        let whole = whole_of(&recording);
        let parts = parts_of(&recording);
        if !whole.exists() {
            if parts.is_empty() {
                return Ok(false);
            }
            let mut inputs = parts.clone();
            inputs.push(recording.clone());
            // A broadcast stopped before its first frame has nothing to give.
            inputs.retain(|p| p.exists() && live_media::picture_size(p).is_some());
            let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
            match inputs.as_slice() {
                [] => {}
                [one] if *one == recording.as_path() => {}
                [one] => std::fs::rename(one, &whole).map_err(|e| {
                    SessionError::Io(format!("could not put {} in place: {e}", one.display()))
                })?,
                _ => {
                    tracing::info!(
                        parts = inputs.len(),
                        "joining the show's recordings into one"
                    );
                    let mut told = Instant::now();
                    live_media::join(&inputs, &whole, &mut |done| {
                        if told.elapsed() >= Duration::from_secs(5) {
                            told = Instant::now();
                            tracing::info!("joining the show's recordings: {:.0} %", done * 100.0);
                        }
                    })?;
                }
            }
        }
        // Whole now: the parts go, and the whole takes the recording's place.
        for part in &parts {
            let _ = std::fs::remove_file(part);
        }
        if whole.exists() {
            std::fs::rename(&whole, &recording).map_err(|e| {
                SessionError::Io(format!(
                    "could not put {} in place: {e}",
                    recording.display()
                ))
            })?;
        }
        Ok(true)
    })
    .await?
}

/// The shows whose recordings this broadcaster made in a folder, one id a line. The
/// folder may be the seller's own (their videos): `recover` touches no file there that
/// is not one of these shows'.
const MADE_HERE: &str = ".feza-recordings";

/// Notes in `record_dir` that the recording of show `id` is made there, on disk
/// before its first byte is.
fn note_made_here(record_dir: &Path, id: &str) -> Result<(), SessionError> {
    use std::io::Write;
    if made_here(record_dir).contains(id) {
        return Ok(());
    }
    let path = record_dir.join(MADE_HERE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| SessionError::Io(format!("could not write {}: {e}", path.display())))
}

/// The shows whose recordings were made in `record_dir` (see [`MADE_HERE`]).
fn made_here(record_dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(record_dir.join(MADE_HERE))
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes a show's recording and any parts of it.
fn remove_recordings(recording: &Path) {
    for part in parts_of(recording) {
        let _ = std::fs::remove_file(part);
    }
    let _ = std::fs::remove_file(whole_of(recording));
    let _ = std::fs::remove_file(recording);
}

/// Discards the show whose discard `marker` notes, deleting its recording, once the
/// server answers. A refusal keeps the recording (it is then finished like any other
/// left-over one); an unreachable server keeps both for the next run.
async fn discard_pending(client: &ApiClient, marker: &Path) {
    let Some(id) = marker.file_stem().and_then(|s| s.to_str()) else {
        return;
    };
    let recording = marker.with_extension("mkv");
    match client.end(id, Outcome::Discard).await {
        Ok(_) => {
            remove_recordings(&recording);
            let _ = std::fs::remove_file(marker);
            tracing::info!(stream = %id, "discarded the show, as its seller asked when it ended");
        }
        // Discarded already: the last run was stopped between telling the server and
        // deleting the recording.
        Err(ClientError::Refused { .. })
            if client.stream(id).await.is_ok_and(|s| {
                s.end_reason == Some(live_core::EndReason::Discarded)
                    || s.status == StreamStatus::Cancelled
            }) =>
        {
            remove_recordings(&recording);
            let _ = std::fs::remove_file(marker);
            tracing::info!(stream = %id, "deleted the recording of a show discarded earlier");
        }
        Err(e @ ClientError::Refused { .. }) => {
            let _ = std::fs::remove_file(marker);
            tracing::warn!(stream = %id, recording = %recording.display(), "the server refused to discard the show ({e}); its recording is kept");
        }
        Err(e) => {
            tracing::warn!(stream = %id, "the show is discarded once the server answers ({e}); its recording is kept until then")
        }
    }
}

/// A recording a crash left behind, finished now.
#[derive(Clone, Debug)]
pub struct Recovered {
    pub stream_id: String,
    pub recording: PathBuf,
    pub mp4: PathBuf,
    /// What the server said to saving the show.
    pub saved: Result<Stream, String>,
    /// Whether the show was still live (the server waiting for its broadcast) until
    /// this ended it: `go-live --stream` would have taken it up again.
    pub was_live: bool,
}

/// Finds the recordings this broadcaster made in `record_dir` (no other file there is
/// touched: the folder may be the seller's own) that no broadcast holds and that were
/// never finished (a crash, a kill, a power cut), remuxes each into an MP4, and saves its
/// show on the server (a show whose ingest was lost can be saved for 7 days). Shows
/// their seller discarded while the server could not be told are discarded first. A
/// show recorded in parts (taken up again after a crash) has them joined first. The
/// show `taking_up` (to be taken up again now) is left as it is.
pub async fn recover(
    client: &ApiClient,
    record_dir: &Path,
    taking_up: Option<&str>,
) -> Vec<Recovered> {
    // Only what this broadcaster recorded: the folder may hold the seller's own files.
    let ours = made_here(record_dir);
    let read = || -> Vec<PathBuf> {
        std::fs::read_dir(record_dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    // A show's id names its recording; parts and a joined whole carry more after it.
    let show_of = |path: &Path| -> Option<String> {
        let name = path.file_name()?.to_str()?;
        let id = name.split('.').next()?;
        (name.ends_with(".mkv") && ours.contains(id) && taking_up != Some(id))
            .then(|| id.to_owned())
    };
    let paths = read();
    // Shows their seller discarded while the server could not be told: told now.
    for marker in paths.iter().filter(|p| {
        p.extension().is_some_and(|e| e == "discard")
            && p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| ours.contains(s))
    }) {
        discard_pending(client, marker).await;
    }
    // Shows recorded in parts: joined, so what follows finishes the whole show.
    let mut unjoined = std::collections::HashSet::new();
    for path in &paths {
        let Some(id) = show_of(path) else { continue };
        let recording = record_dir.join(format!("{id}.mkv"));
        if recording == *path
            || unjoined.contains(&id)
            || !path.exists()
            || live_media::is_recording(&recording)
        {
            continue;
        }
        if let Err(e) = join_parts(&recording).await {
            tracing::warn!(stream = %id, "the recordings of a show's broadcasts could not be joined ({e}); they are kept");
            unjoined.insert(id);
        }
    }
    let mut found = Vec::new();
    for path in read() {
        let Some(id) = show_of(&path) else { continue };
        let is_orphan = path == record_dir.join(format!("{id}.mkv"))
            && !unjoined.contains(&id)
            && !path.with_extension("mp4").exists()
            && !discard_marker(&path).exists()
            && !live_media::is_recording(&path);
        if !is_orphan {
            continue;
        }
        let mp4 = path.with_extension("mp4");
        let remuxed = mp4_copy(&path, &mp4).await;
        if let Ok(Err(live_media::MediaError::NoPicture(_))) = remuxed {
            // Killed before its first frame: nothing to finish, nothing to keep.
            tracing::info!(recording = %path.display(), "removed a left-over recording that holds no picture");
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Err(e) = remuxed
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(recording = %path.display(), "could not finish a left-over recording: {e}");
            let _ = std::fs::remove_file(&mp4);
            continue;
        }
        let mut was_live = false;
        let saved = match client.end(&id, Outcome::Save).await {
            Ok(r) => {
                was_live = r.stream.end_reason == Some(live_core::EndReason::SellerEnded);
                Ok(r.stream)
            }
            // Saved already: its show ended well and only the MP4 copy was left to make.
            Err(e @ ClientError::Refused { .. }) => match client.stream(&id).await {
                Ok(s) if s.status == StreamStatus::Archived => Ok(s),
                _ => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        tracing::info!(recording = %path.display(), "finished a recording left by an interrupted show");
        found.push(Recovered {
            stream_id: id,
            recording: path,
            mp4,
            saved,
            was_live,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_computer_that_stood_still_is_told_with_how_long() {
        let t0 = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut w = StopWatch::default();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let told: Vec<Option<Duration>> = [0.0, 0.5, 1.1, 4.0, 10.5, 11.0, 10.0, 10.5]
            .into_iter()
            .map(|s| w.look(at(s)))
            .collect();
        assert_eq!(
            told,
            [
                None,
                None,
                None,
                // 2.9 s between two looks: a busy moment.
                None,
                // 6.5 s between two looks half a second apart: stood still 6 s.
                Some(Duration::from_secs(6)),
                None,
                // The wall clock set back: nothing to tell.
                None,
                None,
            ]
        );
    }

    #[test]
    fn running_out_of_recording_space_is_told_once_per_step() {
        let mut w = SpaceWatch::default();
        let told: Vec<Option<u64>> = [40, 12, 9, 9, 8, 6, 4, 4, 3, 11, 1, 0]
            .into_iter()
            .map(|m| w.crossed(m))
            .collect();
        assert_eq!(
            told,
            [
                None,
                None,
                Some(9),
                None,
                None,
                None,
                Some(4),
                None,
                None,
                None,
                Some(1),
                None
            ]
        );
    }

    #[tokio::test]
    async fn a_discard_waits_for_the_server_itself_not_a_proxy_in_front_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = "01a2000000000000000000000000beef";
        let recording = dir.path().join(format!("{id}.mkv"));
        std::fs::write(&recording, b"footage").unwrap();
        std::fs::write(discard_marker(&recording), b"").unwrap();
        // The server restarting behind its proxy: the seller's discard still stands,
        // so the next run does not take the recording for an interrupted show to save.
        let proxy = crate::client::tests::answering(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 11\r\n\r\nBad Gateway",
        )
        .await;
        discard_pending(&proxy, &discard_marker(&recording)).await;
        assert!(discard_marker(&recording).exists() && recording.exists());
    }

    #[test]
    fn a_folder_notes_each_show_recorded_in_it_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(made_here(dir.path()).is_empty());
        let (a, b) = (
            "01a2000000000000000000000000beef",
            "01a2000000000000000000000000cafe",
        );
        for id in [a, b, a] {
            note_made_here(dir.path(), id).unwrap();
        }
        assert_eq!(
            made_here(dir.path()),
            HashSet::from([a.to_owned(), b.to_owned()])
        );
        let noted = std::fs::read_to_string(dir.path().join(MADE_HERE)).unwrap();
        assert_eq!(noted.lines().count(), 2, "{noted}");
        // A folder that cannot be written to says which file it could not write.
        let err = note_made_here(&dir.path().join("gone"), a).unwrap_err();
        assert!(err.to_string().contains(MADE_HERE), "{err}");
    }

    #[test]
    fn a_shows_parts_are_joined_in_the_order_they_were_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let id = "01a2000000000000000000000000beef";
        for name in [
            format!("{id}.mkv"),
            format!("{id}.part10.mkv"),
            format!("{id}.part2.mkv"),
            format!("{id}.part1.mkv"),
            format!("{id}.whole.mkv"),
            format!("{id}.part3.mkv.part"),
            "01a2000000000000000000000000cafe.part1.mkv".into(),
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let parts: Vec<String> = parts_of(&dir.path().join(format!("{id}.mkv")))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            parts,
            [1, 2, 10].map(|n| format!("{id}.part{n}.mkv")),
            "another show's part, the joined whole and unfinished files are not parts"
        );
    }

    #[test]
    fn a_recording_disk_that_falls_behind_is_told_once_until_it_caught_up() {
        let mut watch = DiskWatch::default();
        let recording = Path::new("/media/usb/show.mkv");
        let mut look = |waiting_s: f64, lost: u64| {
            let stats = Stats {
                recording_waiting: Duration::from_secs_f64(waiting_s),
                recording_lost_frames: lost,
                ..Stats::default()
            };
            watch.look(&stats, &VideoProfile::P720_30, recording)
        };
        // (seconds of the show waiting for the disk, frames lost by then)
        let said: Vec<Option<String>> =
            [(0.0, 0), (2.0, 0), (3.5, 0), (8.0, 0), (0.5, 0), (4.0, 0)]
                .into_iter()
                .map(|(waiting, lost)| look(waiting, lost))
                .collect();
        let told: Vec<bool> = said.iter().map(Option::is_some).collect();
        // A moment's wait is normal; 3.5 s is told, once; caught up, it is told again
        // the next time.
        assert_eq!(told, [false, false, true, false, false, true]);
        let first = said[2].as_deref().unwrap();
        assert!(
            first.contains("disk (/media/usb) is not keeping up: 4 s of the show wait")
                && first.contains("nothing is lost yet"),
            "{first}"
        );
        // Past what the recording holds, frames are lost: told at once, in seconds.
        let lost = look(60.0, 90).unwrap();
        assert!(
            lost.contains("90 frames (3 s of the show) are missing from the recording"),
            "{lost}"
        );
    }

    #[test]
    fn a_busy_encoder_or_slow_connection_is_told_at_once_then_once_a_minute_with_what_to_do() {
        let mut w = LossWatch::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // (seconds into the show, frames skipped by then)
        let told: Vec<Option<u64>> = [
            (0, 0),
            (2, 0),
            (5, 2),
            (9, 4),
            (66, 4),
            (67, 40),
            (90, 70),
            (128, 71),
        ]
        .into_iter()
        .map(|(t, skipped)| w.lost(skipped, at(t)))
        .collect();
        // Nothing skipped, then 2 (told at once), more within the minute (quiet), none
        // since the last look once it is over (quiet: it stopped), new ones (told: all
        // since last time), and so on.
        assert_eq!(
            told,
            [None, None, Some(2), None, None, Some(38), None, Some(31)]
        );

        let said = too_busy(&VideoProfile::P720_30, 59, 24.4);
        assert!(
            said.contains("720p30") && said.contains("59 frames skipped"),
            "{said}"
        );
        assert!(
            said.contains("24 fps instead of 30") && said.contains("(480p30)"),
            "{said}"
        );
        let said = too_busy(&VideoProfile::P360_30, 3, 28.0);
        assert!(!said.contains("smaller profile"), "{said}");

        let out = OutputStats {
            id: 0,
            url: "rtmp://ingest.example/live/***".into(),
            state: OutputState::Live,
            bytes_sent: 0,
            bitrate_kbps: 180,
            dropped_frames: 45,
            behind: Duration::from_millis(2300),
            reconnects: 0,
            last_error: None,
        };
        let said = too_slow(&VideoProfile::P720_30, &out, 45);
        assert!(
            said.contains("out0 (rtmp://ingest.example/live/***) is too slow for 720p30")
                && said.contains("45 frames dropped")
                && said.contains("180 kb/s")
                && said.contains("(480p30)"),
            "{said}"
        );
        let said = too_slow(&VideoProfile::P360_30, &out, 45);
        assert!(!said.contains("smaller profile"), "{said}");
    }

    #[test]
    fn a_reconnect_countdown_reads_as_a_countdown() {
        let said = |retry_in_ms: u64| {
            let stats = Stats {
                outputs: vec![OutputStats {
                    id: 0,
                    url: "rtmp://ingest.example/live/***".into(),
                    state: OutputState::Reconnecting {
                        attempt: 2,
                        retry_in: Duration::from_millis(retry_in_ms),
                    },
                    bytes_sent: 0,
                    bitrate_kbps: 0,
                    dropped_frames: 0,
                    behind: Duration::ZERO,
                    reconnects: 2,
                    last_error: Some("cannot connect to the ingest".into()),
                }],
                ..Stats::default()
            };
            stats_line(&stats, None)
        };
        for (ms, shown) in [(4000, 4), (3999, 4), (1200, 2), (300, 1), (0, 0)] {
            let line = said(ms);
            assert!(
                line.contains(&format!("reconnecting (attempt 2, retry in {shown} s: ")),
                "{ms} ms: {line}"
            );
        }
    }

    #[test]
    fn typed_controls_parse_and_mistakes_hide_keys() {
        assert_eq!(Control::parse(" mute "), Ok(Control::Mic { muted: true }));
        assert_eq!(
            Control::parse("camera off"),
            Ok(Control::Camera { on: false })
        );
        assert_eq!(
            Control::parse("remove out2"),
            Ok(Control::RemoveDestination(2))
        );
        let Ok(Control::AddDestination(url)) =
            Control::parse("add srt://127.0.0.1:9000?streamid=secret-5678")
        else {
            panic!("an SRT destination is accepted");
        };
        assert!(!url.to_string().contains("secret-5678"));
        let err = Control::parse("add http://x/live/secret-5678").unwrap_err();
        assert!(
            err.contains("rtmp://") && !err.contains("secret-5678"),
            "{err}"
        );
        let err = Control::parse("ad rtmp://x/live/secret-5678").unwrap_err();
        assert!(
            err.contains("unknown command") && !err.contains("secret-5678"),
            "{err}"
        );
        assert!(Control::parse("remove one").is_err());
    }
}
