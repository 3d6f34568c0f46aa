//! Per-session SRT ingest statistics, shared with the appliance for getStatus, stream events
//! and heartbeats. Written by the session task, read whenever the appliance likes.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use edge_media::{Track, TrackKind};
use edge_ts::TsCounters;
use srt_protocol::statistics::SocketStatistics;

/// Seconds of arrival history the bitrate is averaged over.
pub const BITRATE_WINDOW_SECS: u64 = 5;

/// Shared, lock-protected counters of one SRT publish session. Create one per grant
/// ([`crate::SrtGrant::stats`]), keep a clone, and call [`SrtStats::snapshot`].
#[derive(Debug, Default)]
pub struct SrtStats {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    peer: Option<SocketAddr>,
    started: Option<Instant>,
    ended: Option<Instant>,
    latency: Option<Duration>,
    key_length: Option<u8>,
    datagrams: u64,
    bytes: u64,
    transport: TransportStats,
    ts: TsCounters,
    ignored_streams: Vec<String>,
    tracks: Vec<TrackState>,
}

/// SRT's own counters for the session (srt-protocol's `SocketStatistics`, receiver side).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Data packets received, retransmissions included.
    pub packets: u64,
    /// Payload bytes received, retransmissions included.
    pub bytes: u64,
    /// Packets detected missing (later recovered or not).
    pub lost: u64,
    /// Retransmitted packets received.
    pub retransmitted: u64,
    /// Packets given up on (too late to play, or never recovered): real loss.
    pub dropped: u64,
    /// Packets that failed to decrypt.
    pub decrypt_errors: u64,
    /// Round-trip time, smoothed.
    pub rtt: Duration,
}

/// A copy of the statistics at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SrtSnapshot {
    pub peer: Option<SocketAddr>,
    /// When publishing was granted (monotonic).
    pub started: Option<Instant>,
    /// When the session ended; `None` while it runs.
    pub ended: Option<Instant>,
    /// The negotiated receive latency (TSBPD delay).
    pub latency: Option<Duration>,
    /// AES key length in bytes; `None`: unencrypted.
    pub key_length: Option<u8>,
    /// Payload datagrams and bytes handed over by SRT (what the demultiplexer read).
    pub datagrams: u64,
    pub bytes: u64,
    pub transport: TransportStats,
    /// The TS demultiplexer's counters (continuity errors, discontinuities, dropped units).
    pub ts: TsCounters,
    /// Audio/video streams of the program that are not used, e.g. `AC-3 (PID 0x102)`.
    pub ignored_streams: Vec<String>,
    pub tracks: Vec<TrackSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackSnapshot {
    pub track: u32,
    pub kind: TrackKind,
    pub codec_string: String,
    pub timescale: u32,
    pub width: u16,
    pub height: u16,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    pub last_arrival: Option<Instant>,
    /// Media time of the last unit, in `timescale`.
    pub last_dts: Option<i64>,
    /// Bits per second over the last [`BITRATE_WINDOW_SECS`] complete seconds of arrival.
    pub bitrate: u64,
    /// Arrival time elapsed minus media time elapsed since the first unit, in ms (positive:
    /// media arrives slower than real time).
    pub drift_ms: Option<i64>,
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

impl SrtStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counters stay usable even if a writer panicked mid-update.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self, now: Instant) -> SrtSnapshot {
        let s = self.lock();
        SrtSnapshot {
            peer: s.peer,
            started: s.started,
            ended: s.ended,
            latency: s.latency,
            key_length: s.key_length,
            datagrams: s.datagrams,
            bytes: s.bytes,
            transport: s.transport.clone(),
            ts: s.ts.clone(),
            ignored_streams: s.ignored_streams.clone(),
            tracks: s.tracks.iter().map(|t| t.snapshot(now)).collect(),
        }
    }

    /// Time since the last media unit arrived (None: nothing yet); what a registry's
    /// `IngestProbe::last_media_age` wants.
    pub fn last_media_age(&self, now: Instant) -> Option<Duration> {
        let s = self.lock();
        s.tracks.iter().filter_map(|t| t.last.map(|(a, _)| a)).map(|a| now.saturating_duration_since(a)).min()
    }

    pub(crate) fn started(&self, peer: SocketAddr, latency: Duration, key_length: Option<u8>, now: Instant) {
        let mut s = self.lock();
        s.peer = Some(peer);
        s.started = Some(now);
        s.latency = Some(latency);
        s.key_length = key_length;
    }

    pub(crate) fn ended(&self, now: Instant) {
        self.lock().ended.get_or_insert(now);
    }

    pub(crate) fn received(&self, bytes: usize, ts: &TsCounters, ignored: &[edge_ts::IgnoredStream]) {
        let mut s = self.lock();
        s.datagrams += 1;
        s.bytes += bytes as u64;
        s.ts.clone_from(ts);
        if s.ignored_streams.len() != ignored.len() {
            s.ignored_streams = ignored.iter().map(|i| format!("{} (PID 0x{:x})", i.name, i.pid)).collect();
        }
    }

    pub(crate) fn transport(&self, st: &SocketStatistics) {
        self.lock().transport = TransportStats {
            packets: st.rx_data,
            bytes: st.rx_bytes,
            lost: st.rx_loss_data,
            retransmitted: st.rx_retransmit_data,
            dropped: st.rx_dropped_data,
            decrypt_errors: st.rx_decrypt_errors,
            rtt: st.rx_average_rtt,
        };
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

    /// After a discontinuity media time restarts: drift is measured afresh.
    pub(crate) fn discontinuity(&self) {
        for t in &mut self.lock().tracks {
            t.first = None;
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
            width: self.track.width,
            height: self.track.height,
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
    fn bitrate_drift_and_counters() {
        let s = SrtStats::new();
        let t0 = Instant::now();
        s.tracks(&[track(1, Codec::H264, 90_000)]);
        for i in 0..60u64 {
            // 30 fps, 1000 bytes, arriving on time.
            let at = t0 + Duration::from_millis(i * 1000 / 30);
            s.unit(1, 1000, i % 30 == 0, (i * 3000) as i64, at);
        }
        let snap = s.snapshot(t0 + Duration::from_secs(2));
        let v = &snap.tracks[0];
        assert_eq!((v.frames, v.keyframes, v.bytes), (60, 2, 60_000));
        assert_eq!(v.bitrate, 240_000);
        assert!(v.drift_ms.unwrap().abs() <= 1);
        assert_eq!(s.last_media_age(t0 + Duration::from_secs(3)).map(|d| d.as_secs()), Some(1));
        // A new track set keeps the counters of tracks that remain.
        s.tracks(&[track(1, Codec::H264, 90_000), track(2, Codec::Aac, 48_000)]);
        assert_eq!(s.snapshot(t0).tracks[0].frames, 60);
    }
}
