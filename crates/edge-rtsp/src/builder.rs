//! From depacketized frames to the media model, for push and pull alike: tracks from the
//! parameter sets (SDP or in band), RTP time to media time with the tracks lined up, decode
//! order timestamps for video, damaged units skipped to the next keyframe.
//!
//! **Time.** Each track keeps its RTP clock as timescale; its 32-bit timestamps are unwrapped.
//! The first frame of the session (any track) is the anchor, at media time [`BASE`]. Another
//! track's first frame is placed by the RTCP sender reports when both tracks have one (the
//! encoder's own wall clock: exact), otherwise by arrival time (what a camera without early
//! sender reports allows). Offsets are fixed after that: no mid-stream jumps.
//!
//! **Decode order.** RTP carries presentation times only. With B-frames they are not
//! monotonic, yet fMP4 samples need increasing decode times. A window of
//! [`REORDER_DEPTH`] frames yields decode times as the ascending presentation times (exact
//! for any stream whose reordering fits the window); composition offsets may be negative
//! (edge-cmaf writes signed offsets). Streams without B-frames get DTS = PTS.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_media::{AccessUnit, Codec, MediaEvent, Track, TrackKind};

use crate::h26x::{self, ParamSets, VideoCodec};
use crate::sdp::StreamCodec;

/// Media time of the session's first frame, in seconds (room for tracks placed before it).
pub const BASE: f64 = 10.0;
/// Frames held to derive decode times (4 at 30 fps: 133 ms).
pub const REORDER_DEPTH: usize = 4;
/// How long the tracks wait for every stream's parameters before starting with those ready.
pub const TRACK_WAIT: Duration = Duration::from_secs(3);
/// Sender reports that place a track more than this away from arrival time are not believed
/// (cameras with a wrong clock per track).
pub const MAX_SR_SKEW: f64 = 5.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub codec: StreamCodec,
    pub clock_rate: u32,
}

/// A depacketized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Video { nals: Vec<Bytes>, damaged: bool },
    Audio(Bytes),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuilderCounters {
    /// Frames before the tracks were known, or of a stream not taken.
    pub dropped_early: u64,
    /// Video frames skipped after loss until a keyframe.
    pub skipped_damaged: u64,
    /// Parameter sets that did not make a configuration.
    pub bad_config: u64,
}

struct Reorder {
    q: VecDeque<(i64, h26x::Sample, Instant)>,
    heap: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
}

impl Reorder {
    fn new() -> Self {
        Reorder { q: VecDeque::new(), heap: BinaryHeap::new(), last_dts: None }
    }

    fn pop(&mut self) -> Option<(i64, i64, h26x::Sample, Instant)> {
        let (pts, s, a) = self.q.pop_front()?;
        let mut dts = self.heap.pop().map_or(pts, |r| r.0);
        if let Some(l) = self.last_dts
            && dts <= l
        {
            dts = l + 1;
        }
        self.last_dts = Some(dts);
        Some((dts, pts, s, a))
    }
}

struct Stream {
    spec: StreamSpec,
    track_id: u32,
    last_ext: Option<i64>,
    sr: Option<(f64, u32)>,
    offset: Option<i64>,
    params: ParamSets,
    built_from: Option<ParamSets>,
    track: Option<Track>,
    wait_key: bool,
    reorder: Reorder,
}

pub struct MediaBuilder {
    streams: Vec<Option<Stream>>,
    sent: Option<Vec<Track>>,
    first_arrival: Option<Instant>,
    anchor: Option<(Instant, Option<f64>)>,
    pub counters: BuilderCounters,
}

impl MediaBuilder {
    /// One entry per stream of the session (`None`: not taken). The first video and the first
    /// audio stream are used.
    pub fn new(specs: Vec<Option<StreamSpec>>) -> Self {
        let mut streams: Vec<Option<Stream>> = Vec::new();
        let (mut video, mut audio) = (None, None);
        for (i, s) in specs.iter().enumerate() {
            match s.as_ref().map(|s| &s.codec) {
                Some(StreamCodec::Video { .. }) if video.is_none() => video = Some(i),
                Some(StreamCodec::Aac { .. }) if audio.is_none() => audio = Some(i),
                _ => {}
            }
        }
        for (i, s) in specs.into_iter().enumerate() {
            let id = if Some(i) == video {
                1
            } else if Some(i) == audio {
                if video.is_some() { 2 } else { 1 }
            } else {
                streams.push(None);
                continue;
            };
            streams.push(s.map(|spec| {
                let params = match &spec.codec {
                    StreamCodec::Video { params, .. } => params.clone(),
                    StreamCodec::Aac { .. } => ParamSets::default(),
                };
                Stream {
                    spec,
                    track_id: id,
                    last_ext: None,
                    sr: None,
                    offset: None,
                    params,
                    built_from: None,
                    track: None,
                    wait_key: true,
                    reorder: Reorder::new(),
                }
            }));
        }
        let mut b = MediaBuilder {
            streams,
            sent: None,
            first_arrival: None,
            anchor: None,
            counters: BuilderCounters::default(),
        };
        for i in 0..b.streams.len() {
            b.refresh_track(i);
        }
        b
    }

    /// Whether the stream at this index is used.
    pub fn takes(&self, stream: usize) -> bool {
        self.streams.get(stream).is_some_and(Option::is_some)
    }

    /// The tracks sent so far (the latest `Tracks`).
    pub fn tracks(&self) -> Option<&[Track]> {
        self.sent.as_deref()
    }

    pub fn sender_report(&mut self, stream: usize, ntp_secs: f64, rtp: u32) {
        if let Some(Some(s)) = self.streams.get_mut(stream) {
            s.sr = Some((ntp_secs, rtp));
        }
    }

    fn refresh_track(&mut self, i: usize) {
        let Some(Some(s)) = self.streams.get_mut(i) else { return };
        let track = match &s.spec.codec {
            StreamCodec::Video { codec, .. } => {
                if !s.params.complete(*codec) || s.built_from.as_ref() == Some(&s.params) {
                    return;
                }
                s.built_from = Some(s.params.clone());
                match h26x::build_config(*codec, &s.params) {
                    Ok(cfg) => Track {
                        id: s.track_id,
                        codec: if *codec == VideoCodec::H264 { Codec::H264 } else { Codec::H265 },
                        timescale: s.spec.clock_rate,
                        config: cfg.record,
                        codec_string: cfg.codec_string,
                        width: u16::try_from(cfg.width).unwrap_or(0),
                        height: u16::try_from(cfg.height).unwrap_or(0),
                        sample_rate: 0,
                        channels: 0,
                        bitrate: 0,
                    },
                    Err(e) => {
                        tracing::debug!("RTSP: parameter sets make no configuration: {e}");
                        self.counters.bad_config += 1;
                        return;
                    }
                }
            }
            StreamCodec::Aac { config, .. } => {
                if s.track.is_some() {
                    return;
                }
                let Ok(asc) = edge_rtmp::codec::parse_asc(config) else {
                    self.counters.bad_config += 1;
                    return;
                };
                Track {
                    id: s.track_id,
                    codec: Codec::Aac,
                    timescale: s.spec.clock_rate,
                    config: config.clone(),
                    codec_string: asc.codec_string(),
                    width: 0,
                    height: 0,
                    sample_rate: asc.sample_rate,
                    channels: asc.channels,
                    bitrate: 0,
                }
            }
        };
        s.track = Some(track);
    }

    fn maybe_send_tracks(&mut self, now: Instant, out: &mut Vec<MediaEvent>) {
        let all = self.streams.iter().flatten().all(|s| s.track.is_some());
        let waited = self.first_arrival.is_some_and(|f| now.saturating_duration_since(f) >= TRACK_WAIT);
        let mut ready: Vec<Track> = self.streams.iter().flatten().filter_map(|s| s.track.clone()).collect();
        ready.sort_by_key(|t| t.id);
        if ready.is_empty() || !(all || waited) || self.sent.as_ref() == Some(&ready) {
            return;
        }
        // A new track set starts at a keyframe (the sender skips to one as well).
        if self.sent.is_some() {
            self.flush(out);
        }
        out.push(MediaEvent::Tracks(ready.clone()));
        self.sent = Some(ready);
    }

    /// Feeds one frame with its RTP timestamp.
    pub fn frame(&mut self, stream: usize, rtp_ts: u32, frame: Frame, arrival: Instant, out: &mut Vec<MediaEvent>) {
        self.first_arrival.get_or_insert(arrival);
        let Some(Some(s)) = self.streams.get_mut(stream) else {
            self.counters.dropped_early += 1;
            return;
        };
        let ext = match s.last_ext {
            None => i64::from(rtp_ts),
            Some(last) => last + i64::from(rtp_ts.wrapping_sub(last as u32) as i32),
        };
        s.last_ext = Some(ext);
        let clock = f64::from(s.spec.clock_rate.max(1));
        if s.offset.is_none() {
            let wall = s.sr.map(|(ntp, rtp)| ntp + f64::from(rtp_ts.wrapping_sub(rtp) as i32) / clock);
            let delta = match self.anchor {
                None => {
                    self.anchor = Some((arrival, wall));
                    0.0
                }
                Some((a_arrival, a_wall)) => {
                    let by_arrival = arrival.saturating_duration_since(a_arrival).as_secs_f64();
                    match (a_wall, wall) {
                        (Some(a), Some(w)) if ((w - a) - by_arrival).abs() <= MAX_SR_SKEW => w - a,
                        _ => by_arrival,
                    }
                }
            };
            s.offset = Some(((BASE + delta) * clock).round() as i64 - ext);
        }
        let t = ext + s.offset.unwrap_or(0);
        let track_id = s.track_id;
        let mut units = Vec::new();
        match frame {
            Frame::Video { nals, damaged } => {
                let StreamCodec::Video { codec, .. } = s.spec.codec else { return };
                let Some(sample) = h26x::to_sample(codec, &nals, &mut s.params) else { return };
                if damaged {
                    s.wait_key = true;
                }
                if s.wait_key && (damaged || !sample.keyframe) {
                    self.counters.skipped_damaged += 1;
                    // Parameter sets may still have arrived with it.
                    self.refresh_track(stream);
                    return;
                }
                s.wait_key = false;
                s.reorder.heap.push(Reverse(t));
                s.reorder.q.push_back((t, sample, arrival));
                while s.reorder.q.len() > REORDER_DEPTH {
                    units.extend(s.reorder.pop());
                }
            }
            Frame::Audio(data) => {
                units.push((t, t, h26x::Sample { data, keyframe: true }, arrival));
            }
        }
        self.refresh_track(stream);
        self.maybe_send_tracks(arrival, out);
        self.emit(track_id, units, out);
    }

    fn emit(&mut self, track: u32, units: Vec<(i64, i64, h26x::Sample, Instant)>, out: &mut Vec<MediaEvent>) {
        let sent = self.sent.as_ref().is_some_and(|t| t.iter().any(|t| t.id == track));
        for (dts, pts, s, arrival) in units {
            if !sent {
                self.counters.dropped_early += 1;
                continue;
            }
            out.push(MediaEvent::Unit(AccessUnit { track, dts, pts, keyframe: s.keyframe, data: s.data, arrival }));
        }
    }

    /// Sends what the reorder windows hold (at the end of a session).
    pub fn flush(&mut self, out: &mut Vec<MediaEvent>) {
        for i in 0..self.streams.len() {
            let Some(Some(s)) = self.streams.get_mut(i) else { continue };
            let id = s.track_id;
            let mut units = Vec::new();
            while let Some(u) = s.reorder.pop() {
                units.push(u);
            }
            self.emit(id, units, out);
        }
    }

    /// Whether the stream is video (for tests and statistics).
    pub fn kind(&self, stream: usize) -> Option<TrackKind> {
        self.streams.get(stream)?.as_ref().map(|s| match s.spec.codec {
            StreamCodec::Video { .. } => TrackKind::Video,
            StreamCodec::Aac { .. } => TrackKind::Audio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depack::AacLayout;
    use edge_ts::synth;

    fn specs(with_sps: bool) -> Vec<Option<StreamSpec>> {
        let mut params = ParamSets::default();
        if with_sps {
            params.add_nal(VideoCodec::H264, synth::H264_SPS);
            params.add_nal(VideoCodec::H264, synth::H264_PPS);
        }
        vec![
            Some(StreamSpec {
                codec: StreamCodec::Aac {
                    config: Bytes::from_static(&[0x11, 0x90]),
                    layout: AacLayout { size_length: 13, index_length: 3, index_delta_length: 3, frame_samples: 1024 },
                },
                clock_rate: 48000,
            }),
            Some(StreamSpec { codec: StreamCodec::Video { codec: VideoCodec::H264, params }, clock_rate: 90000 }),
        ]
    }

    fn nal(b: &[u8]) -> Bytes {
        Bytes::copy_from_slice(b)
    }

    fn units(out: &[MediaEvent], track: u32) -> Vec<(i64, i64, bool)> {
        out.iter()
            .filter_map(|e| match e {
                MediaEvent::Unit(u) if u.track == track => Some((u.dts, u.pts, u.keyframe)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn b_frames_get_increasing_decode_times_and_tracks_line_up() {
        let mut b = MediaBuilder::new(specs(true));
        let t0 = Instant::now();
        let mut out = Vec::new();
        // Decode order I P B B P B B, presentation 0 3 1 2 6 4 5 (3000 ticks per frame).
        let order = [0u32, 3, 1, 2, 6, 4, 5];
        let base = 4_294_000_000u32; // wraps during the test
        for (i, p) in order.iter().enumerate() {
            let nals = if i == 0 { vec![nal(&[0x65, 1])] } else { vec![nal(&[0x41, 1])] };
            let at = t0 + Duration::from_millis(33 * i as u64);
            b.frame(1, base.wrapping_add(p * 3000), Frame::Video { nals, damaged: false }, at, &mut out);
        }
        // Audio's first frame arrives 100 ms after the video's (no sender reports).
        b.frame(0, 77, Frame::Audio(nal(&[1, 2])), t0 + Duration::from_millis(100), &mut out);
        b.flush(&mut out);
        let MediaEvent::Tracks(t) = &out[0] else { panic!("{out:?}") };
        assert_eq!((t[0].id, t[0].codec, t[1].id, t[1].codec), (1, Codec::H264, 2, Codec::Aac));
        let v = units(&out, 1);
        let start = (BASE * 90000.0) as i64;
        let dts: Vec<i64> = v.iter().map(|u| (u.0 - start) / 3000).collect();
        let pts: Vec<i64> = v.iter().map(|u| (u.1 - start) / 3000).collect();
        assert_eq!(dts, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(pts, [0, 3, 1, 2, 6, 4, 5]);
        assert!(v[0].2 && !v[1].2);
        let a = units(&out, 2);
        assert_eq!(a[0].0, ((BASE + 0.1) * 48000.0).round() as i64);
    }

    #[test]
    fn sender_reports_place_tracks_and_damage_waits_for_a_keyframe() {
        let mut b = MediaBuilder::new(specs(true));
        let t0 = Instant::now();
        let mut out = Vec::new();
        b.sender_report(1, 1000.0, 90_000);
        b.sender_report(0, 1000.0, 48_000);
        b.frame(1, 90_000 + 9000, Frame::Video { nals: vec![nal(&[0x65])], damaged: false }, t0, &mut out);
        // Audio 0.05 s later by the encoder's clock, though it arrived 1 s later.
        b.frame(0, 48_000 + 7200, Frame::Audio(nal(&[1])), t0 + Duration::from_millis(50), &mut out);
        assert_eq!(units(&out, 2)[0].0, ((BASE + 0.05) * 48000.0).round() as i64);
        b.frame(1, 99_000 + 3000, Frame::Video { nals: vec![nal(&[0x41])], damaged: true }, t0, &mut out);
        b.frame(1, 99_000 + 6000, Frame::Video { nals: vec![nal(&[0x41])], damaged: false }, t0, &mut out);
        b.frame(1, 99_000 + 9000, Frame::Video { nals: vec![nal(&[0x65])], damaged: false }, t0, &mut out);
        b.flush(&mut out);
        assert_eq!(units(&out, 1).len(), 2, "the damaged frame and its dependant are skipped");
        assert_eq!(b.counters.skipped_damaged, 2);
    }

    #[test]
    fn parameter_sets_in_band_when_the_sdp_has_none() {
        let mut b = MediaBuilder::new(specs(false));
        let t0 = Instant::now();
        let mut out = Vec::new();
        b.frame(0, 0, Frame::Audio(nal(&[1])), t0, &mut out);
        assert!(out.is_empty(), "waits for the video track");
        let idr = vec![nal(synth::H264_SPS), nal(synth::H264_PPS), nal(&[0x65, 1])];
        for i in 0..=REORDER_DEPTH as u32 {
            let f = if i == 0 { idr.clone() } else { vec![nal(&[0x41])] };
            b.frame(1, i * 3000, Frame::Video { nals: f, damaged: false }, t0, &mut out);
        }
        let MediaEvent::Tracks(t) = &out[0] else { panic!() };
        assert_eq!((t.len(), t[0].width), (2, 1280));
        assert_eq!(units(&out, 1).len(), 1);
        assert_eq!(b.counters.dropped_early, 1);
        // Audio alone after the wait, when video never says its parameters.
        let mut b = MediaBuilder::new(specs(false));
        let mut out = Vec::new();
        b.frame(0, 0, Frame::Audio(nal(&[1])), t0, &mut out);
        b.frame(0, 1024, Frame::Audio(nal(&[1])), t0 + TRACK_WAIT, &mut out);
        let MediaEvent::Tracks(t) = &out[0] else { panic!() };
        assert_eq!(t.len(), 1);
    }
}
