//! Finished recordings: what one holds (GStreamer's discoverer), a web-playable MP4
//! remuxed from it (no re-encode, `moov` at the front), and a thumbnail.

use crate::{MediaError, init};
use gst::prelude::*;
use gst_pbutils::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a recording holds.
#[derive(Clone, Debug)]
pub struct RecordingInfo {
    pub duration: Duration,
    /// `matroska` or `mp4`.
    pub container: &'static str,
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
}

/// Checks that `path` is a recording Feza Live can publish: Matroska or MP4 holding
/// H.264 video (and optionally AAC audio). The error says what is wrong with it.
pub fn inspect(path: &Path) -> Result<RecordingInfo, MediaError> {
    let bad = |why: String| MediaError::NotARecording(why);
    let info = discover(path)?;
    let container_caps = info
        .stream_info()
        .and_then(|s| s.caps())
        .map(|c| c.to_string())
        .unwrap_or_default();
    let container = if container_caps.starts_with("video/x-matroska") {
        "matroska"
    } else if container_caps.starts_with("video/quicktime") {
        "mp4"
    } else {
        return Err(bad(format!(
            "it is not a Matroska or MP4 recording (found {})",
            container_caps.split(',').next().unwrap_or("nothing known")
        )));
    };
    let video = info
        .video_streams()
        .into_iter()
        .next()
        .ok_or_else(|| bad("it has no video".into()))?;
    let codec = video.caps().map(|c| c.to_string()).unwrap_or_default();
    if !codec.starts_with("video/x-h264") {
        return Err(bad(format!(
            "its video is not H.264 (found {})",
            codec.split(',').next().unwrap_or("unknown")
        )));
    }
    let duration = info
        .duration()
        .map(|d| Duration::from_nanos(d.nseconds()))
        .unwrap_or_default();
    if duration.is_zero() {
        return Err(bad("it holds no playable time".into()));
    }
    Ok(RecordingInfo {
        duration,
        container,
        width: video.width(),
        height: video.height(),
        has_audio: !info.audio_streams().is_empty(),
    })
}

/// What GStreamer's discoverer finds in `path`.
fn discover(path: &Path) -> Result<gst_pbutils::DiscovererInfo, MediaError> {
    init()?;
    let bad = |why: String| MediaError::NotARecording(why);
    // A URI needs an absolute path (`--record-dir` may be relative).
    let uri = std::path::absolute(path)
        .map_err(|e| e.to_string())
        .and_then(|p| gst::glib::filename_to_uri(p, None).map_err(|e| e.to_string()))
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(30))
        .map_err(|e| MediaError::Pipeline(e.to_string()))?;
    discoverer
        .discover_uri(&uri)
        .map_err(|e| bad(format!("it is not a media file GStreamer can read ({e})")))
}

fn quote(p: &Path) -> String {
    format!("\"{}\"", p.display().to_string().replace('"', "\\\""))
}

/// How long a pipeline may write nothing before it is given up on (a stalled disk).
const STALL: Duration = Duration::from_secs(120);

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs a `gst-launch`-style pipeline to its end. `written` says how many bytes it
/// has written so far (asked every second): it is given up on when that stands still
/// for two minutes, however long the whole takes (a long show on a slow disk).
fn run(
    description: &str,
    what: &str,
    input: &Path,
    written: &mut dyn FnMut() -> u64,
) -> Result<(), MediaError> {
    run_pipeline(&parse(description)?, what, input, written)
}

fn parse(description: &str) -> Result<gst::Pipeline, MediaError> {
    gst::parse::launch(description)
        .map_err(|e| MediaError::Finalize(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Finalize("not a pipeline".into()))
}

/// [`run`] for a pipeline made already.
fn run_pipeline(
    pipeline: &gst::Pipeline,
    what: &str,
    input: &Path,
    written: &mut dyn FnMut() -> u64,
) -> Result<(), MediaError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| MediaError::Finalize("a pipeline without a bus".into()))?;
    pipeline.set_state(gst::State::Playing)?;
    let mut moved = (written(), Instant::now());
    let msg = loop {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(1),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            break Some(msg);
        }
        let now = written();
        if now != moved.0 {
            moved = (now, Instant::now());
        } else if moved.1.elapsed() >= STALL {
            break None;
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(err)) => Err(MediaError::Finalize(format!(
            "{what} {} failed: {}",
            input.display(),
            err.error()
        ))),
        _ => Err(MediaError::Finalize(format!(
            "{what} {} stopped: nothing was written for {} s",
            input.display(),
            STALL.as_secs()
        ))),
    }
}

/// A Matroska recording remuxed into an MP4 a browser plays and seeks. The MP4
/// appears whole or not at all (written beside it, then renamed): a crash or a full
/// disk never leaves a broken copy that passes for a finished one.
///
/// A recording without a picture (a show ended or killed before its first frame) is
/// [`MediaError::NoPicture`]: there is nothing to copy, and a remux would wait forever
/// for its video.
///
/// `on_progress` hears how far it has come (0 to 1), every second: a long show's copy
/// takes a while (a 2-hour 720p show, 2.4 GB: ≈ 25 s).
pub fn remux_to_mp4(
    input: &Path,
    output: &Path,
    on_progress: &mut dyn FnMut(f64),
) -> Result<(), MediaError> {
    let info = match discover(input) {
        Ok(info) => info,
        // Headers and nothing else: the show stopped (or was killed) before its first
        // frame reached the recording.
        Err(_) if !holds_media(input) => {
            return Err(MediaError::NoPicture(input.display().to_string()));
        }
        Err(e) => return Err(e),
    };
    if info.video_streams().is_empty() {
        return Err(MediaError::NoPicture(input.display().to_string()));
    }
    let has_audio = !info.audio_streams().is_empty();
    let partial = output.with_extension("mp4.part");
    remux_reporting(input, "matroska", has_audio, &partial, on_progress)?;
    std::fs::rename(&partial, output).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        MediaError::Finalize(format!("could not put {} in place: {e}", output.display()))
    })
}

/// Whether a Matroska file has a cluster, the element that holds its media. Only a
/// small file is read: a large one holds media, whatever else is wrong with it.
fn holds_media(path: &Path) -> bool {
    const CLUSTER: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];
    if size_of(path) > 64 * 1024 {
        return true;
    }
    std::fs::read(path).map_or(true, |bytes| bytes.windows(4).any(|w| w == CLUSTER))
}

/// A recording (`container` as [`RecordingInfo::container`]) remuxed into a
/// web-playable MP4.
pub fn remux(
    input: &Path,
    container: &str,
    has_audio: bool,
    output: &Path,
) -> Result<(), MediaError> {
    remux_reporting(input, container, has_audio, output, &mut |_| {})
}

/// [`remux`], telling `on_progress` how far it has come (0 to 1) every second.
fn remux_reporting(
    input: &Path,
    container: &str,
    has_audio: bool,
    output: &Path,
    on_progress: &mut dyn FnMut(f64),
) -> Result<(), MediaError> {
    init()?;
    let demux = if container == "mp4" {
        "qtdemux"
    } else {
        "matroskademux"
    };
    // The muxer takes each stream's next piece in time order, so it waits for both;
    // the demuxer hands them out in the file's order. Where the file has one stream
    // alone for a while (the picture stopped while the sound went on: the computer
    // froze, or slept, mid-show), that stream's queue has to hold it all until the
    // other's next piece comes: a queue of a second (the default) fills, the demuxer
    // waits on it, and the copy never ends. Limited by size only: 256 MiB is 4.5 hours
    // of 128 kb/s sound, or 14 minutes of 2.5 Mb/s picture.
    let queue = "queue max-size-buffers=0 max-size-time=0 max-size-bytes=268435456";
    let audio = if has_audio {
        format!("demux.audio_0 ! {queue} ! aacparse ! mux.")
    } else {
        String::new()
    };
    // The moov goes in front because mp4mux holds the media in a file of its own until
    // the end: beside the output, on the disk chosen (and checked) for it. By default
    // it is in /tmp, often a small tmpfs in memory: a long show's copy failed there
    // (or waited forever with no /tmp to write), whatever room the recordings had.
    let spill = faststart_file(output);
    let description = format!(
        "filesrc location={} ! {demux} name=demux \
         mp4mux name=mux faststart=true faststart-file={} ! filesink location={} \
         demux.video_0 ! {queue} ! h264parse ! mux. {audio}",
        quote(input),
        quote(&spill),
        quote(output)
    );
    // The media goes into the spill file, then (after the index) into the output:
    // about twice the input's size is written in all. The spill file is removed once
    // copied: what it held still counts as written, so the figure never goes back.
    let total = (2 * size_of(input)).max(1);
    let mut spilled = 0;
    let mut written = || {
        spilled = spilled.max(size_of(&spill));
        let done = spilled + size_of(output);
        on_progress((done as f64 / total as f64).min(1.0));
        done
    };
    // A copy that could not be finished (a full disk) is not left looking like one.
    run(&description, "remuxing", input, &mut written).inspect_err(|_| {
        let _ = std::fs::remove_file(output);
        let _ = std::fs::remove_file(&spill);
    })
}

/// The picture size of a recording (finished or not), if it has a picture.
pub fn picture_size(path: &Path) -> Option<(u32, u32)> {
    let info = discover(path).ok()?;
    let video = info.video_streams().into_iter().next()?;
    Some((video.width(), video.height()))
}

/// The Matroska recordings of one show, made in turn (a broadcast that crashed and the
/// one that took the show up again), joined into one Matroska file in that order, with
/// no re-encode: each part's media follows the last one's end, so the time between them
/// (while no broadcast ran) is not in it. The parts must hold the same kinds of streams
/// in the same sizes. `output` appears whole or not at all, indexed and seekable.
///
/// `on_progress` hears how far it has come (0 to 1) every second.
pub fn join(
    parts: &[&Path],
    output: &Path,
    on_progress: &mut dyn FnMut(f64),
) -> Result<(), MediaError> {
    init()?;
    let first = parts
        .first()
        .ok_or_else(|| MediaError::Finalize("no recordings to join".into()))?;
    let mut has_audio = None;
    for part in parts {
        let info = discover(part)?;
        if info.video_streams().is_empty() {
            return Err(MediaError::NoPicture(part.display().to_string()));
        }
        let audio = !info.audio_streams().is_empty();
        if *has_audio.get_or_insert(audio) != audio {
            return Err(MediaError::Finalize(format!(
                "{} and {} cannot be joined: one has sound, the other has none",
                first.display(),
                part.display()
            )));
        }
    }
    let has_audio = has_audio.unwrap_or(false);
    // Each part follows the last one's end, the same for picture and sound: where a
    // part's picture and sound end apart (a broadcast killed mid-write), the shorter
    // one has that moment missing, and they stay in sync.
    let mut offsets = Vec::with_capacity(parts.len());
    let mut at = 0u64;
    for part in parts {
        offsets.push(at);
        at += media_end(part, has_audio)?;
    }
    // `concat` plays its inputs in the order their pads were asked for: the order in
    // which the description links the queues in front of it (each link to a `concat`
    // is made as the description is read; only the demuxers' pads come later). Its
    // own shift (each stream after its own end) is replaced by the parts' offsets.
    let queue = "queue max-size-buffers=0 max-size-time=0 max-size-bytes=268435456";
    let mut description = String::from("concat name=video adjust-base=false ! h264parse ! mux. ");
    if has_audio {
        description += "concat name=audio adjust-base=false ! aacparse ! mux. ";
    }
    let partial = output.with_extension("mkv.part");
    description += &format!(
        "matroskamux name=mux ! filesink location={} ",
        quote(&partial)
    );
    for (i, part) in parts.iter().enumerate() {
        description += &format!(
            "filesrc location={} ! matroskademux name=d{i} d{i}.video_0 ! {queue} ! video. ",
            quote(part)
        );
        if has_audio {
            description += &format!("d{i}.audio_0 ! {queue} ! audio. ");
        }
    }
    let total = parts.iter().map(|p| size_of(p)).sum::<u64>().max(1);
    let mut written = || {
        let done = size_of(&partial);
        on_progress((done as f64 / total as f64).min(1.0));
        done
    };
    let pipeline = parse(&description)?;
    for name in ["video", "audio"]
        .iter()
        .take(if has_audio { 2 } else { 1 })
    {
        let concat = pipeline
            .by_name(name)
            .ok_or_else(|| MediaError::Finalize(format!("no {name} concat")))?;
        for (i, offset) in offsets.iter().enumerate() {
            let pad = concat
                .static_pad(&format!("sink_{i}"))
                .ok_or_else(|| MediaError::Finalize(format!("no {name} input {i}")))?;
            pad.set_offset(i64::try_from(*offset).unwrap_or(i64::MAX));
        }
    }
    run_pipeline(&pipeline, "joining", first, &mut written)
        .and_then(|()| {
            std::fs::rename(&partial, output).map_err(|e| {
                MediaError::Finalize(format!("could not put {} in place: {e}", output.display()))
            })
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
}

/// Where a recording's media ends (nanoseconds): the latest end of its picture and,
/// with `has_audio`, its sound. Read through (demuxed only) to its last piece, as a
/// recording a crash cut short says no duration of its own. (The sinks do not wait to
/// preroll: the demuxer feeds both from one thread.)
fn media_end(path: &Path, has_audio: bool) -> Result<u64, MediaError> {
    let mut description = format!(
        "filesrc location={} ! matroskademux name=d d.video_0 ! fakesink name=video sync=false async=false ",
        quote(path)
    );
    if has_audio {
        description += "d.audio_0 ! fakesink name=audio sync=false async=false";
    }
    let pipeline = parse(&description)?;
    let end = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for sink in ["video", "audio"]
        .iter()
        .take(if has_audio { 2 } else { 1 })
    {
        let pad = pipeline
            .by_name(sink)
            .and_then(|s| s.static_pad("sink"))
            .ok_or_else(|| MediaError::Finalize(format!("no {sink} sink")))?;
        let end = end.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer()
                && let Some(pts) = buffer.pts()
            {
                // In running time, as the muxer places it.
                let segment = pad
                    .sticky_event::<gst::event::Segment>(0)
                    .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok());
                let start = segment.and_then(|s| s.to_running_time(pts)).unwrap_or(pts);
                let stop = start + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                end.fetch_max(stop.nseconds(), std::sync::atomic::Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let seen = end.clone();
    run_pipeline(&pipeline, "reading", path, &mut || {
        seen.load(std::sync::atomic::Ordering::Relaxed)
    })?;
    Ok(end.load(std::sync::atomic::Ordering::Relaxed))
}

/// Where mp4mux holds the media of `output` until it can write the moov in front
/// (it deletes it when done): a hidden file beside it.
fn faststart_file(output: &Path) -> std::path::PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.faststart"))
}

/// A JPEG of the MP4's first picture, 640 pixels wide.
pub fn thumbnail(mp4: &Path, jpeg: &Path) -> Result<(), MediaError> {
    init()?;
    let description = format!(
        "filesrc location={} ! qtdemux name=demux demux.video_0 ! queue ! h264parse ! avdec_h264 \
         ! videoconvert ! videoscale ! video/x-raw,width=640,pixel-aspect-ratio=1/1 \
         ! jpegenc snapshot=true ! filesink location={}",
        quote(mp4),
        quote(jpeg)
    );
    run(&description, "making a thumbnail of", mp4, &mut || {
        size_of(jpeg)
    })
}
