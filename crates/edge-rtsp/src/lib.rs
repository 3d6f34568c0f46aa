//! RTSP ingest into the media model: a push server for encoders (`streamingProtocol:
//! RTSPPush`) and a pull client for IP cameras (`RTSPPull`).
//!
//! - [`message`]: RTSP requests and interleaved frames from a TCP stream, with size limits.
//! - [`sdp`]: the ANNOUNCE's SDP to usable streams (`sdp-types`).
//! - [`depack`]: RTP and the H.264 / HEVC / AAC depacketizers.
//! - [`rtcp`]: sender reports (RTP time to the encoder's wall clock).
//! - [`builder`]: frames to `Tracks` and `AccessUnit`s with lined-up, decode-ordered times;
//!   shared by push and pull.
//! - [`session`]: one push connection, sans-IO; [`serve`]: its tokio adapter (TCP, UDP).
//! - [`pull`]: the camera puller (retina), reconnecting with backoff, [`quirks`] documented;
//!   [`tunnel`]: RTSP over HTTP (`rtsp_http`) for it.
//!
//! Each publish (push connection or pull run) starts its queue with `MediaEvent::Tracks` and
//! ends it with `MediaEvent::End`; a camera reconnect inside a pull run is a
//! `MediaEvent::Discontinuity`.

mod auth;
pub mod builder;
pub mod depack;
pub mod fuzz;
pub mod h26x;
pub mod message;
pub mod pull;
pub mod quirks;
pub mod rtcp;
pub mod sdp;
mod server;
pub mod session;
mod stats;
pub mod tunnel;

pub use auth::{
    EndReason, InvalidConnection, PublishEnded, PublishGrant, PublishRequest, Refusal, RtspAuthorizer, key_hint,
};
pub use server::{CONTROL_WAIT, serve};
pub use session::PushConfig;
pub use stats::{RtspSnapshot, RtspStats, TrackSnapshot};
