//! SRT ingest (listener mode) into the media model.
//!
//! - [`parse_stream_id`]: the stream id in every form encoders send, to the event's token.
//! - [`SrtAuthorizer`]: what the appliance implements: `lookup` (event, passphrase, latency)
//!   before the handshake completes, `authorize` (the publisher slot) after it, and reports of
//!   refusals ([`InvalidConnection`], passphrase failures included) and ends.
//! - [`serve`]: SRT ingest over [`transport`], this crate's tokio adapter around srt-protocol's
//!   sans-IO listener and connection; each session runs its payloads through
//!   [`edge_ts::TsDemuxer`] into the event's media queue.
//! - [`SrtStats`]: per-session counters for status, SRT's loss and retransmissions included.
//! - [`publish_url`]: the ready-to-paste encoder URL.
//!
//! A session starts its queue with `MediaEvent::Tracks` and ends it with `MediaEvent::End`;
//! `Discontinuity` is sent for a timestamp jump or a new time base inside a session (packet
//! loss is counted, not a discontinuity). Media time: video in 90 kHz, audio in its sampling
//! rate, from one unwrapped 33-bit clock per session.

mod auth;
pub mod fuzz;
mod server;
mod stats;
mod streamid;
pub mod transport;
mod url;

use std::time::Duration;

pub use auth::{
    EndReason, InvalidConnection, PublishEnded, Refusal, SrtAuthorizer, SrtEventSettings, SrtGrant, SrtRequest,
    key_hint,
};
pub use edge_ts::{TsConfig, TsCounters};
pub use server::{CONTROL_WAIT, serve};
pub use stats::{BITRATE_WINDOW_SECS, SrtSnapshot, SrtStats, TrackSnapshot, TransportStats};
pub use streamid::{MAX_STREAM_ID, StreamIdError, StreamMode, StreamTarget, parse_stream_id};
pub use url::{publish_url, validate_passphrase};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtConfig {
    /// The listener's receive latency: the floor of every session's (SRT takes the larger of
    /// both sides'). libsrt's default.
    pub latency: Duration,
    /// From the caller's conclusion handshake to a connected socket.
    pub handshake_timeout: Duration,
    /// A session that delivers no audio or video for this long is ended (its queue gets
    /// `End`); the SRT connection itself may still be alive (keep-alives).
    pub idle_timeout: Duration,
    /// SRT's own timeout: a peer that sends nothing at all (not even keep-alives) this long is
    /// gone.
    pub peer_idle_timeout: Duration,
    /// Connections (handshaking or publishing) at once; more are rejected (SRT 1402).
    pub max_connections: usize,
    pub ts: TsConfig,
}

impl Default for SrtConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(120),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            peer_idle_timeout: Duration::from_secs(5),
            max_connections: 512,
            ts: TsConfig::default(),
        }
    }
}
