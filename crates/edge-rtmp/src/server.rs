//! The tokio adapter: accepts TCP (and TLS), runs one task per connection that moves bytes
//! between the socket and a [`Connection`], and delivers its media events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use edge_media::{MediaEvent, MediaSender, SendOutcome};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::RtmpConfig;
use crate::auth::{InvalidConnection, PublishAuthorizer, Refusal};
use crate::conn::{Action, Connection};

/// Bytes read per `read` call; also what a connection buffers at most besides rml_rtmp's
/// current message (bounded by `max_message_size`).
const READ_BUF: usize = 16 * 1024;
/// A peer that does not take our few bytes (acks, status) within this is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves RTMP (or RTMPS when `tls` is set) on `listener` until `shutdown` turns true, then
/// ends every publish (each gets `End`) and returns once all connection tasks are done.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    authorizer: Arc<dyn PublishAuthorizer>,
    cfg: RtmpConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let mut tasks = JoinSet::new();
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, secure = tls.is_some(), "RTMP ingest listening");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            r = shutdown.changed() => {
                if r.is_err() {
                    break;
                }
                continue;
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            report(&*authorizer, peer, Refusal::TooManyConnections);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (tls, auth, cfg, shutdown) = (tls.clone(), authorizer.clone(), cfg.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let start = Instant::now();
            match tls {
                None => run(tcp, peer, false, auth, cfg, shutdown, start).await,
                Some(acceptor) => {
                    let deadline = start + cfg.handshake_timeout;
                    match timeout_at(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => run(stream, peer, true, auth, cfg, shutdown, start).await,
                        Ok(Err(e)) => report(&*auth, peer, Refusal::Tls(e.to_string())),
                        Err(_) => report(&*auth, peer, Refusal::SetupTimeout(cfg.handshake_timeout)),
                    }
                }
            }
        });
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    tracing::info!(addr = ?local, "RTMP ingest stopped");
}

fn report(auth: &dyn PublishAuthorizer, peer: SocketAddr, refusal: Refusal) {
    tracing::warn!(%peer, reason = %refusal, "RTMP connection refused");
    auth.invalid_connection(&InvalidConnection { peer, app: None, stream_key: None, event_id: None, refusal });
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    secure: bool,
    auth: Arc<dyn PublishAuthorizer>,
    cfg: RtmpConfig,
    mut shutdown: watch::Receiver<bool>,
    start: Instant,
) {
    let control_wait = cfg.idle_timeout;
    let mut conn = Connection::new(peer, secure, auth, cfg, start.into_std());
    let mut media: Option<MediaSender> = None;
    let mut buf = vec![0u8; READ_BUF];
    let mut stopping = *shutdown.borrow();
    // The timer and the shutdown wait live as long as the connection: made anew for every
    // read, they cost a timer-wheel and a Notify registration per read (a few per video
    // frame). Moving the deadline later is a lock-free update of the registered timer.
    let stop = async move {
        while shutdown.changed().await.is_ok() {
            if *shutdown.borrow() {
                return;
            }
        }
    };
    let mut stop = pin!(stop);
    let mut stop_seen = stopping;
    let mut timer = pin!(sleep_until(Instant::now() + Duration::from_secs(3600)));
    loop {
        let actions = if stopping {
            stopping = false;
            conn.shutdown(std::time::Instant::now())
        } else {
            let deadline =
                conn.deadline().map_or_else(|| Instant::now() + Duration::from_secs(3600), Instant::from_std);
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                r = stream.read(&mut buf) => {
                    let now = std::time::Instant::now();
                    match r {
                        Ok(0) => conn.handle_closed(None, now),
                        Ok(n) => conn.handle_input(&buf[..n], now),
                        Err(e) => conn.handle_closed(Some(e.to_string()), now),
                    }
                }
                _ = &mut timer => conn.handle_timeout(std::time::Instant::now()),
                _ = &mut stop, if !stop_seen => {
                    stop_seen = true;
                    stopping = true;
                    continue;
                }
            }
        };
        let mut close = false;
        let mut actions = VecDeque::from(actions);
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(bytes) => match timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        actions.extend(conn.handle_closed(Some(e.to_string()), std::time::Instant::now()));
                    }
                    Err(_) => {
                        let why = "write timed out".to_string();
                        actions.extend(conn.handle_closed(Some(why), std::time::Instant::now()));
                    }
                },
                Action::Attach(sender) => media = Some(sender),
                Action::Media(ev) => {
                    let Some(tx) = media.as_mut() else { continue };
                    let outcome = match ev {
                        MediaEvent::Unit(au) => tx.send_unit(au),
                        ev => {
                            // Control events wait for room, but not forever: a consumer that
                            // stopped reading must not pin the connection.
                            timeout(control_wait, tx.send_control(ev)).await.unwrap_or_else(|_| {
                                tracing::error!(%peer, "media consumer stalled; control event lost");
                                SendOutcome::Dropped
                            })
                        }
                    };
                    if outcome == SendOutcome::Closed {
                        media = None;
                        actions.extend(conn.consumer_gone(std::time::Instant::now()));
                    }
                }
                Action::Close => close = true,
            }
        }
        if close || conn.is_closed() {
            let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
            return;
        }
    }
}
