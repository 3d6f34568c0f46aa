//! The sans-IO core of one RTMP connection: bytes and time in, [`Action`]s out.
//!
//! It owns the rml_rtmp handshake and `ServerSession`, decides publish requests through the
//! [`PublishAuthorizer`], turns FLV payloads into media events and enforces the timeouts it
//! is asked about. It never blocks and never panics on input: rml_rtmp panics on some malformed
//! messages, so every call into it is unwound and treated as a protocol error, and the
//! [`ChunkGuard`] refuses what would overflow the stack or buffer too much before rml_rtmp
//! sees it.

use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use edge_media::{MediaEvent, MediaSender};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult, StreamMetadata,
};

use crate::RtmpConfig;
use crate::auth::{EndReason, InvalidConnection, PublishAuthorizer, PublishEnded, PublishRequest, Refusal, key_hint};
use crate::guard::{ChunkGuard, GuardError};
use crate::key::extract_stream_key;
use crate::media::Demuxer;
use crate::stats::{EncoderMetadata, IngestStats};

/// What the I/O side must do, in order.
pub enum Action {
    /// Write these bytes to the peer.
    Send(Bytes),
    /// Publishing was granted: media events from now on go to this queue.
    Attach(MediaSender),
    /// Deliver to the attached queue: units without waiting (`send_unit`), everything else
    /// waiting for room (`send_control`).
    Media(MediaEvent),
    /// Flush what was sent and close the connection; nothing follows.
    Close,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(b) => write!(f, "Send({} bytes)", b.len()),
            Action::Attach(_) => f.write_str("Attach"),
            Action::Media(MediaEvent::Unit(u)) => {
                write!(f, "Unit(track {}, dts {}, {} bytes)", u.track, u.dts, u.data.len())
            }
            Action::Media(e) => write!(f, "Media({e:?})"),
            Action::Close => f.write_str("Close"),
        }
    }
}

enum Phase {
    Handshake(Box<Handshake>),
    Session(Box<ServerSession>),
    Closed,
}

struct Publishing {
    event_id: String,
    event_name: String,
    stats: Arc<IngestStats>,
    demux: Demuxer,
    ended: bool,
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub struct Connection {
    id: u64,
    peer: SocketAddr,
    secure: bool,
    cfg: RtmpConfig,
    auth: Arc<dyn PublishAuthorizer>,
    phase: Phase,
    guard: ChunkGuard,
    created: Instant,
    last_media: Instant,
    app: Option<String>,
    tried_key: Option<String>,
    publishing: Option<Publishing>,
    out: Vec<Action>,
}

impl Connection {
    pub fn new(
        peer: SocketAddr,
        secure: bool,
        authorizer: Arc<dyn PublishAuthorizer>,
        cfg: RtmpConfig,
        now: Instant,
    ) -> Self {
        Self {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            secure,
            guard: ChunkGuard::new(cfg.max_message_size),
            cfg,
            auth: authorizer,
            phase: Phase::Handshake(Box::new(Handshake::new(PeerType::Server))),
            created: now,
            last_media: now,
            app: None,
            tried_key: None,
            publishing: None,
            out: Vec::new(),
        }
    }

    /// Unique per connection in this process (see [`PublishRequest::connection_id`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing.as_ref().is_some_and(|p| !p.ended)
    }

    /// When [`Connection::handle_timeout`] must be called next: the handshake/setup deadline
    /// until publishing starts, then the idle deadline (last media + idle timeout).
    pub fn deadline(&self) -> Option<Instant> {
        match (&self.phase, &self.publishing) {
            (Phase::Closed, _) => None,
            (_, Some(_)) => Some(self.last_media + self.cfg.idle_timeout),
            (_, None) => Some(self.created + self.cfg.handshake_timeout),
        }
    }

    /// Bytes read from the peer.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Vec<Action> {
        if let Some(p) = &self.publishing {
            p.stats.received(data.len());
        }
        match &mut self.phase {
            Phase::Closed => {}
            Phase::Handshake(hs) => match catch_unwind(AssertUnwindSafe(|| hs.process_bytes(data))) {
                Ok(Ok(HandshakeProcessResult::InProgress { response_bytes })) => {
                    self.send(response_bytes);
                }
                Ok(Ok(HandshakeProcessResult::Completed { response_bytes, remaining_bytes })) => {
                    self.send(response_bytes);
                    self.start_session(&remaining_bytes, now);
                }
                Ok(Err(e)) => self.refuse(Refusal::Handshake(e.to_string())),
                Err(_) => self.refuse(Refusal::Handshake("malformed handshake".into())),
            },
            Phase::Session(_) => self.session_input(data, now),
        }
        std::mem::take(&mut self.out)
    }

    /// Call at [`Connection::deadline`].
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        if self.deadline().is_some_and(|d| now >= d) {
            if self.publishing.is_some() {
                self.end(EndReason::Idle(self.cfg.idle_timeout), now);
            } else {
                self.refuse(Refusal::SetupTimeout(self.cfg.handshake_timeout));
            }
        }
        std::mem::take(&mut self.out)
    }

    /// The peer closed the connection (`error: None`) or reading/writing failed.
    pub fn handle_closed(&mut self, error: Option<String>, now: Instant) -> Vec<Action> {
        if self.publishing.is_some() {
            let why = error.unwrap_or_else(|| "closed by the encoder".into());
            self.end(EndReason::Disconnected(why), now);
        } else if !self.is_closed() {
            // Probes and health checks connect and leave: not worth a stream event.
            tracing::debug!(conn = self.id, peer = %self.peer, ?error, "RTMP connection closed before publishing");
            self.close();
        }
        std::mem::take(&mut self.out)
    }

    /// The appliance is shutting down.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        if self.publishing.is_some() {
            self.end(EndReason::Shutdown, now);
        } else {
            self.close();
        }
        std::mem::take(&mut self.out)
    }

    /// The media queue's receiver is gone (the event stopped): disconnect the encoder.
    pub fn consumer_gone(&mut self, now: Instant) -> Vec<Action> {
        self.end(EndReason::ConsumerGone, now);
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.out.push(Action::Send(Bytes::from(bytes)));
        }
    }

    fn close(&mut self) {
        if !self.is_closed() {
            self.phase = Phase::Closed;
            self.out.push(Action::Close);
        }
    }

    fn start_session(&mut self, remaining: &[u8], now: Instant) {
        let mut config = ServerSessionConfig::new();
        config.chunk_size = self.cfg.chunk_size;
        match catch_unwind(|| ServerSession::new(config)) {
            Ok(Ok((session, results))) => {
                self.phase = Phase::Session(Box::new(session));
                self.results(results, now);
                if !remaining.is_empty() && !self.is_closed() {
                    self.session_input(remaining, now);
                }
            }
            _ => self.refuse(Refusal::Protocol("could not start an RTMP session".into())),
        }
    }

    fn session_input(&mut self, data: &[u8], now: Instant) {
        if let Err(e) = self.guard.feed(data) {
            let refusal = match e {
                GuardError::TooLarge { size, limit } => Refusal::MessageTooLarge { size, limit },
                e => Refusal::Protocol(e.to_string()),
            };
            self.fail(refusal, now);
            return;
        }
        if let Some(results) = self.call(|s| s.handle_input(data), now) {
            self.results(results, now);
        }
    }

    /// Calls into the session, turning errors and panics into a failed connection.
    fn call(
        &mut self,
        f: impl FnOnce(&mut ServerSession) -> Result<Vec<ServerSessionResult>, ServerSessionError>,
        now: Instant,
    ) -> Option<Vec<ServerSessionResult>> {
        let Phase::Session(session) = &mut self.phase else {
            return None;
        };
        match catch_unwind(AssertUnwindSafe(|| f(session))) {
            Ok(Ok(results)) => Some(results),
            Ok(Err(e)) => {
                self.fail(Refusal::Protocol(e.to_string()), now);
                None
            }
            Err(_) => {
                self.fail(Refusal::Protocol("malformed RTMP message".into()), now);
                None
            }
        }
    }

    fn results(&mut self, results: Vec<ServerSessionResult>, now: Instant) {
        for r in results {
            if self.is_closed() {
                return;
            }
            match r {
                ServerSessionResult::OutboundResponse(packet) => self.send(packet.bytes),
                ServerSessionResult::RaisedEvent(ev) => self.event(ev, now),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }

    fn event(&mut self, ev: ServerSessionEvent, now: Instant) {
        match ev {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if self.app.is_some() {
                    self.fail(Refusal::Protocol("second connect".into()), now);
                    return;
                }
                self.app = Some(app_name);
                if let Some(r) = self.call(|s| s.accept_request(request_id), now) {
                    self.results(r, now);
                }
            }
            ServerSessionEvent::PublishStreamRequested { request_id, app_name, stream_key, .. } => {
                self.publish(request_id, &app_name, &stream_key, now)
            }
            ServerSessionEvent::PublishStreamFinished { .. } => self.end(EndReason::Unpublished, now),
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(p) = &mut self.publishing {
                    let mut events = Vec::new();
                    p.demux.metadata(encoder_metadata(metadata), &mut events);
                    self.media(events);
                }
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => self.av(true, timestamp.value, &data, now),
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                self.av(false, timestamp.value, &data, now)
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                self.reject(request_id, Refusal::PlayNotSupported, now)
            }
            _ => {}
        }
    }

    fn publish(&mut self, request_id: u32, app: &str, name: &str, now: Instant) {
        if self.publishing.is_some() {
            self.fail(Refusal::Protocol("second publish on one connection".into()), now);
            return;
        }
        let Some(target) = extract_stream_key(app, name) else {
            let refusal = Refusal::MissingKey { app: app.into(), name: name.into() };
            self.reject(request_id, refusal, now);
            return;
        };
        self.tried_key = Some(target.key.clone());
        let req = PublishRequest {
            app: target.app,
            stream_key: target.key,
            stream_name: target.stream_name,
            peer: self.peer.ip(),
            secure: self.secure,
            tc_url: None,
            connection_id: self.id,
        };
        let grant = match self.auth.authorize(&req) {
            Ok(g) => g,
            Err(refusal) => return self.reject(request_id, refusal, now),
        };
        tracing::info!(
            conn = self.id, peer = %self.peer, event = %grant.event_name, key = %key_hint(&req.stream_key),
            secure = self.secure, "RTMP publish started"
        );
        grant.stats.started(self.peer, now);
        self.last_media = now;
        self.publishing = Some(Publishing {
            event_id: grant.event_id,
            event_name: grant.event_name,
            demux: Demuxer::new(
                self.cfg.max_timestamp_jump.as_millis().min(u32::MAX.into()) as u32,
                self.cfg.track_grace.as_millis().min(u32::MAX.into()) as u32,
                grant.stats.clone(),
            ),
            stats: grant.stats,
            ended: false,
        });
        self.out.push(Action::Attach(grant.media));
        if let Some(r) = self.call(|s| s.accept_request(request_id), now) {
            self.results(r, now);
        }
    }

    fn av(&mut self, video: bool, ts: u32, data: &Bytes, now: Instant) {
        let Some(p) = &mut self.publishing else {
            return;
        };
        self.last_media = now;
        let mut events = Vec::new();
        let res =
            if video { p.demux.video(ts, data, now, &mut events) } else { p.demux.audio(ts, data, now, &mut events) };
        self.media(events);
        if let Err(refusal) = res {
            self.fail(refusal, now);
        }
    }

    fn media(&mut self, events: Vec<MediaEvent>) {
        self.out.extend(events.into_iter().map(Action::Media));
    }

    /// Refuses an outstanding request with an error status, then the connection.
    fn reject(&mut self, request_id: u32, refusal: Refusal, now: Instant) {
        let code = refusal.status_code();
        let text = refusal.to_string();
        if let Some(r) = self.call(|s| s.reject_request(request_id, code, &text), now) {
            self.results(r, now);
        }
        self.refuse(refusal);
    }

    fn fail(&mut self, refusal: Refusal, now: Instant) {
        if self.publishing.is_some() {
            self.end(EndReason::Refused(refusal), now);
        } else {
            self.refuse(refusal);
        }
    }

    fn refuse(&mut self, refusal: Refusal) {
        if self.is_closed() {
            return;
        }
        let hint = self.tried_key.as_deref().map(key_hint);
        tracing::warn!(
            conn = self.id, peer = %self.peer, app = ?self.app, key = ?hint, secure = self.secure,
            reason = %refusal, "RTMP connection refused"
        );
        self.auth.invalid_connection(&InvalidConnection {
            peer: self.peer,
            app: self.app.clone(),
            stream_key: self.tried_key.clone(),
            event_id: None,
            refusal,
        });
        self.close();
    }

    fn end(&mut self, reason: EndReason, now: Instant) {
        if let Some(p) = &mut self.publishing
            && !p.ended
        {
            p.ended = true;
            let mut events = Vec::new();
            p.demux.finish(&mut events);
            if !matches!(reason, EndReason::ConsumerGone) {
                events.push(MediaEvent::End);
            }
            p.stats.ended(now);
            match &reason {
                EndReason::Refused(r) => tracing::warn!(
                    conn = self.id, peer = %self.peer, event = %p.event_name, reason = %r, "RTMP publish refused mid-stream"
                ),
                r => {
                    tracing::info!(conn = self.id, peer = %self.peer, event = %p.event_name, reason = ?r, "RTMP publish ended")
                }
            }
            let ended = PublishEnded {
                connection_id: self.id,
                event_id: p.event_id.clone(),
                event_name: p.event_name.clone(),
                peer: self.peer,
                reason,
            };
            self.media(events);
            self.auth.publish_ended(&ended);
        }
        self.close();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The grant's slot must be freed whatever happened to the task.
        if let Some(p) = &mut self.publishing
            && !p.ended
        {
            p.ended = true;
            p.stats.ended(Instant::now());
            self.auth.publish_ended(&PublishEnded {
                connection_id: self.id,
                event_id: p.event_id.clone(),
                event_name: p.event_name.clone(),
                peer: self.peer,
                reason: EndReason::Aborted,
            });
        }
    }
}

fn encoder_metadata(m: StreamMetadata) -> EncoderMetadata {
    EncoderMetadata {
        width: m.video_width,
        height: m.video_height,
        frame_rate: m.video_frame_rate,
        video_data_rate_kbps: m.video_bitrate_kbps,
        audio_data_rate_kbps: m.audio_bitrate_kbps,
        audio_sample_rate: m.audio_sample_rate,
        audio_channels: m.audio_channels,
        video_codec_id: m.video_codec_id,
        audio_codec_id: m.audio_codec_id,
        encoder: m.encoder,
    }
}
