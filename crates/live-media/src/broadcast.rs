//! A broadcast: the capture pipeline, its outputs and its recording, from start to a
//! finished recording on disk.

use crate::camera::Camera;
use crate::capture::{self, PreviewFrame};
use crate::ingest_url::IngestUrl;
use crate::microphone::{self, Microphone};
use crate::output::{Output, OutputStats, Router, TlsTrust};
use crate::profile::{AudioProfile, EncoderChoice, VideoProfile};
use crate::{MediaError, init};
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where the picture and sound come from: devices by id (see `list_devices`), or
/// the test source (demos, tests, a machine without a camera).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// A camera; none: the test picture (moving bars and a clock).
    pub camera: Option<String>,
    /// Instead of a camera: a file of raw I420 frames at the show's size, played over
    /// and over at its rate (what `make bench` gives every broadcaster it compares).
    pub raw_video: Option<PathBuf>,
    /// A microphone; none: a tone with the test picture, silence with a camera.
    pub microphone: Option<String>,
}

impl Source {
    /// The test picture and its tone.
    pub fn test() -> Self {
        Self::default()
    }
}

#[derive(Clone, Debug, Default)]
pub struct BroadcastConfig {
    pub source: Source,
    pub video: VideoProfile,
    pub audio: AudioProfile,
    pub encoder: EncoderChoice,
    /// Ingest outputs; the first is the marketplace's.
    pub outputs: Vec<IngestUrl>,
    pub tls: TlsTrust,
    /// The recording (Matroska, append-only while recording).
    pub recording: PathBuf,
    /// Keep a small preview of the picture (see [`Broadcast::preview`]).
    pub preview: bool,
    /// How much of the show the recording holds in memory while its disk takes
    /// nothing; none: [`capture::RECORDING_HOLD`] (a minute).
    pub recording_hold: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Media time since the start.
    pub duration: Duration,
    pub mic_muted: bool,
    /// Why the microphone is not heard (it went away mid-show and is not back yet).
    pub mic_lost: Option<String>,
    pub camera_on: bool,
    /// Why viewers see black instead of the camera (it went away mid-show and is
    /// not back yet).
    pub camera_lost: Option<String>,
    /// The H.264 encoder in use.
    pub encoder: &'static str,
    /// Frames the encoder produced per second, lately.
    pub encoder_fps: f64,
    /// Frames dropped before the encoder (a source late or too fast).
    pub dropped_frames: u64,
    /// Frames the encoder had no time for: the machine cannot keep up with the profile.
    pub encoder_skipped: u64,
    /// Minutes of recording the disk still holds at this bitrate.
    pub recording_minutes_left: u64,
    pub recording_bytes: u64,
    /// Why the recording stopped while the show goes on (a full disk), if it did.
    pub recording_error: Option<String>,
    /// How much of the show waits in memory for the recording's disk: more than a
    /// moment, and the disk is taking nothing (or less than the show makes).
    pub recording_waiting: Duration,
    /// Frames the recording lost to a disk that took nothing for longer than the
    /// recording holds (the live show went on).
    pub recording_lost_frames: u64,
    pub outputs: Vec<OutputStats>,
}

/// What a broadcast leaves behind.
#[derive(Clone, Debug)]
pub struct Finished {
    pub recording: PathBuf,
    pub duration: Duration,
    /// Set when the recording stopped before the show did (and why): it holds the show
    /// up to then.
    pub recording_error: Option<String>,
    /// Frames missing from the recording: its disk took nothing for longer than the
    /// recording holds.
    pub recording_lost_frames: u64,
    /// The recording's disk held a write as the show ended: what waited for it may
    /// still reach the recording once the disk takes it.
    pub disk_held_the_end: bool,
}

struct FpsWindow {
    at: Instant,
    frames: u64,
    fps: f64,
}

pub struct Broadcast {
    /// Held while recording: a recording nobody holds was left by a crash.
    _lock: std::fs::File,
    pipeline: gst::Pipeline,
    bytes_per_minute: u64,
    backlog_limit: u64,
    tls: TlsTrust,
    mic: gst::Element,
    microphone: Option<Microphone>,
    camera: Option<Camera>,
    camera_on: Arc<AtomicBool>,
    encoder: &'static str,
    frames_encoded: Arc<AtomicU64>,
    frames_skipped: Arc<AtomicU64>,
    fps: Mutex<FpsWindow>,
    videorate: gst::Element,
    preview: Option<Arc<Mutex<Option<PreviewFrame>>>>,
    recording_failed: Arc<Mutex<Option<String>>>,
    recording_detached: AtomicBool,
    /// Set when the recording's disk held a write as the show ended.
    recording_hung: AtomicBool,
    recording_queues: [gst::Element; 2],
    recording_lost: Arc<AtomicU64>,
    router: Arc<Router>,
    outputs: Mutex<Vec<Output>>,
    next_output: AtomicUsize,
    recording: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Elements of the recording branch are named so.
const RECORDING_PREFIX: &str = "feza-rec-";

impl Broadcast {
    /// Checks and builds a broadcast without starting it: GStreamer and every element
    /// it uses, its devices, and a writable folder (that of `config.recording`) with
    /// room for at least ten minutes of recording. Nothing is opened, written or
    /// connected yet, so this comes before a show is announced anywhere.
    pub fn prepare(config: BroadcastConfig) -> Result<Prepared, MediaError> {
        init()?;
        let dir = record_dir(&config.recording);
        std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::Builder::new().prefix(".feza-").tempfile_in(dir))
            .map_err(|e| MediaError::RecordDir {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        check_space(
            dir,
            crate::profile::bytes_per_minute(&config.video, &config.audio),
        )?;
        let capture = capture::build(&config)?;
        Ok(Prepared { capture, config })
    }

    /// Prepares and starts at once: records to `config.recording`, sends to
    /// `config.outputs`.
    pub fn start(config: BroadcastConfig) -> Result<Self, MediaError> {
        let (recording, outputs) = (config.recording.clone(), config.outputs.clone());
        Self::prepare(config)?.start(recording, outputs)
    }
}

/// A broadcast checked and built by [`Broadcast::prepare`], not started yet.
pub struct Prepared {
    capture: capture::Capture,
    config: BroadcastConfig,
}

impl Prepared {
    /// Starts the show: creates `recording` (which must not exist yet), connects to
    /// `outputs` (the first is the marketplace's) and sets everything playing.
    pub fn start(
        self,
        recording: PathBuf,
        outputs: Vec<IngestUrl>,
    ) -> Result<Broadcast, MediaError> {
        let Self { capture, config } = self;
        let bytes_per_minute = crate::profile::bytes_per_minute(&config.video, &config.audio);
        check_writable(&recording)?;
        let dir = record_dir(&recording);
        let minutes = check_space(dir, bytes_per_minute)
            .inspect_err(|_| drop(std::fs::remove_file(&recording)))?;
        if minutes < WARN_MINUTES {
            tracing::warn!(minutes, path = %dir.display(), "little recording space left");
        }
        let file_lock = std::fs::File::open(&recording)
            .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::other))
            .map_err(|e| MediaError::RecordDir {
                path: recording.display().to_string(),
                reason: format!("cannot lock the recording: {e}"),
            })
            .inspect_err(|_| drop(std::fs::remove_file(&recording)))?;
        capture
            .recording_sink
            .set_property("location", recording.to_string_lossy().as_ref());
        // A recording that fails stops taking data at once (before the error reaches
        // the tees); the rest of the show carries on.
        if let Some(bus) = capture.pipeline.bus() {
            let failed = capture.recording_failed.clone();
            let valves = capture.recording_valves.clone();
            bus.set_sync_handler(move |_, msg| {
                if let gst::MessageView::Error(err) = msg.view()
                    && msg
                        .src()
                        .is_some_and(|s| s.name().starts_with(RECORDING_PREFIX))
                {
                    let mut failed = lock(&failed);
                    if failed.is_none() {
                        let e = err.error();
                        *failed = Some(if e.matches(gst::ResourceError::NoSpaceLeft) {
                            MediaError::DiskFull(e.to_string()).to_string()
                        } else {
                            format!("the recording stopped: {e}")
                        });
                        for valve in &valves {
                            valve.set_property("drop", true);
                        }
                    }
                }
                gst::BusSyncReply::Pass
            });
        }
        // An SRT connection drops frames once ≈ 2 s of the show (at the profile's
        // bitrate) waits for it; RTMP ones measure how far behind they are instead.
        let backlog_limit =
            (u64::from(config.video.bitrate_kbps + config.audio.bitrate_kbps) * 1000 / 8 * 2)
                .max(256 * 1024);
        let router = Router::new(capture.taps.clone());
        let broadcast = Broadcast {
            _lock: file_lock,
            pipeline: capture.pipeline,
            bytes_per_minute,
            backlog_limit,
            tls: config.tls,
            mic: capture.mic,
            microphone: capture.microphone,
            camera: capture.camera,
            camera_on: capture.camera_on,
            encoder: capture.encoder,
            frames_encoded: capture.frames_encoded,
            frames_skipped: capture.frames_skipped,
            fps: Mutex::new(FpsWindow {
                at: Instant::now(),
                frames: 0,
                fps: 0.0,
            }),
            videorate: capture.videorate,
            preview: capture.preview,
            recording_failed: capture.recording_failed,
            recording_detached: AtomicBool::new(false),
            recording_hung: AtomicBool::new(false),
            recording_queues: capture.recording_queues,
            recording_lost: capture.recording_lost,
            router,
            outputs: Mutex::new(Vec::new()),
            next_output: AtomicUsize::new(0),
            recording,
        };
        for url in outputs {
            broadcast.add_output(url);
        }
        if let Err(e) = broadcast.pipeline.set_state(gst::State::Playing) {
            let cause = broadcast.poll().err().map(|e| e.to_string()).or_else(|| {
                let mic = broadcast.microphone.as_ref()?;
                Some(format!(
                    "the microphone {} failed: {}",
                    mic.id(),
                    mic.lost()?
                ))
            });
            // Nothing was recorded: the file made for it goes, so the show can try again.
            let recording = broadcast.recording.clone();
            broadcast.abort();
            let _ = std::fs::remove_file(&recording);
            return Err(MediaError::Pipeline(cause.unwrap_or_else(|| e.to_string())));
        }
        if let Some(mic) = &broadcast.microphone {
            mic.start(&broadcast.pipeline);
        }
        tracing::info!(recording = %broadcast.recording.display(), encoder = broadcast.encoder, "broadcast started");
        Ok(broadcast)
    }
}

impl Broadcast {
    /// Adds a destination while live; returns its output id.
    pub fn add_output(&self, url: IngestUrl) -> usize {
        let id = self.next_output.fetch_add(1, Ordering::Relaxed);
        tracing::info!(output = id, url = %url, "destination added");
        let output = Output::start(id, url, self.tls, self.backlog_limit, &self.router);
        lock(&self.outputs).push(output);
        id
    }

    /// Removes a destination while live (its ingest sees the stream end); false when
    /// there is no output `id`.
    pub fn remove_output(&self, id: usize) -> bool {
        let output = {
            let mut outputs = lock(&self.outputs);
            let Some(at) = outputs.iter().position(|o| o.id() == id) else {
                return false;
            };
            outputs.remove(at)
        };
        output.stop();
        tracing::info!(output = id, "destination removed");
        true
    }

    /// A fatal error of the capture side (source, encoder), if one happened. A failed
    /// recording is not one: the show goes on and [`Stats::recording_error`] says so;
    /// nor is a microphone that went away: the show goes on silent until it is back
    /// (called regularly, this looks for it).
    pub fn poll(&self) -> Result<(), MediaError> {
        let Some(bus) = self.pipeline.bus() else {
            return Ok(());
        };
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                if msg
                    .src()
                    .is_some_and(|s| s.name().starts_with(RECORDING_PREFIX))
                {
                    self.detach_failed_recording();
                    continue;
                }
                if let (Some(mic), Some(src)) = (&self.microphone, msg.src())
                    && src.name().starts_with(microphone::PREFIX)
                {
                    mic.failed(&self.pipeline, src, &err.error().to_string());
                    continue;
                }
                let text = format!("{} ({})", err.error(), err.debug().unwrap_or_default());
                return Err(MediaError::Pipeline(text));
            }
        }
        if let Some(mic) = &self.microphone {
            mic.retry(&self.pipeline);
        }
        Ok(())
    }

    /// Takes a failed recording branch out of the pipeline, so the end of the show
    /// does not wait for it. What it wrote stays on disk.
    fn detach_failed_recording(&self) {
        if lock(&self.recording_failed).is_none()
            || self.recording_detached.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let reason = lock(&self.recording_failed).clone().unwrap_or_default();
        tracing::error!(recording = %self.recording.display(), "{reason}; the show goes on");
        let names = [
            "video-valve",
            "audio-valve",
            "video-queue",
            "audio-queue",
            "mux",
            "sink",
        ];
        let elements: Vec<gst::Element> = names
            .iter()
            .filter_map(|n| self.pipeline.by_name(&format!("{RECORDING_PREFIX}{n}")))
            .collect();
        for valve in elements.iter().take(2) {
            if let Some(sink) = valve.static_pad("sink")
                && let Some(tee_pad) = sink.peer()
            {
                let _ = tee_pad.unlink(&sink);
                if let Some(tee) = tee_pad.parent_element() {
                    tee.release_request_pad(&tee_pad);
                }
            }
        }
        // Downstream first: the muxer may hold a queue's thread (waiting for the other
        // track, which the shut valve no longer feeds); stopping it releases the queue.
        for e in elements.iter().rev() {
            let _ = e.set_state(gst::State::Null);
        }
        let _ = self.pipeline.remove_many(&elements);
    }

    pub fn stats(&self) -> Stats {
        let encoder_fps = {
            let mut w = lock(&self.fps);
            let elapsed = w.at.elapsed();
            if elapsed >= Duration::from_millis(900) {
                let frames = self.frames_encoded.load(Ordering::Relaxed);
                w.fps = frames.saturating_sub(w.frames) as f64 / elapsed.as_secs_f64();
                w.at = Instant::now();
                w.frames = frames;
            }
            w.fps
        };
        Stats {
            duration: self.duration(),
            mic_muted: self.mic.property::<bool>("mute"),
            mic_lost: self.microphone.as_ref().and_then(Microphone::lost),
            camera_on: self.camera_on.load(Ordering::Relaxed),
            camera_lost: self.camera.as_ref().and_then(Camera::lost),
            encoder: self.encoder,
            encoder_fps,
            dropped_frames: self.videorate.property::<u64>("drop"),
            encoder_skipped: self.frames_skipped.load(Ordering::Relaxed),
            recording_minutes_left: minutes_left(&self.recording, self.bytes_per_minute),
            recording_bytes: std::fs::metadata(&self.recording)
                .map(|m| m.len())
                .unwrap_or(0),
            recording_error: lock(&self.recording_failed).clone(),
            recording_waiting: self.recording_waiting(),
            recording_lost_frames: self.recording_lost.load(Ordering::Relaxed),
            outputs: lock(&self.outputs).iter().map(Output::stats).collect(),
        }
    }

    /// How much of the show waits in the recording's queues for its disk.
    fn recording_waiting(&self) -> Duration {
        self.recording_queues
            .iter()
            .map(|q| Duration::from_nanos(q.property::<u64>("current-level-time")))
            .max()
            .unwrap_or_default()
    }

    /// The latest preview frame (with `preview` on), at most 10 a second.
    pub fn preview(&self) -> Option<PreviewFrame> {
        self.preview.as_ref().and_then(|p| lock(p).clone())
    }

    /// Silences the microphone (the audio track goes on, silent).
    pub fn set_mic_muted(&self, muted: bool) {
        self.mic.set_property("mute", muted);
        tracing::info!(muted, "microphone");
    }

    /// Turns the camera off (black frames) or on again.
    pub fn set_camera_on(&self, on: bool) {
        self.camera_on.store(on, Ordering::Relaxed);
        tracing::info!(on, "camera");
    }

    fn duration(&self) -> Duration {
        self.pipeline
            .current_running_time()
            .map(|t| Duration::from_nanos(t.nseconds()))
            .unwrap_or_default()
    }

    /// Ends cleanly: EOS through every branch, so the recording is complete and each
    /// ingest sees the stream end; then the outputs close. What waits in memory for a
    /// slow recording disk is written first, however long that takes while the disk
    /// takes some; a disk that takes nothing for [`DRAIN_STALL`] is given up: the
    /// recording ends with what it holds, and says what it misses.
    pub fn stop(self) -> Result<Finished, MediaError> {
        let duration = self.duration();
        // Errors not yet seen (a recording that just failed) first.
        let fatal = self.poll().err();
        if let Some(mic) = &self.microphone {
            mic.end(&self.pipeline);
        }
        self.pipeline.send_event(gst::event::Eos::new());
        let outcome = self.drain();
        if let Some(camera) = &self.camera {
            camera.close();
        }
        let finished = |recording_error| Finished {
            recording: self.recording.clone(),
            duration,
            recording_error,
            recording_lost_frames: self.recording_lost.load(Ordering::Relaxed),
            disk_held_the_end: self.recording_hung.load(Ordering::SeqCst),
        };
        let result = match (fatal, outcome) {
            (Some(e), _) => Err(e),
            (None, Drained::Eos) => Ok(finished(lock(&self.recording_failed).clone())),
            (None, Drained::Error(e)) => Err(MediaError::Finalize(e)),
            (None, Drained::DiskStalled(waiting)) => {
                let said = format!(
                    "the recording's disk took nothing for {} s as the show ended: its last \
                     {:.0} s are missing from the recording (what is on the disk is kept)",
                    DRAIN_STALL.as_secs(),
                    waiting.as_secs_f64()
                );
                tracing::error!(recording = %self.recording.display(), "{said}");
                Ok(finished(Some(said)))
            }
            (None, Drained::Timeout) => Err(MediaError::Finalize(format!(
                "the pipeline did not drain within {} s; the recording is kept as it is",
                DRAIN_STALL.as_secs()
            ))),
        };
        self.abort();
        result
    }

    /// Waits for the end of stream to come through (see [`Broadcast::stop`]).
    fn drain(&self) -> Drained {
        let Some(bus) = self.pipeline.bus() else {
            return Drained::Timeout;
        };
        let size = || std::fs::metadata(&self.recording).map_or(0, |m| m.len());
        let mut deadline = Instant::now() + DRAIN_STALL;
        let (mut written, mut told) = (size(), false);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let waiting = self.recording_waiting();
                if waiting.is_zero() {
                    return Drained::Timeout;
                }
                // Set to NULL, the pipeline would wait for the write the disk holds.
                self.recording_hung.store(true, Ordering::SeqCst);
                return Drained::DiskStalled(waiting);
            }
            let slice = left.min(Duration::from_secs(1));
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(slice.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) => return Drained::Eos,
                // A microphone failing as the show ends is cut loose: the silence
                // ends the sound.
                Some(gst::MessageView::Error(err)) => {
                    if let (Some(mic), Some(src)) =
                        (&self.microphone, msg.as_ref().and_then(|m| m.src()))
                        && src.name().starts_with(microphone::PREFIX)
                    {
                        mic.failed(&self.pipeline, src, &err.error().to_string());
                        continue;
                    }
                    return Drained::Error(err.error().to_string());
                }
                _ => {}
            }
            // The connections have had all the show: they end now, not once the
            // recording has (an ingest drops a publisher that sends nothing, and the
            // connection would be made anew).
            if self.router.ended() {
                self.stop_outputs();
            }
            // A slow disk still writing what waited for it: the end waits for it.
            let now = size();
            let waiting = self.recording_waiting();
            if now > written && !waiting.is_zero() {
                deadline = Instant::now() + DRAIN_STALL;
                if !told {
                    told = true;
                    tracing::info!(
                        "writing the show's last {:.0} s to the recording's disk, which is slow",
                        waiting.as_secs_f64()
                    );
                }
            }
            written = now;
        }
    }

    /// Ends every connection (what each holds goes out first).
    fn stop_outputs(&self) {
        for output in std::mem::take(&mut *lock(&self.outputs)) {
            output.stop();
        }
    }

    /// Stops everything now, whatever state it is in.
    fn abort(self) {
        drop(self);
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        self.stop_outputs();
        if self.recording_hung.load(Ordering::SeqCst) {
            // Stopping it would wait for a write the disk holds, for as long as it
            // holds it: it is left to end with the process.
            std::mem::forget(self.pipeline.clone());
            return;
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// How an end of stream came through the pipeline.
enum Drained {
    Eos,
    Error(String),
    /// Nothing came; this much of the show still waits for the recording's disk.
    DiskStalled(Duration),
    Timeout,
}

/// At the end of a show, a recording disk that takes nothing for this long is given
/// up (and so is a pipeline that does not drain).
pub const DRAIN_STALL: Duration = Duration::from_secs(10);

/// Refuses to start with less than 10 minutes of recording space, warns under 30.
const MIN_MINUTES: u64 = 10;
const WARN_MINUTES: u64 = 30;

/// The folder a recording is written in.
fn record_dir(recording: &std::path::Path) -> &std::path::Path {
    recording
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

fn minutes_left(recording: &std::path::Path, bytes_per_minute: u64) -> u64 {
    fs4::available_space(record_dir(recording)).map_or(0, |free| free / bytes_per_minute.max(1))
}

/// Minutes of recording `dir` holds; an error under [`MIN_MINUTES`].
fn check_space(dir: &std::path::Path, bytes_per_minute: u64) -> Result<u64, MediaError> {
    let free = fs4::available_space(dir).map_err(|e| MediaError::RecordDir {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let minutes = free / bytes_per_minute.max(1);
    if minutes < MIN_MINUTES {
        return Err(MediaError::DiskSpace {
            path: dir.display().to_string(),
            minutes,
            free_mb: free / 1_000_000,
            needed: MIN_MINUTES,
        });
    }
    Ok(minutes)
}

fn check_writable(path: &std::path::Path) -> Result<(), MediaError> {
    let dir = record_dir(path);
    let fail = |reason: String| MediaError::RecordDir {
        path: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Whether a recording is still being written by a live broadcast (of any process).
pub fn is_recording(path: &std::path::Path) -> bool {
    match std::fs::File::open(path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}
