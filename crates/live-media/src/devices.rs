//! Cameras and microphones, as GStreamer's device monitor sees them.

use crate::{MediaError, init};
use gst::prelude::*;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Camera,
    Microphone,
}

#[derive(Clone, Debug)]
pub struct DeviceInfo {
    /// What `--source` and `--microphone` take: the device path where there is one
    /// (cameras), the sound server's name for it (microphones), else its display name.
    pub id: String,
    pub name: String,
    pub kind: DeviceKind,
    /// What it can produce (GStreamer caps).
    pub caps: String,
}

fn id_of(device: &gst::Device) -> String {
    // A PulseAudio device's own name: display names repeat (two of the same headset)
    // and change with the language.
    if device.find_property("internal-name").is_some()
        && let Some(name) = device.property::<Option<String>>("internal-name")
        && !name.is_empty()
    {
        return name;
    }
    device
        .properties()
        .and_then(|p| {
            p.get::<String>("device.path")
                .or_else(|_| p.get::<String>("api.v4l2.path"))
                .or_else(|_| p.get::<String>("node.name"))
                .ok()
        })
        .unwrap_or_else(|| device.display_name().to_string())
}

/// The device monitor, started once and never stopped: it follows cameras and
/// microphones coming and going, and stopping it is not safe with every provider
/// (PipeWire's, 0.3.65, corrupted the heap as its thread ended, now and then: a
/// crash of the whole show).
fn devices() -> Result<Vec<gst::Device>, MediaError> {
    static MONITOR: Mutex<Option<gst::DeviceMonitor>> = Mutex::new(None);
    let mut monitor = MONITOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(monitor) = &*monitor {
        return Ok(monitor.devices().into_iter().collect());
    }
    init()?;
    let started = gst::DeviceMonitor::new();
    started.add_filter(Some("Video/Source"), None);
    started.add_filter(Some("Audio/Source"), None);
    started
        .start()
        .map_err(|e| MediaError::Pipeline(format!("cannot list devices: {e}")))?;
    let devices = started.devices().into_iter().collect();
    *monitor = Some(started);
    Ok(devices)
}

fn probe() -> Result<Vec<(gst::Device, DeviceInfo)>, MediaError> {
    let devices = devices()?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let kind = if d.has_classes("Video") {
                DeviceKind::Camera
            } else {
                DeviceKind::Microphone
            };
            let info = DeviceInfo {
                id: id_of(&d),
                name: d.display_name().to_string(),
                kind,
                caps: d.caps().map(|c| c.to_string()).unwrap_or_default(),
            };
            (d, info)
        })
        .collect())
}

/// Every camera and microphone present now.
pub fn list_devices() -> Result<Vec<DeviceInfo>, MediaError> {
    Ok(probe()?.into_iter().map(|(_, info)| info).collect())
}

/// A source element (named `name`) for the device `id` of `kind` and what the device
/// monitor says of it, or an error that says how to find the right id.
pub(crate) fn open(
    id: &str,
    kind: DeviceKind,
    name: &str,
) -> Result<(gst::Element, DeviceInfo), MediaError> {
    let (device, info) = probe()?
        .into_iter()
        .find(|(_, info)| info.kind == kind && (info.id == id || info.name == id))
        .ok_or_else(|| MediaError::DeviceNotFound {
            id: id.to_owned(),
            kind: match kind {
                DeviceKind::Camera => "camera",
                DeviceKind::Microphone => "microphone",
            },
        })?;
    let element = device
        .create_element(Some(name))
        .map_err(|e| MediaError::Pipeline(format!("cannot open {id}: {e}")))?;
    Ok((element, info))
}
