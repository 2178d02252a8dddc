//! A live source that makes each frame when it is due on the pipeline's clock: the
//! test camera's bars, a camera's newest frame.

use gst::prelude::*;

/// Later than this, a frame is not made: the computer was stopped, not just busy.
const FROZEN: gst::ClockTime = gst::ClockTime::from_seconds(1);

/// An `appsrc` named `name` putting out `caps` at `fps`. Frames are made on demand in
/// the source's own streaming thread: it asks for one, waits on the clock until it is
/// due and has `make(n, stopped)` make frame `n` (`stopped`: the computer was stopped,
/// froze or slept, just before it), stamped here. The first frame is the next due
/// from now, with no burst to catch up; the same after a stop: like a camera, the
/// frames a stopped computer missed are gone, not made all at once on waking.
pub(crate) fn source(
    name: &str,
    caps: &gst::Caps,
    fps: u32,
    mut make: impl FnMut(u64, bool) -> Option<gst::Buffer> + Send + 'static,
) -> gst::Element {
    let frame = gst::ClockTime::SECOND / u64::from(fps.max(1));
    let src = gst_app::AppSrc::builder()
        .name(name)
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(false)
        .min_latency(frame.nseconds() as i64)
        .max_latency(frame.nseconds() as i64)
        .build();
    let mut next: Option<u64> = None;
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                if let Some(n) = push_next(src, frame, next, &mut make) {
                    next = Some(n + 1);
                }
            })
            .build(),
    );
    src.upcast()
}

/// Waits until frame `next` (none: the next due from now) is due, then pushes it.
/// Returns its number.
fn push_next(
    src: &gst_app::AppSrc,
    frame: gst::ClockTime,
    next: Option<u64>,
    make: &mut impl FnMut(u64, bool) -> Option<gst::Buffer>,
) -> Option<u64> {
    let (clock, base) = (src.clock()?, src.base_time()?);
    let due_next = || {
        let now = clock.time().saturating_sub(base).nseconds();
        now.div_ceil(frame.nseconds())
    };
    let mut n = next.unwrap_or_else(due_next);
    let (_, late) = clock.new_single_shot_id(base + frame * n).wait();
    let stopped = late > FROZEN.nseconds() as i64;
    if stopped {
        n = due_next();
        let _ = clock.new_single_shot_id(base + frame * n).wait();
    }
    let mut buffer = make(n, stopped)?;
    {
        let b = buffer.make_mut();
        b.set_pts(frame * n);
        b.set_dts(gst::ClockTime::NONE);
        b.set_duration(frame);
    }
    src.push_buffer(buffer).ok()?;
    Some(n)
}
