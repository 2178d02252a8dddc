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

    pub fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "720p30" => Self::P720_30,
            "480p30" => Self::P480_30,
            "360p30" => Self::P360_30,
            _ => return None,
        })
    }

    /// Frames between keyframes (2 s).
    pub fn keyframe_interval(&self) -> u32 {
        self.fps * 2
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
