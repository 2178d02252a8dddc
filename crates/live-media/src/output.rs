//! Ingest outputs: each a pipeline of its own fed from the capture pipeline's taps, so
//! a failing connection never touches the recording or the other outputs. When one
//! fails it is torn down and rebuilt with exponential backoff; while it is down its
//! samples are dropped, and a new connection starts on a keyframe. Outputs come and go
//! while live: the taps hand every sample to whichever outputs the [`Router`] holds.
//!
//! ```text
//! taps ─► FLV messages (flv.rs) ─► socket (rtmp.rs)                (rtmp://, rtmps://)
//! appsrc (H.264) ─► h264parse ─┐
//! appsrc (AAC)  ─► aacparse  ─┴─► mpegtsmux ─► srtsink            (srt://)
//! ```
//!
//! RTMP needs no pipeline: the taps frame each buffer as an RTMP message and write it
//! to the connection from their own threads, without waiting on the network.

use crate::ingest_url::{IngestScheme, IngestUrl};
use crate::rtmp::{self, Publisher};
use crate::{MediaError, element, flv};
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(16);
/// A connection that carried the show this long was a good one: when it fails, the
/// waits start short again (a blip an hour into the show is not the fifth failure).
const HEALTHY: Duration = Duration::from_secs(30);
/// An RTMP connection slower than the show drops frames of its picture once what the
/// ingest has not received yet is this far behind the show: viewers see the picture
/// pause, then the show as it is now, never ever later.
const MAX_BEHIND: Duration = Duration::from_secs(2);
/// Its sound, far lighter and what a viewer misses most, is dropped only this far
/// behind (a connection too slow even for it).
const MAX_BEHIND_SOUND: Duration = Duration::from_secs(4);

/// The waits between connection attempts: 2, 4, 8, then 16 s while attempts keep
/// failing, from the start again after a connection that held.
#[derive(Debug, Default)]
struct Backoff {
    /// Failures since the last good connection.
    attempt: u32,
}

impl Backoff {
    /// A connection failed after carrying the show for `live_for` (None: it never got
    /// that far); returns the attempt's number and how long to wait before the next.
    fn failed(&mut self, live_for: Option<Duration>) -> (u32, Duration) {
        if live_for.is_some_and(|d| d >= HEALTHY) {
            self.attempt = 0;
        }
        self.attempt += 1;
        let wait = Duration::from_secs(1 << self.attempt.min(4)).min(MAX_BACKOFF);
        (self.attempt, wait)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputState {
    Connecting,
    Live,
    /// Down; the next attempt is in `retry_in`.
    Reconnecting {
        attempt: u32,
        retry_in: Duration,
    },
    Stopped,
}

#[derive(Clone, Debug)]
pub struct OutputStats {
    /// Stable for the whole broadcast, also after other outputs are removed.
    pub id: usize,
    /// The URL with its key hidden.
    pub url: String,
    pub state: OutputState,
    pub bytes_sent: u64,
    /// Media bitrate over the last second or so.
    pub bitrate_kbps: u64,
    /// Frames dropped because the connection could not keep up (not while it is down).
    pub dropped_frames: u64,
    /// How far behind the show what the ingest has not received yet is (RTMP; zero
    /// for SRT, which drops late packets itself).
    pub behind: Duration,
    pub reconnects: u32,
    pub last_error: Option<String>,
}

/// How outputs treat the ingest's TLS certificate (rtmps://).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsTrust {
    /// Full validation against the system's certificate authorities.
    #[default]
    System,
    /// Also accepts a certificate signed by an authority this machine does not know
    /// (a private ingest); the host name and dates are still checked.
    AllowUnknownCa,
}

/// The capture pipeline's taps and the outputs they feed.
pub(crate) struct Router {
    /// (video, audio) app sinks of the capture pipeline.
    taps: (gst_app::AppSink, gst_app::AppSink),
    outputs: Mutex<Vec<Arc<Shared>>>,
}

impl Router {
    pub fn new(taps: (gst_app::AppSink, gst_app::AppSink)) -> Arc<Self> {
        let router = Arc::new(Self {
            taps,
            outputs: Mutex::new(Vec::new()),
        });
        for (tap, video) in [(&router.taps.0, true), (&router.taps.1, false)] {
            // Weak: the taps must not keep the router (and its outputs) alive.
            let weak = Arc::downgrade(&router);
            tap.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(router) = weak.upgrade() {
                            for output in lock(&router.outputs).iter() {
                                output.forward(&sample, video);
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        router
    }

    /// Whether the capture pipeline's end of stream has reached both taps: the
    /// outputs have had all the show.
    pub fn ended(&self) -> bool {
        self.taps.0.is_eos() && self.taps.1.is_eos()
    }
}

/// Where an output's media goes.
enum Feed {
    /// RTMP: messages framed here from both taps, written to the connection.
    Rtmp {
        publisher: Box<Publisher>,
        header: flv::Header,
    },
    /// SRT: the taps' streams as they are, each into the muxer of a pipeline.
    Streams {
        pipeline: gst::Pipeline,
        video: gst_app::AppSrc,
        audio: gst_app::AppSrc,
    },
}

/// A connection that carries media, and where its timeline starts.
struct Active {
    feed: Feed,
    /// (capture PTS of the first keyframe sent, the output's own time then)
    origin: Option<(gst::ClockTime, gst::ClockTime)>,
    /// Set when frames had to be dropped: video resumes on the next keyframe.
    awaiting_keyframe: bool,
}

impl Active {
    fn new(feed: Feed) -> Self {
        Self {
            feed,
            origin: None,
            awaiting_keyframe: false,
        }
    }
}

struct Rate {
    at: Instant,
    bytes: u64,
    kbps: u64,
}

struct Shared {
    url: IngestUrl,
    tls: TlsTrust,
    /// Media queued for an SRT connection beyond this is dropped (≈ 2 s of the show).
    backlog_limit: u64,
    active: Mutex<Option<Active>>,
    state: Mutex<OutputState>,
    last_error: Mutex<Option<String>>,
    /// Media bytes handed to a connected output.
    bytes_pushed: AtomicU64,
    dropped_frames: AtomicU64,
    /// [`OutputStats::behind`], in ms.
    behind_ms: AtomicU64,
    rate: Mutex<Rate>,
    reconnects: AtomicU32,
    /// When the current connection started carrying the show.
    live_since: Mutex<Option<Instant>>,
    /// The state is live (an SRT pipeline takes media while it still connects).
    carrying: AtomicBool,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn set_state(&self, state: OutputState) {
        let mut since = lock(&self.live_since);
        self.carrying
            .store(state == OutputState::Live, Ordering::Relaxed);
        match state {
            OutputState::Live => {
                since.get_or_insert_with(Instant::now);
            }
            _ => *since = None,
        }
        *lock(&self.state) = state;
    }

    /// How long the connection that just ended carried the show.
    fn live_for(&self) -> Option<Duration> {
        lock(&self.live_since).map(|t| t.elapsed())
    }

    /// Forwards one encoded sample from the capture pipeline, rebased onto the output
    /// pipeline's timeline; never blocks the capture pipeline.
    fn forward(&self, sample: &gst::Sample, video: bool) {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut() else { return };
        let Some(buffer) = sample.buffer() else {
            return;
        };
        // Running time, the one timeline audio and video share (an encoder may shift
        // its buffers' own timestamps, x264 by 1000 hours).
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let running = |t: gst::ClockTime| match &segment {
            Some(seg) => seg.to_running_time(t),
            None => Some(t),
        };
        let Some(pts) = buffer.pts().and_then(running) else {
            return;
        };
        let keyframe = video && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let (base, offset) = match active.origin {
            Some(origin) => origin,
            // A connection starts on a keyframe; audio waits for it.
            None if keyframe => {
                let now = match &active.feed {
                    Feed::Rtmp { .. } => gst::ClockTime::ZERO,
                    Feed::Streams { pipeline, .. } => pipeline
                        .current_running_time()
                        .unwrap_or(gst::ClockTime::ZERO),
                };
                active.origin = Some((pts, now));
                (pts, now)
            }
            None => return,
        };
        let Some(delta) = pts.checked_sub(base) else {
            return;
        };
        let too_far_behind = match &mut active.feed {
            Feed::Rtmp { publisher, .. } => {
                let behind = publisher.behind(delta.mseconds());
                self.behind_ms
                    .store(behind.as_millis() as u64, Ordering::Relaxed);
                behind > if video { MAX_BEHIND } else { MAX_BEHIND_SOUND }
            }
            Feed::Streams { video: v, .. } if video => v.current_level_bytes() > self.backlog_limit,
            Feed::Streams { audio, .. } => audio.current_level_bytes() > self.backlog_limit,
        };
        // A connection slower than the show: drop rather than fall ever further
        // behind, and resume the picture on a keyframe so it stays decodable.
        if too_far_behind {
            if video {
                active.awaiting_keyframe = true;
                self.dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if video && active.awaiting_keyframe {
            if !keyframe {
                self.dropped_frames.fetch_add(1, Ordering::Relaxed);
                return;
            }
            active.awaiting_keyframe = false;
        }
        let dts = buffer
            .dts()
            .and_then(running)
            .map(|d| d.saturating_sub(base));
        let size = buffer.size() as u64;
        match &mut active.feed {
            Feed::Rtmp { publisher, header } => {
                let Ok(map) = buffer.map_readable() else {
                    return;
                };
                // RTMP times are decode times; the picture shows its offset later.
                let (ms, body) = if video {
                    let dts = dts.unwrap_or(delta).min(delta);
                    let cts = (delta - dts).mseconds().min(i32::MAX as u64) as i32;
                    (dts.mseconds(), header.video(&map, cts, keyframe))
                } else {
                    (delta.mseconds(), header.audio(&map))
                };
                if publisher.send(video, body, ms) {
                    self.bytes_pushed.fetch_add(size, Ordering::Relaxed);
                }
            }
            Feed::Streams {
                video: v, audio, ..
            } => {
                let src = if video { v } else { audio };
                let mut out = buffer.copy();
                let b = out.make_mut();
                b.set_pts(delta + offset);
                b.set_dts(dts.map(|d| d + offset));
                // A refused push means the connection is failing; its bus says so.
                // Bytes count as sent once the connection is up.
                if src.push_buffer(out).is_ok() && self.carrying.load(Ordering::Relaxed) {
                    self.bytes_pushed.fetch_add(size, Ordering::Relaxed);
                }
            }
        }
    }

    fn bitrate_kbps(&self) -> u64 {
        let mut rate = lock(&self.rate);
        let now = Instant::now();
        let bytes = self.bytes_pushed.load(Ordering::Relaxed);
        // Down or still connecting: nothing goes out now, whatever went before.
        if !self.carrying.load(Ordering::Relaxed) {
            *rate = Rate {
                at: now,
                bytes,
                kbps: 0,
            };
            return 0;
        }
        let elapsed = now.duration_since(rate.at);
        if elapsed >= Duration::from_millis(900) {
            let bits = bytes.saturating_sub(rate.bytes) * 8;
            rate.kbps = (bits as f64 / elapsed.as_secs_f64() / 1000.0).round() as u64;
            rate.at = now;
            rate.bytes = bytes;
        }
        rate.kbps
    }
}

pub(crate) struct Output {
    id: usize,
    router: Arc<Router>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Output {
    pub fn start(
        id: usize,
        url: IngestUrl,
        tls: TlsTrust,
        backlog_limit: u64,
        router: &Arc<Router>,
    ) -> Self {
        let shared = Arc::new(Shared {
            url,
            tls,
            backlog_limit,
            active: Mutex::new(None),
            state: Mutex::new(OutputState::Connecting),
            last_error: Mutex::new(None),
            bytes_pushed: AtomicU64::new(0),
            dropped_frames: AtomicU64::new(0),
            behind_ms: AtomicU64::new(0),
            rate: Mutex::new(Rate {
                at: Instant::now(),
                bytes: 0,
                kbps: 0,
            }),
            reconnects: AtomicU32::new(0),
            live_since: Mutex::new(None),
            carrying: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        lock(&router.outputs).push(shared.clone());
        let worker = shared.clone();
        let taps = router.taps.clone();
        let thread = std::thread::Builder::new()
            .name(format!("feza-output-{id}"))
            .spawn(move || run(id, &worker, &taps))
            .ok();
        Self {
            id,
            router: router.clone(),
            shared,
            thread,
        }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn stats(&self) -> OutputStats {
        let s = &self.shared;
        let state = lock(&s.state).clone();
        let behind = match state {
            OutputState::Live => Duration::from_millis(s.behind_ms.load(Ordering::Relaxed)),
            _ => Duration::ZERO,
        };
        OutputStats {
            id: self.id,
            url: s.url.to_string(),
            state,
            bytes_sent: s.bytes_pushed.load(Ordering::Relaxed),
            bitrate_kbps: s.bitrate_kbps(),
            dropped_frames: s.dropped_frames.load(Ordering::Relaxed),
            behind,
            reconnects: s.reconnects.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
        }
    }

    /// Ends the connection cleanly (EOS through the muxer) and waits for it.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        lock(&self.router.outputs).retain(|o| !Arc::ptr_eq(o, &self.shared));
    }
}

/// Bytes srtsink has sent (> 0 once the connection is up).
fn sink_bytes(pipeline: &gst::Pipeline) -> Option<u64> {
    let sink = pipeline.by_name("feza-output-sink")?;
    sink.find_property("stats")?;
    let stats = sink.property::<gst::Structure>("stats");
    stats
        .get::<u64>("bytes-sent")
        .or_else(|_| stats.get::<i64>("bytes-sent").map(|b| b.max(0) as u64))
        .ok()
}

/// The caps a tap carries, once the capture pipeline has negotiated them.
fn tap_caps(tap: &gst_app::AppSink) -> Option<gst::Caps> {
    tap.static_pad("sink")?.current_caps()
}

/// Both streams' caps, once the capture pipeline has them: the header an ingest gets
/// first says which streams there are, so no receiver takes the show for video only.
fn stream_caps(
    shared: &Shared,
    taps: &(gst_app::AppSink, gst_app::AppSink),
) -> Result<(gst::Caps, gst::Caps), MediaError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let (Some(v), Some(a)) = (tap_caps(&taps.0), tap_caps(&taps.1)) {
            return Ok((v, a));
        }
        if Instant::now() > deadline || shared.stop.load(Ordering::SeqCst) {
            return Err(MediaError::Pipeline(
                "no media from the capture pipeline".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects, and reconnects with backoff, until asked to stop.
fn run(id: usize, shared: &Shared, taps: &(gst_app::AppSink, gst_app::AppSink)) {
    let mut backoff = Backoff::default();
    while !shared.stop.load(Ordering::SeqCst) {
        shared.set_state(OutputState::Connecting);
        let failure = match shared.url.scheme() {
            IngestScheme::Rtmp | IngestScheme::Rtmps => publish(id, shared, taps),
            IngestScheme::Srt => match build_srt(shared) {
                Ok((pipeline, video, audio)) => {
                    stream_srt(id, shared, taps, pipeline, video, audio)
                }
                Err(e) => Some(e.to_string()),
            },
        };
        let Some(failure) = failure else { break };
        let failure = shared.url.scrub(&failure);
        let (attempt, retry_in) = backoff.failed(shared.live_for());
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(output = id, url = %shared.url, attempt, retry_in_s = retry_in.as_secs(), "ingest output failed: {failure}; reconnecting");
        *lock(&shared.last_error) = Some(failure);
        let until = Instant::now() + retry_in;
        while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
            shared.set_state(OutputState::Reconnecting {
                attempt,
                retry_in: until.saturating_duration_since(Instant::now()),
            });
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    shared.set_state(OutputState::Stopped);
}

/// A connection allowed to publish, with the stream's header sent. Connecting runs
/// while the capture pipeline may still be making its first frames.
fn connect_rtmp(
    shared: &Shared,
    taps: &(gst_app::AppSink, gst_app::AppSink),
) -> Result<(Publisher, flv::Header, std::net::TcpStream), String> {
    let mut publisher =
        Publisher::connect(&shared.url, shared.tls, &shared.stop).map_err(|e| e.to_string())?;
    let (vcaps, acaps) = stream_caps(shared, taps).map_err(|e| e.to_string())?;
    let header = flv::Header::new(&vcaps, &acaps).map_err(|e| e.to_string())?;
    publisher.start(&header).map_err(|e| e.to_string())?;
    let socket = publisher.socket().map_err(|e| e.to_string())?;
    Ok((publisher, header, socket))
}

/// Runs `f` on the RTMP connection that carries media, if there is one.
fn with_publisher<R>(shared: &Shared, f: impl FnOnce(&mut Publisher) -> R) -> Option<R> {
    match lock(&shared.active).as_mut() {
        Some(Active {
            feed: Feed::Rtmp { publisher, .. },
            ..
        }) => Some(f(publisher)),
        _ => None,
    }
}

/// Runs one RTMP connection; `None` when it ended because of a stop, else why it
/// failed.
fn publish(
    id: usize,
    shared: &Shared,
    taps: &(gst_app::AppSink, gst_app::AppSink),
) -> Option<String> {
    let (publisher, header, socket) = match connect_rtmp(shared, taps) {
        Ok(connected) => connected,
        Err(_) if shared.stop.load(Ordering::SeqCst) => return None,
        Err(failure) => return Some(failure),
    };
    *lock(&shared.active) = Some(Active::new(Feed::Rtmp {
        publisher: Box::new(publisher),
        header,
    }));
    tracing::info!(output = id, url = %shared.url, "ingest output live");
    shared.set_state(OutputState::Live);

    let failure = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break None;
        }
        // The lock is not held while waiting: the taps keep writing meanwhile.
        let wants_write = with_publisher(shared, |p| p.wants_write()).unwrap_or(false);
        if let Err(e) = rtmp::wait(&socket, wants_write, rtmp::TICK) {
            break Some(e.to_string());
        }
        if let Some(Err(e)) = with_publisher(shared, Publisher::service) {
            break Some(e.to_string());
        }
    };
    let taken = lock(&shared.active).take();
    if failure.is_none()
        && let Some(Active {
            feed: Feed::Rtmp { publisher, .. },
            ..
        }) = taken
    {
        // A clean end: the ingest sees the stream finish.
        publisher.finish(Duration::from_secs(3));
    }
    failure
}

/// The SRT pipeline of one connection, its sources still without caps: it can start
/// connecting while the capture pipeline makes its first frames.
fn build_srt(
    shared: &Shared,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSrc), MediaError> {
    let pipeline = gst::Pipeline::with_name("feza-output");
    let app_src = |name: &str| {
        gst_app::AppSrc::builder()
            .name(name)
            .format(gst::Format::Time)
            .is_live(true)
            .do_timestamp(false)
            .block(false)
            // Our own backlog check drops first; this only bounds memory.
            .max_bytes(shared.backlog_limit.saturating_mul(2))
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build()
    };
    // MPEG-TS wants Annex B and ADTS: parsers convert.
    let video = app_src("feza-output-video");
    let audio = app_src("feza-output-audio");
    let mux = element("mpegtsmux", "feza-output-mux")?;
    // Seven TS packets (1316 bytes) per buffer: one SRT live-mode message each. A
    // larger buffer (a keyframe's) does not fit a message and never arrives.
    mux.set_property("alignment", 7i32);
    let sink = element("srtsink", "feza-output-sink")?;
    sink.set_property("uri", shared.url.expose());
    // Live media, timed by the capture pipeline: sent as soon as it arrives, not held
    // back to the clock again (a timed wait per buffer).
    sink.set_property("sync", false);
    // A lost connection is an error here, so this output reconnects like every other:
    // reported (state, countdown, count) and resuming on a keyframe. srtsink's own
    // reconnecting is silent: its stats said "live" to a listener long gone.
    sink.set_property("auto-reconnect", false);
    let vparse = element("h264parse", "feza-output-video-parse")?;
    // SPS and PPS before every keyframe: a receiver that joins (or a connection that
    // lost its first packets) can start at any keyframe, as MPEG-TS receivers expect.
    vparse.set_property("config-interval", -1i32);
    let aparse = element("aacparse", "feza-output-audio-parse")?;
    pipeline.add_many([
        video.upcast_ref(),
        audio.upcast_ref(),
        &vparse,
        &aparse,
        &mux,
        &sink,
    ])?;
    gst::Element::link_many([video.upcast_ref(), &vparse, &mux])?;
    gst::Element::link_many([audio.upcast_ref(), &aparse, &mux])?;
    mux.link(&sink)?;
    Ok((pipeline, video, audio))
}

/// Runs one SRT connection; `None` when it ended because of a stop, else why it
/// failed.
fn stream_srt(
    id: usize,
    shared: &Shared,
    taps: &(gst_app::AppSink, gst_app::AppSink),
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
) -> Option<String> {
    let bus = pipeline.bus()?;
    // Connecting starts now, while the capture pipeline may still be making its first
    // frames; media flows once the sources have their caps.
    let caps = match pipeline.set_state(gst::State::Playing) {
        Ok(_) => stream_caps(shared, taps).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (vcaps, acaps) = match caps {
        Ok(caps) => caps,
        Err(e) => {
            let _ = pipeline.set_state(gst::State::Null);
            return Some(e);
        }
    };
    video.set_caps(Some(&vcaps));
    audio.set_caps(Some(&acaps));
    *lock(&shared.active) = Some(Active::new(Feed::Streams {
        pipeline: pipeline.clone(),
        video: video.clone(),
        audio: audio.clone(),
    }));
    let failure = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break None;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            // Live once the connection is up.
            if sink_bytes(&pipeline).is_some_and(|b| b > 0)
                && *lock(&shared.state) == OutputState::Connecting
            {
                tracing::info!(output = id, url = %shared.url, "ingest output live");
                shared.set_state(OutputState::Live);
            }
            continue;
        };
        match msg.view() {
            gst::MessageView::Error(err) => {
                break Some(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().unwrap_or_default()
                ));
            }
            gst::MessageView::Eos(_) => break Some("the ingest closed the connection".into()),
            _ => {}
        }
    };
    lock(&shared.active).take();
    if failure.is_none() {
        // A clean end: EOS through the muxer so the ingest sees the stream finish.
        let _ = video.end_of_stream();
        let _ = audio.end_of_stream();
        let _ = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(3),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
    }
    let _ = pipeline.set_state(gst::State::Null);
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_while_attempts_fail_and_start_short_after_a_connection_that_held() {
        let mut b = Backoff::default();
        let secs = |(n, d): (u32, Duration)| (n, d.as_secs());
        assert_eq!(secs(b.failed(None)), (1, 2));
        assert_eq!(secs(b.failed(None)), (2, 4));
        // Live for a moment only (a refused key, a flapping link): still growing.
        assert_eq!(secs(b.failed(Some(Duration::from_secs(3)))), (3, 8));
        assert_eq!(secs(b.failed(None)), (4, 16));
        assert_eq!(secs(b.failed(None)), (5, 16));
        // A connection that carried the show for a while: the next wait is short.
        assert_eq!(secs(b.failed(Some(Duration::from_secs(600)))), (1, 2));
        assert_eq!(secs(b.failed(None)), (2, 4));
    }
}
