//! The tokio adapter end to end on 127.0.0.1: ffmpeg (libsrt) pushing MPEG-TS over SRT with
//! and without a passphrase, H.264/HEVC and AAC (ADTS, LATM); refusals (wrong or missing
//! passphrase, unknown stream id, random datagrams) next to a session that keeps flowing;
//! GStreamer's `srtsink` when installed; the idle timeout with srt-tokio as the caller.
//!
//! Needs `ffmpeg` with libsrt, libx264 and libx265 on PATH (Debian: `apt-get install ffmpeg`).
//! Note: in ffmpeg's SRT URL `latency` is in microseconds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_media::{Codec, MediaEvent, MediaReceiver};
use edge_srt::{
    EndReason, InvalidConnection, PublishEnded, Refusal, SrtAuthorizer, SrtConfig, SrtEventSettings, SrtGrant,
    SrtRequest, SrtStats, serve,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

// ---------------------------------------------------------------------------------------------
// The appliance side, as a test double.

struct Event {
    id: String,
    passphrase: Option<String>,
}

struct Published {
    request: SrtRequest,
    rx: MediaReceiver,
    stats: Arc<SrtStats>,
}

struct TestAuth {
    /// token -> event
    events: HashMap<String, Event>,
    published: mpsc::UnboundedSender<Published>,
    invalid: Mutex<Vec<InvalidConnection>>,
    ended: Mutex<Vec<PublishEnded>>,
}

impl SrtAuthorizer for TestAuth {
    fn lookup(&self, req: &SrtRequest) -> Result<SrtEventSettings, Refusal> {
        let target = req.target.as_ref().ok_or(Refusal::MissingStreamId)?;
        let (key, ev) =
            target.candidates().find_map(|k| self.events.get_key_value(k)).ok_or(Refusal::UnknownStreamId)?;
        Ok(SrtEventSettings {
            key: key.clone(),
            event_id: ev.id.clone(),
            event_name: ev.id.clone(),
            passphrase: ev.passphrase.clone(),
            key_length: None,
            latency: Some(Duration::from_millis(200)),
        })
    }

    fn authorize(&self, req: &SrtRequest, ev: &SrtEventSettings) -> Result<SrtGrant, Refusal> {
        let (media, rx, _) = edge_media::queue(4096);
        let stats = Arc::new(SrtStats::new());
        let _ = self.published.send(Published { request: req.clone(), rx, stats: stats.clone() });
        Ok(SrtGrant { event_id: ev.event_id.clone(), event_name: ev.event_name.clone(), media, stats })
    }

    fn invalid_connection(&self, c: &InvalidConnection) {
        self.invalid.lock().unwrap().push(c.clone());
    }

    fn publish_ended(&self, e: &PublishEnded) {
        self.ended.lock().unwrap().push(e.clone());
    }
}

struct Server {
    addr: SocketAddr,
    auth: Arc<TestAuth>,
    published: mpsc::UnboundedReceiver<Published>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const PASS: &str = "correct-horse-battery";

async fn start(cfg: SrtConfig) -> Server {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, published) = mpsc::unbounded_channel();
    let events = [("open1", None), ("open2", None), ("secret1", Some(PASS)), ("secret2", Some(PASS))]
        .into_iter()
        .map(|(k, p)| (k.to_string(), Event { id: format!("event-{k}"), passphrase: p.map(Into::into) }))
        .collect();
    let auth =
        Arc::new(TestAuth { events, published: tx, invalid: Mutex::new(Vec::new()), ended: Mutex::new(Vec::new()) });
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(serve(socket, auth.clone(), cfg, rx));
    Server { addr, auth, published, shutdown, task }
}

impl Server {
    async fn next_publish(&mut self) -> Published {
        match timeout(Duration::from_secs(20), self.published.recv()).await {
            Ok(p) => p.unwrap(),
            Err(_) => panic!("no publish within 20 s; refused: {:?}", self.invalid()),
        }
    }

    fn invalid(&self) -> Vec<Refusal> {
        self.auth.invalid.lock().unwrap().iter().map(|i| i.refusal.clone()).collect()
    }

    fn ended(&self) -> Vec<PublishEnded> {
        self.auth.ended.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        timeout(Duration::from_secs(15), self.task).await.expect("serve returns after shutdown").unwrap();
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

fn count_units(ev: &[MediaEvent], track: u32) -> usize {
    ev.iter().filter(|e| matches!(e, MediaEvent::Unit(u) if u.track == track)).count()
}

// ---------------------------------------------------------------------------------------------
// Encoders.

/// ffmpeg pushing `seconds` of 640x360@30 test video (libx264, or libx265 with `hevc`) and a
/// 48 kHz sine (AAC in ADTS, or LATM with `latm`) to `url`, in real time.
fn ffmpeg(url: &str, seconds: u32, hevc: bool, latm: bool) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"]);
    cmd.args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]);
    cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    cmd.args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"]);
    if hevc {
        cmd.args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:log-level=error"]);
    } else {
        cmd.args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30"]);
    }
    cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    if latm {
        cmd.args(["-mpegts_flags", "+latm"]);
    }
    cmd.args(["-f", "mpegts", url]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("ffmpeg runs")
}

async fn wait(child: Child, limit: Duration) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = child;
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.success(), err);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return (false, "killed after the time limit".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
}

fn url(addr: SocketAddr, query: &str) -> String {
    format!("srt://127.0.0.1:{}?{query}", addr.port())
}

/// The common checks: Tracks first with the expected codecs at 640x360, units, End last.
fn check_session(ev: &[MediaEvent], video: Codec, seconds: usize) {
    let MediaEvent::Tracks(t) = &ev[0] else { panic!("Tracks first: {:?}", &ev[..ev.len().min(2)]) };
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!((t[0].codec, t[0].width, t[0].height, t[0].timescale), (video, 640, 360, 90_000));
    let prefix = if video == Codec::H264 { "avc1." } else { "hvc1." };
    assert!(t[0].codec_string.starts_with(prefix), "{}", t[0].codec_string);
    assert_eq!(
        (t[1].codec, t[1].codec_string.as_str(), t[1].sample_rate, t[1].channels),
        (Codec::Aac, "mp4a.40.2", 48_000, 1)
    );
    assert_eq!(ev.last(), Some(&MediaEvent::End));
    let v = count_units(ev, 1);
    let a = count_units(ev, 2);
    // 30 fps and 46.9 AAC frames per second; the encoder's first and last moments may be cut.
    assert!(v >= seconds * 30 - 10 && v <= seconds * 30 + 1, "video units {v}");
    assert!(a >= seconds * 46 - 20 && a <= seconds * 47 + 2, "audio units {a}");
    assert!(!ev.iter().any(|e| matches!(e, MediaEvent::Discontinuity)));
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_h264_aac_without_and_with_passphrase() {
    let mut srv = start(SrtConfig::default()).await;
    // Plain token; and the access-control form URL-encoded (ffmpeg decodes it before sending).
    let open = ffmpeg(&url(srv.addr, "streamid=open1&latency=200000"), 3, false, false);
    let enc = ffmpeg(
        &url(srv.addr, &format!("streamid=%23%21%3A%3Ar%3Dsecret1%2Cm%3Dpublish&passphrase={}&pbkeylen=16", PASS)),
        3,
        false,
        false,
    );
    let mut a = srv.next_publish().await;
    let mut b = srv.next_publish().await;
    if a.request.target.as_ref().unwrap().key != "open1" {
        std::mem::swap(&mut a, &mut b);
    }
    let (ea, eb) =
        tokio::join!(collect(&mut a.rx, Duration::from_secs(20)), collect(&mut b.rx, Duration::from_secs(20)));
    let (ok_a, err_a) = wait(open, Duration::from_secs(10)).await;
    let (ok_b, err_b) = wait(enc, Duration::from_secs(10)).await;
    assert!(ok_a && ok_b, "ffmpeg: {err_a} / {err_b}");
    check_session(&ea, Codec::H264, 3);
    check_session(&eb, Codec::H264, 3);
    let sa = a.stats.snapshot(std::time::Instant::now());
    let sb = b.stats.snapshot(std::time::Instant::now());
    assert_eq!((sa.key_length, sb.key_length), (None, Some(16)));
    assert!(sa.latency.unwrap() >= Duration::from_millis(200), "the caller's latency wins: {:?}", sa.latency);
    assert!(sb.transport.packets > 100 && sb.bytes > 100_000, "{sb:?}");
    assert_eq!(sb.ts.cc_errors, 0);
    assert_eq!(sb.tracks.len(), 2);
    assert!(sb.ended.is_some());
    assert!(srv.invalid().is_empty(), "{:?}", srv.invalid());
    let ended = srv.ended();
    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|e| matches!(e.reason, EndReason::Disconnected(_))), "{ended:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_random_bytes_next_to_a_flowing_session() {
    let mut srv = start(SrtConfig::default()).await;
    let good = ffmpeg(&url(srv.addr, &format!("streamid=live/secret2&passphrase={}", PASS)), 5, false, false);
    let mut g = srv.next_publish().await;
    let collecting = tokio::spawn(async move { (collect(&mut g.rx, Duration::from_secs(25)).await, g.stats) });

    let wrong =
        ffmpeg(&url(srv.addr, "streamid=secret1&passphrase=not%20the%20passphrase&pbkeylen=16"), 2, false, false);
    let missing = ffmpeg(&url(srv.addr, "streamid=secret1"), 2, false, false);
    let unexpected =
        ffmpeg(&url(srv.addr, &format!("streamid=open1&passphrase={}&pbkeylen=16", PASS)), 2, false, false);
    let unknown = ffmpeg(&url(srv.addr, "streamid=nobody"), 2, false, false);
    let play = ffmpeg(&url(srv.addr, "streamid=%23%21%3A%3Ar%3Dopen1%2Cm%3Drequest"), 2, false, false);
    // Random datagrams at the port, from a few sources.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4 {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 1500) as usize;
            let data: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8 ^ i as u8).collect();
            let _ = s.send_to(&data, srv.addr);
        }
    }
    for (child, what) in
        [(wrong, "wrong"), (missing, "missing"), (unexpected, "unexpected"), (unknown, "unknown"), (play, "play")]
    {
        let (ok, _) = wait(child, Duration::from_secs(15)).await;
        assert!(!ok, "the {what} caller must fail");
    }
    let (ok, err) = wait(good, Duration::from_secs(15)).await;
    assert!(ok, "the good caller: {err}");
    let (events, stats) = collecting.await.unwrap();
    check_session(&events, Codec::H264, 5);
    assert_eq!(stats.snapshot(std::time::Instant::now()).ts.cc_errors, 0);

    let invalid = srv.invalid();
    for want in [
        Refusal::WrongPassphrase,
        Refusal::PassphraseRequired,
        Refusal::UnexpectedPassphrase,
        Refusal::UnknownStreamId,
        Refusal::PlayNotSupported,
    ] {
        assert!(invalid.contains(&want), "{want:?} in {invalid:?}");
    }
    // Refusals after the lookup name the event.
    let by = srv.auth.invalid.lock().unwrap().clone();
    assert!(by.iter().any(|i| i.refusal == Refusal::WrongPassphrase && i.event_id.as_deref() == Some("event-secret1")));
    assert_eq!(srv.ended().len(), 1, "only the good session was granted");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_hevc_with_latm_audio() {
    let mut srv = start(SrtConfig::default()).await;
    let child = ffmpeg(&url(srv.addr, "streamid=open2"), 2, true, true);
    let mut p = srv.next_publish().await;
    let ev = collect(&mut p.rx, Duration::from_secs(20)).await;
    let (ok, err) = wait(child, Duration::from_secs(15)).await;
    assert!(ok, "ffmpeg: {err}");
    check_session(&ev, Codec::H265, 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_srtsink_with_aligned_mpegtsmux() {
    let probe = Command::new("gst-inspect-1.0").arg("srtsink").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: GStreamer's srtsink is not installed (gstreamer1.0-plugins-bad, gstreamer1.0-tools)");
        return;
    }
    let mut srv = start(SrtConfig::default()).await;
    // srtsink's URI reads latency in milliseconds.
    let pipeline = format!(
        "videotestsrc num-buffers=90 is-live=true ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
         ! x264enc tune=zerolatency key-int-max=30 ! h264parse config-interval=-1 ! queue ! mux. \
         audiotestsrc num-buffers=141 samplesperbuffer=1024 is-live=true ! audio/x-raw,rate=48000,channels=1 \
         ! voaacenc ! aacparse ! queue ! mux. \
         mpegtsmux name=mux alignment=7 ! srtsink uri=srt://127.0.0.1:{}?mode=caller&streamid=open1&latency=200",
        srv.addr.port()
    );
    let child = Command::new("gst-launch-1.0")
        .args(["-q", "-e"])
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut p = srv.next_publish().await;
    let ev = collect(&mut p.rx, Duration::from_secs(20)).await;
    let (ok, err) = wait(child, Duration::from_secs(15)).await;
    assert!(ok, "gst-launch: {err}");
    check_session(&ev, Codec::H264, 3);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_caller_is_ended_by_the_idle_timeout_and_shutdown_ends_sessions() {
    let cfg = SrtConfig { idle_timeout: Duration::from_secs(2), ..SrtConfig::default() };
    let mut srv = start(cfg).await;
    // srt-tokio as the caller: connected, keep-alives only.
    let addr = srv.addr;
    let caller = tokio::spawn(async move {
        let s = srt_tokio::SrtSocket::builder().call(addr, Some("open1")).await.expect("connects");
        tokio::time::sleep(Duration::from_secs(6)).await;
        drop(s);
    });
    let mut p = srv.next_publish().await;
    let t0 = Instant::now();
    let ev = collect(&mut p.rx, Duration::from_secs(10)).await;
    assert_eq!(ev, vec![MediaEvent::End], "nothing but End");
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    assert!(matches!(srv.ended()[0].reason, EndReason::Idle(_)), "{:?}", srv.ended());

    // A second, silent session ends with the server.
    let caller2 = tokio::spawn(async move {
        let s = srt_tokio::SrtSocket::builder().call(addr, Some("open2")).await.expect("connects");
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    });
    let mut p2 = srv.next_publish().await;
    let ended = srv.auth.clone();
    srv.stop().await;
    assert_eq!(collect(&mut p2.rx, Duration::from_secs(5)).await, vec![MediaEvent::End]);
    assert!(ended.ended.lock().unwrap().iter().any(|e| e.reason == EndReason::Shutdown));
    caller.abort();
    caller2.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_material_the_listener_does_not_expect_is_survived() {
    let mut srv = start(SrtConfig::default()).await;
    // libsrt with a passphrase but no pbkeylen announces no key length yet sends key material;
    // at an event without a passphrase srt-protocol 0.4.4's handshake code panics on it
    // (`unimplemented!("expected no secrets")`). That caller is refused; the port serves on.
    let ff = ffmpeg(&url(srv.addr, &format!("streamid=open1&passphrase={PASS}")), 1, false, false);
    let (ok, _) = wait(ff, Duration::from_secs(15)).await;
    assert!(!ok);
    assert_eq!(srv.invalid().len(), 1, "{:?}", srv.invalid());
    let child = ffmpeg(&url(srv.addr, "streamid=open2"), 2, false, false);
    let mut p = srv.next_publish().await;
    let ev = collect(&mut p.rx, Duration::from_secs(20)).await;
    let (ok, err) = wait(child, Duration::from_secs(15)).await;
    assert!(ok, "ffmpeg after the refused caller: {err}");
    check_session(&ev, Codec::H264, 2);
    srv.stop().await;
}
