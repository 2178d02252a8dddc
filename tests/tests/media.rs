//! The media engine on its own (real GStreamer, no ingest): bad input gives a clear
//! error, and a disk that fills up mid-show keeps what was recorded.

use feza_tests::SmallDisk;
use feza_tests::probe::{codecs, largest_video_gap, video_span_s};
use live_media::{AudioProfile, Broadcast, BroadcastConfig, MediaError, VideoProfile};
use std::time::{Duration, Instant};

fn config(recording: std::path::PathBuf, video: VideoProfile) -> BroadcastConfig {
    BroadcastConfig {
        source: live_media::Source::test(),
        video,
        audio: AudioProfile::default(),
        outputs: vec![],
        recording,
        ..BroadcastConfig::default()
    }
}

#[test]
fn it_refuses_to_start_without_ten_minutes_of_recording_space() {
    let dir = tempfile::tempdir().unwrap();
    let absurd = VideoProfile {
        bitrate_kbps: u32::MAX,
        ..VideoProfile::P360_30
    };
    let err = Broadcast::start(config(dir.path().join("show.mkv"), absurd))
        .err()
        .expect("refused");
    assert!(matches!(err, MediaError::DiskSpace { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("minutes of recording fit") && text.contains("free some space"),
        "{text}"
    );
    assert!(
        !dir.path().join("show.mkv").exists(),
        "no empty recording is left behind"
    );
}

#[test]
fn an_unwritable_record_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Broadcast::start(config(file.join("show.mkv"), VideoProfile::P360_30))
        .err()
        .expect("refused");
    assert!(matches!(err, MediaError::RecordDir { .. }), "{err}");
    assert!(err.to_string().contains("not writable"), "{err}");
}

#[test]
fn a_disk_that_fills_up_mid_show_is_reported_and_keeps_what_was_recorded() {
    let Some(disk) = SmallDisk::mount(80) else {
        return;
    };
    let recording = disk.path().join("show.mkv");
    let broadcast = Broadcast::start(config(recording.clone(), VideoProfile::P360_30))
        .expect("enough space to start");
    std::thread::sleep(Duration::from_secs(3));
    assert!(broadcast.stats().recording_minutes_left >= 9);
    // Something else fills the disk.
    let filler = disk.fill(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Some(e) = broadcast.stats().recording_error {
            break e;
        }
        assert!(Instant::now() < deadline, "a full disk went unreported");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        reason.contains("disk is full") && reason.contains("what was recorded until then is kept"),
        "{reason}"
    );
    // The show itself goes on: no fatal error, media time still advancing.
    broadcast
        .poll()
        .expect("a full recording disk does not stop the show");
    let before = broadcast.stats().duration;
    std::thread::sleep(Duration::from_secs(2));
    broadcast.poll().expect("still no fatal error");
    let after = broadcast.stats().duration;
    assert!(
        after >= before + Duration::from_millis(1500),
        "{before:?} → {after:?}"
    );
    let finished = broadcast.stop().expect("the show ends cleanly");
    assert!(finished.recording_error.is_some());
    // Room again, and the recording made so far plays.
    std::fs::remove_file(&filler).unwrap();
    let path = recording.to_string_lossy().into_owned();
    assert_eq!(codecs(&path), vec!["aac", "h264"]);
    let kept = video_span_s(&path);
    assert!(kept >= 2.0, "{kept:.2} s kept");
}

/// A 360p show of the test source recording to a disk that can stall (holding `hold`
/// of the show for it, none: a minute); none where that disk cannot be mounted.
fn on_a_stalling_disk(
    hold: Option<Duration>,
) -> Option<(feza_tests::StallingDisk, std::path::PathBuf, Broadcast)> {
    let disk = feza_tests::StallingDisk::mount()?;
    let recording = disk.path().join("show.mkv");
    let mut cfg = config(recording.clone(), VideoProfile::P360_30);
    cfg.recording_hold = hold;
    let broadcast = Broadcast::start(cfg).expect("starts");
    Some((disk, recording, broadcast))
}

/// A recording disk that takes nothing for longer than the recording holds (here 2 s,
/// a minute in a show): the show never waits for it, the recording loses the oldest of
/// what waited (counted), and records again once the disk takes writes.
#[test]
fn a_disk_stalled_past_what_the_recording_holds_costs_the_recording_a_gap_never_the_show() {
    let Some((disk, recording, broadcast)) = on_a_stalling_disk(Some(Duration::from_secs(2)))
    else {
        return;
    };
    std::thread::sleep(Duration::from_secs(3));
    disk.stall(true);
    let stalled = broadcast.stats().duration;
    std::thread::sleep(Duration::from_secs(6));
    let during = broadcast.stats();
    disk.stall(false);
    std::thread::sleep(Duration::from_secs(3));
    broadcast.poll().expect("no fatal error");
    let last = broadcast.stats();
    let finished = broadcast.stop().expect("the show ends cleanly");

    // The show went on: media time and the encoder kept pace with the clock.
    assert!(
        during.duration >= stalled + Duration::from_millis(5500),
        "{stalled:?} → {:?}",
        during.duration
    );
    assert_eq!(last.encoder_skipped, 0, "the encoder never waited");
    assert!(
        during.recording_waiting >= Duration::from_millis(1500),
        "{:?} waiting",
        during.recording_waiting
    );
    assert!(last.recording_waiting < Duration::from_secs(1), "caught up");
    // 6 s stalled, 2 s held: about 4 s lost (counted where they were dropped).
    let lost_s = finished.recording_lost_frames as f64 / 30.0;
    assert!((2.5..=5.5).contains(&lost_s), "{lost_s:.1} s lost");
    assert!(finished.recording_error.is_none());
    // The recording has that gap, then goes on to the end.
    let path = recording.to_string_lossy().into_owned();
    assert_eq!(codecs(&path), vec!["aac", "h264"]);
    let gap = largest_video_gap(&path);
    assert!(
        (lost_s - gap).abs() < 1.0,
        "a gap of {gap:.1} s, {lost_s:.1} s lost"
    );
    let span = video_span_s(&path);
    let show = finished.duration.as_secs_f64();
    assert!(span > show - 1.5, "{span:.1} s of {show:.1} s");
}

/// A show ended while its recording disk is slow (12 s of the show wait for it, and it
/// writes at 30 kB/s, slower than the show was made): the end waits while the disk
/// writes, longer than the 10 s a stuck end is given, and the recording is whole.
#[test]
fn a_show_ended_while_its_recording_disk_is_slow_ends_with_a_whole_recording() {
    let Some((disk, recording, broadcast)) = on_a_stalling_disk(None) else {
        return;
    };
    std::thread::sleep(Duration::from_secs(3));
    disk.stall(true);
    std::thread::sleep(Duration::from_secs(12));
    let waiting = broadcast.stats().recording_waiting;
    disk.slow(30);
    let ending = Instant::now();
    let finished = broadcast.stop().expect("the show ends cleanly");
    let took = ending.elapsed();
    assert!(waiting >= Duration::from_secs(10), "{waiting:?} waiting");
    assert!(
        finished.recording_error.is_none(),
        "{:?}",
        finished.recording_error
    );
    assert_eq!(finished.recording_lost_frames, 0);
    let path = recording.to_string_lossy().into_owned();
    let span = video_span_s(&path);
    let show = finished.duration.as_secs_f64();
    assert!(
        (span - show).abs() < 0.5,
        "{span:.1} s recorded of {show:.1} s (the end took {took:?})"
    );
    assert!(largest_video_gap(&path) < 0.1);
}

/// A show ended while its recording disk takes nothing at all: the end does not wait
/// for it past 10 s; the recording keeps what reached the disk and says what it misses.
#[test]
fn a_show_ended_while_its_recording_disk_takes_nothing_still_ends() {
    let Some((disk, recording, broadcast)) = on_a_stalling_disk(None) else {
        return;
    };
    std::thread::sleep(Duration::from_secs(4));
    disk.stall(true);
    std::thread::sleep(Duration::from_secs(3));
    let ending = Instant::now();
    let finished = broadcast.stop().expect("the show ends");
    let took = ending.elapsed();
    assert!(took < Duration::from_secs(15), "the end took {took:?}");
    let said = finished
        .recording_error
        .expect("the recording says what it misses");
    assert!(
        said.contains("took nothing for 10 s as the show ended")
            && said.contains("s are missing from the recording"),
        "{said}"
    );
    // What reached the disk plays (read once the disk is back: a stalled disk's file
    // cannot be read while its writer waits).
    disk.stall(false);
    let path = recording.to_string_lossy().into_owned();
    let kept = video_span_s(&path);
    assert!(kept >= 3.0, "{kept:.2} s kept");
}

#[test]
fn a_missing_camera_is_a_clear_error_and_listing_devices_never_hangs() {
    let started = Instant::now();
    let devices = live_media::list_devices().expect("the device monitor runs");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(devices.iter().all(|d| !d.id.is_empty()));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("show.mkv"), VideoProfile::P360_30);
    cfg.source = live_media::Source {
        camera: Some("/dev/no-such-camera".into()),
        ..Default::default()
    };
    let err = Broadcast::start(cfg).err().expect("refused");
    assert!(matches!(err, MediaError::DeviceNotFound { .. }), "{err}");
    assert!(err.to_string().contains("live-cast devices"), "{err}");
}

/// A picture from a file of raw frames (what `make bench` gives every broadcaster it
/// compares) is broadcast frame for frame, over and over past the file's end; a file
/// that is not whole frames of the show's size is refused, saying so.
#[test]
fn a_raw_frames_picture_is_shown_over_and_over_and_a_wrong_file_is_refused() {
    feza_tests::ingest::require("ffmpeg", "ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("camera.yuv");
    // One second of moving, grainy frames at 360p.
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=30,noise=alls=12:allf=t+u")
        .args(["-t", "1", "-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(&frames)
        .status()
        .expect("run ffmpeg")
        .success();
    assert!(made, "could not make the frames");
    let mut cfg = config(dir.path().join("show.mkv"), VideoProfile::P360_30);
    cfg.source = live_media::Source {
        raw_video: Some(frames.clone()),
        ..Default::default()
    };
    let broadcast = Broadcast::start(cfg).expect("a raw-frames picture starts");
    std::thread::sleep(Duration::from_millis(3500));
    let finished = broadcast.stop().expect("the show ends cleanly");
    let path = finished.recording.to_string_lossy().into_owned();
    assert_eq!(codecs(&path), vec!["aac", "h264"]);
    let span = video_span_s(&path);
    assert!(
        span >= 3.0,
        "{span:.2} s: the file's one second played over and over"
    );
    let (all, distinct) = (
        feza_tests::probe::decoded_video_frames(&path),
        feza_tests::probe::distinct_frames(&path),
    );
    assert!(
        distinct as f64 >= all as f64 * 0.9,
        "every frame a new one: {distinct} of {all}"
    );
    assert!(largest_video_gap(&path) < 0.1);

    // Not whole frames of 640×360 (345,600 bytes each).
    let torn = dir.path().join("torn.yuv");
    std::fs::write(&torn, vec![0u8; 345_600 + 10]).unwrap();
    let mut cfg = config(dir.path().join("torn.mkv"), VideoProfile::P360_30);
    cfg.source = live_media::Source {
        raw_video: Some(torn),
        ..Default::default()
    };
    let err = Broadcast::start(cfg).err().expect("refused");
    assert!(
        err.to_string()
            .contains("whole number of frames of 345600 bytes"),
        "{err}"
    );
}

/// A long show's MP4 copy takes a while (a 2-hour 720p show: ≈ 25 s): it says how
/// far it has come, and the copy is whole. The long recording is a short real one
/// played over and over (copied, not encoded again: ≈ 500 MB).
#[test]
fn a_long_recordings_mp4_copy_reports_its_progress() {
    feza_tests::ingest::require("ffmpeg", "ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.mkv");
    feza_tests::make_recording(&short, 4, 4000, true);
    let long = dir.path().join("long.mkv");
    let looped = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-stream_loop",
            "250",
            "-i",
        ])
        .arg(&short)
        .args(["-c", "copy", "-f", "matroska"])
        .arg(&long)
        .status()
        .expect("run ffmpeg")
        .success();
    assert!(looped, "could not make a long recording");
    let mp4 = dir.path().join("long.mp4");
    let mut heard = Vec::new();
    let started = Instant::now();
    live_media::remux_to_mp4(&long, &mp4, &mut |done| heard.push(done)).expect("remuxed");
    eprintln!(
        "{:.0} MB in {:.1} s: {heard:.2?}",
        std::fs::metadata(&long).unwrap().len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    assert!(
        heard.windows(2).all(|w| w[0] <= w[1]) && heard.iter().all(|d| (0.0..=1.0).contains(d)),
        "{heard:?}"
    );
    assert!(
        heard.iter().any(|d| (0.1..0.9).contains(d)),
        "progress on the way: {heard:?}"
    );
    let mp4 = mp4.to_string_lossy();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    let span = video_span_s(&mp4);
    assert!((span - 1004.0).abs() < 10.0, "{span:.1} s");
}

/// A 360p recording like one a crash cut short: its picture runs `video_s` and its
/// sound stops `sound_short_s` earlier.
fn cut_short_recording(path: &std::path::Path, video_s: f64, sound_short_s: f64) {
    let frames = (video_s * 30.0).round() as u32;
    let audio_buffers = ((video_s - sound_short_s) * 48_000.0 / 1024.0).round() as u32;
    feza_tests::make_media(path, (640, 360), frames, audio_buffers, 800, "smpte");
}

// The recordings of a show's broadcasts (one cut short by a crash, its sound ending
// 0.3 s before its picture) joined into one: the next part starts where the first
// one's media ends, picture and sound together (GStreamer's `concat` on its own starts
// each stream where that stream ended: the sound 0.3 s early, out of sync for the rest
// of the show).
#[test]
fn a_shows_recordings_join_into_one_with_picture_and_sound_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.part1.mkv"), dir.path().join("a.mkv"));
    cut_short_recording(&first, 5.0, 0.3);
    cut_short_recording(&second, 4.0, 0.0);
    let joined = dir.path().join("a.whole.mkv");
    live_media::join(&[&first, &second], &joined, &mut |_| {}).expect("joined");
    let file = joined.to_string_lossy();
    assert_eq!(codecs(&file), vec!["aac", "h264"]);
    let video = feza_tests::probe::video_pts(&file);
    let audio = feza_tests::probe::packet_pts(&file, "a:0");
    // The first part's picture ends at 5.0 s (its last frame at 4.967 s), its sound at
    // 4.69 s: what comes after those is the second part's.
    let after = |pts: &[f64], end: f64| {
        pts.iter()
            .copied()
            .filter(|&t| t > end)
            .fold(f64::MAX, f64::min)
    };
    let (picture_at, sound_at) = (after(&video, 4.97), after(&audio, 4.70));
    eprintln!(
        "the second part's picture starts at {picture_at:.3} s, its sound at {sound_at:.3} s"
    );
    assert!((picture_at - 5.0).abs() < 0.002, "{picture_at:.3}");
    assert!(
        (sound_at - picture_at).abs() < 0.005,
        "sound {sound_at:.3} s, picture {picture_at:.3} s"
    );
    assert_eq!(video.len(), 270, "every frame of both parts");
    let gap = largest_video_gap(&file);
    assert!(gap <= 0.035, "the picture jumps {gap:.3} s");
    let info = live_media::inspect(&joined).expect("a recording");
    assert!(
        (info.duration.as_secs_f64() - 9.0).abs() < 0.05,
        "{:?}",
        info.duration
    );
}
