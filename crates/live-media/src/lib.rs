//! Feza Live's media engine on GStreamer: capture once, encode once, fan out to ingest
//! outputs (each isolated in a pipeline of its own, reconnecting by itself) and to a
//! crash-safe local recording. Knows nothing of the HTTP API.

mod broadcast;
mod camera;
mod capture;
mod devices;
mod flv;
mod ingest_url;
mod microphone;
mod output;
mod paced;
mod profile;
mod raw_frames;
mod remux;
mod rtmp;
mod test_pattern;

pub use broadcast::{Broadcast, BroadcastConfig, Finished, Prepared, Source, Stats, is_recording};
pub use capture::{PREVIEW_FPS, PREVIEW_WIDTH, PreviewFrame, RECORDING_HOLD};
pub use devices::{DeviceInfo, DeviceKind, list_devices};
pub use ingest_url::{IngestScheme, IngestUrl};
pub use output::{OutputState, OutputStats, TlsTrust};
pub use profile::{AudioProfile, EncoderChoice, VideoProfile, hardware_h264_encoders};
pub use remux::{RecordingInfo, inspect, join, picture_size, remux, remux_to_mp4, thumbnail};

use std::sync::OnceLock;

/// What the media engine can fail with; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("the GStreamer element {element} is missing: install {package}")]
    MissingElement {
        element: &'static str,
        package: &'static str,
    },
    #[error("{0}")]
    InvalidUrl(String),
    #[error("there is no {kind} {id:?}: `live-cast devices` lists the ones present")]
    DeviceNotFound { id: String, kind: &'static str },
    #[error(
        "the camera {id} cannot be used: {reason}; check that no other program is using it, or pick another with `live-cast devices`"
    )]
    Camera { id: String, reason: String },
    #[error("the recording folder {path} is not writable: {reason}")]
    RecordDir { path: String, reason: String },
    #[error(
        "only {minutes} minutes of recording fit in {path} ({free_mb} MB free; at least {needed} are needed): free some space or record elsewhere"
    )]
    DiskSpace {
        path: String,
        minutes: u64,
        free_mb: u64,
        needed: u64,
    },
    #[error("the recording disk is full ({0}); what was recorded until then is kept")]
    DiskFull(String),
    #[error("the media pipeline failed: {0}")]
    Pipeline(String),
    #[error("the recording could not be finished: {0}")]
    Finalize(String),
    #[error("not a usable recording: {0}")]
    NotARecording(String),
    /// The recording has no picture at all: its show ended (or crashed) before the
    /// first frame was encoded. Nothing in it is worth keeping.
    #[error("{0} holds no picture: its show ended before the first frame")]
    NoPicture(String),
}

impl From<gst::glib::Error> for MediaError {
    fn from(e: gst::glib::Error) -> Self {
        Self::Pipeline(e.to_string())
    }
}

impl From<gst::glib::BoolError> for MediaError {
    fn from(e: gst::glib::BoolError) -> Self {
        Self::Pipeline(e.to_string())
    }
}

impl From<gst::StateChangeError> for MediaError {
    fn from(e: gst::StateChangeError) -> Self {
        Self::Pipeline(e.to_string())
    }
}

/// Initializes GStreamer once per process.
pub fn init() -> Result<(), MediaError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(MediaError::Init)
}

/// Makes a named element, or says which Debian package brings it.
pub(crate) fn element(factory: &'static str, name: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| MediaError::MissingElement {
            element: factory,
            package: package_of(factory),
        })
}

fn package_of(factory: &str) -> &'static str {
    match factory {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "avenc_aac" => "gstreamer1.0-libav",
        "clockoverlay" => "gstreamer1.0-x",
        "srtsink" | "mpegtsmux" | "h264parse" | "vah264enc" => "gstreamer1.0-plugins-bad",
        "matroskamux" | "matroskademux" | "mp4mux" | "qtmux" => "gstreamer1.0-plugins-good",
        "jpegenc" => "gstreamer1.0-plugins-good",
        _ => "gstreamer1.0-plugins-base",
    }
}
