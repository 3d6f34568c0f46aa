//! The tokio adapter end to end on 127.0.0.1: ffmpeg (and an rml_rtmp client for the forms
//! ffmpeg cannot send) publishing over RTMP and RTMPS, and bad input next to a good publisher.
//!
//! Needs `ffmpeg` with libx264 on PATH (Debian: `apt-get install ffmpeg`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use edge_media::{AccessUnit, Codec, MediaEvent, MediaReceiver};
use edge_rtmp::{
    EndReason, IngestStats, InvalidConnection, PublishAuthorizer, PublishEnded, PublishGrant, PublishRequest, Refusal,
    RtmpConfig, serve,
};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

// ---------------------------------------------------------------------------------------------
// The appliance side, as a test double.

struct Published {
    request: PublishRequest,
    rx: MediaReceiver,
    stats: Arc<IngestStats>,
}

#[derive(Default)]
struct Registry {
    /// key -> event id
    events: HashMap<String, String>,
    publishing: Mutex<HashMap<String, ()>>,
    invalid: Mutex<Vec<InvalidConnection>>,
    ended: Mutex<Vec<PublishEnded>>,
}

struct TestAuth {
    reg: Registry,
    published: mpsc::UnboundedSender<Published>,
}

impl PublishAuthorizer for TestAuth {
    fn authorize(&self, req: &PublishRequest) -> Result<PublishGrant, Refusal> {
        let event = self.reg.events.get(&req.stream_key).ok_or(Refusal::UnknownKey)?;
        let mut busy = self.reg.publishing.lock().unwrap();
        if busy.contains_key(event) {
            return Err(Refusal::AlreadyPublishing(event.clone()));
        }
        busy.insert(event.clone(), ());
        let (media, rx, _) = edge_media::queue(1024);
        let stats = Arc::new(IngestStats::new());
        let _ = self.published.send(Published { request: req.clone(), rx, stats: stats.clone() });
        Ok(PublishGrant { event_id: event.clone(), event_name: event.clone(), media, stats })
    }

    fn invalid_connection(&self, conn: &InvalidConnection) {
        self.reg.invalid.lock().unwrap().push(conn.clone());
    }

    fn publish_ended(&self, ended: &PublishEnded) {
        self.reg.publishing.lock().unwrap().remove(&ended.event_id);
        self.reg.ended.lock().unwrap().push(ended.clone());
    }
}

struct Server {
    addr: SocketAddr,
    auth: Arc<TestAuth>,
    published: mpsc::UnboundedReceiver<Published>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(keys: &[&str], tls: Option<tokio_rustls::TlsAcceptor>, cfg: RtmpConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, published) = mpsc::unbounded_channel();
    let auth = Arc::new(TestAuth {
        reg: Registry {
            events: keys.iter().map(|k| (k.to_string(), format!("event-{k}"))).collect(),
            ..Default::default()
        },
        published: tx,
    });
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, tls, auth.clone(), cfg, rx));
    Server { addr, auth, published, shutdown, task }
}

impl Server {
    async fn next_publish(&mut self) -> Published {
        timeout(Duration::from_secs(20), self.published.recv()).await.expect("a publish within 20 s").unwrap()
    }

    fn invalid(&self) -> Vec<Refusal> {
        self.auth.reg.invalid.lock().unwrap().iter().map(|i| i.refusal.clone()).collect()
    }

    fn ended(&self) -> Vec<PublishEnded> {
        self.auth.reg.ended.lock().unwrap().clone()
    }
}

/// Everything a session sends, up to and including `End`.
async fn collect(rx: &mut MediaReceiver, limit: Duration) -> Vec<MediaEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + limit;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let end = ev == MediaEvent::End;
        events.push(ev);
        if end {
            break;
        }
    }
    events
}

fn tracks(events: &[MediaEvent]) -> Vec<&Vec<edge_media::Track>> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Tracks(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn units(events: &[MediaEvent], track: u32) -> Vec<&AccessUnit> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Unit(u) if u.track == track => Some(u),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Encoders.

/// Runs ffmpeg's test pattern + sine to `url` for `secs` in real time; returns its exit status.
fn ffmpeg(url: String, secs: u32) -> tokio::task::JoinHandle<bool> {
    tokio::task::spawn_blocking(move || {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
            .args(["-f", "lavfi", "-i", "sine"])
            .args(["-t", &secs.to_string()])
            .args(["-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .args(["-f", "flv", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("ffmpeg on PATH (apt-get install ffmpeg)");
        status.success()
    })
}

struct FlvTag {
    kind: u8,
    ts: u32,
    body: Vec<u8>,
}

fn sample_tags() -> Vec<FlvTag> {
    let f = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x264_aac_320x180.flv")).unwrap();
    let mut pos = 13;
    let mut tags = Vec::new();
    while pos + 11 <= f.len() {
        let size = u32::from_be_bytes([0, f[pos + 1], f[pos + 2], f[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([f[pos + 7], f[pos + 4], f[pos + 5], f[pos + 6]]);
        tags.push(FlvTag { kind: f[pos], ts, body: f[pos + 11..pos + 11 + size].to_vec() });
        pos += 11 + size + 4;
    }
    tags
}

/// A minimal publisher on rml_rtmp's client session, for app/name splits ffmpeg cannot make.
struct RmlClient<S> {
    io: S,
    session: ClientSession,
}

fn packets(results: &[ClientSessionResult]) -> Vec<u8> {
    results
        .iter()
        .filter_map(|r| match r {
            ClientSessionResult::OutboundResponse(p) => Some(p.bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

impl<S: AsyncRead + AsyncWrite + Unpin> RmlClient<S> {
    async fn connect(mut io: S) -> Self {
        let mut hs = Handshake::new(PeerType::Client);
        io.write_all(&hs.generate_outbound_p0_and_p1().unwrap()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let remaining = loop {
            let n = io.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed during handshake");
            match hs.process_bytes(&buf[..n]).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => io.write_all(&response_bytes).await.unwrap(),
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    io.write_all(&response_bytes).await.unwrap();
                    break remaining_bytes;
                }
            }
        };
        let (mut session, initial) = ClientSession::new(ClientSessionConfig::new()).unwrap();
        io.write_all(&packets(&initial)).await.unwrap();
        let r = session.handle_input(&remaining).unwrap();
        io.write_all(&packets(&r)).await.unwrap();
        Self { io, session }
    }

    /// Reads until `want` is raised; Err with what happened instead.
    async fn wait_for(&mut self, want: fn(&ClientSessionEvent) -> bool) -> Result<(), String> {
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match timeout(Duration::from_secs(10), self.io.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err("closed by the server".into()),
                Ok(Ok(n)) => n,
                Err(_) => return Err("no answer".into()),
            };
            let results = self.session.handle_input(&buf[..n]).map_err(|e| e.to_string())?;
            self.io.write_all(&packets(&results)).await.map_err(|e| e.to_string())?;
            for r in &results {
                if let ClientSessionResult::RaisedEvent(ev) = r {
                    if want(ev) {
                        return Ok(());
                    }
                    if let ClientSessionEvent::ConnectionRequestRejected { description } = ev {
                        return Err(description.clone());
                    }
                    if let ClientSessionEvent::UnhandleableOnStatusCode { code } = ev {
                        return Err(code.clone());
                    }
                }
            }
        }
    }

    async fn publish(&mut self, app: &str, name: &str) -> Result<(), String> {
        let r = self.session.request_connection(app.into()).unwrap();
        self.io.write_all(&packets(&[r])).await.unwrap();
        self.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)).await?;
        let r = self.session.request_publishing(name.into(), PublishRequestType::Live).unwrap();
        self.io.write_all(&packets(&[r])).await.unwrap();
        self.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)).await
    }

    async fn send_tags(&mut self, tags: &[FlvTag], offset_ms: u32) {
        for t in tags {
            let data = Bytes::from(t.body.clone());
            let ts = RtmpTimestamp::new(t.ts + offset_ms);
            let r = match t.kind {
                8 => self.session.publish_audio_data(data, ts, false),
                9 => self.session.publish_video_data(data, ts, false),
                _ => continue,
            };
            self.io.write_all(&packets(&[r.unwrap()])).await.unwrap();
        }
    }

    async fn unpublish(mut self) {
        let r = self.session.stop_publishing().unwrap();
        self.io.write_all(&packets(&r)).await.unwrap();
        let _ = self.io.shutdown().await;
    }
}

async fn rml_publish(addr: SocketAddr, app: &str, name: &str) -> Result<(), String> {
    let mut c = RmlClient::connect(TcpStream::connect(addr).await.unwrap()).await;
    c.publish(app, name).await?;
    c.send_tags(&sample_tags(), 0).await;
    c.unpublish().await;
    Ok(())
}

fn test_cfg() -> RtmpConfig {
    RtmpConfig {
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        ..RtmpConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_h264_and_aac() {
    let mut srv = start(&["k1"], None, RtmpConfig::default()).await;
    let push = ffmpeg(format!("rtmp://{}/live/k1", srv.addr), 4);
    let mut p = srv.next_publish().await;
    assert_eq!(p.request.app, "live");
    assert_eq!(p.request.stream_key, "k1");
    assert_eq!(p.request.stream_name, None);
    assert!(!p.request.secure);
    let events = collect(&mut p.rx, Duration::from_secs(20)).await;
    assert!(push.await.unwrap(), "ffmpeg succeeded");

    let sets = tracks(&events);
    assert!(matches!(events[0], MediaEvent::Tracks(_)), "Tracks first");
    assert_eq!(sets.len(), 1, "one track set");
    let (v, a) = (&sets[0][0], &sets[0][1]);
    assert_eq!((v.id, v.codec, v.timescale), (1, Codec::H264, 90_000));
    assert!(v.codec_string.starts_with("avc1.64"), "High profile: {}", v.codec_string);
    assert_eq!((v.width, v.height), (320, 180));
    assert_eq!((a.id, a.codec, a.codec_string.as_str()), (2, Codec::Aac, "mp4a.40.2"));
    assert_eq!((a.sample_rate, a.timescale, a.channels), (44_100, 44_100, 1));
    assert_eq!(events.last(), Some(&MediaEvent::End));
    assert!(!events.contains(&MediaEvent::Discontinuity));

    let video = units(&events, 1);
    assert!((115..=125).contains(&video.len()), "{} video units", video.len());
    let keys: Vec<usize> = video.iter().enumerate().filter(|(_, u)| u.keyframe).map(|(i, _)| i).collect();
    assert_eq!(keys, vec![0, 30, 60, 90], "a keyframe every 30 frames");
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    let span = video.last().unwrap().dts - video[0].dts;
    assert!((span - 119 * 3000).abs() < 200, "30 fps in 90 kHz: {span}");
    let audio = units(&events, 2);
    assert!((165..=180).contains(&audio.len()), "{} audio units", audio.len());
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));

    let snap = p.stats.snapshot(std::time::Instant::now());
    assert_eq!(snap.tracks[0].frames, video.len() as u64);
    assert_eq!(snap.tracks[0].keyframes, 4);
    assert!(snap.tracks[0].bitrate > 0 && snap.bytes_received > snap.tracks[0].bytes);
    assert!(snap.ended.is_some());
    let md = snap.metadata.expect("onMetaData kept");
    assert_eq!((md.width, md.height), (Some(320), Some(180)));
    assert!(md.encoder.is_some_and(|e| e.starts_with("Lavf")));
    let ended = srv.ended();
    assert_eq!(ended.len(), 1);
    assert!(matches!(ended[0].reason, EndReason::Unpublished | EndReason::Disconnected(_)));
    assert!(srv.invalid().is_empty(), "{:?}", srv.invalid());

    srv.shutdown.send(true).unwrap();
    timeout(Duration::from_secs(5), srv.task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_forms_encoders_use() {
    let keys = ["ka", "kb", "kc", "kd", "ke"];
    let mut srv = start(&keys, None, RtmpConfig::default()).await;
    let a = srv.addr;
    // ffmpeg: AMS form (sent as app `live/kb`, name `cam1`) and a query string on the key.
    let f1 = ffmpeg(format!("rtmp://{a}/live/ka/cam1"), 1);
    let f2 = ffmpeg(format!("rtmp://{a}/live/kb?foo=bar"), 1);
    // OBS with the whole URL as server and an empty key; librtmp's AMS split; plain.
    rml_publish(a, "live/kc", "").await.unwrap();
    rml_publish(a, "live", "kd/cam2").await.unwrap();
    rml_publish(a, "live/", "ke?x=1").await.unwrap();
    assert!(f1.await.unwrap() && f2.await.unwrap());

    let mut seen = HashMap::new();
    for _ in 0..5 {
        let mut p = srv.next_publish().await;
        let events = collect(&mut p.rx, Duration::from_secs(10)).await;
        assert!(matches!(events[0], MediaEvent::Tracks(_)));
        assert_eq!(events.last(), Some(&MediaEvent::End));
        assert!(!units(&events, 1).is_empty());
        assert_eq!(p.request.app, "live");
        seen.insert(p.request.stream_key.clone(), p.request.stream_name.clone());
    }
    assert_eq!(seen["ka"], Some("cam1".into()));
    assert_eq!(seen["kb"], None);
    assert_eq!(seen["kc"], None);
    assert_eq!(seen["kd"], Some("cam2".into()));
    assert_eq!(seen["ke"], None);
    assert!(srv.invalid().is_empty(), "{:?}", srv.invalid());
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmps() {
    let mut srv = start(&["sk"], Some(tls_acceptor()), test_cfg()).await;
    // Plain RTMP on the TLS port is a failed TLS handshake, reported.
    let mut plain = TcpStream::connect(srv.addr).await.unwrap();
    plain.write_all(&[3; 1537]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(Duration::from_secs(5), plain.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert!(n < 64);

    let push = ffmpeg(format!("rtmps://{}/live/sk", srv.addr), 2);
    let mut p = srv.next_publish().await;
    assert!(p.request.secure);
    let events = collect(&mut p.rx, Duration::from_secs(15)).await;
    assert!(push.await.unwrap());
    assert_eq!(tracks(&events)[0][0].codec, Codec::H264);
    let n = units(&events, 1).len();
    assert!((55..=65).contains(&n), "{n} video units");
    assert_eq!(events.last(), Some(&MediaEvent::End));
    assert!(srv.invalid().iter().any(|r| matches!(r, Refusal::Tls(_))), "{:?}", srv.invalid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_while_a_publisher_keeps_flowing() {
    let mut srv = start(&["good"], None, test_cfg()).await;
    let addr = srv.addr;
    let push = ffmpeg(format!("rtmp://{addr}/live/good"), 6);
    let mut good = srv.next_publish().await;
    let first = timeout(Duration::from_secs(10), good.rx.recv()).await.unwrap().unwrap();
    assert!(matches!(first, MediaEvent::Tracks(_)));
    let consumer = tokio::spawn(async move {
        let mut events = vec![first];
        events.extend(collect(&mut good.rx, Duration::from_secs(30)).await);
        events
    });

    // Random bytes: refused at the first byte of the handshake.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x40).collect();
    let _ = junk.write_all(&bytes).await;
    let mut buf = vec![0u8; 8192];
    let closed = timeout(Duration::from_secs(5), async {
        loop {
            match junk.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    closed.await.expect("junk connection closed");

    // Half a handshake: closed by the handshake timeout (1 s here).
    let t0 = Instant::now();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[3]).await.unwrap();
    half.write_all(&[0; 700]).await.unwrap();
    let mut sink = Vec::new();
    timeout(Duration::from_secs(5), half.read_to_end(&mut sink)).await.unwrap().ok();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(4), "{waited:?}");

    // 200 idle connections: all dropped by the same timeout.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    for mut c in idle {
        let mut b = [0u8; 1];
        let r = timeout(Duration::from_secs(5), c.read(&mut b)).await.expect("idle closed");
        assert!(matches!(r, Ok(0) | Err(_)));
    }

    // A wrong key and a second publisher for the running event: refused with a status.
    assert!(rml_publish(addr, "live", "nope").await.is_err());
    assert!(rml_publish(addr, "live", "good").await.is_err());

    // A `connect` of deeply nested objects (would overflow rml_amf0's recursion).
    let mut deep = RmlClient::connect(TcpStream::connect(addr).await.unwrap()).await;
    let mut amf = vec![2, 0, 7];
    amf.extend_from_slice(b"connect");
    amf.extend_from_slice(&[0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    amf.extend(std::iter::repeat_n([3u8, 0, 1, b'a'], 20_000).flatten());
    let mut ser = rml_rtmp::chunk_io::ChunkSerializer::new();
    let payload = rml_rtmp::messages::MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: 0,
        type_id: 20,
        data: Bytes::from(amf),
    };
    let packet = ser.serialize(&payload, true, false).unwrap();
    let _ = deep.io.write_all(&packet.bytes).await;
    let mut rest = Vec::new();
    timeout(Duration::from_secs(5), deep.io.read_to_end(&mut rest)).await.unwrap().ok();

    assert!(push.await.unwrap(), "the good publisher finished normally");
    let events = consumer.await.unwrap();
    assert_eq!(events.last(), Some(&MediaEvent::End));
    assert_eq!(tracks(&events).len(), 1);
    assert!(!events.contains(&MediaEvent::Discontinuity));
    let video = units(&events, 1);
    assert!((175..=185).contains(&video.len()), "{} video units", video.len());
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts < 3100), "no gaps");

    let invalid = srv.invalid();
    let count = |f: fn(&Refusal) -> bool| invalid.iter().filter(|r| f(r)).count();
    assert_eq!(count(|r| matches!(r, Refusal::Handshake(_))), 1, "{invalid:?}");
    assert_eq!(count(|r| matches!(r, Refusal::SetupTimeout(_))), 201, "{invalid:?}");
    assert_eq!(count(|r| *r == Refusal::UnknownKey), 1, "{invalid:?}");
    assert_eq!(count(|r| matches!(r, Refusal::AlreadyPublishing(_))), 1, "{invalid:?}");
    assert_eq!(count(|r| matches!(r, Refusal::Protocol(_))), 1, "{invalid:?}");
    assert_eq!(srv.ended().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_publisher_is_ended_after_the_idle_timeout_and_shutdown_ends_the_rest() {
    let mut srv = start(&["quiet", "busy"], None, test_cfg()).await;
    let mut quiet = RmlClient::connect(TcpStream::connect(srv.addr).await.unwrap()).await;
    quiet.publish("live", "quiet").await.unwrap();
    quiet.send_tags(&sample_tags(), 0).await;
    let mut p = srv.next_publish().await;
    let t0 = Instant::now();
    let events = collect(&mut p.rx, Duration::from_secs(10)).await;
    assert_eq!(events.last(), Some(&MediaEvent::End));
    assert!(t0.elapsed() >= Duration::from_millis(1500), "{:?}", t0.elapsed());
    let mut rest = Vec::new();
    timeout(Duration::from_secs(5), quiet.io.read_to_end(&mut rest)).await.unwrap().ok();
    assert!(matches!(srv.ended()[0].reason, EndReason::Idle(_)));

    // A publisher that is still sending when the appliance stops gets End too.
    let mut busy = RmlClient::connect(TcpStream::connect(srv.addr).await.unwrap()).await;
    busy.publish("live", "busy").await.unwrap();
    busy.send_tags(&sample_tags(), 0).await;
    let mut p = srv.next_publish().await;
    srv.shutdown.send(true).unwrap();
    let events = collect(&mut p.rx, Duration::from_secs(5)).await;
    assert_eq!(events.last(), Some(&MediaEvent::End));
    timeout(Duration::from_secs(5), srv.task).await.unwrap().unwrap();
    assert!(matches!(srv.auth.reg.ended.lock().unwrap()[1].reason, EndReason::Shutdown));
}
