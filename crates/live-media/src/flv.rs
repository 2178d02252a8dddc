//! What the RTMP outputs send, in FLV's form: each video or audio message is an FLV
//! tag's body (a short codec header, then the frame), built in the taps' threads.
//! A connection starts with the stream's header: metadata (sizes, rates, codecs,
//! "Feza Live"), then the H.264 and AAC configurations, each a message of its own.

use crate::MediaError;
use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;

/// FLV's codec ids.
const AVC: u8 = 7;
const AAC: u8 = 10;

/// How an output's messages are made for one stream's caps.
pub(crate) struct Header {
    /// The first byte of every audio message: AAC, and mono or stereo.
    audio_flags: u8,
    pub metadata: StreamMetadata,
    /// The AVC sequence header: the H.264 configuration record.
    pub video_config: Bytes,
    /// The AAC sequence header: the AudioSpecificConfig.
    pub audio_config: Bytes,
}

fn missing(what: &str) -> MediaError {
    MediaError::Pipeline(format!("RTMP output: the {what} stream has no codec data"))
}

fn codec_data(caps: &gst::Caps, what: &str) -> Result<Vec<u8>, MediaError> {
    let buffer = caps
        .structure(0)
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .ok_or_else(|| missing(what))?;
    let map = buffer.map_readable().map_err(|_| missing(what))?;
    Ok(map.to_vec())
}

fn field<T: for<'a> gst::glib::value::FromValue<'a> + 'static>(
    caps: &gst::Caps,
    name: &str,
) -> Option<T> {
    caps.structure(0).and_then(|s| s.get::<T>(name).ok())
}

/// `prefix` then `payload`, as one message body.
fn body(prefix: &[u8], payload: &[u8]) -> Bytes {
    let mut data = Vec::with_capacity(prefix.len() + payload.len());
    data.extend_from_slice(prefix);
    data.extend_from_slice(payload);
    Bytes::from(data)
}

impl Header {
    /// The header for H.264 (AVC, with its `codec_data`) and raw AAC caps.
    pub fn new(video: &gst::Caps, audio: &gst::Caps) -> Result<Self, MediaError> {
        let avcc = codec_data(video, "video")?;
        let asc = codec_data(audio, "audio")?;
        let channels = field::<i32>(audio, "channels").unwrap_or(2);
        let audio_flags = (AAC << 4) | 0x0e | u8::from(channels > 1);
        let dimension = |name| field::<i32>(video, name).and_then(|v| u32::try_from(v).ok());
        let metadata = StreamMetadata {
            video_width: dimension("width"),
            video_height: dimension("height"),
            video_codec_id: Some(AVC.into()),
            video_frame_rate: field::<gst::Fraction>(video, "framerate")
                .filter(|f| f.denom() > 0)
                .map(|f| f.numer() as f32 / f.denom() as f32),
            video_bitrate_kbps: None,
            audio_codec_id: Some(AAC.into()),
            audio_bitrate_kbps: None,
            audio_sample_rate: field::<i32>(audio, "rate").and_then(|r| u32::try_from(r).ok()),
            audio_channels: u32::try_from(channels).ok(),
            audio_is_stereo: Some(channels > 1),
            encoder: Some("Feza Live".into()),
        };
        Ok(Self {
            audio_flags,
            metadata,
            video_config: body(&[(1 << 4) | AVC, 0, 0, 0, 0], &avcc),
            audio_config: body(&[audio_flags, 0], &asc),
        })
    }

    /// A message of H.264 (one access unit, AVC), shown `cts_ms` after it is decoded.
    pub fn video(&self, payload: &[u8], cts_ms: i32, keyframe: bool) -> Bytes {
        let frame_type: u8 = if keyframe { 1 } else { 2 };
        let [_, c0, c1, c2] = cts_ms.to_be_bytes();
        body(&[(frame_type << 4) | AVC, 1, c0, c1, c2], payload)
    }

    /// A message of raw AAC (one frame).
    pub fn audio(&self, payload: &[u8]) -> Bytes {
        body(&[self.audio_flags, 1], payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> (gst::Caps, gst::Caps) {
        gst::init().unwrap();
        let video = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("width", 1280)
            .field("height", 720)
            .field("framerate", gst::Fraction::new(30, 1))
            .field("codec_data", gst::Buffer::from_slice([1u8, 0x64, 0, 0x1f]))
            .build();
        let audio = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4)
            .field("rate", 48000)
            .field("channels", 2)
            .field("codec_data", gst::Buffer::from_slice([0x11u8, 0x90]))
            .build();
        (video, audio)
    }

    #[test]
    fn a_video_message_carries_its_kind_and_offset() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        // keyframe + AVC, a NAL unit, composition offset 40 ms, then the frame
        assert_eq!(
            &header.video(&[0xaa; 3], 40, true)[..],
            &[0x17, 1, 0, 0, 40, 0xaa, 0xaa, 0xaa]
        );
        assert_eq!(
            &header.video(&[], 0x01_0203, false)[..],
            &[0x27, 1, 1, 2, 3]
        );
    }

    #[test]
    fn audio_messages_say_aac_and_stereo() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        assert_eq!(&header.audio(&[1, 2])[..], &[0xaf, 1, 1, 2]);
    }

    #[test]
    fn the_header_says_what_the_show_is() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        let m = &header.metadata;
        assert_eq!((m.video_width, m.video_height), (Some(1280), Some(720)));
        assert_eq!(m.video_frame_rate, Some(30.0));
        assert_eq!((m.video_codec_id, m.audio_codec_id), (Some(7), Some(10)));
        assert_eq!(
            (m.audio_sample_rate, m.audio_channels),
            (Some(48000), Some(2))
        );
        assert_eq!(m.encoder.as_deref(), Some("Feza Live"));
        // AVC sequence header, then AAC's
        assert_eq!(
            &header.video_config[..],
            &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]
        );
        assert_eq!(&header.audio_config[..], &[0xaf, 0, 0x11, 0x90]);
    }

    #[test]
    fn no_codec_data_is_a_clear_error() {
        let (_, a) = caps();
        let bare = gst::Caps::builder("video/x-h264").build();
        let err = Header::new(&bare, &a).err().unwrap().to_string();
        assert!(err.contains("video stream has no codec data"), "{err}");
    }
}
