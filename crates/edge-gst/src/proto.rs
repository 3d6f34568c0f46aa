//! The transcode worker's wire protocol (a pipe between `rms-edge serve` and
//! `rms-edge transcode-worker`): length-prefixed frames, sans-IO.
//!
//! Frame: `u32` big-endian length of what follows (1..=[`MAX_FRAME`]), a `u8` type, the payload.
//! Access units and track sets are binary (they are the bulk); configuration, statistics and
//! pipeline events are JSON. Both directions use the same framing; a malformed frame is an error
//! that ends the connection (the supervisor restarts the worker), never a panic.

use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use edge_media::{AccessUnit, Codec, Track};
use serde::{Deserialize, Serialize};

use crate::ladder::Preset;

/// Largest frame accepted (a 4K intra frame is far below).
pub const MAX_FRAME: usize = 32 << 20;

const T_CONFIG: u8 = 1;
const T_TRACKS: u8 = 2;
const T_UNIT: u8 = 3;
const T_DISCONTINUITY: u8 = 4;
const T_END: u8 = 5;
const T_STATS: u8 = 6;
const T_EVENT: u8 = 7;

/// What the supervisor tells a new worker first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerConfig {
    pub event: String,
    pub preset: Preset,
    /// `encoding.keyFrameInterval` (default 2 s): the forced GOP of every rendition.
    pub key_frame_interval_ms: u32,
    /// x264's `speed-preset` on the software path (e.g. `veryfast`).
    pub x264_speed_preset: String,
    /// Capture events: the worker's source is this local device, not the units on its stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureSpec>,
}

/// The local device a capture worker reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    pub device: crate::capture::CaptureDeviceId,
    /// The node to open (the by-id symlink, or /dev/videoN).
    pub path: String,
    /// Pass-through event: one rendition at the device's size instead of the preset's ladder.
    pub single_rendition: bool,
    /// Media time of the first captured frame, in milliseconds (the event's timeline goes on
    /// across worker restarts).
    pub origin_ms: u64,
}

/// An access unit on the wire (arrival time is local to each side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireUnit {
    pub track: u32,
    pub dts: i64,
    pub pts: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

impl WireUnit {
    pub fn from_au(au: &AccessUnit) -> Self {
        WireUnit { track: au.track, dts: au.dts, pts: au.pts, keyframe: au.keyframe, data: au.data.clone() }
    }
    pub fn into_au(self, arrival: Instant) -> AccessUnit {
        AccessUnit {
            track: self.track,
            dts: self.dts,
            pts: self.pts,
            keyframe: self.keyframe,
            data: self.data,
            arrival,
        }
    }
}

/// Per-rendition output numbers since the worker started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RenditionStats {
    pub track: u32,
    pub width: u16,
    pub height: u16,
    /// Target bitrate, bit/s.
    pub target_bitrate: u32,
    pub frames: u64,
    pub bytes: u64,
}

/// Sent by the worker about once a second (also its heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub encoder: String,
    pub renditions: Vec<RenditionStats>,
    pub input_frames: u64,
    /// Frames the frame-rate converter dropped (input above 30 fps, late frames).
    pub dropped_frames: u64,
    /// Output media seconds produced and wall-clock seconds spent since the pipeline started: their
    /// ratio is the encoder speed against real time.
    pub media_secs: f64,
    pub wall_secs: f64,
}

/// Bus messages of the worker's pipeline, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WorkerEvent {
    /// A pipeline was built for an input.
    Started {
        encoder: String,
        reason: String,
        renditions: Vec<(u16, u16, u32)>,
        /// Capture workers: the device mode in use (e.g. `MJPEG 1920x1080 30/1 from /dev/...`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        input: String,
    },
    Warning {
        source: String,
        message: String,
    },
    Error {
        source: String,
        message: String,
    },
    /// Everything queued was encoded (after an input End).
    Drained,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Config(WorkerConfig),
    Tracks(Vec<Track>),
    Unit(WireUnit),
    Discontinuity,
    End,
    Stats(WorkerStats),
    Event(WorkerEvent),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("frame length {0} out of range")]
    Length(usize),
    #[error("unknown frame type {0}")]
    Type(u8),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("bad {0}")]
    Bad(&'static str),
    #[error("bad JSON: {0}")]
    Json(String),
}

fn codec_code(c: Codec) -> u8 {
    match c {
        Codec::H264 => 1,
        Codec::H265 => 2,
        Codec::Aac => 3,
    }
}

/// Appends one encoded frame to `out`.
pub fn encode(msg: &Msg, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32(0);
    match msg {
        Msg::Config(c) => {
            out.put_u8(T_CONFIG);
            out.put_slice(&serde_json::to_vec(c).expect("serializable"));
        }
        Msg::Tracks(tracks) => {
            out.put_u8(T_TRACKS);
            out.put_u16(tracks.len() as u16);
            for t in tracks {
                out.put_u32(t.id);
                out.put_u8(codec_code(t.codec));
                out.put_u32(t.timescale);
                out.put_u16(t.width);
                out.put_u16(t.height);
                out.put_u32(t.sample_rate);
                out.put_u16(t.channels);
                out.put_u32(t.bitrate);
                out.put_u16(t.codec_string.len() as u16);
                out.put_slice(t.codec_string.as_bytes());
                out.put_u32(t.config.len() as u32);
                out.put_slice(&t.config);
            }
        }
        Msg::Unit(u) => {
            out.put_u8(T_UNIT);
            out.put_u32(u.track);
            out.put_i64(u.dts);
            out.put_i64(u.pts);
            out.put_u8(u8::from(u.keyframe));
            out.put_slice(&u.data);
        }
        Msg::Discontinuity => out.put_u8(T_DISCONTINUITY),
        Msg::End => out.put_u8(T_END),
        Msg::Stats(s) => {
            out.put_u8(T_STATS);
            out.put_slice(&serde_json::to_vec(s).expect("serializable"));
        }
        Msg::Event(e) => {
            out.put_u8(T_EVENT);
            out.put_slice(&serde_json::to_vec(e).expect("serializable"));
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes read from the peer.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_msg(&mut self) -> Result<Option<Msg>, ProtoError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(ProtoError::Length(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        let frame = self.buf.split_to(len).freeze();
        decode_frame(frame).map(Some)
    }
}

fn need(b: &Bytes, n: usize, what: &'static str) -> Result<(), ProtoError> {
    if b.remaining() < n { Err(ProtoError::Truncated(what)) } else { Ok(()) }
}

fn json<T: for<'a> Deserialize<'a>>(b: &[u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(b).map_err(|e| ProtoError::Json(e.to_string()))
}

fn decode_frame(mut b: Bytes) -> Result<Msg, ProtoError> {
    let t = b.get_u8();
    Ok(match t {
        T_CONFIG => Msg::Config(json(&b)?),
        T_TRACKS => {
            need(&b, 2, "track count")?;
            let n = b.get_u16();
            let mut tracks = Vec::with_capacity(usize::from(n).min(16));
            for _ in 0..n {
                need(&b, 4 + 1 + 4 + 2 + 2 + 4 + 2 + 4 + 2, "track")?;
                let id = b.get_u32();
                let codec = match b.get_u8() {
                    1 => Codec::H264,
                    2 => Codec::H265,
                    3 => Codec::Aac,
                    _ => return Err(ProtoError::Bad("codec")),
                };
                let timescale = b.get_u32();
                let width = b.get_u16();
                let height = b.get_u16();
                let sample_rate = b.get_u32();
                let channels = b.get_u16();
                let bitrate = b.get_u32();
                let cs_len = usize::from(b.get_u16());
                need(&b, cs_len, "codec string")?;
                let codec_string =
                    String::from_utf8(b.split_to(cs_len).to_vec()).map_err(|_| ProtoError::Bad("codec string"))?;
                need(&b, 4, "config length")?;
                let cfg_len = b.get_u32() as usize;
                need(&b, cfg_len, "config")?;
                let config = b.split_to(cfg_len);
                tracks.push(Track {
                    id,
                    codec,
                    timescale,
                    config,
                    codec_string,
                    width,
                    height,
                    sample_rate,
                    channels,
                    bitrate,
                });
            }
            if b.has_remaining() {
                return Err(ProtoError::Bad("trailing bytes after tracks"));
            }
            Msg::Tracks(tracks)
        }
        T_UNIT => {
            need(&b, 4 + 8 + 8 + 1, "unit header")?;
            let track = b.get_u32();
            let dts = b.get_i64();
            let pts = b.get_i64();
            let keyframe = match b.get_u8() {
                0 => false,
                1 => true,
                _ => return Err(ProtoError::Bad("unit flags")),
            };
            Msg::Unit(WireUnit { track, dts, pts, keyframe, data: b })
        }
        T_DISCONTINUITY | T_END if b.has_remaining() => return Err(ProtoError::Bad("payload on a control frame")),
        T_DISCONTINUITY => Msg::Discontinuity,
        T_END => Msg::End,
        T_STATS => Msg::Stats(json(&b)?),
        T_EVENT => Msg::Event(json(&b)?),
        other => return Err(ProtoError::Type(other)),
    })
}

/// Fuzz entry point: decodes arbitrary bytes (split at `split`) and re-encodes whatever decodes,
/// checking the round trip. Never panics on any input.
pub fn fuzz_decode(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut d = Decoder::new();
    let mut msgs = Vec::new();
    'parts: for part in [&data[..split], &data[split..]] {
        d.push(part);
        loop {
            match d.next_msg() {
                Ok(Some(m)) => msgs.push(m),
                Ok(None) => break,
                Err(_) => break 'parts,
            }
        }
    }
    for m in msgs {
        let mut out = BytesMut::new();
        encode(&m, &mut out);
        let mut again = Decoder::new();
        again.push(&out);
        let back = again.next_msg().expect("re-encoded frame decodes").expect("complete");
        let mut out2 = BytesMut::new();
        encode(&back, &mut out2);
        assert_eq!(out, out2, "round trip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: u32, codec: Codec) -> Track {
        Track {
            id,
            codec,
            timescale: 90_000,
            config: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
            codec_string: "avc1.64001f".into(),
            width: 1280,
            height: 720,
            sample_rate: 0,
            channels: 0,
            bitrate: 3_500_000,
        }
    }

    fn all_msgs() -> Vec<Msg> {
        vec![
            Msg::Config(WorkerConfig {
                event: "ev".into(),
                preset: Preset::Default720p,
                key_frame_interval_ms: 2000,
                x264_speed_preset: "veryfast".into(),
                capture: None,
            }),
            Msg::Config(WorkerConfig {
                event: "cam".into(),
                preset: Preset::Default1080p,
                key_frame_interval_ms: 2000,
                x264_speed_preset: "veryfast".into(),
                capture: Some(CaptureSpec {
                    device: crate::capture::CaptureDeviceId::parse("usb-cam-video-index0").unwrap(),
                    path: "/dev/v4l/by-id/usb-cam-video-index0".into(),
                    single_rendition: true,
                    origin_ms: 12_345,
                }),
            }),
            Msg::Tracks(vec![track(1, Codec::H264), track(2, Codec::Aac)]),
            Msg::Unit(WireUnit {
                track: 1,
                dts: -5,
                pts: 3000,
                keyframe: true,
                data: Bytes::from_static(b"\0\0\0\x01e"),
            }),
            Msg::Discontinuity,
            Msg::End,
            Msg::Stats(WorkerStats { encoder: "x264enc".into(), input_frames: 3, ..Default::default() }),
            Msg::Event(WorkerEvent::Error { source: "x264enc0".into(), message: "boom".into() }),
        ]
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let msgs = all_msgs();
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode(m, &mut wire);
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            d.push(&[*b]);
            while let Some(m) = d.next_msg().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let cases: Vec<(Vec<u8>, ProtoError)> = vec![
            (vec![0, 0, 0, 0], ProtoError::Length(0)),
            (vec![0x7f, 0, 0, 0], ProtoError::Length(0x7f00_0000)),
            (vec![0, 0, 0, 1, 99], ProtoError::Type(99)),
            (vec![0, 0, 0, 3, T_UNIT, 0, 0], ProtoError::Truncated("unit header")),
            (vec![0, 0, 0, 2, T_END, 0], ProtoError::Bad("payload on a control frame")),
            (vec![0, 0, 0, 3, T_TRACKS, 0, 1], ProtoError::Truncated("track")),
        ];
        for (bytes, err) in cases {
            let mut d = Decoder::new();
            d.push(&bytes);
            assert_eq!(d.next_msg(), Err(err), "{bytes:?}");
        }
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 5, T_STATS, b'{', b'x']);
        assert!(d.next_msg().is_ok_and(|m| m.is_none()), "incomplete frames wait");
    }

    fn seeds_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/worker_proto")
    }

    /// The committed fuzz seeds are the encoding of every message as it is now: a change to the
    /// wire format fails here until the seeds are regenerated
    /// (`RMS_EDGE_WRITE_SEEDS=1 cargo test -p edge-gst --lib seeds_are_current`).
    #[test]
    fn seeds_are_current() {
        let write = std::env::var_os("RMS_EDGE_WRITE_SEEDS").is_some();
        if write {
            std::fs::create_dir_all(seeds_dir()).unwrap();
        }
        for (i, m) in all_msgs().iter().enumerate() {
            let mut wire = BytesMut::new();
            encode(m, &mut wire);
            // First byte: where the fuzz body splits the input (here: after the whole frame).
            let mut seed = vec![wire.len().min(255) as u8];
            seed.extend_from_slice(&wire);
            let path = seeds_dir().join(format!("seed-{i}"));
            if write {
                std::fs::write(&path, &seed).unwrap();
            } else {
                assert_eq!(std::fs::read(&path).ok(), Some(seed), "{path:?} is stale: regenerate the seeds");
            }
        }
    }

    /// The fuzz body on every seed and deterministic mutations of it (what stable CI can run).
    #[test]
    fn fuzz_body_on_seeds_and_mutations() {
        let Ok(rd) = std::fs::read_dir(seeds_dir()) else { panic!("no seeds in {:?}", seeds_dir()) };
        let mut n = 0;
        for e in rd {
            let seed = std::fs::read(e.unwrap().path()).unwrap();
            fuzz_decode(&seed);
            let mut x: u32 = 0x9e37_79b9;
            for _ in 0..500 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let mut m = seed.clone();
                let at = x as usize % m.len().max(1);
                if !m.is_empty() {
                    m[at] = (x >> 8) as u8;
                }
                m.truncate(m.len() - (x as usize >> 20) % 3.min(m.len()));
                fuzz_decode(&m);
            }
            n += 1;
        }
        assert!(n >= 7, "{n} seeds");
    }

    #[test]
    fn fuzz_entry_survives_samples() {
        let mut wire = BytesMut::new();
        for m in all_msgs() {
            encode(&m, &mut wire);
        }
        for cut in 0..wire.len() {
            let mut v = vec![cut as u8];
            v.extend_from_slice(&wire[..cut]);
            fuzz_decode(&v);
            let mut flipped = wire.to_vec();
            flipped[cut] ^= 0x5a;
            fuzz_decode(&flipped);
        }
    }
}
