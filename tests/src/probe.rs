//! Media checks with ffprobe (never by file size).

use crate::ingest::require;
use std::process::Command;

fn ffprobe(args: &[&str]) -> String {
    require("ffprobe", "ffmpeg");
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The codecs in a URL or file, sorted and deduplicated, e.g. ["aac", "h264"].
pub fn codecs(input: &str) -> Vec<String> {
    let mut c: Vec<String> = ffprobe(&[
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        input,
    ])
    .lines()
    .map(|l| l.trim().trim_end_matches(',').to_owned())
    .filter(|l| !l.is_empty())
    .collect();
    c.sort();
    c.dedup(); // an HLS playlist lists its streams once per program too
    c
}

/// The container's duration in seconds.
pub fn duration_s(file: &str) -> f64 {
    ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0", file])
        .trim()
        .parse()
        .expect("a duration")
}

/// Video packet timestamps (seconds), in decode order.
pub fn video_pts(file: &str) -> Vec<f64> {
    packet_pts(file, "v:0")
}

/// Packet timestamps (seconds) of one stream (`v:0`, `a:0`), in decode order.
pub fn packet_pts(file: &str, stream: &str) -> Vec<f64> {
    ffprobe(&[
        "-select_streams",
        stream,
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
        file,
    ])
    .lines()
    .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
    .collect()
}

/// Seconds of video actually present (last frame minus first): for files that were
/// never finalized and so carry no duration.
pub fn video_span_s(file: &str) -> f64 {
    span(&video_pts(file))
}

/// Seconds of audio actually present (last packet minus first).
pub fn audio_span_s(file: &str) -> f64 {
    span(&packet_pts(file, "a:0"))
}

fn span(pts: &[f64]) -> f64 {
    let max = pts.iter().copied().fold(f64::MIN, f64::max);
    let min = pts.iter().copied().fold(f64::MAX, f64::min);
    if pts.is_empty() { 0.0 } else { max - min }
}

/// The largest step between consecutive video timestamps (in presentation order).
pub fn largest_video_gap(file: &str) -> f64 {
    let mut pts = video_pts(file);
    pts.sort_by(f64::total_cmp);
    pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Video frames a decoder gets out of a file (ffprobe decodes every one): a stream
/// whose packets are all there but cannot be decoded counts 0.
pub fn decoded_video_frames(file: &str) -> u64 {
    ffprobe(&[
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
        file,
    ])
    // MPEG-TS lists its streams once per program too.
    .lines()
    .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
    .unwrap_or(0)
}

/// Whether the first video packet is a keyframe (a player can start on it); None
/// without video.
pub fn first_video_frame_is_key(file: &str) -> Option<bool> {
    let flags = ffprobe(&[
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "packet=flags",
        "-of",
        "csv=p=0",
        file,
    ]);
    flags.lines().next().map(|l| l.trim().starts_with('K'))
}

/// Timestamps (seconds) of the video's keyframes, in decode order.
pub fn keyframe_pts(file: &str) -> Vec<f64> {
    ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        "-of",
        "csv=p=0",
        file,
    ])
    .lines()
    .filter_map(|l| {
        let (pts, flags) = l.trim().split_once(',')?;
        flags.starts_with('K').then(|| pts.parse().ok()).flatten()
    })
    .collect()
}

/// The options x264 wrote into a stream (its version SEI), e.g. "threads=2"; empty
/// for another encoder.
pub fn x264_options(file: &str) -> Vec<String> {
    let bytes = std::fs::read(file).expect("read the media file");
    let Some(at) = bytes.windows(9).position(|w| w == b"options: ") else {
        return Vec::new();
    };
    let end = bytes[at..]
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes.len(), |n| at + n);
    String::from_utf8_lossy(&bytes[at + 9..end])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Runs an ffmpeg analysis filter over a file; what it logs. Panics when ffmpeg fails.
fn ffmpeg_filter_log(file: &str, args: &[&str]) -> String {
    require("ffmpeg", "ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i", file])
        .args(args)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    // A failed analysis finds no black, no silence: never an answer.
    assert!(
        out.status.success(),
        "ffmpeg could not analyse {file} ({}):\n{log}",
        out.status
    );
    log
}

fn field(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// (start, duration) of every stretch of black video of 1 s or more.
pub fn black_spans(file: &str) -> Vec<(f64, f64)> {
    ffmpeg_filter_log(file, &["-an", "-vf", "blackdetect=d=1:pix_th=0.10"])
        .lines()
        .filter_map(|l| Some((field(l, "black_start:")?, field(l, "black_duration:")?)))
        .collect()
}

/// How many of the video's frames differ from the one before (ffmpeg's mpdecimate):
/// a picture that moves each frame has as many as it has frames; one whose source
/// gave fewer frames than the show's rate, repeated, has fewer.
pub fn distinct_frames(file: &str) -> u64 {
    ffmpeg_filter_log(file, &["-an", "-vf", "mpdecimate,showinfo"])
        .lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains(" n:"))
        .count() as u64
}

/// (start, duration) of every stretch of silence (below -60 dB) of 1 s or more.
pub fn silent_spans(file: &str) -> Vec<(f64, f64)> {
    silent_spans_of(file, 1.0)
}

/// (start, duration) of every stretch of silence (below -60 dB) of `min_s` or more.
pub fn silent_spans_of(file: &str, min_s: f64) -> Vec<(f64, f64)> {
    let filter = format!("silencedetect=n=-60dB:d={min_s}");
    let log = ffmpeg_filter_log(file, &["-vn", "-af", &filter]);
    let starts: Vec<f64> = log
        .lines()
        .filter_map(|l| field(l, "silence_start:"))
        .collect();
    let durations: Vec<f64> = log
        .lines()
        .filter_map(|l| field(l, "silence_duration:"))
        .collect();
    starts.into_iter().zip(durations).collect()
}
