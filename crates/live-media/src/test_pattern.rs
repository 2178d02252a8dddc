//! The test camera: 100 % colour bars scrolling left, paced by the pipeline clock.
//!
//! `videotestsrc` draws every line of every frame (≈ 9.5 M instructions per 720p
//! frame, measured with callgrind): ≈ 6 % of a 720p broadcast's CPU time. The bars
//! are vertical, so one line per plane says everything: it is drawn once by
//! `videotestsrc` itself (the same colours, colorimetry included) and each frame is
//! that line, rotated by the scroll, copied down the plane into a pooled buffer, made
//! when the source asks for it.

use crate::{MediaError, paced};
use gst::prelude::*;
use gst_video::prelude::*;

/// How far the pattern scrolls each frame: 4 px at 1280 wide, never still.
pub(crate) fn scroll_px(width: u32) -> usize {
    (width / 320).max(1) as usize
}

/// One line of each plane, written twice in a row: a rotation is then one slice.
struct Lines {
    info: gst_video::VideoInfo,
    doubled: Vec<Vec<u8>>,
}

/// An `appsrc` named `name` producing the scrolling bars at `width`×`height`, `fps`.
pub(crate) fn source(
    name: &str,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<gst::Element, MediaError> {
    let lines = draw_lines(width, height, fps)?;
    let caps = lines.info.to_caps().map_err(|e| pipeline_error(&e))?;
    let pool = gst_video::VideoBufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&caps), lines.info.size() as u32, 2, 0);
    pool.set_config(config).map_err(|e| pipeline_error(&e))?;
    pool.set_active(true).map_err(|e| pipeline_error(&e))?;
    // Each frame due: a pooled buffer, the drawn line copied down it (no thread of ours).
    let scroll = scroll_px(width);
    Ok(paced::source(name, &caps, fps, move |n, _| {
        let mut buffer = pool.acquire_buffer(None).ok()?;
        let shift = (n as usize).wrapping_mul(scroll) % lines.info.width().max(1) as usize;
        fill(buffer.get_mut()?, &lines, shift);
        Some(buffer)
    }))
}

fn pipeline_error(e: &dyn std::fmt::Display) -> MediaError {
    MediaError::Pipeline(format!("test camera: {e}"))
}

/// The first line of each plane of `videotestsrc`'s 100 % bars, at this size.
fn draw_lines(width: u32, height: u32, fps: u32) -> Result<Lines, MediaError> {
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", i32::try_from(width).unwrap_or(1280))
        .field("height", i32::try_from(height).unwrap_or(720))
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .build();
    let src = crate::element("videotestsrc", "feza-test-camera-draw")?;
    src.set_property("num-buffers", 1i32);
    src.set_property_from_str("pattern", "smpte100");
    let sink = gst_app::AppSink::builder().caps(&caps).sync(false).build();
    let pipeline = gst::Pipeline::with_name("feza-test-camera-lines");
    pipeline.add_many([&src, sink.upcast_ref()])?;
    src.link(&sink)?;
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink.pull_sample();
    let _ = pipeline.set_state(gst::State::Null);
    let sample = sample.map_err(|_| pipeline_error(&"videotestsrc drew nothing"))?;
    let info = sample
        .caps()
        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
        .ok_or_else(|| pipeline_error(&"videotestsrc's frame has no video caps"))?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| pipeline_error(&"videotestsrc's frame is empty"))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| pipeline_error(&e))?;
    let mut doubled = Vec::new();
    for plane in 0..frame.n_planes() {
        let line_len = frame.comp_width(plane) as usize;
        let data = frame.plane_data(plane).map_err(|e| pipeline_error(&e))?;
        let line = &data[..line_len];
        doubled.push([line, line].concat());
    }
    Ok(Lines { info, doubled })
}

/// Every line of each plane: the drawn line, scrolled `shift` luma pixels left.
fn fill(buffer: &mut gst::BufferRef, lines: &Lines, shift: usize) {
    let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &lines.info)
    else {
        return;
    };
    for (plane, doubled) in lines.doubled.iter().enumerate() {
        let plane = plane as u32;
        let width = doubled.len() / 2;
        // Chroma planes are half as wide: they move half as far.
        let start = shift * width / lines.info.width().max(1) as usize;
        let line = &doubled[start..start + width];
        let stride = frame.plane_stride()[plane as usize] as usize;
        let rows = frame.comp_height(plane) as usize;
        let Ok(data) = frame.plane_data_mut(plane) else {
            return;
        };
        for row in data.chunks_mut(stride).take(rows) {
            row[..width].copy_from_slice(line);
        }
    }
}
