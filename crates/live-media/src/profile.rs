//! Encoder settings as data.

/// H.264 output: size, rate and bitrate; a keyframe every 2 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoProfile {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl VideoProfile {
    /// For detailed goods (fabrics, jewellery): needs a fast computer and about 5 Mb/s
    /// of upload.
    pub const P1080_30: Self = Self {
        width: 1920,
        height: 1080,
        fps: 30,
        bitrate_kbps: 4500,
    };
    pub const P720_30: Self = Self {
        width: 1280,
        height: 720,
        fps: 30,
        bitrate_kbps: 2500,
    };
    pub const P480_30: Self = Self {
        width: 854,
        height: 480,
        fps: 30,
        bitrate_kbps: 1200,
    };
    pub const P360_30: Self = Self {
        width: 640,
        height: 360,
        fps: 30,
        bitrate_kbps: 800,
    };

    /// The profiles a seller picks from by name, largest first.
    pub const NAMED: [(&'static str, Self); 4] = [
        ("1080p30", Self::P1080_30),
        ("720p30", Self::P720_30),
        ("480p30", Self::P480_30),
        ("360p30", Self::P360_30),
    ];

    pub fn by_name(name: &str) -> Option<Self> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// This profile's name, if it is one of [`Self::NAMED`].
    pub fn name(&self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, p)| p == self).map(|(n, _)| *n)
    }

    /// The next smaller named profile (lighter to encode), if there is one.
    pub fn smaller(&self) -> Option<(&'static str, Self)> {
        Self::NAMED
            .iter()
            .find(|(_, p)| p.width * p.height < self.width * self.height)
            .copied()
    }

    /// Frames between keyframes (2 s).
    pub fn keyframe_interval(&self) -> u32 {
        self.fps * 2
    }
}

impl Default for VideoProfile {
    fn default() -> Self {
        Self::P720_30
    }
}

/// AAC output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioProfile {
    pub rate: i32,
    pub channels: i32,
    pub bitrate_kbps: u32,
}

impl Default for AudioProfile {
    fn default() -> Self {
        Self {
            rate: 48_000,
            channels: 2,
            bitrate_kbps: 128,
        }
    }
}

/// Bytes one minute of recording takes with these profiles (a little headroom for the
/// container).
pub fn bytes_per_minute(video: &VideoProfile, audio: &AudioProfile) -> u64 {
    let kbps = u64::from(video.bitrate_kbps) + u64::from(audio.bitrate_kbps);
    kbps * 1000 / 8 * 60 * 105 / 100
}

/// Which H.264 encoder to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncoderChoice {
    /// A hardware encoder when the machine has one that works, else x264.
    #[default]
    Auto,
    /// Always x264.
    Software,
}

/// Hardware H.264 encoders GStreamer knows, in order of preference.
const HARDWARE_H264: [&str; 4] = ["vah264enc", "vaapih264enc", "nvh264enc", "qsvh264enc"];

/// The hardware H.264 encoders present on this machine that actually encode a frame
/// (an element can be installed without its device); probed once per process.
pub fn hardware_h264_encoders() -> &'static [&'static str] {
    static FOUND: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        if crate::init().is_err() {
            return Vec::new();
        }
        HARDWARE_H264
            .into_iter()
            .filter(|name| gst::ElementFactory::find(name).is_some() && encodes_a_frame(name))
            .collect()
    })
}

fn encodes_a_frame(encoder: &str) -> bool {
    use gst::prelude::*;
    let description = format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 ! videoconvert ! {encoder} ! fakesink"
    );
    let Ok(pipeline) = gst::parse::launch(&description) else {
        return false;
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let _ = pipeline.set_state(gst::State::Null);
        return false;
    }
    let done = pipeline.bus().and_then(|bus| {
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
    });
    let _ = pipeline.set_state(gst::State::Null);
    matches!(done.map(|m| m.type_()), Some(gst::MessageType::Eos))
}
