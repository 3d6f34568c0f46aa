//! Per-session RTSP ingest statistics (push and pull), read for getStatus.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use edge_media::{MediaEvent, Track, TrackKind};

/// Seconds the bitrate is averaged over.
pub const BITRATE_WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct RtspStats {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rtp_packets: u64,
    lost: u64,
    bad_packets: u64,
    sender_reports: u64,
    discontinuities: u64,
    tracks: Vec<TrackState>,
}

#[derive(Debug)]
struct TrackState {
    track: Track,
    frames: u64,
    first: Option<(Instant, i64)>,
    last: Option<(Instant, i64)>,
    window: std::collections::VecDeque<(Instant, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackSnapshot {
    pub track: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    pub frames: u64,
    pub last_arrival: Option<Instant>,
    pub last_dts: Option<i64>,
    pub bitrate: u64,
    pub drift_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RtspSnapshot {
    pub rtp_packets: u64,
    /// RTP packets missing by sequence number.
    pub lost: u64,
    /// Packets that did not parse or depacketize.
    pub bad_packets: u64,
    pub sender_reports: u64,
    /// Camera reconnects (pull) absorbed in this session.
    pub discontinuities: u64,
    pub tracks: Vec<TrackSnapshot>,
}

impl RtspStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn packets(&self, received: u64, lost: u64, bad: u64) {
        let mut s = self.lock();
        s.rtp_packets += received;
        s.lost += lost;
        s.bad_packets += bad;
    }

    pub fn sender_report(&self) {
        self.lock().sender_reports += 1;
    }

    pub fn discontinuity(&self) {
        self.lock().discontinuities += 1;
    }

    /// Records what is sent to the media queue.
    pub fn record(&self, ev: &MediaEvent) {
        let mut s = self.lock();
        match ev {
            MediaEvent::Tracks(t) => {
                s.tracks = t
                    .iter()
                    .map(|t| TrackState {
                        track: t.clone(),
                        frames: 0,
                        first: None,
                        last: None,
                        window: Default::default(),
                    })
                    .collect()
            }
            MediaEvent::Unit(u) => {
                if let Some(t) = s.tracks.iter_mut().find(|t| t.track.id == u.track) {
                    t.frames += 1;
                    t.first.get_or_insert((u.arrival, u.dts));
                    t.last = Some((u.arrival, u.dts));
                    t.window.push_back((u.arrival, u.data.len()));
                    while t
                        .window
                        .front()
                        .is_some_and(|(a, _)| u.arrival.saturating_duration_since(*a) > BITRATE_WINDOW)
                    {
                        t.window.pop_front();
                    }
                }
            }
            _ => {}
        }
    }

    pub fn snapshot(&self, now: Instant) -> RtspSnapshot {
        let s = self.lock();
        RtspSnapshot {
            rtp_packets: s.rtp_packets,
            lost: s.lost,
            bad_packets: s.bad_packets,
            sender_reports: s.sender_reports,
            discontinuities: s.discontinuities,
            tracks: s
                .tracks
                .iter()
                .map(|t| {
                    let bytes: usize = t
                        .window
                        .iter()
                        .filter(|(a, _)| now.saturating_duration_since(*a) <= BITRATE_WINDOW)
                        .map(|(_, n)| n)
                        .sum();
                    let drift_ms = match (t.first, t.last) {
                        (Some((a0, d0)), Some((a1, d1))) if t.track.timescale > 0 => {
                            let arrival = a1.saturating_duration_since(a0).as_millis() as i64;
                            Some(arrival - (d1 - d0) * 1000 / i64::from(t.track.timescale))
                        }
                        _ => None,
                    };
                    TrackSnapshot {
                        track: t.track.id,
                        kind: t.track.kind(),
                        timescale: t.track.timescale,
                        frames: t.frames,
                        last_arrival: t.last.map(|l| l.0),
                        last_dts: t.last.map(|l| l.1),
                        bitrate: bytes as u64 * 8 / BITRATE_WINDOW.as_secs(),
                        drift_ms,
                    }
                })
                .collect(),
        }
    }

    pub fn last_media_age(&self, now: Instant) -> Option<Duration> {
        self.lock().tracks.iter().filter_map(|t| t.last).map(|(a, _)| now.saturating_duration_since(a)).min()
    }
}
