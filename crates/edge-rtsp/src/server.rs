//! The tokio adapter of RTSP push: one task per TCP connection running a
//! [`Connection`]; UDP transports get a pair of sockets per stream whose packets (from the
//! encoder's address only) are forwarded to the connection task through a bounded queue
//! (drops counted as bad packets).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edge_media::{MediaEvent, MediaSender, SendOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout};

use crate::auth::RtspAuthorizer;
use crate::session::{Action, Connection, PushConfig};

/// How long a control event (`Tracks`, `End`) may wait for room in the media queue.
pub const CONTROL_WAIT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// UDP packets queued from the sockets to the connection task.
const UDP_QUEUE: usize = 2048;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Serves RTSP push on `listener` until `shutdown` turns true; every session then ends (its
/// queue gets `End`).
pub async fn serve(
    listener: TcpListener,
    authorizer: Arc<dyn RtspAuthorizer>,
    cfg: PushConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    while tasks.try_join_next().is_some() {}
                    if tasks.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "RTSP: too many connections, refusing");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
                    tasks.spawn(connection(stream, peer, id, authorizer.clone(), cfg.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!("RTSP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Binds an even/odd pair of UDP ports on `ip` (RTP, RTCP).
async fn bind_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..32 {
        let a = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = a.local_addr()?.port();
        let (rtp_port, a) = if port % 2 == 0 {
            (port, a)
        } else {
            drop(a);
            match UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1))).await {
                Ok(s) if port < u16::MAX => (port + 1, s),
                _ => continue,
            }
        };
        if let Ok(b) = UdpSocket::bind(SocketAddr::new(ip, rtp_port + 1)).await {
            return Ok((a, b));
        }
    }
    Err(std::io::Error::other("no free even/odd UDP port pair"))
}

struct Udp {
    stream: usize,
    rtcp: bool,
    data: Vec<u8>,
}

async fn connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    id: u64,
    auth: Arc<dyn RtspAuthorizer>,
    cfg: PushConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let local_ip = tcp.local_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let mut conn = Connection::new(id, peer, cfg, auth, std::time::Instant::now());
    let mut media: Option<MediaSender> = None;
    let mut udp_tasks = JoinSet::new();
    let (udp_tx, mut udp_rx) = mpsc::channel::<Udp>(UDP_QUEUE);
    let udp_dropped = Arc::new(AtomicU64::new(0));
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<Action> = Vec::new();
    loop {
        // Run the actions; a BindUdp binds and feeds the result back.
        while !pending.is_empty() {
            let actions = std::mem::take(&mut pending);
            for a in actions {
                match a {
                    Action::Send(b) => {
                        if !matches!(timeout(WRITE_TIMEOUT, tcp.write_all(&b)).await, Ok(Ok(()))) {
                            pending.extend(conn.handle_closed(Some("write failed".into())));
                        }
                    }
                    Action::Attach(m) => media = Some(m),
                    Action::Media(ev) => {
                        let Some(m) = media.as_mut() else { continue };
                        let outcome = match ev {
                            MediaEvent::Unit(u) => m.send_unit(u),
                            other => timeout(CONTROL_WAIT, m.send_control(other)).await.unwrap_or(SendOutcome::Dropped),
                        };
                        if outcome == SendOutcome::Closed && !conn.is_closed() {
                            pending.extend(conn.consumer_gone());
                        }
                    }
                    Action::BindUdp { stream, client_rtp, client_rtcp } => match bind_pair(local_ip).await {
                        Ok((rtp, rtcp)) => {
                            let ports = (
                                rtp.local_addr().map(|a| a.port()).unwrap_or(0),
                                rtcp.local_addr().map(|a| a.port()).unwrap_or(0),
                            );
                            for (sock, is_rtcp, client_port) in [(rtp, false, client_rtp), (rtcp, true, client_rtcp)] {
                                let tx = udp_tx.clone();
                                let dropped = udp_dropped.clone();
                                let peer_ip = peer.ip();
                                udp_tasks.spawn(async move {
                                    // Punch through NATs/firewalls toward the encoder, as RTSP servers do.
                                    let _ = sock.send_to(&[0u8; 4][..0], SocketAddr::new(peer_ip, client_port)).await;
                                    let mut b = vec![0u8; 65536];
                                    loop {
                                        let Ok((n, from)) = sock.recv_from(&mut b).await else { break };
                                        if from.ip() != peer_ip {
                                            continue;
                                        }
                                        let msg = Udp { stream, rtcp: is_rtcp, data: b[..n].to_vec() };
                                        if tx.try_send(msg).is_err() {
                                            dropped.fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                });
                            }
                            pending.extend(conn.udp_bound(ports.0, ports.1));
                            pending.extend(conn.resume(std::time::Instant::now()));
                        }
                        Err(e) => {
                            tracing::warn!(%peer, "RTSP: cannot bind UDP ports: {e}");
                            pending.extend(conn.udp_failed());
                            pending.extend(conn.resume(std::time::Instant::now()));
                        }
                    },
                    Action::Close => {
                        let _ = timeout(Duration::from_secs(1), tcp.shutdown()).await;
                    }
                }
            }
        }
        if conn.is_closed() {
            break;
        }
        let deadline = tokio::time::Instant::from_std(conn.deadline());
        tokio::select! {
            r = tcp.read(&mut buf) => match r {
                Ok(0) => pending.extend(conn.handle_closed(None)),
                Ok(n) => pending.extend(conn.handle_input(&buf[..n], std::time::Instant::now())),
                Err(e) => pending.extend(conn.handle_closed(Some(e.to_string()))),
            },
            Some(u) = udp_rx.recv() => {
                let now = std::time::Instant::now();
                if u.rtcp {
                    conn.rtcp(u.stream, &u.data);
                } else {
                    conn.rtp(u.stream, &u.data, now, &mut pending);
                }
                let d = udp_dropped.swap(0, Ordering::Relaxed);
                if d > 0 && let Some(s) = conn.stats() {
                    s.packets(0, 0, d);
                }
            }
            _ = sleep_until(deadline) => pending.extend(conn.handle_timeout(std::time::Instant::now())),
            _ = shutdown.changed() => pending.extend(conn.shutdown()),
        }
    }
    udp_tasks.abort_all();
}
