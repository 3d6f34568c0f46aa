//! SRT over UDP: the tokio adapter around srt-protocol's sans-IO state machines
//! (`MultiplexListener` for handshakes on the shared port, `DuplexConnection` per session).
//!
//! srt-tokio (the same authors' adapter) was used before; this replaces its listener and
//! socket tasks because of what they did to an appliance:
//! - its listener ticked a 100 ms timer for ever, for listener statistics nobody reads: the
//!   appliance's whole idle CPU. Here nothing runs while no packet arrives, and a session's
//!   task sleeps until its connection's own next timer.
//! - one slow session stalled the port: the listener waited for room in a session's queue.
//!   Here a full queue drops the packet (counted; SRT retransmits it).
//! - a malformed packet could panic the listener task (srt-protocol's parser has `panic!`s),
//!   dropping every session on the port, and control packets srt-protocol leaves `todo!()`
//!   (congestion warning, peer error, unknown SRT extensions) panicked a session. Here the
//!   parser runs under `catch_unwind` and those packets are dropped before the connection
//!   sees them.
//! - a caller whose conclusion response was lost repeats its conclusion with socket id 0,
//!   which the open connection ignores, so a connect under loss failed. Here the session's
//!   task answers it again with the response it was opened with.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Cursor};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use srt_protocol::connection::{Connection, ConnectionSettings, DuplexConnection};
use srt_protocol::listener::{
    AccessControlRequest, AccessControlResponse, Action, Input, MultiplexListener, ResultOf, SessionId,
};
use srt_protocol::options::{KeySize, ListenerOptions, SocketOptions};
use srt_protocol::packet::{
    ControlPacket, ControlTypes, Packet, ReceivePacketError, RejectReason, ShakeType, SocketId, SrtControlPacket,
};
use srt_protocol::settings::{ConnInitSettings, KeySettings};
use srt_protocol::statistics::SocketStatistics;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

/// Connection requests waiting for the application; more are refused (overload) at once.
const REQUEST_QUEUE: usize = 64;
/// Packets waiting for one session's task; more are dropped (SRT recovers them).
const SESSION_QUEUE: usize = 256;
/// Payloads released by a session and not yet taken by the application.
const DATA_QUEUE: usize = 128;
/// Packets one session handles before it looks at its timers again.
const BATCH: usize = 64;
/// Largest UDP payload read (SRT's MSS is at most 1500).
const MAX_DATAGRAM: usize = 65536;
/// A caller that has not completed its handshake in this long is forgotten. srt-protocol's
/// listener keeps a half-open session per source address for ever; scanners would grow it.
const PENDING_TIMEOUT: Duration = Duration::from_secs(15);
/// Half-open sessions kept at most; the oldest is forgotten first.
const MAX_PENDING: usize = 1024;
/// How long a connection closed from this side may take to say goodbye before its task ends
/// regardless (the caller may neither answer the shutdown nor stop sending).
pub const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Listener settings from the appliance's configuration.
pub fn listener_settings(
    local: SocketAddr,
    latency: Duration,
    peer_idle_timeout: Duration,
) -> Result<ConnInitSettings, String> {
    let mut options = SocketOptions::default();
    options.sender.peer_latency = latency;
    options.receiver.latency = latency;
    options.session.peer_idle_timeout = peer_idle_timeout;
    let valid = ListenerOptions::with(local, options).map_err(|e| e.to_string())?;
    Ok(ConnInitSettings::from(valid.into_value().socket))
}

/// Counters of the listener task.
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// Datagrams that did not parse as SRT (or panicked the parser).
    pub malformed: AtomicU64,
    /// Packets dropped because their session's queue was full.
    pub session_queue_full: AtomicU64,
    /// Connection requests refused because the application's queue was full.
    pub requests_refused: AtomicU64,
    /// Control packets dropped before they reached a connection that cannot handle them.
    pub unsupported_control: AtomicU64,
    /// Half-open sessions forgotten (no completed handshake within the timeout, or too many).
    pub half_open_expired: AtomicU64,
    /// Open sessions forgotten when their connection ended.
    pub sessions_ended: AtomicU64,
}

/// How long half-open sessions are kept, and how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub pending_timeout: Duration,
    pub max_pending: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { pending_timeout: PENDING_TIMEOUT, max_pending: MAX_PENDING }
    }
}

/// The running listener task; [`Listener::close`] ends it and every session's connection.
#[derive(Debug)]
pub struct Listener {
    close: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    counters: Arc<ListenerCounters>,
}

impl Listener {
    pub fn counters(&self) -> &ListenerCounters {
        &self.counters
    }

    /// The counters as one log line's fields (`malformed=… queue_full=…`).
    pub fn counters_summary(&self) -> String {
        let c = &*self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "malformed={} queue_full={} requests_refused={} unsupported_control={} half_open_expired={} sessions_ended={}",
            g(&c.malformed),
            g(&c.session_queue_full),
            g(&c.requests_refused),
            g(&c.unsupported_control),
            g(&c.half_open_expired),
            g(&c.sessions_ended)
        )
    }

    /// Stops answering on the port; open sessions see their connection close.
    pub async fn close(mut self) {
        drop(self.close.take());
        let _ = (&mut self.task).await;
    }
}

/// A caller's handshake waiting for a decision: [`Request::accept`] (with the event's key)
/// or [`Request::reject`]. Dropped unanswered, the caller is refused.
#[derive(Debug)]
pub struct Request {
    pub remote: SocketAddr,
    pub stream_id: Option<String>,
    pub key_size: KeySize,
    id: SessionId,
    responses: mpsc::UnboundedSender<(SessionId, AccessControlResponse)>,
    opened: oneshot::Receiver<Session>,
    answered: bool,
}

impl Request {
    /// Lets the handshake complete with `key` (None: unencrypted) and waits for the session.
    /// An error means the handshake failed after all (typically the caller's key material
    /// did not match `key`) or the listener closed.
    pub async fn accept(mut self, key: Option<KeySettings>) -> io::Result<Session> {
        self.answer(AccessControlResponse::Accepted(key))?;
        (&mut self.opened)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "the handshake did not complete"))
    }

    /// Refuses the caller with `reason` (the SRT rejection code the encoder shows).
    pub fn reject(mut self, reason: RejectReason) {
        let _ = self.answer(AccessControlResponse::Rejected(reason));
    }

    fn answer(&mut self, response: AccessControlResponse) -> io::Result<()> {
        self.answered = true;
        self.responses
            .send((self.id, response))
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the SRT listener has closed"))
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.responses.send((self.id, AccessControlResponse::Dropped));
        }
    }
}

/// An open SRT connection: payloads in order at their TSBPD release time.
#[derive(Debug)]
pub struct Session {
    settings: ConnectionSettings,
    data: mpsc::Receiver<(Instant, Bytes)>,
    statistics: watch::Receiver<SocketStatistics>,
    close: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Ending>>,
    ended: Option<Ending>,
    queue_drops: Arc<AtomicU64>,
}

/// Why a session's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The caller sent SRT's shutdown.
    PeerShutdown,
    /// Nothing arrived from the caller for the peer idle timeout.
    PeerSilent,
    /// This side closed it.
    Closed,
    /// The listener stopped.
    ListenerGone,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ending::PeerShutdown => "the encoder closed the connection",
            Ending::PeerSilent => "nothing arrived from the encoder for the SRT peer idle timeout",
            Ending::Closed => "closed by the appliance",
            Ending::ListenerGone => "the SRT listener stopped",
        })
    }
}

impl Session {
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// The next payload; None once the connection has ended (see [`Session::ending`]).
    pub async fn recv(&mut self) -> Option<(Instant, Bytes)> {
        self.data.recv().await
    }

    /// Datagrams of this session dropped before its connection saw them (its queue was full:
    /// the session task fell behind). SRT recovers them if there is time.
    pub fn queue_drops(&self) -> u64 {
        self.queue_drops.load(Ordering::Relaxed)
    }

    /// SRT's counters, updated at the statistics interval (1 s).
    pub fn statistics(&self) -> watch::Receiver<SocketStatistics> {
        self.statistics.clone()
    }

    /// Why the connection ended; waits for it to end.
    pub async fn ending(&mut self) -> Ending {
        if let Some(e) = self.ended {
            return e;
        }
        let e = match self.task.take() {
            Some(task) => task.await.unwrap_or(Ending::Closed),
            None => Ending::Closed,
        };
        self.ended = Some(e);
        e
    }

    /// Closes the connection (SRT shutdown to the caller) and waits for its task (at most
    /// [`CLOSE_GRACE`]: a caller that neither answers nor stops sending is left behind).
    pub async fn close(mut self) {
        drop(self.close.take());
        self.data.close();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Starts answering SRT handshakes on `socket`; connection requests arrive on the receiver.
pub fn listen(socket: Arc<UdpSocket>, settings: ConnInitSettings) -> io::Result<(Listener, mpsc::Receiver<Request>)> {
    listen_with(socket, settings, Limits::default())
}

pub(crate) fn listen_with(
    socket: Arc<UdpSocket>,
    settings: ConnInitSettings,
    limits: Limits,
) -> io::Result<(Listener, mpsc::Receiver<Request>)> {
    let local = socket.local_addr()?;
    let (requests_tx, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    let (close_tx, close_rx) = oneshot::channel();
    let counters = Arc::new(ListenerCounters::default());
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    let state = ListenerTask {
        listener: MultiplexListener::new(Instant::now(), local, settings),
        socket,
        ipv6: local.is_ipv6(),
        requests: requests_tx,
        pending: HashMap::new(),
        open: HashMap::new(),
        half_open: HashMap::new(),
        half_open_order: VecDeque::new(),
        queued: VecDeque::new(),
        ended_tx,
        generation: 0,
        limits,
        counters: counters.clone(),
        out: BytesMut::with_capacity(1500),
    };
    let task = tokio::spawn(state.run(close_rx, ended_rx));
    Ok((Listener { close: Some(close_tx), task, counters }, requests_rx))
}

thread_local! {
    static CONTAINED: Cell<u32> = const { Cell::new(0) };
}

/// Runs srt-protocol code whose panics are contained: its state is only ever touched again
/// through the same guard, and the session concerned is dropped.
pub(crate) fn contained<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    CONTAINED.with(|c| c.set(c.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(c.get() - 1));
    r
}

/// Whether this thread is inside [`contained`] srt-protocol code: for a panic hook that must
/// tell those panics (known, contained) from any other (the fuzz target's).
pub fn panic_is_contained() -> bool {
    CONTAINED.with(|c| c.get() > 0)
}

/// Parses one datagram; srt-protocol's parser panics on some malformed input, which is an
/// error here like any other.
pub fn parse_packet(data: &[u8], ipv6: bool) -> Result<Packet, String> {
    match contained(|| Packet::parse(&mut Cursor::new(data), ipv6)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the packet parser panicked".into()),
    }
}

struct OpenSession {
    packets: mpsc::Sender<(Packet, SocketAddr)>,
    /// Packets dropped because the queue was full (shared with the [`Session`]).
    dropped: Arc<AtomicU64>,
    /// Which connection from this address: a late end report of an earlier one must not
    /// drop a newer one.
    generation: u64,
}

struct ListenerTask {
    listener: MultiplexListener,
    socket: Arc<UdpSocket>,
    ipv6: bool,
    requests: mpsc::Sender<Request>,
    pending: HashMap<SessionId, oneshot::Sender<Session>>,
    open: HashMap<SessionId, OpenSession>,
    /// Addresses with a session in the listener that is not open (handshaking, or left over),
    /// oldest first, with when they were first seen.
    half_open: HashMap<SessionId, Instant>,
    half_open_order: VecDeque<(Instant, SessionId)>,
    /// Inputs to give the listener once the current one is handled.
    queued: VecDeque<Input>,
    ended_tx: mpsc::UnboundedSender<(SessionId, u64)>,
    generation: u64,
    limits: Limits,
    counters: Arc<ListenerCounters>,
    out: BytesMut,
}

impl ListenerTask {
    async fn run(mut self, mut close: oneshot::Receiver<()>, mut ended: mpsc::UnboundedReceiver<(SessionId, u64)>) {
        let (responses_tx, mut responses_rx) = mpsc::unbounded_channel();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut input = None;
        loop {
            let now = Instant::now();
            if input.is_none() {
                input = self.queued.pop_front();
            }
            if let Some(Input::Packet(Ok((_, from)))) = &input {
                self.saw(SessionId(*from), now);
            }
            let action = match input.take() {
                None => Action::WaitForInput,
                Some(i) => {
                    let session = match &i {
                        Input::Packet(Ok((_, from))) => Some(SessionId(*from)),
                        Input::AccessResponse(Some((id, _))) => Some(*id),
                        _ => None,
                    };
                    match contained(|| self.listener.handle_input(now, i)) {
                        Ok(a) => a,
                        Err(_) => {
                            // srt-protocol 0.4.4 still has `unimplemented!()`s in its
                            // handshake code. The caller's session is forgotten (its request
                            // fails at once), the others carry on.
                            tracing::error!(caller = ?session.map(|s| s.0), "SRT handshake code panicked; the caller is dropped");
                            if let Some(id) = session {
                                self.forget(id);
                                input = Some(Input::Success(ResultOf::DropConnection(id)));
                            }
                            continue;
                        }
                    }
                }
            };
            input = match action {
                Action::SendPacket(p) => Some(result(ResultOf::SendPacket(p.1), self.send(p).await)),
                Action::RequestAccess(id, request) => Some(self.request_access(id, request, &responses_tx)),
                Action::RejectConnection(id, packet) => {
                    self.forget(id);
                    if let Some(p) = packet {
                        let _ = self.send(p).await;
                    }
                    Some(Input::Success(ResultOf::RejectConnection(id)))
                }
                Action::OpenConnection(id, opened) => {
                    let (packet, connection) = *opened;
                    self.open_connection(id, connection, packet.clone());
                    if let Some(p) = packet {
                        let _ = self.send(p).await;
                    }
                    Some(Input::Success(ResultOf::OpenConnection(id)))
                }
                Action::DelegatePacket(id, packet) => Some(self.delegate(id, packet)),
                Action::DropConnection(id) => {
                    self.forget(id);
                    Some(Input::Success(ResultOf::DropConnection(id)))
                }
                // Only answers to a timer input, which this task never gives.
                Action::UpdateStatistics(_) => Some(Input::Success(ResultOf::UpdateStatistics)),
                Action::Close => break,
                Action::WaitForInput if !self.queued.is_empty() => None,
                Action::WaitForInput => tokio::select! {
                    r = self.socket.recv_from(&mut buf) => match r {
                        Ok((n, from)) => match parse_packet(&buf[..n], self.ipv6) {
                            Ok(p) => Some(Input::Packet(Ok((p, from)))),
                            Err(why) => {
                                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(%from, %why, "SRT: malformed datagram ignored");
                                None
                            }
                        },
                        // ICMP errors (a caller's port closed) surface here; nothing to do.
                        Err(e) => Some(Input::Packet(Err(ReceivePacketError::Io(e)))),
                    },
                    Some(r) = responses_rx.recv() => Some(Input::AccessResponse(Some(r))),
                    Some((id, generation)) = ended.recv() => {
                        // A connection's task ended: the listener forgets the address now
                        // rather than at its next datagram (which may never come).
                        if self.open.get(&id).is_some_and(|o| o.generation == generation) {
                            self.open.remove(&id);
                            self.counters.sessions_ended.fetch_add(1, Ordering::Relaxed);
                            Some(Input::Success(ResultOf::DropConnection(id)))
                        } else {
                            None
                        }
                    }
                    _ = sleep_until(self.next_sweep()), if !self.half_open_order.is_empty() => {
                        self.sweep(Instant::now());
                        None
                    }
                    _ = &mut close => break,
                },
            };
        }
    }

    async fn send(&mut self, packet: (Packet, SocketAddr)) -> io::Result<usize> {
        send_packet(&self.socket, &mut self.out, packet).await
    }

    /// A datagram from `id`: the listener has (or now makes) a session for it.
    fn saw(&mut self, id: SessionId, now: Instant) {
        if self.open.contains_key(&id) || self.half_open.contains_key(&id) {
            return;
        }
        self.half_open.insert(id, now);
        self.half_open_order.push_back((now, id));
        if self.half_open.len() > self.limits.max_pending
            && let Some((_, oldest)) = self.half_open_order.pop_front()
        {
            self.expire(oldest);
        }
    }

    /// The session of `id` is gone from the listener (or is going): forget it here too.
    fn forget(&mut self, id: SessionId) {
        self.pending.remove(&id);
        self.open.remove(&id);
        self.half_open.remove(&id);
    }

    fn expire(&mut self, id: SessionId) {
        if self.half_open.contains_key(&id) && !self.open.contains_key(&id) {
            self.counters.half_open_expired.fetch_add(1, Ordering::Relaxed);
            self.forget(id);
            self.queued.push_back(Input::Success(ResultOf::DropConnection(id)));
        }
    }

    fn next_sweep(&self) -> tokio::time::Instant {
        let oldest = self.half_open_order.front().map_or_else(Instant::now, |(t, _)| *t);
        tokio::time::Instant::from_std(oldest + self.limits.pending_timeout)
    }

    /// Forgets the half-open sessions older than the pending timeout.
    fn sweep(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.half_open_order.front() {
            if t + self.limits.pending_timeout > now {
                break;
            }
            self.half_open_order.pop_front();
            // Only if this entry is the current one for the address (not re-added since).
            if self.half_open.get(&id) == Some(&t) {
                self.expire(id);
            }
        }
    }

    fn request_access(
        &mut self,
        id: SessionId,
        request: AccessControlRequest,
        responses: &mpsc::UnboundedSender<(SessionId, AccessControlResponse)>,
    ) -> Input {
        let (opened_tx, opened_rx) = oneshot::channel();
        let req = Request {
            remote: request.remote,
            stream_id: request.stream_id.as_ref().map(|s| s.to_string()),
            key_size: request.key_size,
            id,
            responses: responses.clone(),
            opened: opened_rx,
            answered: false,
        };
        match self.requests.try_send(req) {
            Ok(()) => {
                self.pending.insert(id, opened_tx);
                Input::Success(ResultOf::RequestAccess(id))
            }
            Err(e) => {
                let mut req = e.into_inner();
                req.answered = true;
                self.counters.requests_refused.fetch_add(1, Ordering::Relaxed);
                let overload = RejectReason::Server(srt_protocol::packet::ServerRejectReason::Overload);
                let _ = responses.send((id, AccessControlResponse::Rejected(overload)));
                Input::Success(ResultOf::RequestAccess(id))
            }
        }
    }

    fn open_connection(&mut self, id: SessionId, connection: Connection, conclusion: Option<(Packet, SocketAddr)>) {
        let (packets_tx, packets_rx) = mpsc::channel(SESSION_QUEUE);
        let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
        let (stats_tx, stats_rx) = watch::channel(SocketStatistics::default());
        let (close_tx, close_rx) = oneshot::channel();
        let settings = connection.settings.clone();
        self.generation += 1;
        self.half_open.remove(&id);
        let conn = ConnectionTask {
            socket: self.socket.clone(),
            id,
            generation: self.generation,
            ended: self.ended_tx.clone(),
            remote_sockid: settings.remote_sockid,
            conclusion,
            counters: self.counters.clone(),
            data: data_tx,
            statistics: stats_tx,
            out: BytesMut::with_capacity(1500),
        };
        let task = tokio::spawn(conn.run(DuplexConnection::new(connection), packets_rx, close_rx));
        let dropped = Arc::new(AtomicU64::new(0));
        self.open
            .insert(id, OpenSession { packets: packets_tx, generation: self.generation, dropped: dropped.clone() });
        let session = Session {
            queue_drops: dropped,
            settings,
            data: data_rx,
            statistics: stats_rx,
            close: Some(close_tx),
            task: Some(task),
            ended: None,
        };
        // Nobody waiting (the handshake timed out on the application's side): dropping the
        // session closes its connection.
        if let Some(waiting) = self.pending.remove(&id) {
            let _ = waiting.send(session);
        }
    }

    fn delegate(&mut self, id: SessionId, packet: (Packet, SocketAddr)) -> Input {
        let Some(open) = self.open.get(&id) else {
            return Input::Failure(ResultOf::DelegatePacket(id));
        };
        match open.packets.try_send(packet) {
            Ok(()) => Input::Success(ResultOf::DelegatePacket(id)),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.session_queue_full.fetch_add(1, Ordering::Relaxed);
                open.dropped.fetch_add(1, Ordering::Relaxed);
                Input::Success(ResultOf::DelegatePacket(id))
            }
            // The session's task has ended: the listener forgets it, and the caller's next
            // handshake from this address starts afresh.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.open.remove(&id);
                Input::Failure(ResultOf::DelegatePacket(id))
            }
        }
    }
}

/// Serializes `packet` into `out` (kept between calls) and sends it.
async fn send_packet(socket: &UdpSocket, out: &mut BytesMut, (packet, to): (Packet, SocketAddr)) -> io::Result<usize> {
    out.clear();
    packet.serialize(out);
    socket.send_to(out, to).await
}

fn result(of: ResultOf, r: io::Result<usize>) -> Input {
    match r {
        Ok(_) => Input::Success(of),
        Err(_) => Input::Failure(of),
    }
}

struct ConnectionTask {
    socket: Arc<UdpSocket>,
    id: SessionId,
    generation: u64,
    /// Told when this task ends.
    ended: mpsc::UnboundedSender<(SessionId, u64)>,
    remote_sockid: SocketId,
    /// The listener's answer to the caller's conclusion, sent again when the caller repeats it.
    conclusion: Option<(Packet, SocketAddr)>,
    counters: Arc<ListenerCounters>,
    data: mpsc::Sender<(Instant, Bytes)>,
    statistics: watch::Sender<SocketStatistics>,
    out: BytesMut,
}

impl ConnectionTask {
    async fn run(
        mut self,
        mut conn: DuplexConnection,
        mut packets: mpsc::Receiver<(Packet, SocketAddr)>,
        mut close: oneshot::Receiver<()>,
    ) -> Ending {
        let mut ending = Ending::PeerSilent;
        // Set when this side closes: the connection gets CLOSE_GRACE to say goodbye.
        let mut give_up: Option<Instant> = None;
        let mut listener_gone = false;
        let mut timer = pin!(sleep_until(tokio::time::Instant::now()));
        loop {
            let now = Instant::now();
            if give_up.is_some_and(|t| now >= t) {
                break;
            }
            conn.check_timers(now);
            if conn.should_update_statistics(now) {
                conn.update_statistics(now);
                self.statistics.send_replace(conn.statistics().clone());
            }
            while let Some(p) = conn.next_packet(now) {
                let _ = self.send(p).await;
            }
            while let Some(d) = conn.next_data(now) {
                if self.data.send(d).await.is_err() && give_up.is_none() {
                    // The application let go of the session.
                    give_up = Some(now + CLOSE_GRACE);
                    ending = Ending::Closed;
                    conn.handle_data_input(now, None);
                }
            }
            if !conn.is_open() {
                break;
            }
            let mut next = conn.next_timer(now);
            if let Some(t) = give_up {
                next = next.min(t);
            }
            let next = tokio::time::Instant::from_std(next);
            if timer.deadline() != next {
                timer.as_mut().reset(next);
            }
            tokio::select! {
                _ = &mut timer => {}
                p = packets.recv(), if !listener_gone => match p {
                    Some(p) => {
                        self.input(&mut conn, p, &mut ending).await;
                        for _ in 1..BATCH {
                            let Ok(p) = packets.try_recv() else { break };
                            self.input(&mut conn, p, &mut ending).await;
                        }
                    }
                    None => {
                        // Not polled again: the connection drains on its timers.
                        listener_gone = true;
                        ending = Ending::ListenerGone;
                        let gone = io::Error::new(io::ErrorKind::NotConnected, "the SRT listener stopped");
                        conn.handle_packet_input(Instant::now(), Err(ReceivePacketError::Io(gone)));
                    }
                },
                _ = &mut close, if give_up.is_none() => {
                    let now = Instant::now();
                    give_up = Some(now + CLOSE_GRACE);
                    ending = Ending::Closed;
                    conn.handle_data_input(now, None);
                }
            }
        }
        let _ = self.ended.send((self.id, self.generation));
        ending
    }

    async fn input(&mut self, conn: &mut DuplexConnection, packet: (Packet, SocketAddr), ending: &mut Ending) {
        if let Packet::Control(ControlPacket { control_type, .. }) = &packet.0 {
            match control_type {
                ControlTypes::Handshake(hs) => {
                    // Only the caller this connection was opened for (its socket id), not a
                    // new or spoofed one on the same address.
                    if hs.shake_type == ShakeType::Conclusion
                        && hs.socket_id == self.remote_sockid
                        && let Some(answer) = self.conclusion.clone()
                    {
                        let _ = self.send(answer).await;
                    }
                    return;
                }
                ControlTypes::Shutdown => *ending = Ending::PeerShutdown,
                ControlTypes::CongestionWarning | ControlTypes::PeerError(_) => return self.unsupported(),
                ControlTypes::Srt(s) => match s {
                    SrtControlPacket::KeyRefreshRequest(_) | SrtControlPacket::KeyRefreshResponse(_) => {}
                    _ => return self.unsupported(),
                },
                _ => {}
            }
        }
        conn.handle_packet_input(Instant::now(), Ok(packet));
    }

    fn unsupported(&self) {
        self.counters.unsupported_control.fetch_add(1, Ordering::Relaxed);
    }

    async fn send(&mut self, packet: (Packet, SocketAddr)) -> io::Result<usize> {
        send_packet(&self.socket, &mut self.out, packet).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_and_parser_panics_are_errors() {
        assert!(parse_packet(&[], false).is_err());
        assert!(parse_packet(&[0xff; 3], false).is_err());
        // A random control packet of every type the header can name.
        for ty in 0u8..=0x7f {
            let mut p = vec![0x80, ty, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            p.extend_from_slice(&[0xab; 64]);
            let _ = parse_packet(&p, false);
        }
    }

    use futures::SinkExt;
    use srt_protocol::packet::HandshakeControlInfo;

    async fn listener() -> (Listener, mpsc::Receiver<Request>, SocketAddr) {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let settings = listener_settings(addr, Duration::from_millis(120), Duration::from_secs(5)).unwrap();
        let (l, rx) = listen(socket, settings).unwrap();
        (l, rx, addr)
    }

    /// A UDP relay between a caller and `to` that drops the first `drop` conclusion
    /// handshakes coming back from the listener.
    async fn lossy_relay(to: SocketAddr, mut drop: usize) -> SocketAddr {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
            let mut caller = None;
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut a) => {
                        caller = Some(from);
                        let _ = back.send_to(&a[..n], to).await;
                    }
                    Ok((n, _)) = back.recv_from(&mut b) => {
                        let conclusion = matches!(
                            parse_packet(&b[..n], false),
                            Ok(Packet::Control(ControlPacket {
                                control_type: ControlTypes::Handshake(HandshakeControlInfo { shake_type: ShakeType::Conclusion, .. }),
                                ..
                            }))
                        );
                        if conclusion && drop > 0 {
                            drop -= 1;
                            continue;
                        }
                        if let Some(c) = caller {
                            let _ = front.send_to(&b[..n], c).await;
                        }
                    }
                }
            }
        });
        addr
    }

    async fn accept_all(mut rx: mpsc::Receiver<Request>) -> mpsc::Receiver<Session> {
        let (tx, sessions) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                if let Ok(s) = req.accept(None).await {
                    let _ = tx.send(s).await;
                }
            }
        });
        sessions
    }

    #[tokio::test]
    async fn a_lost_conclusion_response_is_answered_again() {
        let (listener, rx, addr) = listener().await;
        let mut sessions = accept_all(rx).await;
        let relay = lossy_relay(addr, 2).await;
        let call = srt_tokio::SrtSocket::builder().call(relay, Some("lossy"));
        let mut caller = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("connected although two conclusion responses were lost")
            .unwrap();
        let mut session = sessions.recv().await.unwrap();
        caller.send((Instant::now(), Bytes::from_static(b"after loss"))).await.unwrap();
        let (_, got) = tokio::time::timeout(Duration::from_secs(3), session.recv()).await.unwrap().unwrap();
        assert_eq!(&got[..], b"after loss");
        assert_eq!(listener.counters().malformed.load(Ordering::Relaxed), 0);
        listener.close().await;
    }

    #[tokio::test]
    async fn malformed_datagrams_are_counted_and_the_port_serves_on() {
        let (listener, rx, addr) = listener().await;
        let mut sessions = accept_all(rx).await;
        let junk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut sent = 0;
        for ty in 0u8..=0x7f {
            // Control packets of every type with garbage bodies, and short datagrams.
            let mut p = vec![0x80, ty, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            p.extend_from_slice(&[ty; 40]);
            junk.send_to(&p, addr).await.unwrap();
            junk.send_to(&p[..ty as usize % 16], addr).await.unwrap();
            sent += 2;
        }
        let mut caller = srt_tokio::SrtSocket::builder().call(addr, Some("after-junk")).await.unwrap();
        let mut session = sessions.recv().await.unwrap();
        assert_eq!(session.settings().stream_id.as_deref(), Some("after-junk"));
        caller.send((Instant::now(), Bytes::from_static(b"x"))).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(3), session.recv()).await.unwrap().is_some());
        let malformed = listener.counters().malformed.load(Ordering::Relaxed);
        assert!(malformed > 0 && malformed <= sent, "{malformed} of {sent}");
        // The caller closes: the session ends with the reason.
        caller.close().await.unwrap();
        drop(caller);
        assert!(tokio::time::timeout(Duration::from_secs(5), session.recv()).await.unwrap().is_none());
        assert_eq!(session.ending().await, Ending::PeerShutdown);
        assert_eq!(session.ending().await, Ending::PeerShutdown, "asked again");
        session.close().await;
        // The listener forgot the ended session at once, not at the address's next datagram.
        let t0 = std::time::Instant::now();
        while listener.counters().sessions_ended.load(Ordering::Relaxed) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(3), "the ended session is still known");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        listener.close().await;
    }

    #[tokio::test]
    async fn half_open_sessions_expire_and_are_bounded() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let settings = listener_settings(addr, Duration::from_millis(120), Duration::from_secs(5)).unwrap();
        let limits = Limits { pending_timeout: Duration::from_millis(300), max_pending: 3 };
        let (listener, rx) = listen_with(socket, settings, limits).unwrap();
        let mut sessions = accept_all(rx).await;
        // Five scanners send one well-formed induction each and go away.
        let induction = crate::fuzz::tests_support::induction();
        let mut scanners = Vec::new();
        for _ in 0..5 {
            let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            u.send_to(&induction, addr).await.unwrap();
            let mut answer = [0u8; 256];
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), u.recv_from(&mut answer)).await.unwrap().unwrap();
            assert!(parse_packet(&answer[..n], false).is_ok(), "the induction is answered");
            scanners.push(u);
        }
        // Two were forgotten at once (the bound), the other three after the timeout.
        assert_eq!(listener.counters().half_open_expired.load(Ordering::Relaxed), 2);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(listener.counters().half_open_expired.load(Ordering::Relaxed), 5);
        // A real caller still connects.
        let _caller = srt_tokio::SrtSocket::builder().call(addr, Some("after-scan")).await.unwrap();
        assert!(sessions.recv().await.is_some());
        listener.close().await;
    }

    #[tokio::test]
    async fn a_rejected_caller_gets_the_reason_and_closing_ends_sessions() {
        let (listener, mut rx, addr) = listener().await;
        let refuse = tokio::spawn(async move {
            let req = rx.recv().await.unwrap();
            assert_eq!(req.stream_id.as_deref(), Some("nope"));
            req.reject(RejectReason::Server(srt_protocol::packet::ServerRejectReason::Notfound));
            let req = rx.recv().await.unwrap();
            req.accept(None).await.unwrap()
        });
        let err = srt_tokio::SrtSocket::builder().call(addr, Some("nope")).await.unwrap_err();
        assert!(err.to_string().to_lowercase().contains("reject"), "{err}");
        let _caller = srt_tokio::SrtSocket::builder().call(addr, Some("yes")).await.unwrap();
        let mut session = refuse.await.unwrap();
        listener.close().await;
        assert!(tokio::time::timeout(Duration::from_secs(5), session.recv()).await.unwrap().is_none());
        assert_eq!(session.ending().await, Ending::ListenerGone);
    }

    #[test]
    fn settings_follow_the_configuration() {
        let s =
            listener_settings("127.0.0.1:9000".parse().unwrap(), Duration::from_millis(300), Duration::from_secs(7))
                .unwrap();
        assert_eq!(s.recv_latency, Duration::from_millis(300));
        assert_eq!(s.send_latency, Duration::from_millis(300));
        assert_eq!(s.peer_idle_timeout, Duration::from_secs(7));
    }
}
