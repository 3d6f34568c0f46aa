//! RTMP and RTMPS ingest.
//!
//! - [`Connection`]: the sans-IO core of one connection (bytes and time in, [`Action`]s out),
//!   over rml_rtmp's handshake and `ServerSession`.
//! - [`PublishAuthorizer`]: what the appliance implements to decide publish requests (stream
//!   key -> live event, access control, one publisher per event) and hear about refusals and
//!   ends.
//! - [`serve`]: the tokio adapter (TCP or TLS listener, timeouts, bounded buffers).
//! - [`IngestStats`]: per-session counters the appliance reads for status.
//!
//! Media time: video in 90 kHz, audio in its sampling rate, from one unwrapped RTMP clock per
//! session (see [`media`] and [`timeline`]). A session starts its queue with
//! `MediaEvent::Tracks` and ends it with `MediaEvent::End`; `Discontinuity` is sent for a
//! timestamp jump inside a session. A reconnecting encoder is a new session: the appliance
//! decides whether that is a discontinuity of the event's timeline.

mod auth;
pub mod codec;
mod conn;
pub mod flv;
pub mod fuzz;
pub mod guard;
mod key;
pub mod media;
mod server;
mod stats;
pub mod timeline;

#[cfg(test)]
mod test_data;

use std::time::Duration;

pub use auth::{EndReason, InvalidConnection, PublishAuthorizer, PublishEnded, PublishGrant, PublishRequest, Refusal};
pub use conn::{Action, Connection};
pub use key::{PublishTarget, extract_stream_key};
pub use server::serve;
pub use stats::{BITRATE_WINDOW_SECS, EncoderMetadata, IngestSnapshot, IngestStats, TrackSnapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpConfig {
    /// From TCP accept to an accepted publish: TLS handshake, RTMP handshake, `connect`,
    /// `publish`. Encoders need well under a second; half-open and idle connections are dropped.
    pub handshake_timeout: Duration,
    /// A publisher that sends no audio or video for this long is disconnected (its session
    /// ends with `End`).
    pub idle_timeout: Duration,
    /// Largest RTMP message accepted (a video frame), refused from its first chunk header.
    pub max_message_size: usize,
    /// Connections served at once; more are closed at accept and reported.
    pub max_connections: usize,
    /// A timestamp step larger than this (either way) is a discontinuity, not a gap.
    pub max_timestamp_jump: Duration,
    /// How much media time to wait for the second sequence header before announcing one track.
    pub track_grace: Duration,
    /// Outbound RTMP chunk size.
    pub chunk_size: u32,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            // An 8K intra frame at a high bitrate stays well under this.
            max_message_size: 8 * 1024 * 1024,
            max_connections: 512,
            max_timestamp_jump: Duration::from_secs(10),
            track_grace: Duration::from_secs(1),
            chunk_size: 4096,
        }
    }
}
