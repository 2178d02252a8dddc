//! FLV framing for the RTMP outputs: each buffer from the taps becomes one FLV tag,
//! the form `rtmp2sink` takes (it reads the tag's header and sends its body as one
//! RTMP message). Framed in the taps' threads, a tag costs one copy of the frame;
//! `flvmux` did the same behind an aggregator thread of its own, woken for every
//! buffer of every output.
//!
//! The stream's header (metadata, then the H.264 and AAC configurations) travels in
//! the caps: `rtmp2sink` sends it first on every connection.

use crate::MediaError;
use amf::Pair;
use amf::amf0::Value;

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
const SCRIPT: u8 = 18;
/// FLV's codec ids.
const AVC: u8 = 7;
const AAC: u8 = 10;

/// What an output's tags are made with: the audio tags' first byte, and the caps
/// carrying the stream's header (metadata, then both configuration records).
pub(crate) struct Header {
    /// The first byte of every audio tag: AAC, and mono or stereo.
    audio_flags: u8,
    /// The caps of the output's source: `video/x-flv` with the header buffers.
    pub caps: gst::Caps,
}

fn missing(what: &str) -> MediaError {
    MediaError::Pipeline(format!("FLV output: the {what} stream has no codec data"))
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

impl Header {
    /// The header for H.264 (AVC, with its `codec_data`) and raw AAC caps.
    pub fn new(video: &gst::Caps, audio: &gst::Caps) -> Result<Self, MediaError> {
        let avcc = codec_data(video, "video")?;
        let asc = codec_data(audio, "audio")?;
        let channels = field::<i32>(audio, "channels").unwrap_or(2);
        let audio_flags = (AAC << 4) | 0x0e | u8::from(channels > 1);

        let mut entries = Vec::new();
        let mut add = |key: &str, value: Value| {
            entries.push(Pair {
                key: key.to_string(),
                value,
            })
        };
        if let (Some(w), Some(h)) = (field::<i32>(video, "width"), field::<i32>(video, "height")) {
            add("width", Value::Number(f64::from(w)));
            add("height", Value::Number(f64::from(h)));
        }
        if let Some(fps) = field::<gst::Fraction>(video, "framerate")
            && fps.denom() > 0
        {
            add(
                "framerate",
                Value::Number(f64::from(fps.numer()) / f64::from(fps.denom())),
            );
        }
        add("videocodecid", Value::Number(f64::from(AVC)));
        add("audiocodecid", Value::Number(f64::from(AAC)));
        if let Some(rate) = field::<i32>(audio, "rate") {
            add("audiosamplerate", Value::Number(f64::from(rate)));
        }
        add("audiosamplesize", Value::Number(16.0));
        add("stereo", Value::Boolean(channels > 1));
        add("encoder", Value::String("Feza Live".into()));
        let mut script = Vec::new();
        for value in [
            Value::String("onMetaData".into()),
            Value::EcmaArray { entries },
        ] {
            value
                .write_to(&mut script)
                .map_err(|e| MediaError::Pipeline(format!("FLV metadata: {e}")))?;
        }

        let headers = [
            tag(SCRIPT, 0, &[], &script),
            tag(VIDEO, 0, &[(1 << 4) | AVC, 0, 0, 0, 0], &avcc),
            tag(AUDIO, 0, &[audio_flags, 0], &asc),
        ]
        .map(|mut b| {
            b.make_mut().set_flags(gst::BufferFlags::HEADER);
            b
        });
        let caps = gst::Caps::builder("video/x-flv")
            .field("streamheader", gst::Array::new(headers))
            .build();
        Ok(Self { audio_flags, caps })
    }

    /// A tag of H.264 (one access unit, AVC), decoded at `dts_ms` and shown
    /// `cts_ms` later.
    pub fn video(&self, payload: &[u8], dts_ms: u64, cts_ms: i32, keyframe: bool) -> gst::Buffer {
        let frame_type: u8 = if keyframe { 1 } else { 2 };
        let [_, c0, c1, c2] = cts_ms.to_be_bytes();
        tag(
            VIDEO,
            dts_ms,
            &[(frame_type << 4) | AVC, 1, c0, c1, c2],
            payload,
        )
    }

    /// A tag of raw AAC (one frame) at `ms`.
    pub fn audio(&self, payload: &[u8], ms: u64) -> gst::Buffer {
        tag(AUDIO, ms, &[self.audio_flags, 1], payload)
    }
}

/// One FLV tag: its 11-byte header, `prefix` and `payload` as its body, and the size
/// of the whole that FLV puts after each tag.
fn tag(kind: u8, ms: u64, prefix: &[u8], payload: &[u8]) -> gst::Buffer {
    let body = prefix.len() + payload.len();
    let mut data = Vec::with_capacity(11 + body + 4);
    data.push(kind);
    data.extend_from_slice(&(body as u32).to_be_bytes()[1..]);
    // 24 bits of milliseconds, then the 8 above them: FLV's clock wraps after 49
    // days, which rtmp2sink carries over.
    let [high, t0, t1, t2] = (ms as u32).to_be_bytes();
    data.extend_from_slice(&[t0, t1, t2, high, 0, 0, 0]);
    data.extend_from_slice(prefix);
    data.extend_from_slice(payload);
    data.extend_from_slice(&((11 + body) as u32).to_be_bytes());
    let mut buffer = gst::Buffer::from_mut_slice(data);
    let t = gst::ClockTime::from_mseconds(ms);
    let b = buffer.make_mut();
    b.set_pts(t);
    b.set_dts(t);
    buffer
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
    fn a_video_tag_carries_its_time_kind_and_offset() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        let tag = header.video(&[0xaa; 3], 0x0123_4567, 40, true);
        let map = tag.map_readable().unwrap();
        // type, body size 8 (5 + 3), time 0x234567 then 0x01 above it, stream 0
        assert_eq!(&map[..11], &[9, 0, 0, 8, 0x23, 0x45, 0x67, 0x01, 0, 0, 0]);
        // keyframe + AVC, a NAL unit, composition offset 40 ms
        assert_eq!(&map[11..16], &[0x17, 1, 0, 0, 40]);
        assert_eq!(&map[16..19], &[0xaa; 3]);
        assert_eq!(&map[19..], &19u32.to_be_bytes());
        assert_eq!(tag.pts(), Some(gst::ClockTime::from_mseconds(0x0123_4567)));
    }

    #[test]
    fn audio_tags_say_aac_and_stereo() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        let tag = header.audio(&[1, 2], 21);
        let map = tag.map_readable().unwrap();
        assert_eq!(&map[..13], &[8, 0, 0, 4, 0, 0, 21, 0, 0, 0, 0, 0xaf, 1]);
    }

    #[test]
    fn the_stream_header_is_metadata_then_both_configurations() {
        let (v, a) = caps();
        let header = Header::new(&v, &a).unwrap();
        let s = header.caps.structure(0).unwrap();
        let tags = s.get::<gst::Array>("streamheader").unwrap();
        let tags: Vec<Vec<u8>> = tags
            .iter()
            .map(|t| {
                let b = t.get::<gst::Buffer>().unwrap();
                assert!(b.flags().contains(gst::BufferFlags::HEADER));
                b.map_readable().unwrap().to_vec()
            })
            .collect();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0][0], 18);
        let mut body = &tags[0][11..tags[0].len() - 4];
        assert_eq!(
            Value::read_from(&mut body).unwrap(),
            Value::String("onMetaData".into())
        );
        let Value::EcmaArray { entries } = Value::read_from(&mut body).unwrap() else {
            panic!("metadata is not an ECMA array");
        };
        let get = |k: &str| entries.iter().find(|p| p.key == k).map(|p| p.value.clone());
        assert_eq!(get("width"), Some(Value::Number(1280.0)));
        assert_eq!(get("height"), Some(Value::Number(720.0)));
        assert_eq!(get("framerate"), Some(Value::Number(30.0)));
        // AVC sequence header, then AAC's
        assert_eq!(&tags[1][11..16], &[0x17, 0, 0, 0, 0]);
        assert_eq!(&tags[1][16..20], &[1, 0x64, 0, 0x1f]);
        assert_eq!(&tags[2][11..15], &[0xaf, 0, 0x11, 0x90]);
    }

    #[test]
    fn no_codec_data_is_a_clear_error() {
        let (_, a) = caps();
        let bare = gst::Caps::builder("video/x-h264").build();
        let err = Header::new(&bare, &a).err().unwrap().to_string();
        assert!(err.contains("video stream has no codec data"), "{err}");
    }
}
