//! Per-session ingest statistics, shared with the appliance for getStatus, stream events and
//! track heartbeats. Written by the connection task, read whenever the appliance likes.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use edge_media::{Track, TrackKind};

/// Seconds of arrival history the bitrate is averaged over.
pub const BITRATE_WINDOW_SECS: u64 = 5;

/// What `onMetaData` said (kept for status; never used for packaging).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncoderMetadata {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f32>,
    pub video_data_rate_kbps: Option<u32>,
    pub audio_data_rate_kbps: Option<u32>,
    pub audio_sample_rate: Option<u32>,
    pub audio_channels: Option<u32>,
    pub video_codec_id: Option<u32>,
    pub audio_codec_id: Option<u32>,
    pub encoder: Option<String>,
}

/// Shared, lock-protected counters of one publish session. Create one per grant
/// ([`crate::PublishGrant::stats`]), keep a clone, and call [`IngestStats::snapshot`].
#[derive(Debug, Default)]
pub struct IngestStats {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    peer: Option<SocketAddr>,
    started: Option<Instant>,
    ended: Option<Instant>,
    bytes_received: u64,
    discontinuities: u64,
    dropped_units: u64,
    metadata: Option<EncoderMetadata>,
    tracks: Vec<TrackState>,
}

#[derive(Debug)]
struct TrackState {
    track: Track,
    bytes: u64,
    frames: u64,
    keyframes: u64,
    first: Option<(Instant, i64)>,
    last: Option<(Instant, i64)>,
    /// (second since `epoch`, bytes) ring for the bitrate.
    buckets: [(u64, u64); BITRATE_WINDOW_SECS as usize + 1],
    epoch: Option<Instant>,
}

/// A copy of the statistics at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSnapshot {
    pub peer: Option<SocketAddr>,
    /// When publishing was granted (monotonic).
    pub started: Option<Instant>,
    /// When the session ended; `None` while it runs.
    pub ended: Option<Instant>,
    /// All bytes read from the connection since publishing started (RTMP overhead included).
    pub bytes_received: u64,
    /// Timestamp jumps absorbed by the timeline (each sent as `MediaEvent::Discontinuity`).
    pub discontinuities: u64,
    /// Units that could not be used: video before its sequence header, malformed NAL lengths.
    pub dropped_units: u64,
    pub metadata: Option<EncoderMetadata>,
    pub tracks: Vec<TrackSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackSnapshot {
    pub track: u32,
    pub kind: TrackKind,
    pub codec_string: String,
    pub timescale: u32,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    pub last_arrival: Option<Instant>,
    /// Media time of the last unit, in `timescale`.
    pub last_dts: Option<i64>,
    /// Bits per second over the last [`BITRATE_WINDOW_SECS`] complete seconds of arrival.
    pub bitrate: u64,
    /// Arrival time elapsed minus media time elapsed since the first unit, in ms: positive when
    /// media arrives slower than real time (an encoder that cannot keep up), negative when it
    /// arrives faster (a burst after a stall).
    pub drift_ms: Option<i64>,
}

impl IngestStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counters stay usable even if a writer panicked mid-update.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self, now: Instant) -> IngestSnapshot {
        let s = self.lock();
        IngestSnapshot {
            peer: s.peer,
            started: s.started,
            ended: s.ended,
            bytes_received: s.bytes_received,
            discontinuities: s.discontinuities,
            dropped_units: s.dropped_units,
            metadata: s.metadata.clone(),
            tracks: s.tracks.iter().map(|t| t.snapshot(now)).collect(),
        }
    }

    pub(crate) fn started(&self, peer: SocketAddr, now: Instant) {
        let mut s = self.lock();
        s.peer = Some(peer);
        s.started = Some(now);
    }

    pub(crate) fn ended(&self, now: Instant) {
        self.lock().ended.get_or_insert(now);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.lock().bytes_received += bytes as u64;
    }

    pub(crate) fn discontinuity(&self) {
        self.lock().discontinuities += 1;
    }

    pub(crate) fn dropped(&self) {
        self.lock().dropped_units += 1;
    }

    pub(crate) fn metadata(&self, md: EncoderMetadata) {
        self.lock().metadata = Some(md);
    }

    /// A new track set: counters of tracks that remain (same id and kind) carry on.
    pub(crate) fn tracks(&self, tracks: &[Track]) {
        let mut s = self.lock();
        let mut old = std::mem::take(&mut s.tracks);
        for t in tracks {
            match old.iter().position(|o| o.track.id == t.id && o.track.kind() == t.kind()) {
                Some(i) => {
                    let mut st = old.swap_remove(i);
                    if st.track.timescale != t.timescale {
                        // Media times in the old timescale no longer compare.
                        st.first = None;
                        st.last = None;
                    }
                    st.track = t.clone();
                    s.tracks.push(st);
                }
                None => s.tracks.push(TrackState::new(t.clone())),
            }
        }
    }

    pub(crate) fn unit(&self, track: u32, bytes: usize, keyframe: bool, dts: i64, at: Instant) {
        let mut s = self.lock();
        if let Some(t) = s.tracks.iter_mut().find(|t| t.track.id == track) {
            t.add(bytes as u64, keyframe, dts, at);
        }
    }
}

impl TrackState {
    fn new(track: Track) -> Self {
        Self {
            track,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            first: None,
            last: None,
            buckets: [(u64::MAX, 0); BITRATE_WINDOW_SECS as usize + 1],
            epoch: None,
        }
    }

    fn add(&mut self, bytes: u64, keyframe: bool, dts: i64, at: Instant) {
        self.bytes += bytes;
        self.frames += 1;
        self.keyframes += u64::from(keyframe);
        self.first.get_or_insert((at, dts));
        self.last = Some((at, dts));
        let epoch = *self.epoch.get_or_insert(at);
        let sec = at.saturating_duration_since(epoch).as_secs();
        let slot = &mut self.buckets[(sec % self.buckets.len() as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += bytes;
    }

    fn snapshot(&self, now: Instant) -> TrackSnapshot {
        let bitrate = self.epoch.map_or(0, |epoch| {
            let now_sec = now.saturating_duration_since(epoch).as_secs();
            // Only complete seconds count, and no more of them than have passed.
            let secs = now_sec.min(BITRATE_WINDOW_SECS);
            if secs == 0 {
                return 0;
            }
            let from = now_sec - secs;
            let bytes: u64 = self.buckets.iter().filter(|(s, _)| *s >= from && *s < now_sec).map(|(_, b)| b).sum();
            bytes * 8 / secs
        });
        let drift_ms = match (self.first, self.last) {
            (Some((a0, d0)), Some((a1, d1))) if self.track.timescale > 0 => {
                let arrival = a1.saturating_duration_since(a0).as_millis() as i64;
                let media = (d1 - d0) * 1000 / i64::from(self.track.timescale);
                Some(arrival - media)
            }
            _ => None,
        };
        TrackSnapshot {
            track: self.track.id,
            kind: self.track.kind(),
            codec_string: self.track.codec_string.clone(),
            timescale: self.track.timescale,
            bytes: self.bytes,
            frames: self.frames,
            keyframes: self.keyframes,
            last_arrival: self.last.map(|(a, _)| a),
            last_dts: self.last.map(|(_, d)| d),
            bitrate,
            drift_ms,
        }
    }
}

impl IngestSnapshot {
    /// Time since the last unit of any track, for idle detection in status.
    pub fn since_last_unit(&self, now: Instant) -> Option<Duration> {
        self.tracks.iter().filter_map(|t| t.last_arrival).max().map(|a| now.saturating_duration_since(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use edge_media::Codec;

    fn track(id: u32, codec: Codec, timescale: u32) -> Track {
        Track {
            id,
            codec,
            timescale,
            config: Bytes::new(),
            codec_string: "x".into(),
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        }
    }

    #[test]
    fn bitrate_counts_complete_seconds_and_drift_compares_clocks() {
        let st = IngestStats::new();
        st.tracks(&[track(1, Codec::H264, 90_000)]);
        let t0 = Instant::now();
        // 4 s of 30 fps, 1250 bytes each = 300 kbit/s, the last one 30 ms late.
        for i in 0..120u64 {
            let at = t0 + Duration::from_millis(i * 1000 / 30 + if i == 119 { 30 } else { 0 });
            st.unit(1, 1250, i % 30 == 0, i as i64 * 3000, at);
        }
        let snap = st.snapshot(t0 + Duration::from_millis(4500));
        let v = &snap.tracks[0];
        assert_eq!((v.frames, v.keyframes, v.bytes), (120, 4, 150_000));
        assert_eq!(v.bitrate, 300_000);
        assert_eq!(v.last_dts, Some(119 * 3000));
        // Arrival spans 3966+30 ms, media 3966 ms.
        assert_eq!(v.drift_ms, Some(30));
        // Nothing for the window once the publisher has been gone long enough.
        assert_eq!(st.snapshot(t0 + Duration::from_secs(20)).tracks[0].bitrate, 0);
        // Early on, a partial window.
        assert_eq!(st.snapshot(t0).tracks[0].bitrate, 0);
    }

    #[test]
    fn counters_survive_a_new_track_set() {
        let st = IngestStats::new();
        st.tracks(&[track(1, Codec::H264, 90_000)]);
        st.unit(1, 10, true, 0, Instant::now());
        st.tracks(&[track(1, Codec::H264, 90_000), track(2, Codec::Aac, 48_000)]);
        let snap = st.snapshot(Instant::now());
        assert_eq!(snap.tracks.len(), 2);
        assert_eq!(snap.tracks[0].frames, 1);
        assert_eq!(snap.tracks[1].frames, 0);
    }
}
