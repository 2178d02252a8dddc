//! A camera that may go away mid-show (a USB camera pulled out, a loose cable, the
//! camera service restarted) without taking the show with it.
//!
//! ```text
//! camera pipeline:  device ─► videoconvert ─► videoscale ─► caps (I420, the show's size) ─► appsink (newest frame)
//! show pipeline:    appsrc (one frame each 1/fps: the camera's newest, or black) ─► …
//! ```
//! The camera runs in a pipeline of its own: its errors, its clock and its going away
//! never reach the show. The show's source takes a frame at the show's rate: the
//! camera's newest one (a camera slower than the show, in low light, has its frames
//! repeated), or black once the camera has sent nothing for a while or failed. Some
//! cameras fail with an error when they go; others (a camera shared through PipeWire)
//! just send nothing more: both are the same here. A lost camera is looked for every
//! two seconds, in a thread of its own, and its picture is back as soon as it gives
//! frames again. A computer that stopped (froze, or slept) is not a lost camera: the
//! camera gets its time to send again after the stop.

use crate::devices::{DeviceKind, open};
use crate::profile::VideoProfile;
use crate::{MediaError, element, paced};
use gst::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a camera has to give its first frame, when opened.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(5);

/// A camera that sent nothing for this long is taken for gone.
const LOST_AFTER: Duration = Duration::from_millis(1500);

/// How often a lost camera is looked for.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The show's camera, as its source element sees it and its stats read it.
#[derive(Clone)]
pub(crate) struct Camera(Arc<Mutex<Feed>>);

struct Feed {
    id: String,
    /// The camera's name: a USB camera plugged back in may have another id (its
    /// device path), never another name.
    name: String,
    /// What the camera's frames are made into (the first opening's, framerate aside).
    caps: gst::Caps,
    /// The show's frame rate.
    fps: u32,
    link: Link,
    /// The camera's newest frame and when it came.
    newest: gst::Buffer,
    newest_at: Instant,
    black: gst::Buffer,
}

enum Link {
    Open(Device),
    Lost {
        why: String,
        next_try: Instant,
        opening: Option<mpsc::Receiver<Result<Opened, MediaError>>>,
    },
    Closed,
}

/// One opening of the camera: its own pipeline, ending in an appsink that keeps the
/// newest frame only.
struct Device {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
}

/// A camera opened: its pipeline, its first frame and its name.
type Opened = (Device, gst::Buffer, String);

/// Cameras being let go of. Stopping a camera that went away or hung can take long,
/// or for ever (a hung camera's stop waits on its start): it is done in a thread of
/// its own, and a lost camera is looked for less often while stops are held (every 2 s
/// more for each), not at all once [`STOPS_HELD_AT_MOST`] are: a camera that hangs
/// for long leaves no pile of stuck threads, and one that works again is still found.
static STOPPING: AtomicUsize = AtomicUsize::new(0);

/// See [`STOPPING`].
const STOPS_HELD_AT_MOST: usize = 16;

/// When a lost camera is looked for next, from `now`, while `stopping` stops are held.
fn next_look(now: Instant, stopping: usize) -> Option<Instant> {
    let spacing = u32::try_from(stopping.min(14)).unwrap_or(14) + 1;
    (stopping < STOPS_HELD_AT_MOST).then(|| now + RETRY_EVERY * spacing)
}

impl Drop for Device {
    fn drop(&mut self) {
        let pipeline = self.pipeline.clone();
        STOPPING.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("feza-camera-stop".into())
            .spawn(move || {
                let _ = pipeline.set_state(gst::State::Null);
                STOPPING.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            STOPPING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Device {
    /// Opens camera `id` with its frames made into `caps`, and waits for its first
    /// frame. The error says why it cannot be used.
    fn open(id: &str, caps: &gst::Caps, fps: u32) -> Result<Opened, MediaError> {
        let pipeline = gst::Pipeline::with_name("feza-camera");
        let (src, info) = open(id, DeviceKind::Camera, "feza-camera-device")?;
        let mut chain = vec![src];
        let offered = info.caps.parse::<gst::Caps>().ok();
        if let Some(kinds) = offered.as_ref().and_then(unusable) {
            return Err(MediaError::Camera {
                id: id.to_owned(),
                reason: format!("it gives its picture only as {kinds}, which cannot be shown"),
            });
        }
        if let Some((mode, jpeg)) = mode(offered.as_ref(), caps, fps) {
            tracing::debug!(camera = id, %mode, "camera mode");
            let filter = element("capsfilter", "feza-camera-mode")?;
            filter.set_property("caps", mode);
            chain.push(filter);
            if jpeg {
                chain.push(element("jpegdec", "feza-camera-jpegdec")?);
            }
        }
        let filter = element("capsfilter", "feza-camera-caps")?;
        filter.set_property("caps", caps);
        chain.extend([
            element("videoconvert", "feza-camera-convert")?,
            element("videoscale", "feza-camera-scale")?,
            filter,
        ]);
        let sink = gst_app::AppSink::builder()
            .name("feza-camera-sink")
            .sync(false)
            .max_buffers(1)
            .drop(true)
            .enable_last_sample(false)
            .build();
        chain.push(sink.clone().upcast());
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        let device = Self { pipeline, sink };
        let failed = |reason: String| MediaError::Camera {
            id: id.to_owned(),
            reason,
        };
        // Started in a thread of its own: a camera that hangs holds its start for ever
        // (a camera shared through PipeWire whose program stopped).
        let (started_tx, started_rx) = mpsc::channel();
        let pipeline = device.pipeline.clone();
        std::thread::Builder::new()
            .name("feza-camera-start".into())
            .spawn(move || {
                let _ = started_tx.send(pipeline.set_state(gst::State::Playing).is_ok());
            })
            .map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();
        loop {
            if let Some(e) = device.error() {
                return Err(failed(e));
            }
            if started_rx.try_recv() == Ok(false) {
                return Err(failed("it would not start".to_owned()));
            }
            if let Some(sample) = device
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
                && let Some(buffer) = sample.buffer_owned()
            {
                return Ok((device, buffer, info.name));
            }
            if started.elapsed() > FIRST_FRAME_WITHIN {
                return Err(failed(format!(
                    "it gave no picture within {} s",
                    FIRST_FRAME_WITHIN.as_secs()
                )));
            }
        }
    }

    /// What the camera gives, before it is made into the show's picture.
    fn given(&self) -> Option<gst::Caps> {
        let device = self.pipeline.by_name("feza-camera-device")?;
        device.src_pads().first()?.current_caps()
    }

    /// The camera pipeline's first error, if it had one.
    fn error(&self) -> Option<String> {
        let msg = self
            .pipeline
            .bus()?
            .pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        }
    }
}

impl Camera {
    /// Opens camera `id` (a clear error when it is missing, busy, or gives no
    /// picture) with its frames made `width`×`height`. Returns the show's source of
    /// it, named `name`, at `fps`.
    pub(crate) fn open(
        id: &str,
        width: u32,
        height: u32,
        fps: u32,
        name: &str,
    ) -> Result<(Self, gst::Element), MediaError> {
        let wanted = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", i32::try_from(width).unwrap_or(1280))
            .field("height", i32::try_from(height).unwrap_or(720))
            // Square pixels: a camera of another shape is shown whole, with bars.
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        let (device, first, camera_name) = Device::open(id, &wanted, fps)?;
        if let Some(given) = device.given() {
            tracing::debug!(camera = id, %given, "the camera gives");
            if let Some(s) = given.structure(0) {
                for shortfall in shortfalls(s, width, height, fps) {
                    tracing::warn!(camera = id, "{shortfall}");
                }
            }
        }
        // The camera's colours as it gave them (a camera that comes back is made the
        // same), at the show's rate.
        let mut caps = device
            .sink
            .static_pad("sink")
            .and_then(|p| p.current_caps())
            .unwrap_or(wanted);
        caps.make_mut()
            .iter_mut()
            .for_each(|s| s.remove_field("framerate"));
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|e| MediaError::Pipeline(format!("camera {id}: {e}")))?;
        let camera = Self(Arc::new(Mutex::new(Feed {
            id: id.to_owned(),
            name: camera_name,
            caps: caps.clone(),
            fps,
            link: Link::Open(device),
            newest: first,
            newest_at: Instant::now(),
            black: black_frame(&info),
        })));
        let mut src_caps = caps;
        src_caps.make_mut().set(
            "framerate",
            gst::Fraction::new(i32::try_from(fps).unwrap_or(30), 1),
        );
        // Each frame due: the camera's newest, or black.
        let feed = camera.clone();
        let src = paced::source(name, &src_caps, fps, move |_, stopped| {
            Some(feed.feed().take(stopped))
        });
        Ok((camera, src))
    }

    fn feed(&self) -> MutexGuard<'_, Feed> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why viewers see black instead of the camera, while it is away.
    pub(crate) fn lost(&self) -> Option<String> {
        match &self.feed().link {
            Link::Lost { why, .. } => Some(why.clone()),
            Link::Open(_) | Link::Closed => None,
        }
    }

    /// Lets the camera go (the show is over).
    pub(crate) fn close(&self) {
        self.feed().link = Link::Closed;
    }
}

impl Feed {
    /// The frame to show now: the camera's newest, or black while it is away. Notices
    /// the camera going (an error, or nothing sent for a while; not after the
    /// computer `stopped`) and coming back.
    fn take(&mut self, stopped: bool) -> gst::Buffer {
        let now = Instant::now();
        match &mut self.link {
            Link::Open(device) => {
                let newest = device
                    .sink
                    .try_pull_sample(gst::ClockTime::ZERO)
                    .and_then(|s| s.buffer_owned());
                if let Some(e) = device.error() {
                    self.lose(e);
                } else if let Some(buffer) = newest {
                    self.newest = buffer;
                    self.newest_at = now;
                } else if stopped {
                    // The camera gets its time to send again after the stop.
                    self.newest_at = now;
                } else if now.duration_since(self.newest_at) > LOST_AFTER {
                    self.lose(format!(
                        "it sent no picture for {:.1} s",
                        LOST_AFTER.as_secs_f64()
                    ));
                }
            }
            Link::Lost {
                next_try, opening, ..
            } => {
                let opened = match opening.as_ref().map(mpsc::Receiver::try_recv) {
                    Some(Ok(Ok(opened))) => Some(opened),
                    Some(Ok(Err(e))) => {
                        tracing::debug!(camera = %self.id, "the camera is not back yet: {e}");
                        *opening = None;
                        None
                    }
                    Some(Err(mpsc::TryRecvError::Disconnected)) => {
                        *opening = None;
                        None
                    }
                    Some(Err(mpsc::TryRecvError::Empty)) => None,
                    None => {
                        if now >= *next_try
                            && let Some(next) = next_look(now, STOPPING.load(Ordering::SeqCst))
                        {
                            *next_try = next;
                            *opening = look_for(&self.id, &self.name, &self.caps, self.fps);
                        }
                        None
                    }
                };
                if let Some((device, first, _)) = opened {
                    tracing::info!(camera = %self.id, "the camera is back: viewers see it again");
                    self.link = Link::Open(device);
                    self.newest = first;
                    self.newest_at = now;
                }
            }
            Link::Closed => {}
        }
        match self.link {
            Link::Open(_) => self.newest.copy(),
            Link::Lost { .. } | Link::Closed => self.black.copy(),
        }
    }

    /// The camera is gone: black from now on, and looked for from now on.
    fn lose(&mut self, why: String) {
        tracing::warn!(
            camera = %self.id,
            "the camera stopped ({why}): viewers see black until it is back; check its \
             cable or connection, live-cast takes it back by itself"
        );
        // The camera is let go of as it goes out of the link (in a thread of its own).
        self.link = Link::Lost {
            why,
            next_try: Instant::now() + RETRY_EVERY,
            opening: None,
        };
    }
}

/// Opens camera `id` (or, when there is none of that id, the camera called `name`)
/// again in a thread of its own; what came of it is sent on the channel returned
/// (none when no thread could be started: tried again later).
fn look_for(
    id: &str,
    name: &str,
    caps: &gst::Caps,
    fps: u32,
) -> Option<mpsc::Receiver<Result<Opened, MediaError>>> {
    let (tx, rx) = mpsc::channel();
    let (id, name, caps) = (id.to_owned(), name.to_owned(), caps.clone());
    std::thread::Builder::new()
        .name("feza-camera-open".into())
        .spawn(move || {
            let opened = match Device::open(&id, &caps, fps) {
                Err(MediaError::DeviceNotFound { .. }) if name != id => {
                    Device::open(&name, &caps, fps)
                }
                opened => opened,
            };
            let _ = tx.send(opened);
        })
        .ok()
        .map(|_| rx)
}

/// What to ask of a camera that offers `offered` for a show of `wanted` (its size) at
/// `fps`, and whether that is JPEG to decode: its raw picture at the show's size and
/// rate when it has it; else its JPEG picture so (most USB cameras give 720p or
/// 1080p at 30 frames a second only as JPEG, raw at 5 or 10); else raw, then JPEG,
/// at least that size and rate. None: what the camera likes best of its raw pictures
/// (it offers none of these, or says nothing of what it offers).
fn mode(offered: Option<&gst::Caps>, wanted: &gst::Caps, fps: u32) -> Option<(gst::Caps, bool)> {
    let offered = offered?;
    let size = wanted.structure(0)?;
    let (width, height) = (
        size.get::<i32>("width").ok()?,
        size.get::<i32>("height").ok()?,
    );
    let fps = i32::try_from(fps).ok()?;
    // 29.97 is 30 for a camera; a camera asked for no more than the show's rate does
    // not make (and have decoded) frames that are dropped.
    let lowest = gst::Fraction::new(fps * 1000, 1001);
    let exact = |media: &str| {
        gst::Caps::builder(media)
            .field("width", width)
            .field("height", height)
            .field(
                "framerate",
                gst::FractionRange::new(lowest, gst::Fraction::new(fps, 1)),
            )
            .build()
    };
    let at_least = |media: &str| {
        gst::Caps::builder(media)
            .field("width", gst::IntRange::new(width, i32::MAX))
            .field("height", gst::IntRange::new(height, i32::MAX))
            .field(
                "framerate",
                gst::FractionRange::new(lowest, gst::Fraction::new(i32::MAX, 1)),
            )
            .build()
    };
    [
        (exact("video/x-raw"), false),
        (exact("image/jpeg"), true),
        (at_least("video/x-raw"), false),
        (at_least("image/jpeg"), true),
    ]
    .into_iter()
    .find(|(mode, _)| offered.can_intersect(mode))
}

/// What a seller should know of a camera giving `given` (its picture's size and
/// rate) to a show of `width`×`height` at `fps`: a picture smaller than the show's is
/// enlarged (softer than the show's size promises, for the same bandwidth), and a
/// camera slower than the show has its frames shown more than once.
fn shortfalls(given: &gst::StructureRef, width: u32, height: u32, fps: u32) -> Vec<String> {
    let mut said = Vec::new();
    let size = (
        given
            .get::<i32>("width")
            .ok()
            .and_then(|w| u32::try_from(w).ok()),
        given
            .get::<i32>("height")
            .ok()
            .and_then(|h| u32::try_from(h).ok()),
    );
    if let (Some(w), Some(h)) = size
        && w > 0
    {
        // Shown whole at square pixels, the picture is enlarged only when it is
        // smaller than the show both ways.
        let enlarged = |show_w: u32, show_h: u32| w < show_w && h < show_h;
        if enlarged(width, height) {
            let lighter = VideoProfile::NAMED
                .iter()
                .find(|(_, p)| p.width * p.height < width * height && !enlarged(p.width, p.height))
                .map_or(String::new(), |(name, _)| {
                    format!("; profile {name} shows it as sharp for less bandwidth")
                });
            said.push(format!(
                "the camera gives a picture of {w}×{h} and the show is {width}×{height}: \
                 viewers see it enlarged, softer than the show's size promises; a camera \
                 giving {width}×{height} or more looks sharper{lighter}"
            ));
        }
    }
    if let Ok(rate) = given.get::<gst::Fraction>("framerate")
        && rate.numer() > 0
        && rate.denom() > 0
    {
        let rate = f64::from(rate.numer()) / f64::from(rate.denom());
        // 29.97 is 30 for a camera.
        if rate < f64::from(fps) * 1000.0 / 1001.0 - 0.001 {
            let rate = if rate.fract() < 0.05 {
                format!("{rate:.0}")
            } else {
                format!("{rate:.1}")
            };
            said.push(format!(
                "the camera gives {rate} frames a second and the show runs at {fps}: its \
                 frames are shown more than once, so motion looks less smooth (more light \
                 or another camera may help)"
            ));
        }
    }
    said
}

/// What a camera that offers `offered` gives, when it is nothing that can be shown
/// (neither a raw nor a JPEG picture: an H.264-only camera, say).
fn unusable(offered: &gst::Caps) -> Option<String> {
    let mut kinds: Vec<&str> = offered.iter().map(|s| s.name().as_str()).collect();
    if kinds.is_empty()
        || kinds
            .iter()
            .any(|k| matches!(*k, "video/x-raw" | "image/jpeg"))
    {
        return None;
    }
    kinds.dedup();
    Some(kinds.join(", "))
}

/// A black frame of `info` (luma 16, chroma 128: black in limited-range YUV).
fn black_frame(info: &gst_video::VideoInfo) -> gst::Buffer {
    let mut data = vec![128u8; info.size()];
    let chroma_start = info.offset().get(1).copied().unwrap_or(data.len());
    data[..chroma_start.min(info.size())].fill(16);
    let mut buffer = gst::Buffer::from_mut_slice(data);
    if let Some(b) = buffer.get_mut() {
        let _ = gst_video::VideoMeta::add_full(
            b,
            gst_video::VideoFrameFlags::empty(),
            info.format(),
            info.width(),
            info.height(),
            info.offset(),
            info.stride(),
        );
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        crate::init().unwrap();
        s.parse().unwrap()
    }

    /// What is asked of a camera offering `offered` for 1280×720 at 30: raw or JPEG
    /// (and JPEG is decoded).
    fn asked(offered: &str) -> Option<String> {
        let wanted = caps("video/x-raw, format=I420, width=1280, height=720");
        let (mode, jpeg) = mode(Some(&caps(offered)), &wanted, 30)?;
        let kind = mode.structure(0)?.name().to_string();
        assert_eq!(jpeg, kind == "image/jpeg", "{mode}");
        Some(kind)
    }

    #[test]
    fn a_camera_gives_its_raw_picture_when_it_has_it_at_the_shows_size_and_rate() {
        let offered = "video/x-raw, format=YUY2, width=1280, height=720, framerate=30/1; \
                       image/jpeg, width=1280, height=720, framerate=30/1";
        assert_eq!(asked(offered).as_deref(), Some("video/x-raw"));
    }

    #[test]
    fn a_camera_raw_only_at_a_low_rate_gives_jpeg_at_full_rate() {
        // A common webcam: 720p raw at 10 frames a second, JPEG at 30 (or 29.97).
        for jpeg_rate in ["30/1", "30000/1001"] {
            let offered = format!(
                "video/x-raw, format=YUY2, width=1280, height=720, framerate=10/1; \
                 image/jpeg, width=1280, height=720, framerate={jpeg_rate}"
            );
            assert_eq!(asked(&offered).as_deref(), Some("image/jpeg"), "{offered}");
        }
    }

    #[test]
    fn a_camera_without_the_shows_size_gives_a_larger_picture_made_smaller() {
        let offered = "video/x-raw, format=YUY2, width=640, height=480, framerate=30/1; \
                       image/jpeg, width=1920, height=1080, framerate=30/1";
        assert_eq!(asked(offered).as_deref(), Some("image/jpeg"));
    }

    #[test]
    fn a_camera_with_no_picture_that_can_be_shown_says_what_it_gives() {
        assert_eq!(
            unusable(&caps(
                "video/x-h264, width=1280, height=720; video/x-h264, width=640, height=480"
            )),
            Some("video/x-h264".to_owned())
        );
        assert_eq!(
            unusable(&caps("video/x-raw, format=YUY2; video/x-h264")),
            None
        );
        assert_eq!(
            unusable(&gst::Caps::new_empty()),
            None,
            "says nothing: tried"
        );
    }

    /// What the seller is told of a camera giving `given` to a 1280×720 show at 30.
    fn told(given: &str) -> Vec<String> {
        shortfalls(caps(given).structure(0).unwrap(), 1280, 720, 30)
    }

    #[test]
    fn a_camera_smaller_than_the_show_is_said_with_the_profile_that_fits_it() {
        let said = told("video/x-raw, width=640, height=480, framerate=30/1");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("640×480"), "{}", said[0]);
        assert!(said[0].contains("profile 480p30"), "{}", said[0]);
        let said = told("image/jpeg, width=320, height=240, framerate=30/1");
        assert!(said[0].contains("320×240"), "{}", said[0]);
        assert!(!said[0].contains("profile"), "none fits: {}", said[0]);
    }

    #[test]
    fn a_camera_as_large_as_the_show_one_way_is_not_said_to_be_enlarged() {
        // 4:3 at the show's height: shown whole with bars, never enlarged.
        for given in [
            "video/x-raw, width=960, height=720, framerate=30/1",
            "video/x-raw, width=1920, height=1080, framerate=30/1",
            "image/jpeg, width=1280, height=720, framerate=30000/1001",
        ] {
            assert_eq!(told(given), Vec::<String>::new(), "{given}");
        }
    }

    #[test]
    fn a_camera_slower_than_the_show_is_said() {
        let said = told("video/x-raw, width=1280, height=720, framerate=15/1");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("gives 15 frames a second"), "{}", said[0]);
        let said = told("video/x-raw, width=1280, height=720, framerate=15/2");
        assert!(said[0].contains("gives 7.5 frames"), "{}", said[0]);
        // A camera whose rate varies says 0/1: nothing to tell.
        assert_eq!(
            told("video/x-raw, width=1280, height=720, framerate=0/1"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_lost_camera_is_looked_for_less_often_while_stops_are_held_and_never_past_a_pile() {
        let now = Instant::now();
        assert_eq!(next_look(now, 0), Some(now + Duration::from_secs(2)));
        assert_eq!(next_look(now, 2), Some(now + Duration::from_secs(6)));
        assert_eq!(next_look(now, 15), Some(now + Duration::from_secs(30)));
        assert_eq!(next_look(now, STOPS_HELD_AT_MOST), None);
    }

    #[test]
    fn a_camera_with_nothing_at_the_shows_size_and_rate_gives_what_it_likes() {
        assert_eq!(
            asked("video/x-raw, format=YUY2, width=640, height=480, framerate=15/1"),
            None
        );
        let wanted = caps("video/x-raw, format=I420, width=1280, height=720");
        assert!(
            mode(None, &wanted, 30).is_none(),
            "a camera that says nothing"
        );
    }
}
