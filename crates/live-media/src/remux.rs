//! The finished recording, remuxed (no re-encode) into an MP4 a browser plays and seeks:
//! `moov` at the front.

use crate::{MediaError, init};
use gst::prelude::*;
use std::path::Path;

pub fn remux_to_mp4(input: &Path, output: &Path) -> Result<(), MediaError> {
    init()?;
    let quote = |p: &Path| format!("\"{}\"", p.display().to_string().replace('"', "\\\""));
    let description = format!(
        "filesrc location={} ! matroskademux name=demux \
         mp4mux name=mux faststart=true ! filesink location={} \
         demux.video_0 ! queue ! h264parse ! mux. \
         demux.audio_0 ! queue ! aacparse ! mux.",
        quote(input),
        quote(output)
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| MediaError::Finalize(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Finalize("not a pipeline".into()))?;
    pipeline.set_state(gst::State::Playing)?;
    let msg = pipeline.bus().and_then(|bus| {
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
    });
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(err)) => Err(MediaError::Finalize(format!(
            "remuxing {} failed: {}",
            input.display(),
            err.error()
        ))),
        _ => Err(MediaError::Finalize(format!(
            "remuxing {} timed out",
            input.display()
        ))),
    }
}
