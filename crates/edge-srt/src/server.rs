//! The tokio adapter: [`crate::transport`]'s listener on one UDP port, one task per
//! connection request (lookup, per-event passphrase, handshake, authorize), then one task per
//! session that feeds SRT payloads through the TS demultiplexer into the event's media queue.
//!
//! A session task never waits on anything but its connection for long (units are sent
//! without waiting; control events wait at most [`CONTROL_WAIT`]): its connection's payloads
//! queue up meanwhile, and SRT's latency window is short.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edge_media::{MediaEvent, MediaSender, SendOutcome};
use edge_ts::{TsDemuxer, TsError};
use srt_protocol::options::{KeySize, Passphrase};
use srt_protocol::packet::{RejectReason, ServerRejectReason};
use srt_protocol::settings::KeySettings;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};

use crate::SrtConfig;
use crate::auth::{
    EndReason, InvalidConnection, PublishEnded, Refusal, SrtAuthorizer, SrtEventSettings, SrtGrant, SrtRequest,
    key_hint,
};
use crate::stats::SrtStats;
use crate::streamid::{StreamMode, parse_stream_id};
use crate::transport::{self, Request, Session};

/// How long a control event (`Tracks`, `Discontinuity`, `End`) may wait for room in the
/// media queue before it is given up (and logged): see the module documentation.
pub const CONTROL_WAIT: Duration = Duration::from_secs(1);

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Serves SRT ingest on `socket` until `shutdown` turns true, then ends every session (each
/// gets `End`) and returns once all tasks are done. If the listener task dies, it is started
/// again on the same socket.
pub async fn serve(
    socket: UdpSocket,
    authorizer: Arc<dyn SrtAuthorizer>,
    cfg: SrtConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(local) = socket.local_addr() else {
        tracing::error!("SRT ingest: the socket has no local address");
        return;
    };
    let settings = match transport::listener_settings(local, cfg.latency, cfg.peer_idle_timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "SRT ingest: invalid settings");
            return;
        }
    };
    let socket = Arc::new(socket);
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let mut tasks = JoinSet::new();
    'listen: loop {
        if *shutdown.borrow() {
            break;
        }
        let (listener, mut incoming) = match transport::listen(socket.clone(), settings.clone()) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %local, error = %e, "SRT ingest cannot listen");
                break;
            }
        };
        tracing::info!(addr = %local, "SRT ingest listening");
        loop {
            tokio::select! {
                req = incoming.recv() => {
                    let Some(req) = req else {
                        tracing::error!(addr = %local, counters = %listener.counters_summary(), "SRT listener task ended; starting it again");
                        drop(listener);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue 'listen;
                    };
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        let (peer, sid) = (req.remote, req.stream_id.clone());
                        req.reject(reject_reason(&Refusal::TooManyConnections));
                        report(&*authorizer, peer, sid, None, Refusal::TooManyConnections);
                        continue;
                    };
                    tasks.spawn(connection(req, permit, authorizer.clone(), cfg.clone(), shutdown.clone()));
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        while tasks.join_next().await.is_some() {}
                        tracing::info!(addr = %local, counters = %listener.counters_summary(), "SRT listener closing");
                        listener.close().await;
                        break 'listen;
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(addr = %local, "SRT ingest stopped");
}

fn reject_reason(r: &Refusal) -> RejectReason {
    use ServerRejectReason::*;
    RejectReason::Server(match r {
        Refusal::UnknownStreamId | Refusal::NotRunning(_) | Refusal::MissingStreamId | Refusal::BadStreamId(_) => {
            Notfound
        }
        Refusal::AlreadyPublishing(_) => Conflict,
        Refusal::PlayNotSupported => BadMode,
        Refusal::TooManyConnections => Overload,
        Refusal::UnsupportedMedia(_) => NotSupMedia,
        r if r.is_passphrase() => Unauthorized,
        _ => Forbidden,
    })
}

fn report(auth: &dyn SrtAuthorizer, peer: SocketAddr, stream_id: Option<String>, event: Option<String>, r: Refusal) {
    let hint = stream_id.as_deref().map(key_hint).unwrap_or_else(|| "none".into());
    tracing::warn!(%peer, stream_id = %hint, event = event.as_deref().unwrap_or(""), reason = %r, "SRT connection refused");
    auth.invalid_connection(&InvalidConnection { peer, stream_id, event_id: event, refusal: r });
}

/// One connection request: decide, run the handshake with the event's passphrase, authorize,
/// then run the session.
async fn connection(
    req: Request,
    _permit: OwnedSemaphorePermit,
    auth: Arc<dyn SrtAuthorizer>,
    cfg: SrtConfig,
    shutdown: watch::Receiver<bool>,
) {
    let peer = req.remote;
    let raw = req.stream_id.clone();
    let key_size = req.key_size;
    let key_length = (key_size != KeySize::Unspecified).then(|| key_size.as_raw());
    let parsed = raw.as_deref().map(parse_stream_id);
    let request = SrtRequest {
        peer,
        stream_id: raw.clone(),
        target: parsed.clone().and_then(Result::ok),
        key_length,
        connection_id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
    };
    let early = match &parsed {
        Some(Err(e)) => Some(Refusal::BadStreamId(e.to_string())),
        Some(Ok(t)) if t.mode == StreamMode::Request => Some(Refusal::PlayNotSupported),
        _ => None,
    };
    let decided = match early {
        Some(r) => Err((r, None)),
        None => match auth.lookup(&request) {
            Err(r) => Err((r, None)),
            Ok(ev) => key_settings(&ev, key_size).map(|k| (ev.clone(), k)).map_err(|r| (r, Some(ev.event_id))),
        },
    };
    let (event, key) = match decided {
        Ok(d) => d,
        Err((r, event)) => {
            req.reject(reject_reason(&r));
            report(&*auth, peer, raw, event, r);
            return;
        }
    };
    let encrypted = key.is_some();
    let socket = match timeout(cfg.handshake_timeout, req.accept(key)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // A handshake that fails after acceptance is reported without a reason; with a
            // passphrase in play it fails on it (a bad key unwrap, or no key material at all).
            let r = match (encrypted, key_length) {
                (true, Some(_)) => Refusal::WrongPassphrase,
                (true, None) => Refusal::PassphraseRequired,
                (false, _) => Refusal::Handshake(e.to_string()),
            };
            report(&*auth, peer, raw, Some(event.event_id), r);
            return;
        }
        Err(_) => {
            report(&*auth, peer, raw, Some(event.event_id), Refusal::HandshakeTimeout(cfg.handshake_timeout));
            return;
        }
    };
    let latency = socket.settings().recv_tsbpd_latency;
    if let Some(want) = event.latency
        && latency < want
    {
        tracing::warn!(event = %event.event_name, %peer, ?latency, ?want, "SRT latency below the event's: set it in the encoder's URL");
    }
    let grant = match auth.authorize(&request, &event) {
        Ok(g) => g,
        Err(r) => {
            report(&*auth, peer, raw, Some(event.event_id), r);
            let _ = timeout(Duration::from_secs(1), socket.close()).await;
            return;
        }
    };
    tracing::info!(event = %grant.event_name, %peer, ?latency, encrypted, "SRT encoder connected");
    session(socket, request, latency, grant, &*auth, cfg, shutdown).await;
}

/// The handshake's key settings for an event, or why the caller cannot connect. Also keeps
/// srt-protocol 0.4.4's handshake away from its `unimplemented!()` panics: it panics when the
/// caller sends key material the listener does not expect, or a key length other than the
/// listener's.
fn key_settings(ev: &SrtEventSettings, offered: KeySize) -> Result<Option<KeySettings>, Refusal> {
    let Some(pass) = &ev.passphrase else {
        return match offered {
            KeySize::Unspecified => Ok(None),
            _ => Err(Refusal::UnexpectedPassphrase),
        };
    };
    let passphrase = Passphrase::try_from(pass.clone()).map_err(|e| Refusal::BadEventPassphrase(e.to_string()))?;
    if let Some(required) = ev.key_length
        && offered != KeySize::Unspecified
        && offered.as_raw() != required
    {
        return Err(Refusal::KeyLength { required, offered: offered.as_raw() });
    }
    // The caller's announced length (unspecified = 16 bytes, as libsrt's default).
    Ok(Some(KeySettings { key_size: offered, passphrase }))
}

async fn session(
    mut socket: Session,
    req: SrtRequest,
    latency: Duration,
    grant: SrtGrant,
    auth: &dyn SrtAuthorizer,
    cfg: SrtConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let SrtGrant { event_id, event_name, mut media, stats } = grant;
    let peer = req.peer;
    stats.started(peer, latency, req.key_length, std::time::Instant::now());
    let mut demux = TsDemuxer::new(cfg.ts.clone());
    let mut events = Vec::new();
    let mut statistics = socket.statistics();
    let mut last_media = Instant::now();
    // One idle timer for the session, moved on as media arrives (a lock-free update), rather
    // than one registered and cancelled per packet.
    let mut idle = pin!(sleep_until(last_media + cfg.idle_timeout));
    let stopping = *shutdown.borrow();
    let mut stop = pin!(async move {
        while shutdown.changed().await.is_ok() {
            if *shutdown.borrow() {
                return;
            }
        }
    });
    let reason = loop {
        if stopping {
            break EndReason::Shutdown;
        }
        let deadline = last_media + cfg.idle_timeout;
        if idle.deadline() != deadline {
            idle.as_mut().reset(deadline);
        }
        tokio::select! {
            item = socket.recv() => match item {
                Some((_, data)) => {
                    let pushed = demux.push(&data, std::time::Instant::now(), &mut events);
                    stats.received(data.len(), demux.counters(), demux.ignored_streams());
                    if deliver(&mut media, &stats, &mut events, &mut last_media, peer).await == SendOutcome::Closed {
                        break EndReason::ConsumerGone;
                    }
                    if let Err(e) = pushed {
                        break EndReason::Refused(match e {
                            TsError::Unsupported(s) => Refusal::UnsupportedMedia(s),
                            TsError::Invalid(s) => Refusal::InvalidMedia(s),
                        });
                    }
                }
                None => {
                    let why = socket.ending().await;
                    break EndReason::Disconnected(why.to_string());
                }
            },
            Ok(()) = statistics.changed() => stats.transport(&statistics.borrow_and_update()),
            _ = &mut idle => break EndReason::Idle(cfg.idle_timeout),
            _ = &mut stop => break EndReason::Shutdown,
        }
    };
    let now = std::time::Instant::now();
    if reason != EndReason::ConsumerGone {
        demux.finish(now, &mut events);
        let _ = deliver(&mut media, &stats, &mut events, &mut last_media, peer).await;
    }
    stats.ended(now);
    let c = demux.counters();
    let st = statistics.borrow().clone();
    tracing::info!(
        event = %event_name, %peer, reason = ?reason, bytes = c.bytes, cc_errors = c.cc_errors,
        dropped_units = c.dropped_units, srt_lost = st.rx_loss_data, srt_retransmitted = st.rx_retransmit_data,
        srt_too_late = st.rx_dropped_data, queue_drops = socket.queue_drops(), "SRT encoder disconnected"
    );
    let send_end = reason != EndReason::ConsumerGone;
    // The authorizer is told first (as for RTMP), then the queue gets its End.
    auth.publish_ended(&PublishEnded { connection_id: req.connection_id, event_id, event_name, peer, reason });
    if send_end && timeout(CONTROL_WAIT, media.send_control(MediaEvent::End)).await.is_err() {
        tracing::error!(%peer, "media consumer stalled; End lost");
    }
    let _ = timeout(Duration::from_secs(1), socket.close()).await;
}

/// Hands demultiplexed events to the media queue; `Closed` when the consumer is gone.
async fn deliver(
    media: &mut MediaSender,
    stats: &SrtStats,
    events: &mut Vec<MediaEvent>,
    last_media: &mut Instant,
    peer: SocketAddr,
) -> SendOutcome {
    for ev in events.drain(..) {
        let outcome = match ev {
            MediaEvent::Unit(au) => {
                *last_media = Instant::now();
                stats.unit(au.track, au.data.len(), au.keyframe, au.dts, au.arrival);
                media.send_unit(au)
            }
            ev => {
                match &ev {
                    MediaEvent::Tracks(t) => stats.tracks(t),
                    MediaEvent::Discontinuity => stats.discontinuity(),
                    _ => {}
                }
                timeout(CONTROL_WAIT, media.send_control(ev)).await.unwrap_or_else(|_| {
                    tracing::error!(%peer, "media consumer stalled; control event lost");
                    SendOutcome::Dropped
                })
            }
        };
        if outcome == SendOutcome::Closed {
            return SendOutcome::Closed;
        }
    }
    SendOutcome::Sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(passphrase: Option<&str>, key_length: Option<u8>) -> SrtEventSettings {
        SrtEventSettings {
            key: "k".into(),
            event_id: "e".into(),
            event_name: "e".into(),
            passphrase: passphrase.map(Into::into),
            key_length,
            latency: None,
        }
    }

    #[test]
    fn key_settings_follow_the_event_and_the_caller() {
        // Unencrypted event: a caller announcing a key is refused before the handshake code sees it.
        assert_eq!(key_settings(&event(None, None), KeySize::Unspecified), Ok(None));
        assert_eq!(key_settings(&event(None, None), KeySize::AES128), Err(Refusal::UnexpectedPassphrase));
        // Encrypted event: the caller's announced length is mirrored (srt-protocol panics on a
        // mismatch), unless the event requires another one.
        let k = key_settings(&event(Some("0123456789"), None), KeySize::AES256).unwrap().unwrap();
        assert_eq!(k.key_size, KeySize::AES256);
        let k = key_settings(&event(Some("0123456789"), None), KeySize::Unspecified).unwrap().unwrap();
        assert_eq!(k.key_size, KeySize::Unspecified);
        assert_eq!(
            key_settings(&event(Some("0123456789"), Some(32)), KeySize::AES128),
            Err(Refusal::KeyLength { required: 32, offered: 16 })
        );
        assert!(matches!(
            key_settings(&event(Some("short"), None), KeySize::AES128),
            Err(Refusal::BadEventPassphrase(_))
        ));
    }

    #[test]
    fn refusals_map_to_srt_reject_codes() {
        use ServerRejectReason::*;
        let code = |r: Refusal| reject_reason(&r);
        assert_eq!(code(Refusal::UnknownStreamId), RejectReason::Server(Notfound));
        assert_eq!(code(Refusal::NotRunning("x".into())), RejectReason::Server(Notfound));
        assert_eq!(code(Refusal::AlreadyPublishing("x".into())), RejectReason::Server(Conflict));
        assert_eq!(code(Refusal::AddressNotAllowed), RejectReason::Server(Forbidden));
        assert_eq!(code(Refusal::UnexpectedPassphrase), RejectReason::Server(Unauthorized));
        assert_eq!(code(Refusal::PlayNotSupported), RejectReason::Server(BadMode));
        assert_eq!(code(Refusal::TooManyConnections), RejectReason::Server(Overload));
    }
}
