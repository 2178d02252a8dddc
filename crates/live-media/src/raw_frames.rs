//! A picture from a file of raw I420 frames at the show's size, played over and over at
//! the show's rate and paced by the pipeline clock, as a camera gives its frames: the
//! very same pixels for every broadcaster a benchmark compares (a camera's picture,
//! with its motion and grain, made once).

use crate::{MediaError, paced};
use gst::prelude::*;
use std::io::{Read, Seek};
use std::path::Path;

/// An `appsrc` named `name` putting out the frames of `path` at `width`×`height`,
/// `fps`; after the last frame, the first again.
pub(crate) fn source(
    name: &str,
    path: &Path,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<gst::Element, MediaError> {
    let refused = |reason: String| MediaError::Camera {
        id: path.display().to_string(),
        reason,
    };
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
        .fps(gst::Fraction::new(i32::try_from(fps).unwrap_or(30), 1))
        .build()
        .map_err(|e| refused(e.to_string()))?;
    let frame = info.size();
    let mut file = std::fs::File::open(path).map_err(|e| refused(e.to_string()))?;
    let length = file.metadata().map_err(|e| refused(e.to_string()))?.len();
    if length < frame as u64 || length % frame as u64 != 0 {
        return Err(refused(format!(
            "a file of raw I420 frames at {width}×{height} holds a whole number of frames of \
             {frame} bytes; it has {length} bytes"
        )));
    }
    let caps = info.to_caps().map_err(|e| refused(e.to_string()))?;
    let pool = gst_video::VideoBufferPool::new();
    let mut config = pool.config();
    config.set_params(Some(&caps), frame as u32, 2, 0);
    pool.set_config(config)
        .map_err(|e| refused(e.to_string()))?;
    pool.set_active(true).map_err(|e| refused(e.to_string()))?;
    let shown = path.display().to_string();
    Ok(paced::source(name, &caps, fps, move |_, _| {
        let mut buffer = pool.acquire_buffer(None).ok()?;
        let read = {
            let mut map = buffer.get_mut()?.map_writable().ok()?;
            let data = map.as_mut_slice();
            file.read_exact(data).or_else(|_| {
                file.rewind()?;
                file.read_exact(data)
            })
        };
        if let Err(e) = read {
            tracing::error!(frames = %shown, "the raw frames cannot be read: {e}");
            return None;
        }
        Some(buffer)
    }))
}
