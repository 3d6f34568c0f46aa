//! The appliance's side of SRT ingest: which event a caller names, its passphrase and
//! latency, who may publish, what to report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge_media::MediaSender;

use crate::stats::SrtStats;
use crate::streamid::StreamTarget;

/// A caller's connection request, before its handshake completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtRequest {
    pub peer: SocketAddr,
    /// The stream id as sent (it holds the token, a secret: log [`key_hint`] only).
    pub stream_id: Option<String>,
    /// The parsed stream id; `None` when the caller sent none. Look up
    /// [`StreamTarget::candidates`] in order.
    pub target: Option<StreamTarget>,
    /// The AES key length (16, 24, 32) the caller announced; `None` when it announced none,
    /// which a caller with a passphrase may also do (libsrt without `pbkeylen`).
    pub key_length: Option<u8>,
    /// Unique per connection in this process; [`PublishEnded::connection_id`] repeats it.
    pub connection_id: u64,
}

/// What the appliance says about the event a request names, before the handshake completes:
/// the handshake is then run with this passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtEventSettings {
    /// The access token that matched (one of the target's candidates), for `authorize`.
    pub key: String,
    pub event_id: String,
    pub event_name: String,
    /// `input.srtPassphrase` (10-79 characters); `None`: the event is unencrypted and a caller
    /// with a passphrase is refused.
    pub passphrase: Option<String>,
    /// The AES key length the event requires (16, 24, 32); `None`: whatever the caller uses.
    pub key_length: Option<u8>,
    /// `input.srtLatency`. srt-protocol 0.4.4's listener has one latency for all connections: the session's
    /// latency is the larger of the listener's ([`crate::SrtConfig::latency`]) and the
    /// caller's; a smaller result than this is logged and shown in the statistics. Put it in
    /// the encoder's URL ([`crate::publish_url`]).
    pub latency: Option<Duration>,
}

/// A granted publish: the event it feeds and where its media goes.
pub struct SrtGrant {
    pub event_id: String,
    pub event_name: String,
    /// The event's media queue. The session sends `Tracks` first and `End` last on it.
    pub media: MediaSender,
    /// The statistics of this session; keep a clone for status (see [`SrtStats::snapshot`]).
    pub stats: Arc<SrtStats>,
}

/// Why a connection was refused or a session ended. The first group is what an authorizer
/// returns; the rest is raised by edge-srt itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown stream id")]
    UnknownStreamId,
    #[error("live event {0} is not running")]
    NotRunning(String),
    #[error("live event {0} already has a publisher")]
    AlreadyPublishing(String),
    #[error("address not allowed by the live event's access control")]
    AddressNotAllowed,
    #[error("{0}")]
    Other(String),

    #[error("no stream id")]
    MissingStreamId,
    #[error("unusable stream id: {0}")]
    BadStreamId(String),
    #[error("playback (m=request) is not served over SRT")]
    PlayNotSupported,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("missing or wrong passphrase")]
    PassphraseRequired,
    #[error("the encoder sent a passphrase but the live event has none")]
    UnexpectedPassphrase,
    #[error("AES-{} required, the encoder uses AES-{}", u16::from(*required) * 8, u16::from(*offered) * 8)]
    KeyLength { required: u8, offered: u8 },
    #[error("the live event's passphrase is unusable: {0}")]
    BadEventPassphrase(String),
    #[error("SRT handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("SRT handshake failed: {0}")]
    Handshake(String),
    #[error("too many connections")]
    TooManyConnections,
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    #[error("invalid media: {0}")]
    InvalidMedia(String),
}

impl Refusal {
    /// Whether this is a passphrase failure (for status: AMS reports them apart).
    pub fn is_passphrase(&self) -> bool {
        matches!(
            self,
            Refusal::WrongPassphrase
                | Refusal::PassphraseRequired
                | Refusal::UnexpectedPassphrase
                | Refusal::KeyLength { .. }
        )
    }
}

/// A refused or failed connection, for `StreamEvent/InvalidConnection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConnection {
    pub peer: SocketAddr,
    /// The stream id the caller sent (a secret: log [`key_hint`] only).
    pub stream_id: Option<String>,
    /// The event the stream id selected, when the refusal came after the lookup.
    pub event_id: Option<String>,
    pub refusal: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller closed the connection (or SRT timed it out: no packets at all).
    Disconnected(String),
    /// No media arrived for the idle timeout.
    Idle(Duration),
    /// The appliance is shutting down.
    Shutdown,
    /// The media queue's receiver is gone or cut off (the event stopped, or a reconnecting
    /// encoder took over).
    ConsumerGone,
    /// The stream became unusable (unsupported codec, malformed data).
    Refused(Refusal),
}

/// A granted publish that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEnded {
    pub connection_id: u64,
    pub event_id: String,
    pub event_name: String,
    pub peer: SocketAddr,
    pub reason: EndReason,
}

/// Implemented by the appliance (edge-live registry, the event's SRT input settings).
///
/// [`SrtAuthorizer::lookup`] runs when the caller's conclusion handshake arrives, before the
/// handshake completes: it names the event and its passphrase (a refusal here is an SRT
/// rejection the encoder shows: 1404 not found, 1403 forbidden, 1409 conflict, ...).
/// [`SrtAuthorizer::authorize`] runs once the handshake completed (the passphrase matched):
/// it takes the event's publisher slot, as `LiveRegistry::authorize_publish` does. A refusal
/// there closes the connection. `publish_ended` is called exactly once for every grant.
///
/// Calls are made from connection tasks and must not block (an in-memory lookup is right).
pub trait SrtAuthorizer: Send + Sync {
    fn lookup(&self, req: &SrtRequest) -> Result<SrtEventSettings, Refusal>;

    fn authorize(&self, req: &SrtRequest, event: &SrtEventSettings) -> Result<SrtGrant, Refusal>;

    /// Every refused or failed connection that did not become a publish, including refusals
    /// returned by `lookup` and `authorize` and passphrase failures. Already logged
    /// (tracing, `warn`) with the reason.
    fn invalid_connection(&self, _conn: &InvalidConnection) {}

    /// A granted publish ended. Its `MediaEvent::End` (none for [`EndReason::ConsumerGone`])
    /// is delivered right after this call returns.
    fn publish_ended(&self, ended: &PublishEnded);
}

/// A short, non-secret hint of a stream id or key for logs.
pub fn key_hint(key: &str) -> String {
    let prefix: String = key.chars().take(4).collect();
    format!("{prefix}… ({} chars)", key.chars().count())
}
