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
    ffprobe(&[
        "-select_streams",
        "v:0",
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

/// The largest step between consecutive video timestamps (in presentation order).
pub fn largest_video_gap(file: &str) -> f64 {
    let mut pts = video_pts(file);
    pts.sort_by(f64::total_cmp);
    pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}
