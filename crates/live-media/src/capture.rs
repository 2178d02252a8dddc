//! The capture pipeline: one source, one encode, fanned out to the recording, to the
//! taps that feed the ingest outputs, and (optionally) to a small preview.
//!
//! ```text
//! test camera (or a camera, camera.rs) ─► clockoverlay ─► convert/scale/rate ─► caps ─► raw tee ─► queue ─► H.264 encoder ─► h264parse ─► tee V
//! audiotestsrc ─► convert/resample ─► caps ─► volume (mic) ─► AAC encoder ─► aacparse ────────────────────────► tee A
//! tee V ─► valve ─► queue ─┐
//! tee A ─► valve ─► queue ─┴─► matroskamux (streamable) ─► filesink              the recording
//! tee V ─► appsink ┐
//! tee A ─► appsink ┴─► outputs (pipelines of their own, see output.rs)
//! raw tee ─► queue (leaky) ─► videorate ─► videoscale ─► ≤ 10 fps, 320 px ─► jpegenc ─► appsink   preview
//! ```
//! The camera-off probe blackens frames right after the caps filter, so the preview
//! shows what viewers see. The encoder's queue holds half a second: an encoder that
//! cannot keep up (a machine too busy for the profile) skips frames there, counted,
//! rather than holding up the camera and letting the show fall ever further behind.
//! The recording's branch starts with a valve on each tee: a recording that fails (a
//! full disk) is shut off and cut loose; the show goes on. Its queues hold up to a
//! minute of the show while the disk takes nothing (a drive waking up, a network
//! folder's hiccup), so the encoder and the live connections never wait for a disk;
//! past that they drop the oldest, counted.

use crate::broadcast::BroadcastConfig;
use crate::camera::Camera;
use crate::microphone::Microphone;
use crate::profile::{AudioProfile, EncoderChoice, VideoProfile};
use crate::test_pattern;
use crate::{MediaError, element};
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How much of the show the recording holds in memory while its disk takes nothing.
pub const RECORDING_HOLD: Duration = Duration::from_secs(60);

/// Preview frames: at most this many per second…
pub const PREVIEW_FPS: i32 = 10;
/// …and this wide.
pub const PREVIEW_WIDTH: u32 = 320;

/// The latest preview frame, as a JPEG.
#[derive(Clone, Debug)]
pub struct PreviewFrame {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Counts frames since the start: a new number is a new frame.
    pub seq: u64,
}

pub(crate) struct Capture {
    pub pipeline: gst::Pipeline,
    /// The microphone's volume element (its `mute` property).
    pub mic: gst::Element,
    /// A real microphone, which may come and go while live.
    pub microphone: Option<Microphone>,
    /// A real camera, which may come and go while live.
    pub camera: Option<Camera>,
    /// Cleared, the camera is off: every frame goes out black, timing untouched.
    pub camera_on: Arc<AtomicBool>,
    /// (video, audio) app sinks that feed the outputs.
    pub taps: (gst_app::AppSink, gst_app::AppSink),
    pub preview: Option<Arc<Mutex<Option<PreviewFrame>>>>,
    /// The H.264 encoder element in use (`x264enc`, `vah264enc`, …).
    pub encoder: &'static str,
    /// Frames out of the encoder.
    pub frames_encoded: Arc<AtomicU64>,
    /// Frames the encoder had no time for (skipped in its queue).
    pub frames_skipped: Arc<AtomicU64>,
    /// Holds the frame rate (its `drop` property counts frames it had to drop).
    pub videorate: gst::Element,
    /// Set (with why) when the recording failed.
    pub recording_failed: Arc<Mutex<Option<String>>>,
    /// Shut (`drop`) when the recording fails, so the tees never see its error.
    pub recording_valves: [gst::Element; 2],
    /// Writes the recording; its `location` is set before the start.
    pub recording_sink: gst::Element,
    /// The recording's (video, audio) queues: what waits there waits for the disk.
    pub recording_queues: [gst::Element; 2],
    /// Frames the recording lost to a disk that took nothing for longer than it holds.
    pub recording_lost: Arc<AtomicU64>,
}

fn caps_filter(name: &str, caps: gst::Caps) -> Result<gst::Element, MediaError> {
    let f = element("capsfilter", name)?;
    f.set_property("caps", caps);
    Ok(f)
}

fn queue(name: &str) -> Result<gst::Element, MediaError> {
    element("queue", name)
}

/// A queue that drops the oldest data rather than ever holding up the encoder.
fn leaky_queue(name: &str) -> Result<gst::Element, MediaError> {
    let q = queue(name)?;
    q.set_property_from_str("leaky", "downstream");
    q.set_property("max-size-time", 2_000_000_000u64);
    q.set_property("max-size-buffers", 0u32);
    q.set_property("max-size-bytes", 0u32);
    Ok(q)
}

/// A queue of the recording: it holds up to `hold` of the show while the disk takes
/// nothing, then drops the oldest (counted in `lost`, when given) rather than ever
/// holding up the encoder, and with it every live connection.
fn recording_queue(
    name: &str,
    hold: Duration,
    lost: Option<Arc<AtomicU64>>,
) -> Result<gst::Element, MediaError> {
    let q = leaky_queue(name)?;
    q.set_property(
        "max-size-time",
        u64::try_from(hold.as_nanos()).unwrap_or(u64::MAX),
    );
    if let Some(lost) = lost {
        // Emitted once for each buffer that found it full: one dropped.
        q.connect("overrun", false, move |_| {
            lost.fetch_add(1, Ordering::Relaxed);
            None
        });
    }
    Ok(q)
}

/// The queue before the video encoder: half a second of frames. Full (the encoder
/// slower than the camera), it drops the oldest frame for each new one and counts it,
/// so the camera never waits: the show stays as close to real time as the encoder
/// allows, at a lower frame rate, instead of drifting behind by the second.
fn encoder_queue(
    video: &VideoProfile,
    skipped: Arc<AtomicU64>,
) -> Result<gst::Element, MediaError> {
    let q = leaky_queue("feza-video-enc-queue")?;
    // Half a second, counted in frames: one overrun is then one frame dropped.
    q.set_property("max-size-time", 0u64);
    q.set_property("max-size-buffers", (video.fps / 2).max(2));
    // Emitted (in the camera's thread) once for each frame that found it full.
    q.connect("overrun", false, move |_| {
        skipped.fetch_add(1, Ordering::Relaxed);
        None
    });
    Ok(q)
}

fn aac_encoder(profile: &AudioProfile) -> Result<gst::Element, MediaError> {
    let bitrate = i32::try_from(profile.bitrate_kbps * 1000).unwrap_or(128_000);
    match element("avenc_aac", "feza-audio-enc") {
        Ok(enc) => {
            enc.set_property("bitrate", bitrate);
            Ok(enc)
        }
        Err(_) => {
            let enc = element("voaacenc", "feza-audio-enc")?;
            enc.set_property("bitrate", bitrate);
            Ok(enc)
        }
    }
}

/// The H.264 encoder for `choice`, set for live streaming: a hardware one when the
/// machine has one that works, x264 (zero latency, veryfast) otherwise.
fn h264_encoder(
    choice: EncoderChoice,
    video: &VideoProfile,
) -> Result<(gst::Element, &'static str), MediaError> {
    let gop = video.keyframe_interval().to_string();
    let kbps = video.bitrate_kbps.to_string();
    if choice == EncoderChoice::Auto
        && let Some(name) = crate::profile::hardware_h264_encoders().first()
        && let Ok(enc) = element(name, "feza-video-enc")
    {
        // Their property names differ; each gets the ones it has.
        for (prop, value) in [
            ("bitrate", kbps.as_str()),
            ("key-int-max", gop.as_str()),
            ("keyframe-period", gop.as_str()),
            ("gop-size", gop.as_str()),
            ("zerolatency", "true"),
        ] {
            if enc.find_property(prop).is_some() {
                enc.set_property_from_str(prop, value);
            }
        }
        return Ok((enc, name));
    }
    let enc = element("x264enc", "feza-video-enc")?;
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property_from_str("speed-preset", "veryfast");
    // Two frame threads, not zerolatency's sliced threads: the same picture (PSNR and
    // SSIM) in fewer bits, for about 18 % less CPU in x264, at one frame (33 ms) more
    // latency, nothing beside the seconds a viewer's HLS player holds. Two threads can
    // still use two cores when one is busy; more would only add latency here.
    enc.set_property("sliced-threads", false);
    enc.set_property("threads", 2u32);
    enc.set_property("bitrate", video.bitrate_kbps);
    enc.set_property("key-int-max", video.keyframe_interval());
    Ok((enc, "x264enc"))
}

pub(crate) fn build(config: &BroadcastConfig) -> Result<Capture, MediaError> {
    let BroadcastConfig {
        source,
        video,
        audio,
        encoder,
        preview,
        ..
    } = config;
    let pipeline = gst::Pipeline::with_name("feza-capture");

    let (vsrc, clock, camera) = match (&source.camera, &source.raw_video) {
        (Some(id), _) => {
            let (camera, vsrc) =
                Camera::open(id, video.width, video.height, video.fps, "feza-video-src")?;
            (vsrc, element("identity", "feza-video-clock")?, Some(camera))
        }
        (None, Some(path)) => {
            let vsrc = crate::raw_frames::source(
                "feza-video-src",
                path,
                video.width,
                video.height,
                video.fps,
            )?;
            (vsrc, element("identity", "feza-video-clock")?, None)
        }
        (None, None) => {
            let vsrc =
                test_pattern::source("feza-video-src", video.width, video.height, video.fps)?;
            let clock = element("clockoverlay", "feza-video-clock")?;
            clock.set_property("time-format", "%H:%M:%S");
            (vsrc, clock, None)
        }
    };
    let vconv = element("videoconvert", "feza-video-convert")?;
    let vscale = element("videoscale", "feza-video-scale")?;
    let vrate = element("videorate", "feza-video-rate")?;
    // A camera that sent nothing for a while (the computer froze, or slept) leaves a
    // gap: filled with copies of its last frame, it would come out as a burst of
    // seconds of frames at once, which the encoder cannot take (they are skipped, and
    // the seller told the computer is too busy). Short gaps (a camera slowing down in
    // low light) are still filled.
    vrate.set_property("max-duplication-time", gst::ClockTime::SECOND.nseconds());
    let vcaps = caps_filter(
        "feza-video-caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", i32::try_from(video.width).unwrap_or(1280))
            .field("height", i32::try_from(video.height).unwrap_or(720))
            .field(
                "framerate",
                gst::Fraction::new(i32::try_from(video.fps).unwrap_or(30), 1),
            )
            .build(),
    )?;
    let raw_tee = element("tee", "feza-video-raw-tee")?;
    let frames_skipped = Arc::new(AtomicU64::new(0));
    let venc_queue = encoder_queue(video, frames_skipped.clone())?;
    // Hardware encoders want their own formats (NV12 mostly).
    let venc_conv = element("videoconvert", "feza-video-enc-convert")?;
    let (venc, encoder) = h264_encoder(*encoder, video)?;
    let vparse = element("h264parse", "feza-video-parse")?;
    // SPS/PPS before every keyframe, so a receiver joining mid-stream can decode.
    vparse.set_property("config-interval", -1i32);
    // Streams for the outputs and the recording: AVC (length-prefixed) with its
    // codec data, whatever the encoder emits.
    let vparse_caps = caps_filter(
        "feza-video-parse-caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .build(),
    )?;
    let vtee = element("tee", "feza-video-tee")?;

    let acaps = caps_filter(
        "feza-audio-caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", audio.rate)
            .field("channels", audio.channels)
            .build(),
    )?;
    // A microphone comes with silence to fall back on (microphone.rs): added to the
    // pipeline there, its mixer is the audio chain's source.
    let (asrc, microphone) = match &source.microphone {
        Some(id) => {
            let caps = acaps.property::<gst::Caps>("caps");
            let (microphone, mixer) = Microphone::build(&pipeline, id, &caps)?;
            (mixer, Some(microphone))
        }
        None => {
            let asrc = element("audiotestsrc", "feza-audio-src")?;
            asrc.set_property("is-live", true);
            if source.camera.is_none() {
                asrc.set_property("volume", 0.2f64);
            } else {
                asrc.set_property_from_str("wave", "silence");
            }
            (asrc, None)
        }
    };
    let aconv = element("audioconvert", "feza-audio-convert")?;
    let aresample = element("audioresample", "feza-audio-resample")?;
    let mic = element("volume", "feza-mic")?;
    let aenc = aac_encoder(audio)?;
    let aparse = element("aacparse", "feza-audio-parse")?;
    let atee = element("tee", "feza-audio-tee")?;

    // Valves shut when the recording fails: what reaches them is dropped with an OK.
    let rec_vvalve = element("valve", "feza-rec-video-valve")?;
    let rec_avalve = element("valve", "feza-rec-audio-valve")?;
    let hold = config.recording_hold.unwrap_or(RECORDING_HOLD);
    let recording_lost = Arc::new(AtomicU64::new(0));
    let rec_vq = recording_queue("feza-rec-video-queue", hold, Some(recording_lost.clone()))?;
    let rec_aq = recording_queue("feza-rec-audio-queue", hold, None)?;
    let rec_mux = element("matroskamux", "feza-rec-mux")?;
    // Append-only: never seeks back to rewrite a header, so the file survives a crash
    // and can be uploaded while it grows.
    rec_mux.set_property("streamable", true);
    let rec_sink = element("filesink", "feza-rec-sink")?;
    rec_sink.set_property("async", false);
    // Each block straight to the file: a buffer of 64 KB holds seconds of a calm
    // picture, lost to a crash or a full disk.
    rec_sink.set_property_from_str("buffer-mode", "unbuffered");

    let video_chain = [
        &vsrc,
        &clock,
        &vconv,
        &vscale,
        &vrate,
        &vcaps,
        &raw_tee,
        &venc_queue,
        &venc_conv,
        &venc,
        &vparse,
        &vparse_caps,
        &vtee,
    ];
    let audio_chain = [
        &asrc, &aconv, &aresample, &acaps, &mic, &aenc, &aparse, &atee,
    ];
    pipeline.add_many(video_chain)?;
    // The microphone's mixer is in already.
    let audio_owned = if microphone.is_some() {
        &audio_chain[1..]
    } else {
        &audio_chain[..]
    };
    pipeline.add_many(audio_owned.iter().copied())?;
    pipeline.add_many([
        &rec_vvalve,
        &rec_avalve,
        &rec_vq,
        &rec_aq,
        &rec_mux,
        &rec_sink,
    ])?;
    gst::Element::link_many(video_chain)?;
    gst::Element::link_many(audio_chain)?;
    gst::Element::link_many([&vtee, &rec_vvalve, &rec_vq, &rec_mux])?;
    gst::Element::link_many([&atee, &rec_avalve, &rec_aq, &rec_mux])?;
    rec_mux.link(&rec_sink)?;

    let camera_on = Arc::new(AtomicBool::new(true));
    blacken_when_off(&vcaps, video, camera_on.clone())?;
    let frames_encoded = Arc::new(AtomicU64::new(0));
    count_buffers(&vparse, frames_encoded.clone())?;
    let recording_failed = Arc::new(Mutex::new(None));

    // No queue: the taps run in the encoders' threads and only hand each buffer to
    // the outputs' own sources, which never block (output.rs); a thread per tap
    // cost a wake-up per buffer.
    let tap = |kind: &str, tee: &gst::Element| -> Result<gst_app::AppSink, MediaError> {
        let sink = gst_app::AppSink::builder()
            .name(format!("feza-out-{kind}-tap"))
            .sync(false)
            .async_(false)
            .build();
        pipeline.add(&sink)?;
        tee.link(&sink)?;
        Ok(sink)
    };
    let taps = (tap("video", &vtee)?, tap("audio", &atee)?);
    let preview = if *preview {
        Some(preview_branch(&pipeline, &raw_tee, video)?)
    } else {
        None
    };
    Ok(Capture {
        pipeline,
        mic,
        microphone,
        camera,
        camera_on,
        taps,
        preview,
        encoder,
        frames_encoded,
        frames_skipped,
        videorate: vrate,
        recording_failed,
        recording_valves: [rec_vvalve, rec_avalve],
        recording_sink: rec_sink,
        recording_queues: [rec_vq, rec_aq],
        recording_lost,
    })
}

/// A small JPEG of the picture, at most 10 times a second, kept as the latest frame.
fn preview_branch(
    pipeline: &gst::Pipeline,
    raw_tee: &gst::Element,
    video: &VideoProfile,
) -> Result<Arc<Mutex<Option<PreviewFrame>>>, MediaError> {
    let width = PREVIEW_WIDTH;
    // Same shape as the show, an even height.
    let height = (u64::from(width) * u64::from(video.height) / u64::from(video.width.max(1))).max(2)
        as u32
        & !1;
    let q = leaky_queue("feza-preview-queue")?;
    let rate = element("videorate", "feza-preview-rate")?;
    rate.set_property("drop-only", true);
    let scale = element("videoscale", "feza-preview-scale")?;
    let caps = caps_filter(
        "feza-preview-caps",
        gst::Caps::builder("video/x-raw")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .field("framerate", gst::Fraction::new(PREVIEW_FPS, 1))
            .build(),
    )?;
    let jpeg = element("jpegenc", "feza-preview-jpeg")?;
    jpeg.set_property("quality", 70i32);
    let sink = gst_app::AppSink::builder()
        .name("feza-preview-tap")
        .sync(false)
        .max_buffers(1)
        .drop(true)
        .build();
    pipeline.add_many([&q, &rate, &scale, &caps, &jpeg, sink.upcast_ref()])?;
    gst::Element::link_many([raw_tee, &q, &rate, &scale, &caps, &jpeg, sink.upcast_ref()])?;
    let latest = Arc::new(Mutex::new(None::<PreviewFrame>));
    let slot = latest.clone();
    let mut seq = 0u64;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    seq += 1;
                    let frame = PreviewFrame {
                        jpeg: map.as_slice().to_vec(),
                        width,
                        height,
                        seq,
                    };
                    *slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(frame);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(latest)
}

fn src_pad(element: &gst::Element) -> Result<gst::Pad, MediaError> {
    element
        .static_pad("src")
        .ok_or_else(|| MediaError::Pipeline(format!("{} has no src pad", element.name())))
}

/// Counts the buffers leaving `element` (for the encoder's frame rate).
fn count_buffers(element: &gst::Element, count: Arc<AtomicU64>) -> Result<(), MediaError> {
    src_pad(element)?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        count.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// While the camera is off, overwrites each raw I420 frame with black: the encoder,
/// the recording and every connection go on exactly as before.
fn blacken_when_off(
    caps_filter: &gst::Element,
    video: &VideoProfile,
    camera_on: Arc<AtomicBool>,
) -> Result<(), MediaError> {
    let info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, video.width, video.height)
            .build()
            .map_err(|e| MediaError::Pipeline(e.to_string()))?;
    // Luma 16 then chroma 128 is black in limited-range YUV.
    let chroma_start = info.offset()[1];
    src_pad(caps_filter)?.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
        if camera_on.load(Ordering::Relaxed) {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(gst::PadProbeData::Buffer(buffer)) = probe.data.as_mut()
            && let Ok(mut map) = buffer.make_mut().map_writable()
        {
            let data = map.as_mut_slice();
            let split = chroma_start.min(data.len());
            data[..split].fill(16);
            data[split..].fill(128);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}
