//! One RTSP push connection, sans-IO: bytes and time in, [`Action`]s out. ANNOUNCE (SDP) →
//! SETUP per stream (TCP interleaved or UDP) → RECORD → RTP/RTCP → TEARDOWN, plus OPTIONS
//! and GET/SET_PARAMETER keep-alives. The adapter ([`crate::serve`]) owns the sockets.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_media::{MediaEvent, MediaSender};

use crate::auth::{EndReason, InvalidConnection, PublishEnded, PublishRequest, Refusal, RtspAuthorizer, key_hint};
use crate::builder::{Frame, MediaBuilder, StreamSpec};
use crate::depack::{AacAu, AacDepacketizer, NalAu, NalDepacketizer, parse_rtp};
use crate::message::{Input, Limits, ParseError, Reader, Request, Response};
use crate::sdp::{self, SdpStream, StreamCodec};
use crate::stats::RtspStats;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    pub limits: Limits,
    /// A recording session without media this long is ended.
    pub idle_timeout: Duration,
    /// A connection that has not started recording within this time (or that stays silent
    /// between requests) is closed.
    pub request_timeout: Duration,
    /// Announced in `Session: …;timeout=`.
    pub session_timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(60),
        }
    }
}

pub enum Action {
    Send(Bytes),
    /// Publishing was granted: media events go to this queue from now on.
    Attach(MediaSender),
    Media(MediaEvent),
    /// Bind a UDP pair for this stream, then call [`Connection::udp_bound`] (or `udp_failed`).
    BindUdp {
        stream: usize,
        client_rtp: u16,
        client_rtcp: u16,
    },
    Close,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(b) => write!(f, "Send({:?})", String::from_utf8_lossy(&b[..b.len().min(60)])),
            Action::Attach(_) => f.write_str("Attach"),
            Action::Media(MediaEvent::Unit(u)) => write!(f, "Unit(track {}, dts {})", u.track, u.dts),
            Action::Media(e) => write!(f, "Media({e:?})"),
            Action::BindUdp { stream, .. } => write!(f, "BindUdp({stream})"),
            Action::Close => f.write_str("Close"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Interleaved { rtp: u8, rtcp: u8 },
    Udp { client_rtp: u16, client_rtcp: u16 },
}

enum Depack {
    Nal(NalDepacketizer),
    Aac(AacDepacketizer),
}

struct Granted {
    event_id: String,
    event_name: String,
    stats: Arc<RtspStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Announced,
    Recording,
    Closed,
}

pub struct Connection {
    id: u64,
    peer: SocketAddr,
    cfg: PushConfig,
    auth: Arc<dyn RtspAuthorizer>,
    reader: Reader,
    state: State,
    session_id: String,
    token: Option<String>,
    granted: Option<Granted>,
    streams: Vec<SdpStream>,
    transports: Vec<Option<Transport>>,
    depack: Vec<Option<Depack>>,
    builder: Option<MediaBuilder>,
    /// A SETUP waiting for its UDP ports: (stream, cseq).
    pending_udp: Option<(usize, Option<String>)>,
    last_input: Instant,
    last_media: Instant,
}

/// The token of a push path: `/live/<token>[/<stream control>]`, with or without the
/// `rtsp://host:port` prefix.
pub fn token_of(uri: &str) -> Option<&str> {
    let path = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => uri,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    match (segs.next(), segs.next()) {
        (Some("live"), Some(t))
            if t.len() <= 256 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) =>
        {
            Some(t)
        }
        _ => None,
    }
}

fn parse_transport(h: &str) -> Result<Transport, &'static str> {
    // Several alternatives may be offered, comma-separated: take the first usable one.
    let mut last_err = "no transport";
    for alt in h.split(',') {
        let mut parts = alt.split(';').map(str::trim);
        let proto = parts.next().unwrap_or_default().to_ascii_uppercase();
        let (mut interleaved, mut client, mut multicast) = (None, None, false);
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let range = |v: &str| -> Option<(u32, u32)> {
                let (a, b) = v.split_once('-').unwrap_or((v, ""));
                let a: u32 = a.trim().parse().ok()?;
                let b: u32 = if b.is_empty() { a + 1 } else { b.trim().parse().ok()? };
                Some((a, b))
            };
            match k.to_ascii_lowercase().as_str() {
                "interleaved" => interleaved = range(v),
                "client_port" => client = range(v),
                "multicast" => multicast = true,
                _ => {}
            }
        }
        if multicast {
            last_err = "multicast is not supported";
            continue;
        }
        match proto.as_str() {
            "RTP/AVP/TCP" => match interleaved {
                Some((a, b)) if a <= 255 && b <= 255 => {
                    return Ok(Transport::Interleaved { rtp: a as u8, rtcp: b as u8 });
                }
                _ => last_err = "TCP transport without interleaved channels",
            },
            "RTP/AVP" | "RTP/AVP/UDP" => match client {
                Some((a, b)) if (1..=65535).contains(&a) && (1..=65535).contains(&b) => {
                    return Ok(Transport::Udp { client_rtp: a as u16, client_rtcp: b as u16 });
                }
                _ => last_err = "UDP transport without client_port",
            },
            _ => last_err = "unsupported transport profile",
        }
    }
    Err(last_err)
}

impl Connection {
    pub fn new(id: u64, peer: SocketAddr, cfg: PushConfig, auth: Arc<dyn RtspAuthorizer>, now: Instant) -> Self {
        Connection {
            id,
            peer,
            reader: Reader::new(cfg.limits),
            cfg,
            auth,
            state: State::Init,
            session_id: format!("{:016x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995),
            token: None,
            granted: None,
            streams: Vec::new(),
            transports: Vec::new(),
            depack: Vec::new(),
            builder: None,
            pending_udp: None,
            last_input: now,
            last_media: now,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn stats(&self) -> Option<Arc<RtspStats>> {
        self.granted.as_ref().map(|g| g.stats.clone())
    }

    /// When [`Connection::handle_timeout`] should run next.
    pub fn deadline(&self) -> Instant {
        match self.state {
            State::Recording => self.last_media + self.cfg.idle_timeout,
            _ => self.last_input + self.cfg.request_timeout,
        }
    }

    /// The stream an interleaved channel carries, and whether it is RTCP.
    fn channel(&self, ch: u8) -> Option<(usize, bool)> {
        self.transports.iter().enumerate().find_map(|(i, t)| match t {
            Some(Transport::Interleaved { rtp, rtcp }) if *rtp == ch => Some((i, false)),
            Some(Transport::Interleaved { rtp, rtcp }) if *rtcp == ch && rtcp != rtp => Some((i, true)),
            _ => None,
        })
    }

    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Closed {
            return out;
        }
        self.last_input = now;
        self.reader.push(data);
        loop {
            if self.state == State::Closed || self.pending_udp.is_some() {
                break;
            }
            match self.reader.next_input() {
                Ok(None) => break,
                Ok(Some(Input::Interleaved { channel, data })) => match self.channel(channel) {
                    Some((stream, false)) => self.rtp(stream, &data, now, &mut out),
                    Some((stream, true)) => self.rtcp(stream, &data),
                    None => {}
                },
                Ok(Some(Input::Request(req))) => self.request(req, now, &mut out),
                Err(e) => {
                    self.protocol_error(&e, &mut out);
                    break;
                }
            }
        }
        out
    }

    fn protocol_error(&mut self, e: &ParseError, out: &mut Vec<Action>) {
        let (status, reason) = e.status();
        tracing::info!(peer = %self.peer, %e, "RTSP: bad request, closing");
        out.push(Action::Send(Response::new(status, reason).to_bytes(None)));
        self.auth.invalid_connection(&InvalidConnection {
            peer: self.peer,
            token: self.token.clone(),
            event_id: self.granted.as_ref().map(|g| g.event_id.clone()),
            refusal: Refusal::Malformed(e.to_string()),
        });
        self.end(EndReason::Refused(Refusal::Malformed(e.to_string())), out);
    }

    fn refuse(&mut self, req: &Request, refusal: Refusal, close: bool, out: &mut Vec<Action>) {
        let (status, reason) = refusal.status();
        tracing::info!(peer = %self.peer, method = %req.method, token = ?self.token.as_deref().map(key_hint), %refusal, "RTSP: refused");
        out.push(Action::Send(Response::new(status, reason).to_bytes(req.cseq())));
        self.auth.invalid_connection(&InvalidConnection {
            peer: self.peer,
            token: self.token.clone(),
            event_id: self.granted.as_ref().map(|g| g.event_id.clone()),
            refusal: refusal.clone(),
        });
        if close {
            self.end(EndReason::Refused(refusal), out);
        }
    }

    fn reply(&self, req: &Request, resp: Response, out: &mut Vec<Action>) {
        out.push(Action::Send(resp.to_bytes(req.cseq())));
    }

    fn session_header(&self) -> String {
        format!("{};timeout={}", self.session_id, self.cfg.session_timeout.as_secs())
    }

    fn session_matches(&self, req: &Request) -> bool {
        req.header("Session").is_none_or(|s| s.split(';').next().unwrap_or_default().trim() == self.session_id)
    }

    fn request(&mut self, req: Request, now: Instant, out: &mut Vec<Action>) {
        const PUBLIC: &str = "OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
        match req.method.as_str() {
            "OPTIONS" => self.reply(&req, Response::ok().header("Public", PUBLIC), out),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                if !self.session_matches(&req) {
                    return self.reply(&req, Response::new(454, "Session Not Found"), out);
                }
                self.reply(&req, Response::ok(), out)
            }
            "ANNOUNCE" => self.announce(req, out),
            "SETUP" => self.setup(req, out),
            "RECORD" => self.record(req, now, out),
            "TEARDOWN" => {
                self.reply(&req, Response::ok(), out);
                self.end(EndReason::Teardown, out);
            }
            "DESCRIBE" | "PLAY" | "PAUSE" => self.reply(
                &req,
                Response::new(405, "Method Not Allowed (this server takes RTSP push: ANNOUNCE and RECORD)")
                    .header("Allow", PUBLIC),
                out,
            ),
            _ => self.reply(&req, Response::new(501, "Not Implemented").header("Public", PUBLIC), out),
        }
    }

    fn announce(&mut self, req: Request, out: &mut Vec<Action>) {
        if self.state != State::Init {
            return self.reply(&req, Response::new(455, "Method Not Valid in This State"), out);
        }
        let Some(token) = token_of(&req.uri) else {
            return self.refuse(&req, Refusal::UnknownPath, true, out);
        };
        self.token = Some(token.to_owned());
        if req.header("Content-Type").is_some_and(|c| !c.to_ascii_lowercase().starts_with("application/sdp")) {
            return self.refuse(&req, Refusal::BadSdp("Content-Type is not application/sdp".into()), true, out);
        }
        let streams = match sdp::parse(&req.body) {
            Ok(s) => s,
            Err(e @ sdp::SdpError::NoUsableMedia(_)) => {
                return self.refuse(&req, Refusal::UnsupportedMedia(e.to_string()), true, out);
            }
            Err(e) => return self.refuse(&req, Refusal::BadSdp(e.to_string()), true, out),
        };
        let grant = match self.auth.authorize(&PublishRequest {
            peer: self.peer,
            token: token.to_owned(),
            connection_id: self.id,
        }) {
            Ok(g) => g,
            Err(r) => return self.refuse(&req, r, true, out),
        };
        for s in streams.iter().filter(|s| s.codec.is_none()) {
            tracing::info!(event = %grant.event_name, "RTSP: stream {} ignored: {}", s.index, s.unusable.as_deref().unwrap_or("?"));
        }
        self.transports = vec![None; streams.len()];
        self.depack = streams
            .iter()
            .map(|s| match &s.codec {
                Some(StreamCodec::Video { codec, .. }) => Some(Depack::Nal(NalDepacketizer::new(*codec))),
                Some(StreamCodec::Aac { layout, .. }) => AacDepacketizer::new(*layout).ok().map(Depack::Aac),
                None => None,
            })
            .collect();
        self.streams = streams;
        self.granted = Some(Granted { event_id: grant.event_id, event_name: grant.event_name, stats: grant.stats });
        self.state = State::Announced;
        out.push(Action::Attach(grant.media));
        self.reply(&req, Response::ok(), out);
    }

    /// The announced stream a SETUP URI names: by its control attribute, else the first one
    /// not set up yet.
    fn stream_of(&self, uri: &str) -> Option<usize> {
        let by_control = self.streams.iter().position(|s| {
            s.control
                .as_deref()
                .is_some_and(|c| !c.is_empty() && c != "*" && (uri == c || uri.ends_with(&format!("/{c}"))))
        });
        by_control.or_else(|| self.transports.iter().position(Option::is_none))
    }

    fn setup(&mut self, req: Request, out: &mut Vec<Action>) {
        if !matches!(self.state, State::Announced) {
            return self.reply(&req, Response::new(455, "Method Not Valid in This State"), out);
        }
        if !self.session_matches(&req) {
            return self.reply(&req, Response::new(454, "Session Not Found"), out);
        }
        if token_of(&req.uri) != self.token.as_deref() {
            return self.reply(&req, Response::new(404, "Not Found"), out);
        }
        let Some(stream) = self.stream_of(&req.uri) else {
            return self.reply(&req, Response::new(404, "Not Found (no such stream)"), out);
        };
        let transport = match req.header("Transport").map(parse_transport) {
            Some(Ok(t)) => t,
            Some(Err(why)) => {
                tracing::info!(peer = %self.peer, why, "RTSP: unsupported transport");
                return self.reply(&req, Response::new(461, "Unsupported Transport"), out);
            }
            None => return self.reply(&req, Response::new(400, "Bad Request (no Transport)"), out),
        };
        match transport {
            Transport::Interleaved { rtp, rtcp } => {
                if self.transports.iter().enumerate().any(|(i, t)| {
                    i != stream
                        && matches!(t, Some(Transport::Interleaved { rtp: a, rtcp: b }) if [*a, *b].contains(&rtp) || [*a, *b].contains(&rtcp))
                }) {
                    return self.reply(&req, Response::new(461, "Unsupported Transport (channel in use)"), out);
                }
                self.transports[stream] = Some(transport);
                let resp = Response::ok()
                    .header("Transport", format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};mode=record"))
                    .header("Session", self.session_header());
                self.reply(&req, resp, out);
            }
            Transport::Udp { client_rtp, client_rtcp } => {
                self.transports[stream] = Some(transport);
                self.pending_udp = Some((stream, req.cseq().map(str::to_owned)));
                out.push(Action::BindUdp { stream, client_rtp, client_rtcp });
            }
        }
    }

    /// The adapter bound `server_rtp`/`server_rtcp` for the pending UDP SETUP.
    pub fn udp_bound(&mut self, server_rtp: u16, server_rtcp: u16) -> Vec<Action> {
        let mut out = Vec::new();
        let Some((stream, cseq)) = self.pending_udp.take() else { return out };
        if let Some(Transport::Udp { client_rtp, client_rtcp }) = self.transports[stream] {
            let resp = Response::ok()
                .header(
                    "Transport",
                    format!("RTP/AVP/UDP;unicast;client_port={client_rtp}-{client_rtcp};server_port={server_rtp}-{server_rtcp};mode=record"),
                )
                .header("Session", self.session_header());
            out.push(Action::Send(resp.to_bytes(cseq.as_deref())));
        }
        out
    }

    pub fn udp_failed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some((stream, cseq)) = self.pending_udp.take() {
            self.transports[stream] = None;
            out.push(Action::Send(
                Response::new(500, "Internal Server Error (no UDP ports)").to_bytes(cseq.as_deref()),
            ));
        }
        out
    }

    /// Bytes buffered after a request that waited for UDP ports.
    pub fn resume(&mut self, now: Instant) -> Vec<Action> {
        self.handle_input(&[], now)
    }

    fn record(&mut self, req: Request, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Announced {
            return self.reply(&req, Response::new(455, "Method Not Valid in This State"), out);
        }
        if !self.session_matches(&req) {
            return self.reply(&req, Response::new(454, "Session Not Found"), out);
        }
        let specs: Vec<Option<StreamSpec>> = self
            .streams
            .iter()
            .zip(&self.transports)
            .map(|(s, t)| {
                Some(StreamSpec { codec: s.codec.clone()?, clock_rate: s.clock_rate }).filter(|_| t.is_some())
            })
            .collect();
        if specs.iter().all(Option::is_none) {
            return self.reply(&req, Response::new(455, "Method Not Valid in This State (no stream set up)"), out);
        }
        self.builder = Some(MediaBuilder::new(specs));
        self.state = State::Recording;
        self.last_media = now;
        if let Some(g) = &self.granted {
            tracing::info!(event = %g.event_name, peer = %self.peer, transports = ?self.transports, "RTSP encoder recording");
        }
        self.reply(&req, Response::ok().header("Session", self.session_header()), out);
    }

    /// An RTP packet for `stream` (interleaved, or UDP from the client's address).
    pub fn rtp(&mut self, stream: usize, data: &[u8], now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Recording {
            return;
        }
        let Some(g) = &self.granted else { return };
        let stats = g.stats.clone();
        let pkt = match parse_rtp(data) {
            Ok(p) => p,
            Err(_) => return stats.packets(1, 0, 1),
        };
        if pkt.payload_type != self.streams.get(stream).map_or(255, |s| s.payload_type) {
            return stats.packets(1, 0, 1);
        }
        let Some(builder) = self.builder.as_mut() else { return };
        let mut events = Vec::new();
        let (lost_before, r) = match self.depack.get_mut(stream) {
            Some(Some(Depack::Nal(d))) => {
                let before = d.lost;
                let mut aus: Vec<NalAu> = Vec::new();
                let r = d.push(&pkt, &mut aus);
                for au in aus {
                    builder.frame(
                        stream,
                        au.timestamp,
                        Frame::Video { nals: au.nals, damaged: au.damaged },
                        now,
                        &mut events,
                    );
                }
                (d.lost - before, r)
            }
            Some(Some(Depack::Aac(d))) => {
                let before = d.lost;
                let mut aus: Vec<AacAu> = Vec::new();
                let r = d.push(&pkt, &mut aus);
                for au in aus {
                    builder.frame(stream, au.timestamp, Frame::Audio(au.data), now, &mut events);
                }
                (d.lost - before, r)
            }
            _ => return,
        };
        stats.packets(1, lost_before, u64::from(r.is_err()));
        if !events.is_empty() {
            self.last_media = now;
        }
        for e in events {
            stats.record(&e);
            out.push(Action::Media(e));
        }
    }

    pub fn rtcp(&mut self, stream: usize, data: &[u8]) {
        let (Some(b), Some(g)) = (self.builder.as_mut(), &self.granted) else { return };
        // quirks::IGNORE_BAD_RTCP: a malformed RTCP packet is skipped, never fatal.
        if let Ok(srs) = crate::rtcp::sender_reports(data) {
            for sr in srs {
                b.sender_report(stream, sr.ntp_secs(), sr.rtp);
                g.stats.sender_report();
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Closed || now < self.deadline() {
            return out;
        }
        match self.state {
            State::Recording => self.end(EndReason::Idle(self.cfg.idle_timeout), &mut out),
            _ => {
                tracing::info!(peer = %self.peer, "RTSP: no request for {:?}, closing", self.cfg.request_timeout);
                self.end(EndReason::Disconnected("request timeout".into()), &mut out)
            }
        }
        out
    }

    pub fn handle_closed(&mut self, error: Option<String>) -> Vec<Action> {
        let mut out = Vec::new();
        self.end(EndReason::Disconnected(error.unwrap_or_else(|| "closed by the encoder".into())), &mut out);
        out
    }

    pub fn shutdown(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.end(EndReason::Shutdown, &mut out);
        out
    }

    pub fn consumer_gone(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.end(EndReason::ConsumerGone, &mut out);
        out
    }

    fn end(&mut self, reason: EndReason, out: &mut Vec<Action>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        if let Some(g) = self.granted.take() {
            if let Some(b) = self.builder.as_mut() {
                let mut events = Vec::new();
                b.flush(&mut events);
                for e in events {
                    g.stats.record(&e);
                    out.push(Action::Media(e));
                }
            }
            if !matches!(reason, EndReason::ConsumerGone) {
                out.push(Action::Media(MediaEvent::End));
            }
            self.auth.publish_ended(&PublishEnded {
                connection_id: self.id,
                event_id: g.event_id,
                event_name: g.event_name,
                peer: self.peer,
                reason,
            });
        }
        out.push(Action::Close);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
