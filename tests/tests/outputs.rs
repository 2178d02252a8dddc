//! Every output scheme against a local receiver: SRT into an SRT listener; an RTMPS
//! ingest's certificate checked through a TLS front; destinations added and removed
//! while live; what an RTMP receiver learns from the stream's header.

use feza_tests::ingest::{free_port, is_listening, require};
use feza_tests::probe::{audio_span_s, codecs, video_span_s};
use live_media::{AudioProfile, Broadcast, BroadcastConfig, IngestUrl, OutputState, VideoProfile};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, outputs: Vec<IngestUrl>) -> BroadcastConfig {
    BroadcastConfig {
        source: live_media::Source::test(),
        video: VideoProfile::P360_30,
        audio: AudioProfile::default(),
        outputs,
        recording: dir.join("show.mkv"),
        ..BroadcastConfig::default()
    }
}

/// Waits until output `i` is live, or fails with its last error.
fn wait_live(b: &Broadcast, i: usize) {
    wait_output(b, i, "went live", |o| o.state == OutputState::Live);
}

/// srt-live-transmit listening on `port`, saving what it gets to `file`.
fn srt_listener(port: u16, file: &std::path::Path) -> std::process::Child {
    let child = Command::new("srt-live-transmit")
        .args(["-q", &format!("srt://:{port}?mode=listener"), "file://con"])
        .stdout(std::fs::File::create(file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start srt-live-transmit");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Waits until `ok` holds for output `i`'s stats, or fails showing them.
fn wait_output(b: &Broadcast, i: usize, what: &str, ok: impl Fn(&live_media::OutputStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = b.stats();
        if ok(&s.outputs[i]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "output {i} never {what}: {:?}",
            s.outputs[i]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn srt_output_streams_into_an_srt_listener_and_comes_back_after_it_dies() {
    require("srt-live-transmit", "srt-tools");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let received = dir.path().join("received.ts");
    let mut listener = srt_listener(port, &received);
    let url =
        IngestUrl::parse(&format!("srt://127.0.0.1:{port}?streamid=show-secret-1234")).unwrap();
    let b = Broadcast::start(config(dir.path(), vec![url])).unwrap();
    wait_live(&b, 0);
    std::thread::sleep(Duration::from_secs(5));
    // While live (not only at the end) the listener has the stream.
    let path = received.to_string_lossy().into_owned();
    assert_eq!(codecs(&path), vec!["aac", "h264"]);
    let stats = b.stats();
    assert!(!format!("{stats:?}").contains("show-secret-1234"));
    let (v, a) = (video_span_s(&path), audio_span_s(&path));
    assert!(
        v > 4.0 && (v - a).abs() < 1.0,
        "over SRT: video {v:.2} s, audio {a:.2} s"
    );
    // A receiver sees every frame from the first: keyframes arrive whole.
    let decoded = feza_tests::probe::decoded_video_frames(&path);
    assert!(
        decoded as f64 >= v * 30.0 * 0.98,
        "{decoded} frames decode of {v:.2} s at 30 fps"
    );

    // The listener dies: the output says so, and counts no bytes as sent meanwhile.
    let _ = listener.kill();
    let _ = listener.wait();
    wait_output(&b, 0, "reported the lost listener", |o| {
        matches!(o.state, OutputState::Reconnecting { .. }) && o.reconnects >= 1
    });
    let down = b.stats().outputs[0].clone();
    assert!(down.last_error.is_some(), "{down:?}");
    std::thread::sleep(Duration::from_secs(3));
    let still_down = b.stats().outputs[0].clone();
    assert_ne!(still_down.state, OutputState::Live, "{still_down:?}");
    assert_eq!(still_down.bitrate_kbps, 0, "{still_down:?}");

    // It comes back by itself; the new listener's stream starts decodable.
    let again = dir.path().join("again.ts");
    let mut listener = srt_listener(port, &again);
    wait_live(&b, 0);
    std::thread::sleep(Duration::from_secs(4));
    let finished = b.stop().unwrap();
    let _ = listener.kill();
    let _ = listener.wait();
    let again = again.to_string_lossy().into_owned();
    assert_eq!(codecs(&again), vec!["aac", "h264"]);
    let span = video_span_s(&again);
    let decoded = feza_tests::probe::decoded_video_frames(&again);
    assert!(
        span > 3.0 && decoded as f64 >= span * 30.0 * 0.98,
        "after the reconnect: {decoded} frames decode of {span:.2} s at 30 fps"
    );
    assert_eq!(
        feza_tests::probe::first_video_frame_is_key(&again),
        Some(true),
        "the stream after a reconnect starts on a keyframe"
    );
    // The recording never noticed.
    let rec = finished.recording.to_string_lossy().into_owned();
    let gap = feza_tests::probe::largest_video_gap(&rec);
    assert!(
        gap < 2.0 / 30.0 + 1e-3,
        "the recording has a {gap:.3} s gap"
    );
}

/// An RTMP receiver: ffmpeg listening, saving what it gets to `file`.
fn rtmp_receiver(port: u16, key: &str, file: &std::path::Path) -> std::process::Child {
    require("ffmpeg", "ffmpeg");
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-listen", "1", "-i"])
        .arg(format!("rtmp://127.0.0.1:{port}/app/{key}"))
        .args(["-c", "copy", "-f", "flv"])
        .arg(file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_listening(port) {
        assert!(Instant::now() < deadline, "ffmpeg did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_destination_added_while_live_gets_the_stream_and_a_removed_one_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broadcast::start(config(dir.path(), vec![])).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let port = free_port();
    let received = dir.path().join("added.flv");
    let mut receiver = rtmp_receiver(port, "added-key-4321", &received);
    let url = IngestUrl::parse(&format!("rtmp://127.0.0.1:{port}/app/added-key-4321")).unwrap();
    let id = b.add_output(url);
    wait_live(&b, 0);
    // A connection starts on the next keyframe (every 2 s): live for 6 s, so more
    // than 3.5 s of it must arrive.
    std::thread::sleep(Duration::from_secs(6));
    let stats = b.stats();
    let out = &stats.outputs[0];
    assert_eq!(out.id, id);
    // The bit rate is measured (checked against what the receiver got, below).
    let reported_kbps = out.bitrate_kbps;
    assert!(reported_kbps > 0);
    assert!(b.remove_output(id));
    assert!(!b.remove_output(id), "removed once only");
    assert!(b.stats().outputs.is_empty());
    // The receiver saw the stream end (not a cut connection) and exits by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the removed destination never saw the end"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The recording ran all along, unaffected.
    std::thread::sleep(Duration::from_secs(1));
    let finished = b.stop().unwrap();
    assert!(finished.recording_error.is_none());
    let path = received.to_string_lossy().into_owned();
    let (v, a) = (video_span_s(&path), audio_span_s(&path));
    assert!(
        v > 3.5 && (v - a).abs() < 1.0,
        "added: video {v:.2} s, audio {a:.2} s"
    );
    // Added mid-show, it starts on a keyframe: every frame it got decodes.
    let decoded = feza_tests::probe::decoded_video_frames(&path);
    assert!(
        decoded as f64 >= v * 30.0 * 0.98,
        "{decoded} frames decode of {v:.2} s at 30 fps"
    );
    let received_kbps = std::fs::metadata(&received).unwrap().len() as f64 * 8.0 / 1000.0 / v;
    assert!(
        (0.6..1.6).contains(&(reported_kbps as f64 / received_kbps)),
        "reported {reported_kbps} kb/s, the receiver got {received_kbps:.0} kb/s"
    );
    let rec = finished.recording.to_string_lossy().into_owned();
    let whole = video_span_s(&rec);
    assert!(whole > 6.5, "recording {whole:.2} s");
}

#[test]
fn x264_makes_a_stream_for_live_a_keyframe_every_2_s_frames_in_display_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![]);
    cfg.encoder = live_media::EncoderChoice::Software;
    let b = Broadcast::start(cfg).unwrap();
    std::thread::sleep(Duration::from_millis(6500));
    let finished = b.stop().unwrap();
    let rec = finished.recording.to_string_lossy().into_owned();
    // A viewer joining (or an ingest reconnecting) waits at most 2 s for a picture.
    let keys = feza_tests::probe::keyframe_pts(&rec);
    assert!(keys.len() >= 3, "keyframes at {keys:?}");
    for pair in keys.windows(2) {
        assert!(
            (pair[1] - pair[0] - 2.0).abs() < 0.05,
            "keyframes at {keys:?}"
        );
    }
    // No frame waits for a later one (no B-frames): decode order is display order.
    let pts = feza_tests::probe::video_pts(&rec);
    assert!(
        pts.windows(2).all(|p| p[1] > p[0]),
        "frames out of display order"
    );
    // Two frame threads, not sliced ones: the same picture for less CPU (make bench).
    let options = feza_tests::probe::x264_options(&rec);
    for want in [
        "threads=2",
        "sliced_threads=0",
        "bframes=0",
        "rc_lookahead=0",
    ] {
        assert!(
            options.iter().any(|o| o == want),
            "x264 options {options:?} lack {want}"
        );
    }
}

#[test]
fn stats_show_the_encoder_its_frame_rate_and_a_small_preview() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![]);
    cfg.preview = true;
    let b = Broadcast::start(cfg).unwrap();
    // No hardware encoder on a machine without one: x264.
    let hardware = live_media::hardware_h264_encoders();
    std::thread::sleep(Duration::from_secs(2));
    let _ = b.stats(); // opens the frame-rate window
    let mut seqs = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(f) = b.preview() {
            seqs.push(f.seq);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = b.stats();
    assert_eq!(
        stats.encoder,
        hardware.first().copied().unwrap_or("x264enc")
    );
    assert!(
        (27.0..=33.0).contains(&stats.encoder_fps),
        "{:.1} fps",
        stats.encoder_fps
    );
    assert_eq!(stats.dropped_frames, 0);
    // At most 10 preview frames a second: ≤ 31 new ones in 3 s, and some at all.
    seqs.dedup();
    let new = seqs.last().unwrap() - seqs.first().unwrap();
    assert!((15..=31).contains(&new), "{new} preview frames in 3 s");
    let frame = b.preview().unwrap();
    assert_eq!((frame.width, frame.height), (320, 180));
    let jpeg = dir.path().join("preview.jpg");
    std::fs::write(&jpeg, &frame.jpeg).unwrap();
    let dims = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&jpeg)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&dims.stdout).trim(), "320,180");
    b.stop().unwrap();
}

#[test]
fn an_rtmp_receiver_reads_what_the_show_is_from_its_metadata() {
    // ffprobe as the RTMP server: it reads the stream's header (the metadata, then
    // both codecs' configurations) and a little media, then hangs up.
    require("ffprobe", "ffmpeg");
    let port = free_port();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-listen", "1", "-rw_timeout", "20000000"])
        .args([
            "-show_entries",
            "format_tags=encoder:stream=codec_name,width,height,sample_rate,channels",
        ])
        .args(["-of", "json"])
        .arg(format!("rtmp://127.0.0.1:{port}/app/probe-key-9876"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffprobe");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_listening(port) {
        assert!(
            Instant::now() < deadline,
            "ffprobe did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = IngestUrl::parse(&format!("rtmp://127.0.0.1:{port}/app/probe-key-9876")).unwrap();
    let b = Broadcast::start(config(dir.path(), vec![url])).unwrap();
    let out = probe.wait_with_output().unwrap();
    b.stop().unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["format"]["tags"]["encoder"], "Feza Live", "{found:#}");
    let streams = found["streams"].as_array().unwrap();
    let stream = |codec: &str| {
        streams
            .iter()
            .find(|s| s["codec_name"] == codec)
            .unwrap_or_else(|| panic!("no {codec} stream: {found:#}"))
    };
    let (video, audio) = (stream("h264"), stream("aac"));
    let profile = VideoProfile::P360_30;
    assert_eq!(video["width"], profile.width, "{found:#}");
    assert_eq!(video["height"], profile.height, "{found:#}");
    assert_eq!(audio["sample_rate"], "48000", "{found:#}");
    assert_eq!(audio["channels"], 2, "{found:#}");
}

#[test]
fn trusting_a_private_authority_still_checks_the_host_name() {
    use feza_tests::ingest::TlsFront;
    // A TLS front whose certificate is for 127.0.0.1 only (nothing behind it: the
    // handshake is what is checked).
    let tls = TlsFront::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let url =
        IngestUrl::parse(&format!("rtmps://localhost:{}/app/name-key-9876", tls.port)).unwrap();
    let mut cfg = config(dir.path(), vec![url]);
    cfg.tls = live_media::TlsTrust::AllowUnknownCa;
    let b = Broadcast::start(cfg).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let error = loop {
        let out = b.stats().outputs.remove(0);
        assert_ne!(
            out.state,
            OutputState::Live,
            "a certificate for another host was taken"
        );
        if let Some(e) = out.last_error {
            break e;
        }
        assert!(Instant::now() < deadline, "no error: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        error.contains("certificate") && error.contains("not for this host"),
        "{error}"
    );
    assert!(!error.contains("name-key-9876"), "{error}");
    let finished = b.stop().unwrap();
    assert!(finished.recording_error.is_none());
}
