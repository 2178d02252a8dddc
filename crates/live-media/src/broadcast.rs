//! A broadcast: the capture pipeline, its outputs and its recording, from start to a
//! finished recording on disk.

use crate::capture;
use crate::ingest_url::IngestUrl;
use crate::output::{Output, OutputStats};
use crate::profile::{AudioProfile, VideoProfile};
use crate::{MediaError, init};
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where the picture and sound come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// A moving test pattern with a clock, and a tone: demos, tests, no camera.
    #[default]
    Test,
    /// Devices by id (see `list_devices`); no microphone means a silent track.
    Devices {
        camera: String,
        microphone: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct BroadcastConfig {
    pub source: Source,
    pub video: VideoProfile,
    pub audio: AudioProfile,
    /// Ingest outputs; the first is the marketplace's.
    pub outputs: Vec<IngestUrl>,
    /// The recording (Matroska, append-only while recording).
    pub recording: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Stats {
    /// Media time since the start.
    pub duration: Duration,
    pub mic_muted: bool,
    pub camera_on: bool,
    /// Minutes of recording the disk still holds at this bitrate.
    pub recording_minutes_left: u64,
    pub recording_bytes: u64,
    pub outputs: Vec<OutputStats>,
}

/// What a broadcast leaves behind.
#[derive(Clone, Debug)]
pub struct Finished {
    pub recording: PathBuf,
    pub duration: Duration,
}

pub struct Broadcast {
    /// Held while recording: a recording nobody holds was left by a crash.
    _lock: std::fs::File,
    pipeline: gst::Pipeline,
    bytes_per_minute: u64,
    mic: gst::Element,
    camera_on: Arc<AtomicBool>,
    outputs: Vec<Output>,
    recording: PathBuf,
}

impl Broadcast {
    pub fn start(config: BroadcastConfig) -> Result<Self, MediaError> {
        init()?;
        let bytes_per_minute = crate::profile::bytes_per_minute(&config.video, &config.audio);
        check_writable(&config.recording)?;
        check_space(&config.recording, bytes_per_minute)?;
        let lock = std::fs::File::open(&config.recording)
            .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::other))
            .map_err(|e| MediaError::RecordDir {
                path: config.recording.display().to_string(),
                reason: format!("cannot lock the recording: {e}"),
            })?;
        let capture = capture::build(
            &config.source,
            &config.video,
            &config.audio,
            &config.recording,
            config.outputs.len(),
        )?;
        let outputs = config
            .outputs
            .into_iter()
            .zip(&capture.taps)
            .enumerate()
            .map(|(i, (url, taps))| Output::start(i, url, taps))
            .collect();
        let broadcast = Self {
            _lock: lock,
            pipeline: capture.pipeline,
            bytes_per_minute,
            mic: capture.mic,
            camera_on: capture.camera_on,
            outputs,
            recording: config.recording,
        };
        if let Err(e) = broadcast.pipeline.set_state(gst::State::Playing) {
            let cause = broadcast.poll().err().map(|e| e.to_string());
            broadcast.abort();
            return Err(MediaError::Pipeline(cause.unwrap_or_else(|| e.to_string())));
        }
        tracing::info!(recording = %broadcast.recording.display(), "broadcast started");
        Ok(broadcast)
    }

    /// A fatal error of the capture side (source, encoder, recording), if one happened.
    pub fn poll(&self) -> Result<(), MediaError> {
        let Some(bus) = self.pipeline.bus() else {
            return Ok(());
        };
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                let text = format!("{} ({})", err.error(), err.debug().unwrap_or_default());
                if err.error().matches(gst::ResourceError::NoSpaceLeft) {
                    return Err(MediaError::DiskFull(text));
                }
                return Err(MediaError::Pipeline(text));
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        Stats {
            duration: self.duration(),
            mic_muted: self.mic.property::<bool>("mute"),
            camera_on: self.camera_on.load(Ordering::Relaxed),
            recording_minutes_left: minutes_left(&self.recording, self.bytes_per_minute),
            recording_bytes: std::fs::metadata(&self.recording)
                .map(|m| m.len())
                .unwrap_or(0),
            outputs: self.outputs.iter().map(Output::stats).collect(),
        }
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
    /// ingest sees the stream end; then the outputs close.
    pub fn stop(self) -> Result<Finished, MediaError> {
        let duration = self.duration();
        self.pipeline.send_event(gst::event::Eos::new());
        let outcome = self.pipeline.bus().and_then(|bus| {
            bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
        });
        let result = match outcome.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(Finished {
                recording: self.recording.clone(),
                duration,
            }),
            Some(gst::MessageView::Error(err)) => {
                Err(MediaError::Finalize(err.error().to_string()))
            }
            _ => Err(MediaError::Finalize(
                "the pipeline did not drain within 10 s; the recording is kept as it is".into(),
            )),
        };
        self.abort();
        result
    }

    fn abort(self) {
        for output in self.outputs {
            output.stop();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Refuses to start with less than 10 minutes of recording space, warns under 30.
const MIN_MINUTES: u64 = 10;
const WARN_MINUTES: u64 = 30;

fn minutes_left(recording: &std::path::Path, bytes_per_minute: u64) -> u64 {
    let dir = recording.parent().unwrap_or(std::path::Path::new("."));
    fs4::available_space(dir).map_or(0, |free| free / bytes_per_minute.max(1))
}

fn check_space(recording: &std::path::Path, bytes_per_minute: u64) -> Result<(), MediaError> {
    let dir = recording.parent().unwrap_or(std::path::Path::new("."));
    let free = fs4::available_space(dir).map_err(|e| MediaError::RecordDir {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let minutes = free / bytes_per_minute.max(1);
    if minutes < MIN_MINUTES {
        let _ = std::fs::remove_file(recording);
        return Err(MediaError::DiskSpace {
            path: dir.display().to_string(),
            minutes,
            free_mb: free / 1_000_000,
            needed: MIN_MINUTES,
        });
    }
    if minutes < WARN_MINUTES {
        tracing::warn!(minutes, path = %dir.display(), "little recording space left");
    }
    Ok(())
}

fn check_writable(path: &std::path::Path) -> Result<(), MediaError> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
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
