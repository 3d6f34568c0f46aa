//! The media model. Every ingest (RTMP, SRT, RTSP, V4L2, transcoder) turns its input into
//! [`MediaEvent`]s, and every output (packager, recorder, status) reads them. Nothing here
//! knows a protocol or a container.
//!
//! Media time and arrival time are kept apart: an [`AccessUnit`] carries DTS/PTS in its
//! track's timescale (media time, from the encoder) and the monotonic instant it arrived (for
//! health: bitrate, drift, idle detection). Packaging uses only media time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264; `config` is the AVCDecoderConfigurationRecord (avcC), samples are AVCC
    /// (4-byte length-prefixed NAL units).
    H264,
    /// H.265; `config` is the HEVCDecoderConfigurationRecord (hvcC), samples length-prefixed.
    H265,
    /// AAC; `config` is the AudioSpecificConfig, samples are raw AAC frames (no ADTS).
    Aac,
}

impl Codec {
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::H264 | Codec::H265 => TrackKind::Video,
            Codec::Aac => TrackKind::Audio,
        }
    }
}

/// A track and its codec parameters. A change of any of these is a new [`MediaEvent::Tracks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Stable within one ingest session: 1-based, video first.
    pub id: u32,
    pub codec: Codec,
    /// Ticks per second of this track's DTS/PTS.
    pub timescale: u32,
    /// Decoder configuration (see [`Codec`]).
    pub config: Bytes,
    /// RFC 6381 codec string for manifests, e.g. `avc1.64001f`, `mp4a.40.2`.
    pub codec_string: String,
    pub width: u16,
    pub height: u16,
    pub sample_rate: u32,
    pub channels: u16,
    /// Declared bitrate in bit/s if the encoder said (0 = unknown).
    pub bitrate: u32,
}

impl Track {
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

/// One coded frame (video) or audio frame, in its track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub track: u32,
    pub dts: i64,
    pub pts: i64,
    /// A random access point (IDR / every audio frame).
    pub keyframe: bool,
    pub data: Bytes,
    /// When the last byte of this unit arrived (monotonic).
    pub arrival: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The set of tracks from now on (at the start and whenever parameters change).
    Tracks(Vec<Track>),
    Unit(AccessUnit),
    /// The publisher went away (or a timestamp jump): whatever follows starts a new period.
    Discontinuity,
    /// The session is over (the event stopped).
    End,
}

/// Counters of a bounded queue, shared with status reporting.
#[derive(Debug, Default)]
pub struct QueueStats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
}

impl QueueStats {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// The sending side of a bounded media queue. Ingest must never block on a slow consumer, so a
/// full queue drops the unit and counts it; after a dropped video unit, video is skipped up to
/// the next keyframe (a decoder cannot use frames whose references were lost). Control events
/// (tracks, discontinuity, end) are never dropped: they wait for room.
pub struct MediaSender {
    tx: tokio::sync::mpsc::Sender<MediaEvent>,
    stats: Arc<QueueStats>,
    /// Set by the consumer's owner to cut this sender off (e.g. a stale publisher replaced by
    /// a reconnecting one): every send then reports `Closed`.
    cancelled: Arc<std::sync::atomic::AtomicBool>,
    skip_video_until_key: bool,
    video_tracks: Vec<u32>,
}

pub type MediaReceiver = tokio::sync::mpsc::Receiver<MediaEvent>;

pub fn queue(capacity: usize) -> (MediaSender, MediaReceiver, Arc<QueueStats>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let stats = Arc::new(QueueStats::default());
    let sender = MediaSender {
        tx,
        stats: stats.clone(),
        cancelled: Default::default(),
        skip_video_until_key: false,
        video_tracks: Vec::new(),
    };
    (sender, rx, stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    Dropped,
    /// The consumer is gone.
    Closed,
}

impl MediaSender {
    /// Sends an access unit without waiting; drops (and counts) it if the queue is full.
    pub fn send_unit(&mut self, au: AccessUnit) -> SendOutcome {
        if self.cancelled.load(Ordering::Relaxed) {
            return SendOutcome::Closed;
        }
        let is_video = self.video_tracks.contains(&au.track);
        if is_video && self.skip_video_until_key {
            if !au.keyframe {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return SendOutcome::Dropped;
            }
            self.skip_video_until_key = false;
        }
        match self.tx.try_send(MediaEvent::Unit(au)) {
            Ok(()) => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                SendOutcome::Sent
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if is_video {
                    self.skip_video_until_key = true;
                }
                SendOutcome::Dropped
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => SendOutcome::Closed,
        }
    }

    /// Sends a control event, waiting for room (these are rare and must not be lost).
    pub async fn send_control(&mut self, ev: MediaEvent) -> SendOutcome {
        if self.cancelled.load(Ordering::Relaxed) {
            return SendOutcome::Closed;
        }
        if let MediaEvent::Tracks(tracks) = &ev {
            self.video_tracks = tracks.iter().filter(|t| t.kind() == TrackKind::Video).map(|t| t.id).collect();
            // A new track set starts at a keyframe for the decoder's sake.
            self.skip_video_until_key = true;
        }
        match self.tx.send(ev).await {
            Ok(()) => SendOutcome::Sent,
            Err(_) => SendOutcome::Closed,
        }
    }

    pub fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// Another sender into the same queue (e.g. for the next publisher session of an event),
    /// with its own keyframe-skip state.
    pub fn reattach(&self) -> MediaSender {
        MediaSender {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            cancelled: Default::default(),
            skip_video_until_key: false,
            video_tracks: Vec::new(),
        }
    }

    /// A handle that cuts this sender off when set to true.
    pub fn canceller(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.cancelled.clone()
    }

    /// Events waiting in the queue (sent, not yet received).
    pub fn pending(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Whether the consumer is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.cancelled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: u32, codec: Codec) -> Track {
        Track {
            id,
            codec,
            timescale: 1000,
            config: Bytes::new(),
            codec_string: String::new(),
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        }
    }

    fn au(track: u32, dts: i64, keyframe: bool) -> AccessUnit {
        AccessUnit { track, dts, pts: dts, keyframe, data: Bytes::from_static(b"x"), arrival: Instant::now() }
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts_then_resumes_video_at_a_keyframe() {
        let (mut tx, mut rx, stats) = queue(3);
        assert_eq!(
            tx.send_control(MediaEvent::Tracks(vec![track(1, Codec::H264), track(2, Codec::Aac)])).await,
            SendOutcome::Sent
        );
        assert_eq!(tx.send_unit(au(1, 0, false)), SendOutcome::Dropped, "video waits for a keyframe after Tracks");
        assert_eq!(tx.send_unit(au(1, 0, true)), SendOutcome::Sent);
        assert_eq!(tx.send_unit(au(2, 0, true)), SendOutcome::Sent);
        // Queue full (Tracks + 2 units).
        assert_eq!(tx.send_unit(au(1, 33, false)), SendOutcome::Dropped);
        assert_eq!(stats.dropped(), 2);
        rx.recv().await;
        rx.recv().await;
        // Room again, but video still skips to the next keyframe; audio flows.
        assert_eq!(tx.send_unit(au(1, 66, false)), SendOutcome::Dropped);
        assert_eq!(tx.send_unit(au(2, 20, true)), SendOutcome::Sent);
        assert_eq!(tx.send_unit(au(1, 100, true)), SendOutcome::Sent);
        assert_eq!(stats.dropped(), 3);
        assert_eq!(stats.sent(), 4);
        rx.recv().await;
        let mut other = tx.reattach();
        other.canceller().store(true, Ordering::Relaxed);
        assert_eq!(other.send_unit(au(2, 30, true)), SendOutcome::Closed, "a cut-off sender reports Closed");
        assert_eq!(tx.send_unit(au(2, 40, true)), SendOutcome::Sent, "others are unaffected");
        drop(rx);
        assert_eq!(tx.send_unit(au(2, 60, true)), SendOutcome::Closed);
    }
}
