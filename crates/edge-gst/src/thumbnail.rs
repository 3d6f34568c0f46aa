//! Thumbnails for the console (`rms-edge thumbnail`): a JPEG of an event's newest keyframe, or
//! a frame grabbed from an idle capture device. Runs in a child process like the probes, so a
//! decoder or driver that hangs or crashes costs one picture, never the appliance.
//!
//! Input on stdin (keyframe mode): the worker protocol's `Tracks` (the one video track, with
//! its decoder configuration) then one `Unit` (the keyframe), then end of file.

use std::io::Read;
use std::time::Duration;

use edge_media::Codec;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use crate::proto::{Decoder, Msg};

/// Largest thumbnail width (the range is [`crate::THUMBNAIL_WIDTHS`]).
pub const MAX_WIDTH: u32 = *crate::THUMBNAIL_WIDTHS.end();
/// Longest a thumbnail may take before it is given up.
const DEADLINE: Duration = Duration::from_secs(8);

/// The scaling and encoding tail of every thumbnail pipeline.
fn tail(width: u32) -> String {
    format!(
        "videoconvert ! videoscale ! video/x-raw,width={},pixel-aspect-ratio=1/1 ! jpegenc quality=80 ! appsink name=out sync=false max-buffers=1 drop=true",
        width.clamp(*crate::THUMBNAIL_WIDTHS.start(), MAX_WIDTH) & !1
    )
}

/// Reads the keyframe from `input` (worker protocol frames) and returns it as a JPEG.
pub fn from_keyframe(mut input: impl Read, width: u32) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    input.read_to_end(&mut raw).map_err(|e| format!("reading the keyframe: {e}"))?;
    let mut dec = Decoder::new();
    dec.push(&raw);
    let (mut track, mut unit) = (None, None);
    while let Some(m) = dec.next_msg().map_err(|e| format!("bad thumbnail input: {e}"))? {
        match m {
            Msg::Tracks(t) => track = t.into_iter().find(|t| matches!(t.codec, Codec::H264 | Codec::H265)),
            Msg::Unit(u) => unit = Some(u),
            _ => {}
        }
    }
    let track = track.ok_or("no video track in the thumbnail input")?;
    let unit = unit.ok_or("no keyframe in the thumbnail input")?;
    crate::pipeline::init()?;
    let (media, format, parse, decode) = match track.codec {
        Codec::H265 => ("video/x-h265", "hvc1", "h265parse", "avdec_h265"),
        _ => ("video/x-h264", "avc", "h264parse", "avdec_h264"),
    };
    let desc = format!("appsrc name=src format=time ! {parse} ! {decode} ! {}", tail(width));
    let pipeline = launch(&desc)?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc in the thumbnail pipeline")?;
    src.set_caps(Some(
        &gst::Caps::builder(media)
            .field("stream-format", format)
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(track.config.to_vec()))
            .build(),
    ));
    let mut buf = gst::Buffer::from_slice(unit.data.to_vec());
    {
        let b = buf.get_mut().expect("a new buffer is writable");
        b.set_pts(gst::ClockTime::ZERO);
        b.set_dts(gst::ClockTime::ZERO);
    }
    let run = || -> Result<Vec<u8>, String> {
        src.push_buffer(buf).map_err(|e| format!("decoding the keyframe: {e:?}"))?;
        src.end_of_stream().map_err(|e| format!("decoding the keyframe: {e:?}"))?;
        first_jpeg(&pipeline)
    };
    let out = run();
    let _ = pipeline.set_state(gst::State::Null);
    out
}

/// Grabs a frame from a capture device that no event is using. A few frames are let through
/// first: many devices (UVC cameras, HDMI cards locking on) start with dark or partial frames.
pub fn from_device(path: &str, width: u32) -> Result<Vec<u8>, String> {
    crate::pipeline::init()?;
    let node = path.replace(['"', '\\'], "");
    let desc = format!("v4l2src device=\"{node}\" num-buffers=6 ! decodebin ! {}", tail(width));
    let pipeline = launch(&desc)?;
    let out = last_jpeg(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    out
}

fn launch(desc: &str) -> Result<gst::Pipeline, String> {
    let p = gst::parse::launch(desc)
        .map_err(|e| format!("thumbnail pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "thumbnail pipeline is not a pipeline".to_owned())?;
    p.set_state(gst::State::Playing).map_err(|e| format!("thumbnail pipeline cannot start: {e}"))?;
    Ok(p)
}

fn sink(p: &gst::Pipeline) -> Result<gst_app::AppSink, String> {
    p.by_name("out").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or_else(|| "no appsink".to_owned())
}

fn bytes_of(sample: &gst::Sample) -> Result<Vec<u8>, String> {
    let b = sample.buffer().ok_or("an empty thumbnail")?;
    let map = b.map_readable().map_err(|e| e.to_string())?;
    Ok(map.as_slice().to_vec())
}

fn first_jpeg(p: &gst::Pipeline) -> Result<Vec<u8>, String> {
    let s = sink(p)?;
    match s.try_pull_sample(gst::ClockTime::from_mseconds(DEADLINE.as_millis() as u64)) {
        Some(sample) => bytes_of(&sample),
        None => Err(bus_error(p).unwrap_or_else(|| "the keyframe did not decode in time".into())),
    }
}

/// The last frame before the source ends (`num-buffers`), or the latest one at the deadline.
fn last_jpeg(p: &gst::Pipeline) -> Result<Vec<u8>, String> {
    let s = sink(p)?;
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut last = None;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match s.try_pull_sample(gst::ClockTime::from_mseconds(left.as_millis() as u64)) {
            Some(sample) => last = Some(sample),
            None => break, // end of stream, an error, or the deadline
        }
    }
    match last {
        Some(sample) => bytes_of(&sample),
        None => Err(bus_error(p).unwrap_or_else(|| "the device gave no picture in time".into())),
    }
}

fn bus_error(p: &gst::Pipeline) -> Option<String> {
    let bus = p.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(match e.debug() {
                Some(d) => format!("{} ({d})", e.error()),
                None => e.error().to_string(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_is_even_and_bounded() {
        assert!(tail(321).contains("width=320,"));
        assert!(tail(1).contains("width=16,"));
        assert!(tail(100_000).contains(&format!("width={MAX_WIDTH},")));
    }

    #[test]
    fn input_without_a_keyframe_is_a_clear_error() {
        let mut buf = bytes::BytesMut::new();
        crate::proto::encode(&Msg::Discontinuity, &mut buf);
        assert_eq!(from_keyframe(&buf[..], 320).unwrap_err(), "no video track in the thumbnail input");
        assert!(from_keyframe(&[0u8, 0, 0, 0, 200][..], 320).unwrap_err().starts_with("bad thumbnail input"));
    }

    /// One H.264 keyframe of a test picture (x264enc, AVC framing) and its avcC.
    fn keyframe(w: u32, h: u32) -> (bytes::Bytes, bytes::Bytes) {
        crate::pipeline::init().unwrap();
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width={w},height={h} ! x264enc ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let sample = sink(&p).unwrap().pull_sample().unwrap();
        let caps = sample.caps().unwrap().structure(0).unwrap().get::<gst::Buffer>("codec_data").unwrap();
        let config = bytes::Bytes::from(caps.map_readable().unwrap().as_slice().to_vec());
        let frame = bytes::Bytes::from(bytes_of(&sample).unwrap());
        p.set_state(gst::State::Null).unwrap();
        (config, frame)
    }

    fn h264_track(config: bytes::Bytes) -> edge_media::Track {
        edge_media::Track {
            id: 1,
            codec: Codec::H264,
            timescale: 90_000,
            config,
            codec_string: "avc1.64001e".into(),
            width: 640,
            height: 360,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        }
    }

    #[test]
    fn a_keyframe_becomes_a_jpeg_of_the_asked_width_and_the_pictures_aspect() {
        let (config, frame) = keyframe(640, 360);
        let track = h264_track(config);
        let unit = crate::proto::WireUnit { track: 1, dts: 0, pts: 0, keyframe: true, data: frame };
        let mut input = bytes::BytesMut::new();
        crate::proto::encode(&Msg::Tracks(vec![track]), &mut input);
        crate::proto::encode(&Msg::Unit(unit), &mut input);
        let jpeg = from_keyframe(&input[..], 320).unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG (SOI marker)");
        // The SOF0 marker holds height then width.
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG");
        let (h, w) =
            (u16::from_be_bytes([jpeg[sof + 5], jpeg[sof + 6]]), u16::from_be_bytes([jpeg[sof + 7], jpeg[sof + 8]]));
        assert_eq!((w, h), (320, 180));
        // A corrupt frame is an error, not a hang or a crash.
        let track2 = h264_track(bytes::Bytes::from_static(&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]));
        let mut bad = bytes::BytesMut::new();
        crate::proto::encode(&Msg::Tracks(vec![track2]), &mut bad);
        crate::proto::encode(
            &Msg::Unit(crate::proto::WireUnit {
                track: 1,
                dts: 0,
                pts: 0,
                keyframe: true,
                data: bytes::Bytes::from_static(&[0, 0, 0, 2, 0x65, 0]),
            }),
            &mut bad,
        );
        assert!(from_keyframe(&bad[..], 320).is_err());
    }
}
