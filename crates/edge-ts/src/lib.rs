//! MPEG-TS demultiplexing to the media model, sans-IO: bytes and arrival instants in,
//! [`edge_media::MediaEvent`]s out. Used by SRT ingest (and any other TS input).
//!
//! - One program (the first in the PAT); its first H.264/HEVC stream becomes track 1 and its
//!   first AAC stream (ADTS or LATM) track 2. Other audio/video streams are ignored and listed
//!   ([`TsDemuxer::ignored_streams`]); a program with none of these codecs is refused.
//! - Video: Annex B access units (one per PES) become 4-byte length-prefixed samples; SPS/PPS
//!   (and VPS) go into an avcC/hvcC record, read back with edge-rtmp's `codec` parsers for the
//!   codec string and picture size. New parameter sets announce new `Tracks`.
//! - Audio: ADTS or LATM frames become raw AAC frames; the AudioSpecificConfig comes from the
//!   stream. Stamps count samples from the PES times (gapless), re-anchored on drift.
//! - Time: one 33-bit clock per session unwrapped onto 64 bits (see `clock`): video in 90 kHz,
//!   audio in its sampling rate. A jump beyond `max_timestamp_jump`, or a PCR going backwards
//!   or leaping, is absorbed (the timeline stays monotonic) and sent as
//!   `MediaEvent::Discontinuity`.
//! - Loss: a continuity-counter gap (or transport error) damages the PES in progress, which is
//!   dropped and counted ([`TsCounters`]); it is not a discontinuity of the timeline (under SRT
//!   loss that would start a new period per lost packet).
//! - `Tracks` is sent once every stream of the PMT has its configuration, or after
//!   `track_grace` of media time with what is known; units wait meanwhile (bounded).
//!
//! A hand-written demultiplexer rather than mpeg2ts-reader: that crate stops at the first
//! packet without a sync byte and leaves resynchronisation, PES assembly limits and timestamp
//! handling to the caller, which is most of this crate; what remains (PAT/PMT with CRC
//! checks, continuity counters, PES headers) is small, and owning it keeps hostile input
//! bounded and fuzzable in one place.

mod audio;
mod bits;
mod clock;
mod demux;
pub mod fuzz;
#[doc(hidden)]
pub mod synth;
mod video;

use std::time::Duration;

pub use audio::AudioError;
pub use demux::TsDemuxer;

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsConfig {
    /// A timestamp step larger than this (either way) is a discontinuity, not a gap.
    pub max_timestamp_jump: Duration,
    /// How much media time to wait for every stream's configuration before announcing fewer.
    pub track_grace: Duration,
    /// Largest PES accepted (a video frame); larger ones are dropped and counted.
    pub max_pes_size: usize,
}

impl Default for TsConfig {
    fn default() -> Self {
        Self { max_timestamp_jump: Duration::from_secs(10), track_grace: Duration::from_secs(1), max_pes_size: 8 << 20 }
    }
}

/// Why a stream cannot be used. Final for the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    #[error("unsupported media: {0}")]
    Unsupported(String),
    #[error("invalid media: {0}")]
    Invalid(String),
}

/// Counters of one demultiplexer, for status and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsCounters {
    /// Bytes fed in.
    pub bytes: u64,
    pub packets: u64,
    /// Times the 0x47 packet alignment was lost (garbage, a truncated datagram).
    pub sync_losses: u64,
    /// Bytes skipped to find packet alignment or an audio syncword again.
    pub skipped_bytes: u64,
    /// Continuity-counter gaps: TS packets lost on the way.
    pub cc_errors: u64,
    pub transport_errors: u64,
    /// PCR steps backwards or beyond the jump limit.
    pub pcr_discontinuities: u64,
    /// Timeline jumps absorbed (each sent once as `MediaEvent::Discontinuity`).
    pub discontinuities: u64,
    /// Units not delivered: damaged by loss, before the first configuration, without a
    /// timestamp, oversized, or from before a discontinuity.
    pub dropped_units: u64,
    /// PAT/PMT sections with a bad CRC or layout.
    pub psi_errors: u64,
    /// Parameter sets that could not be turned into a decoder configuration.
    pub config_errors: u64,
}

/// An audio/video stream of the program that is not demultiplexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredStream {
    pub pid: u16,
    pub stream_type: u8,
    pub name: &'static str,
}
