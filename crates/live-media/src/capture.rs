//! The capture pipeline: one source, one encode, fanned out to the recording and to
//! one pair of app sinks per ingest output.
//!
//! ```text
//! videotestsrc ─► clockoverlay ─► convert/scale/rate ─► caps ─► queue ─► x264enc ─► h264parse ─► tee V
//! audiotestsrc ─► convert/resample ─► caps ─► volume (mic) ─► AAC encoder ─► aacparse ─────────► tee A
//! tee V ─► queue ─┐
//! tee A ─► queue ─┴─► matroskamux (streamable) ─► filesink              the recording
//!         (the camera-off probe blackens frames right after the caps filter)
//! tee V ─► queue (leaky) ─► appsink ┐
//! tee A ─► queue (leaky) ─► appsink ┴─► output N (a pipeline of its own)
//! ```

use crate::broadcast::Source;
use crate::devices::{DeviceKind, open};
use crate::profile::{AudioProfile, VideoProfile};
use crate::{MediaError, element};
use gst::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct Capture {
    pub pipeline: gst::Pipeline,
    /// The microphone's volume element (its `mute` property).
    pub mic: gst::Element,
    /// Cleared, the camera is off: every frame goes out black, timing untouched.
    pub camera_on: Arc<AtomicBool>,
    /// (video, audio) app sinks, one pair per output, in order.
    pub taps: Vec<(gst_app::AppSink, gst_app::AppSink)>,
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

pub(crate) fn build(
    source: &Source,
    video: &VideoProfile,
    audio: &AudioProfile,
    recording: &Path,
    outputs: usize,
) -> Result<Capture, MediaError> {
    let pipeline = gst::Pipeline::with_name("feza-capture");

    let (vsrc, clock) = match source {
        Source::Test => {
            let vsrc = element("videotestsrc", "feza-video-src")?;
            vsrc.set_property("is-live", true);
            vsrc.set_property_from_str("pattern", "smpte");
            let clock = element("clockoverlay", "feza-video-clock")?;
            clock.set_property("time-format", "%H:%M:%S");
            (vsrc, clock)
        }
        Source::Devices { camera, .. } => (
            open(camera, DeviceKind::Camera, "feza-video-src")?,
            element("identity", "feza-video-clock")?,
        ),
    };
    let vconv = element("videoconvert", "feza-video-convert")?;
    let vscale = element("videoscale", "feza-video-scale")?;
    let vrate = element("videorate", "feza-video-rate")?;
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
    let venc_queue = queue("feza-video-enc-queue")?;
    let venc = element("x264enc", "feza-video-enc")?;
    venc.set_property_from_str("tune", "zerolatency");
    venc.set_property_from_str("speed-preset", "veryfast");
    venc.set_property("bitrate", video.bitrate_kbps);
    venc.set_property("key-int-max", video.keyframe_interval());
    let vparse = element("h264parse", "feza-video-parse")?;
    // SPS/PPS before every keyframe, so a receiver joining mid-stream can decode.
    vparse.set_property("config-interval", -1i32);
    let vtee = element("tee", "feza-video-tee")?;

    let asrc = match source {
        Source::Devices {
            microphone: Some(mic),
            ..
        } => open(mic, DeviceKind::Microphone, "feza-audio-src")?,
        _ => {
            let asrc = element("audiotestsrc", "feza-audio-src")?;
            asrc.set_property("is-live", true);
            match source {
                Source::Test => asrc.set_property("volume", 0.2f64),
                _ => asrc.set_property_from_str("wave", "silence"),
            }
            asrc
        }
    };
    let aconv = element("audioconvert", "feza-audio-convert")?;
    let aresample = element("audioresample", "feza-audio-resample")?;
    let acaps = caps_filter(
        "feza-audio-caps",
        gst::Caps::builder("audio/x-raw")
            .field("rate", audio.rate)
            .field("channels", audio.channels)
            .build(),
    )?;
    let mic = element("volume", "feza-mic")?;
    let aenc = aac_encoder(audio)?;
    let aparse = element("aacparse", "feza-audio-parse")?;
    let atee = element("tee", "feza-audio-tee")?;

    let rec_vq = queue("feza-rec-video-queue")?;
    let rec_aq = queue("feza-rec-audio-queue")?;
    let rec_mux = element("matroskamux", "feza-rec-mux")?;
    // Append-only: never seeks back to rewrite a header, so the file survives a crash
    // and can be uploaded while it grows.
    rec_mux.set_property("streamable", true);
    let rec_sink = element("filesink", "feza-rec-sink")?;
    rec_sink.set_property("location", recording.to_string_lossy().as_ref());
    rec_sink.set_property("async", false);

    let video_chain = [
        &vsrc,
        &clock,
        &vconv,
        &vscale,
        &vrate,
        &vcaps,
        &venc_queue,
        &venc,
        &vparse,
        &vtee,
    ];
    let audio_chain = [
        &asrc, &aconv, &aresample, &acaps, &mic, &aenc, &aparse, &atee,
    ];
    pipeline.add_many(video_chain)?;
    pipeline.add_many(audio_chain)?;
    pipeline.add_many([&rec_vq, &rec_aq, &rec_mux, &rec_sink])?;
    gst::Element::link_many(video_chain)?;
    gst::Element::link_many(audio_chain)?;
    gst::Element::link_many([&vtee, &rec_vq, &rec_mux])?;
    gst::Element::link_many([&atee, &rec_aq, &rec_mux])?;
    rec_mux.link(&rec_sink)?;

    let camera_on = Arc::new(AtomicBool::new(true));
    blacken_when_off(&vcaps, video, camera_on.clone())?;

    let mut taps = Vec::with_capacity(outputs);
    for i in 0..outputs {
        let tap = |kind: &str, tee: &gst::Element| -> Result<gst_app::AppSink, MediaError> {
            let q = leaky_queue(&format!("feza-out{i}-{kind}-queue"))?;
            let sink = gst_app::AppSink::builder()
                .name(format!("feza-out{i}-{kind}-tap"))
                .sync(false)
                .build();
            pipeline.add_many([&q, sink.upcast_ref()])?;
            gst::Element::link_many([tee, &q, sink.upcast_ref()])?;
            Ok(sink)
        };
        taps.push((tap("video", &vtee)?, tap("audio", &atee)?));
    }
    Ok(Capture {
        pipeline,
        mic,
        camera_on,
        taps,
    })
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
    let pad = caps_filter
        .static_pad("src")
        .ok_or_else(|| MediaError::Pipeline("the video caps filter has no src pad".into()))?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
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
