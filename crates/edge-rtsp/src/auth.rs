//! The appliance's side of RTSP push: which event a path names, who may publish, what to
//! report. Implemented by the appliance (rms-edge's `RtspGlue`), faked in tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge_media::MediaSender;

use crate::stats::RtspStats;

/// An ANNOUNCE that names an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub peer: SocketAddr,
    /// The access token from the path (`/live/<token>`): a secret, log [`key_hint`] only.
    pub token: String,
    pub connection_id: u64,
}

pub struct PublishGrant {
    pub event_id: String,
    pub event_name: String,
    /// The event's media queue: the session sends `Tracks` first and `End` last.
    pub media: MediaSender,
    pub stats: Arc<RtspStats>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown path (expected /live/<access token>)")]
    UnknownPath,
    #[error("unknown access token")]
    UnknownToken,
    #[error("live event {0} is not running")]
    NotRunning(String),
    #[error("live event {0} already has a publisher")]
    AlreadyPublishing(String),
    #[error("address not allowed by the live event's access control")]
    AddressNotAllowed,
    #[error("{0}")]
    Other(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
}

impl Refusal {
    /// The RTSP status answering this refusal.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::UnknownPath | Refusal::UnknownToken => (404, "Not Found"),
            Refusal::NotRunning(_) => (455, "Method Not Valid in This State (Live Event Not Running)"),
            Refusal::AlreadyPublishing(_) => (453, "Not Enough Bandwidth (Live Event Already Has a Publisher)"),
            Refusal::AddressNotAllowed => (403, "Forbidden"),
            Refusal::Other(_) => (503, "Service Unavailable"),
            Refusal::Malformed(_) | Refusal::BadSdp(_) => (400, "Bad Request"),
            Refusal::UnsupportedMedia(_) => (415, "Unsupported Media Type"),
        }
    }
}

/// A refused connection or request, for `StreamEvent/InvalidConnection` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConnection {
    pub peer: SocketAddr,
    /// The token of the path, when the request got that far (a secret).
    pub token: Option<String>,
    /// The event, when the request was already granted.
    pub event_id: Option<String>,
    pub refusal: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    Teardown,
    Disconnected(String),
    Idle(Duration),
    Shutdown,
    ConsumerGone,
    Refused(Refusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEnded {
    pub connection_id: u64,
    pub event_id: String,
    pub event_name: String,
    pub peer: SocketAddr,
    pub reason: EndReason,
}

pub trait RtspAuthorizer: Send + Sync {
    fn authorize(&self, req: &PublishRequest) -> Result<PublishGrant, Refusal>;
    fn invalid_connection(&self, c: &InvalidConnection);
    fn publish_ended(&self, e: &PublishEnded);
}

/// The first characters of a token, for logs.
pub fn key_hint(token: &str) -> String {
    let head: String = token.chars().take(4).collect();
    format!("{head}…")
}
