//! The appliance's side of ingest: who may publish, where the media goes, what to report.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edge_media::MediaSender;

use crate::stats::IngestStats;

/// A publish request, after the stream key was extracted (see [`crate::extract_stream_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The RTMP application (`live`), without query string.
    pub app: String,
    /// The stream key: the live event's access token.
    pub stream_key: String,
    /// The AMS stream name after the key (`/live/<key>/<streamName>`), if any.
    pub stream_name: Option<String>,
    pub peer: IpAddr,
    /// Whether the connection is RTMPS.
    pub secure: bool,
    /// The `tcUrl` of `connect`. Always `None` for now: rml_rtmp 0.8 does not expose it.
    pub tc_url: Option<String>,
    /// Unique per connection in this process; [`PublishEnded::connection_id`] repeats it.
    pub connection_id: u64,
}

/// What a granted publish gets: the event it feeds and where its media goes.
pub struct PublishGrant {
    pub event_id: String,
    pub event_name: String,
    /// The event's media queue. The session sends `Tracks` first and `End` last on it.
    pub media: MediaSender,
    /// The statistics of this session; keep a clone for status (see [`IngestStats::snapshot`]).
    pub stats: Arc<IngestStats>,
}

/// Why a connection or publish was refused. The first group is what an authorizer returns;
/// the rest is raised by edge-rtmp itself and reported through
/// [`PublishAuthorizer::invalid_connection`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown stream key")]
    UnknownKey,
    #[error("live event {0} is not running")]
    NotRunning(String),
    #[error("live event {0} already has a publisher")]
    AlreadyPublishing(String),
    #[error("address not allowed by the live event's access control")]
    AddressNotAllowed,
    #[error("{0}")]
    Other(String),

    #[error("no stream key in app {app:?} and stream name {name:?}")]
    MissingKey { app: String, name: String },
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    #[error("no publish within {0:?} of connecting")]
    SetupTimeout(Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    #[error("invalid media: {0}")]
    InvalidMedia(String),
    #[error("playback is not served over RTMP")]
    PlayNotSupported,
    #[error("too many connections")]
    TooManyConnections,
}

impl Refusal {
    /// The `onStatus` code the client gets for a refused publish.
    pub(crate) fn status_code(&self) -> &'static str {
        match self {
            Refusal::UnknownKey | Refusal::NotRunning(_) | Refusal::MissingKey { .. } => "NetStream.Publish.BadName",
            Refusal::AlreadyPublishing(_) => "NetStream.Publish.BadName",
            Refusal::AddressNotAllowed => "NetStream.Publish.Denied",
            _ => "NetStream.Publish.Failed",
        }
    }
}

/// A refused or failed connection, for `StreamEvent/InvalidConnection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConnection {
    pub peer: SocketAddr,
    pub app: Option<String>,
    /// The stream key the client tried, if it got that far (it is a secret: log a hint only).
    pub stream_key: Option<String>,
    /// The event the key selected, when the refusal came after that (e.g. a bad codec).
    pub event_id: Option<String>,
    pub refusal: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The encoder unpublished (`FCUnpublish`/`deleteStream`).
    Unpublished,
    /// The connection closed or failed.
    Disconnected(String),
    /// Nothing arrived for the idle timeout.
    Idle(Duration),
    /// The appliance is shutting down.
    Shutdown,
    /// The media queue's receiver is gone (the event stopped).
    ConsumerGone,
    /// The stream became unusable (unsupported codec, malformed data, protocol error).
    Refused(Refusal),
    /// The connection state was dropped without an orderly end (a cancelled task).
    Aborted,
}

/// A granted publish that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEnded {
    /// The [`PublishRequest::connection_id`] of the grant.
    pub connection_id: u64,
    pub event_id: String,
    pub event_name: String,
    pub peer: SocketAddr,
    pub reason: EndReason,
}

/// Implemented by the appliance (edge-live registry + access control).
///
/// One publisher per event; the authorizer decides what a second one gets. Either refuse it
/// with [`Refusal::AlreadyPublishing`] until [`PublishAuthorizer::publish_ended`] frees the
/// slot (an encoder reconnecting after a network cut is then refused until the old connection
/// ends, at the latest after [`crate::RtmpConfig::idle_timeout`]), or take over: cut the old
/// grant's `MediaSender` off (its next send reports `Closed`, which ends that session with
/// [`EndReason::ConsumerGone`] and disconnects it) and grant the new one; the old session's
/// `publish_ended` then arrives after the new grant: tell them apart by `connection_id`.
/// `publish_ended` is called exactly once for every grant, whatever ends it.
///
/// Calls are made from connection tasks and must not block (an in-memory lookup is right).
pub trait PublishAuthorizer: Send + Sync {
    /// Decides a publish request.
    fn authorize(&self, req: &PublishRequest) -> Result<PublishGrant, Refusal>;

    /// Every refused or failed connection that did not become a publish, including refusals
    /// returned by `authorize`. Already logged (tracing, `warn`) with the reason.
    fn invalid_connection(&self, _conn: &InvalidConnection) {}

    /// A granted publish ended. Its `MediaEvent::End` (none for [`EndReason::Aborted`] and
    /// [`EndReason::ConsumerGone`]) is already handed to the adapter, which delivers it right
    /// after this call returns.
    fn publish_ended(&self, ended: &PublishEnded);
}

/// A short, non-secret hint of a stream key for logs.
pub(crate) fn key_hint(key: &str) -> String {
    let prefix: String = key.chars().take(4).collect();
    format!("{prefix}… ({} chars)", key.chars().count())
}
