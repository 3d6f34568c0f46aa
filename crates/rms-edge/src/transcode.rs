//! Supervision of the transcode workers: one `rms-edge transcode-worker` process per Running
//! `Standard`/`Premium1080p` event, between its publishers and its packager.
//!
//! Publisher → bounded inlet (drops counted, video resumes at a keyframe) → frames on the worker's
//! stdin → GStreamer ladder in the worker → frames on its stdout → the packager's bounded inlet
//! (drops counted). A worker that exits (crash, pipeline error) or hangs (input flowing, nothing
//! out for [`HANG_LIMIT`], or its stdin blocked that long) is killed and restarted; the packager
//! sees a discontinuity (a new period) and the event goes on. Other events have their own workers.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use edge_gst::capture::CaptureDeviceId;
use edge_gst::ladder::{FPS, Preset};
use edge_gst::proto::{CaptureSpec, Decoder, Msg, WireUnit, WorkerConfig, WorkerEvent, WorkerStats};
use edge_live::pipeline::{FrontFactory, FrontStage};
use edge_live::{FrontProvider, LiveSession, TrackStatus};
use edge_media::{MediaEvent, MediaReceiver, MediaSender, QueueStats, TrackKind};
use edge_model::EncodingType;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Units queued between a publisher and the worker (about 4 s of 30 fps video plus audio).
const INLET_CAPACITY: usize = 384;
/// Input waiting but no output for this long: the worker hangs.
const HANG_LIMIT: Duration = Duration::from_secs(15);
/// Restarts closer together than this back off (up to 5 s).
const QUICK_RESTART: Duration = Duration::from_secs(10);

/// Records a stream event of a live event: (event id, type, level, data).
pub type StreamEvents = Arc<dyn Fn(&str, &str, &str, Value) + Send + Sync>;

/// Starts workers for the transcoding events and the capture events.
pub struct Transcoding {
    exe: PathBuf,
    x264_speed_preset: String,
    events: Option<StreamEvents>,
}

impl Transcoding {
    /// `RMS_EDGE_X264_PRESET` overrides x264's speed preset on the software path (default
    /// `veryfast`).
    pub fn new() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let x264_speed_preset = std::env::var("RMS_EDGE_X264_PRESET").unwrap_or_else(|_| "veryfast".into());
        Ok(Transcoding { exe, x264_speed_preset, events: None })
    }

    /// Where capture events report their device coming and going.
    pub fn with_stream_events(mut self, events: StreamEvents) -> Self {
        self.events = Some(events);
        self
    }
}

impl FrontProvider for Transcoding {
    fn front_for(&self, s: &LiveSession) -> Option<FrontFactory> {
        let capture_id = s.capture_device.as_deref().and_then(|d| CaptureDeviceId::parse(d).ok());
        let preset = match (s.encoding, &capture_id) {
            (EncodingType::Standard, _) => Preset::Default720p,
            (EncodingType::Premium1080p, _) => Preset::Default1080p,
            // A pass-through capture event: one rendition at the device's size.
            (_, Some(_)) => Preset::Default1080p,
            _ => return None,
        };
        let kfi = s.encoding_key_frame_interval.unwrap_or(Duration::from_secs(2));
        let cfg = WorkerConfig {
            event: s.event_name.clone(),
            preset,
            key_frame_interval_ms: kfi.as_millis().clamp(500, 20_000) as u32,
            x264_speed_preset: self.x264_speed_preset.clone(),
            capture: None,
        };
        let exe = self.exe.clone();
        if let Some(id) = capture_id {
            let single = s.encoding.is_passthrough();
            let events = self.events.clone();
            let event_id = s.event_id.clone();
            return Some(Box::new(move |downstream: MediaSender| {
                let (inlet, rx, inlet_stats) = edge_media::queue(INLET_CAPACITY);
                let shared = Arc::new(Mutex::new(Shared::default()));
                let (stop_tx, stop_rx) = watch::channel(false);
                let outlet_stats = downstream.stats();
                let report: Report = match events {
                    Some(f) => Box::new(move |t: &str, l: &str, d: Value| f(&event_id, t, l, d)),
                    None => Box::new(|_: &str, _: &str, _: Value| {}),
                };
                let cap = CaptureRun { id: id.clone(), path: id.path(), single, report };
                shared.lock().expect("poisoned").capture = Some(CaptureStatus {
                    device: id.to_string(),
                    path: cap.path.display().to_string(),
                    ..Default::default()
                });
                tokio::spawn(supervise_capture(exe, cfg, cap, rx, downstream, shared.clone(), stop_rx));
                let stage = Stage { shared, inlet_stats, outlet_stats, stop: stop_tx };
                (inlet, Box::new(stage) as Box<dyn FrontStage>)
            }));
        }
        Some(Box::new(move |downstream: MediaSender| {
            let (inlet, rx, inlet_stats) = edge_media::queue(INLET_CAPACITY);
            let shared = Arc::new(Mutex::new(Shared::default()));
            let (stop_tx, stop_rx) = watch::channel(false);
            let outlet_stats = downstream.stats();
            tokio::spawn(supervise(exe, cfg, rx, downstream, shared.clone(), stop_rx));
            let stage = Stage { shared, inlet_stats, outlet_stats, stop: stop_tx };
            (inlet, Box::new(stage) as Box<dyn FrontStage>)
        }))
    }
}

#[derive(Default)]
struct Shared {
    encoder: String,
    reason: String,
    worker_pid: Option<u32>,
    restarts: u64,
    last_error: Option<String>,
    /// Recent statistics of the current worker (time received, numbers), oldest first.
    history: VecDeque<(Instant, WorkerStats)>,
    /// Capture events: the device and the capture worker's state.
    capture: Option<CaptureStatus>,
}

/// What getStatus shows of a capture event's device.
#[derive(Default, Clone)]
struct CaptureStatus {
    device: String,
    path: String,
    state: &'static str,
    /// The device mode in use (from the worker).
    input: String,
    /// Since when the device is missing.
    missing_since: Option<edge_model::Timestamp>,
}

impl CaptureStatus {
    fn line(&self) -> String {
        match self.state {
            "deviceMissing" => format!(
                "Capture: the device {} is missing ({} does not exist{}); plug it in: the event resumes by itself.",
                self.device,
                self.path,
                self.missing_since.as_ref().map(|t| format!(", since {t}")).unwrap_or_default()
            ),
            "running" => format!("Capture: {} ({}).", self.device, self.input),
            "backingOff" => format!("Capture: the worker for {} ended; restarting it.", self.device),
            _ => format!("Capture: opening {} ({}).", self.device, self.path),
        }
    }
    fn json(&self) -> Value {
        json!({"device": self.device, "path": self.path, "state": self.state, "input": self.input,
            "missingSince": self.missing_since.as_ref().map(|t| t.to_string())})
    }
}

struct Stage {
    shared: Arc<Mutex<Shared>>,
    inlet_stats: Arc<QueueStats>,
    outlet_stats: Arc<QueueStats>,
    stop: watch::Sender<bool>,
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl FrontStage for Stage {
    fn status(&self) -> (Vec<String>, Vec<TrackStatus>, Option<Value>) {
        let (mut lines, rows, mut detail) = self.ladder_status();
        let sh = self.shared.lock().expect("poisoned");
        if let Some(c) = &sh.capture {
            lines.insert(0, c.line());
            if let Some(d) = detail.as_mut() {
                d["capture"] = c.json();
            }
        }
        (lines, rows, detail)
    }
}

impl Stage {
    fn ladder_status(&self) -> (Vec<String>, Vec<TrackStatus>, Option<Value>) {
        let sh = self.shared.lock().expect("poisoned");
        let (first, last) = match (sh.history.front(), sh.history.back()) {
            (Some(f), Some(l)) => (f, l),
            _ => {
                let line = format!(
                    "Transcoding: waiting for input (worker restarts: {}{}).",
                    sh.restarts,
                    sh.last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                );
                let detail = json!({"encoder": sh.encoder, "workerPid": sh.worker_pid, "workerRestarts": sh.restarts, "lastError": sh.last_error,
                    "inputQueueDropped": self.inlet_stats.dropped(), "outputQueueDropped": self.outlet_stats.dropped()});
                return (vec![line], Vec::new(), Some(detail));
            }
        };
        let dt = last.0.duration_since(first.0).as_secs_f64();
        let rate = |sel: &dyn Fn(&WorkerStats) -> u64| -> f64 {
            if dt <= 0.0 { 0.0 } else { sel(&last.1).saturating_sub(sel(&first.1)) as f64 / dt }
        };
        let mut rows = Vec::new();
        let mut renditions = Vec::new();
        for (i, r) in last.1.renditions.iter().enumerate() {
            // Bits per second of media produced (not of wall time: a ladder slower than real time still
            // shows its encoded bitrate).
            let media = last.1.media_secs - first.1.media_secs;
            let bytes = last.1.renditions[i].bytes.saturating_sub(first.1.renditions.get(i).map_or(0, |x| x.bytes));
            let bps = if media > 0.0 { bytes as f64 * 8.0 / media } else { 0.0 };
            let fps = rate(&|s: &WorkerStats| s.renditions.get(i).map_or(0, |x| x.frames));
            let video = r.width > 0;
            let id = if video { format!("video_{}x{}", r.width, r.height) } else { "audio_aac".to_owned() };
            rows.push(TrackStatus {
                track_id: id.clone(),
                expected_bitrate: u64::from(r.target_bitrate),
                incoming_bitrate: Some(bps.round() as u64),
                ingest_drift: "n/a".into(),
                requests_received: Some(r.frames),
                requests_succeeded: Some(r.frames),
                last_timestamp: None,
                timescale: if video { 90_000 } else { 48_000 },
                discontinuities: sh.restarts,
            });
            renditions
                .push(json!({"trackId": id, "width": r.width, "height": r.height, "targetBitrate": r.target_bitrate,
                "outputBitrate": bps.round() as u64, "frames": r.frames, "fps": (fps * 100.0).round() / 100.0}));
        }
        let fps = rate(&|s: &WorkerStats| s.renditions.first().map_or(0, |x| x.frames));
        let speed = fps / f64::from(FPS);
        let dropped = last.1.dropped_frames;
        let line = format!(
            "Transcoding with {} ({}): {} video renditions at {:.1} fps ({:.2}x real time), {} frames dropped by the frame-rate converter, {} units dropped at the worker's input, {} worker restarts.",
            sh.encoder,
            sh.reason,
            renditions.len().saturating_sub(1),
            fps,
            speed,
            dropped,
            self.inlet_stats.dropped(),
            sh.restarts
        );
        let detail = json!({
            "encoder": sh.encoder, "reason": sh.reason, "workerPid": sh.worker_pid, "workerRestarts": sh.restarts,
            "encoderFps": (fps * 100.0).round() / 100.0, "realTimeFactor": (speed * 100.0).round() / 100.0,
            "droppedFrames": dropped, "inputQueueDropped": self.inlet_stats.dropped(),
            "outputQueueDropped": self.outlet_stats.dropped(), "inputFrames": last.1.input_frames,
            "renditions": renditions, "lastError": sh.last_error,
        });
        (vec![line], rows, Some(detail))
    }
}

/// Why a worker run ended.
enum RunEnd {
    Stopped,
    Restart(String),
}

type Downstream = Arc<tokio::sync::Mutex<MediaSender>>;

async fn supervise(
    exe: PathBuf,
    cfg: WorkerConfig,
    mut rx: MediaReceiver,
    downstream: MediaSender,
    shared: Arc<Mutex<Shared>>,
    mut stop: watch::Receiver<bool>,
) {
    let downstream: Downstream = Arc::new(tokio::sync::Mutex::new(downstream));
    let mut last_tracks: Option<Vec<edge_media::Track>> = None;
    let mut last_restart: Option<Instant> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let end = run_worker(&exe, &cfg, &mut rx, &downstream, &shared, &mut stop, &mut last_tracks).await;
        let reason = match end {
            RunEnd::Stopped => return,
            RunEnd::Restart(_) if *stop.borrow() => return,
            RunEnd::Restart(r) => r,
        };
        {
            let mut sh = shared.lock().expect("poisoned");
            sh.restarts += 1;
            sh.worker_pid = None;
            sh.history.clear();
            sh.last_error = Some(reason.clone());
        }
        tracing::warn!(event = %cfg.event, %reason, "transcode worker failed; restarting it (players see a discontinuity)");
        if downstream.lock().await.send_control(MediaEvent::Discontinuity).await == edge_media::SendOutcome::Closed {
            return;
        }
        backoff = if last_restart.is_some_and(|t| t.elapsed() < QUICK_RESTART) {
            (backoff * 2).min(Duration::from_secs(5))
        } else {
            Duration::from_millis(250)
        };
        last_restart = Some(Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Writes one frame to the worker. A write may wait while the worker is busy (back-pressure: the
/// inlet then drops and counts); it fails only when the worker has produced nothing for
/// [`HANG_LIMIT`] meanwhile (hung), or the appliance stops the event.
async fn write_msg(
    stdin: &mut tokio::process::ChildStdin,
    buf: &mut BytesMut,
    msg: &Msg,
    clock: &OutClock,
    stop: &watch::Receiver<bool>,
) -> Result<(), String> {
    buf.clear();
    edge_gst::proto::encode(msg, buf);
    let write = stdin.write_all(buf);
    tokio::pin!(write);
    loop {
        match tokio::time::timeout(Duration::from_secs(1), &mut write).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => return Err(format!("worker input: {e}")),
            Err(_) if *stop.borrow() => return Err("stopping".into()),
            Err(_) if clock.since() > HANG_LIMIT => {
                return Err(format!(
                    "the worker took no input and gave no output for {} s (hung)",
                    HANG_LIMIT.as_secs()
                ));
            }
            Err(_) => {}
        }
    }
}

/// Milliseconds since `epoch` of the worker's last media output.
struct OutClock {
    epoch: Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl OutClock {
    fn touch(&self) {
        self.last_ms.store(self.epoch.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    fn since(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Reads the worker's output and forwards it to the packager; returns why it ended. Runs on its
/// own task so that a blocked write to the worker never stops its output (no pipe deadlock).
async fn read_loop(
    mut stdout: tokio::process::ChildStdout,
    downstream: Downstream,
    shared: Arc<Mutex<Shared>>,
    clock: Arc<OutClock>,
    event: String,
) -> String {
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) => return "the worker exited".into(),
            Ok(n) => n,
            Err(e) => return format!("worker output: {e}"),
        };
        dec.push(&buf[..n]);
        loop {
            let msg = match dec.next_msg() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return format!("bad frame from the worker: {e}"),
            };
            let outcome = match msg {
                Msg::Tracks(t) => {
                    clock.touch();
                    let desc: Vec<String> =
                        t.iter().map(|t| format!("{}:{}:{}x{}", t.id, t.codec_string, t.width, t.height)).collect();
                    tracing::info!(%event, tracks = ?desc, "transcoded renditions");
                    downstream.lock().await.send_control(MediaEvent::Tracks(t)).await
                }
                Msg::Unit(u) => {
                    clock.touch();
                    if tracing::enabled!(tracing::Level::DEBUG) {
                        tracing::debug!(%event, track = u.track, dts = u.dts, pts = u.pts, key = u.keyframe, "out");
                    }
                    downstream.lock().await.send_unit(u.into_au(Instant::now()))
                }
                Msg::Discontinuity => downstream.lock().await.send_control(MediaEvent::Discontinuity).await,
                Msg::End => downstream.lock().await.send_control(MediaEvent::End).await,
                Msg::Stats(s) => {
                    let mut sh = shared.lock().expect("poisoned");
                    let now = Instant::now();
                    // A new ladder restarts its counters.
                    if sh.history.back().is_some_and(|(_, p)| p.wall_secs > s.wall_secs) {
                        sh.history.clear();
                    }
                    sh.history.push_back((now, s));
                    while sh.history.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(6)) {
                        sh.history.pop_front();
                    }
                    edge_media::SendOutcome::Sent
                }
                Msg::Event(e) => {
                    match e {
                        WorkerEvent::Started { encoder, reason, renditions, input } => {
                            tracing::info!(%event, %encoder, %reason, ?renditions, %input, "transcode ladder started");
                            let mut sh = shared.lock().expect("poisoned");
                            sh.encoder = encoder;
                            sh.reason = reason;
                            if let Some(c) = sh.capture.as_mut() {
                                c.input = input;
                            }
                        }
                        WorkerEvent::Warning { source, message } => {
                            tracing::warn!(%event, %source, "transcode pipeline: {message}");
                        }
                        WorkerEvent::Error { source, message } => {
                            tracing::error!(%event, %source, "transcode pipeline error: {message}");
                            shared.lock().expect("poisoned").last_error = Some(format!("{source}: {message}"));
                        }
                        WorkerEvent::Drained => {}
                    }
                    edge_media::SendOutcome::Sent
                }
                Msg::Config(_) => edge_media::SendOutcome::Sent,
            };
            if outcome == edge_media::SendOutcome::Closed {
                return "the packager is gone".into();
            }
        }
    }
}

async fn run_worker(
    exe: &PathBuf,
    cfg: &WorkerConfig,
    rx: &mut MediaReceiver,
    downstream: &Downstream,
    shared: &Arc<Mutex<Shared>>,
    stop: &mut watch::Receiver<bool>,
    last_tracks: &mut Option<Vec<edge_media::Track>>,
) -> RunEnd {
    let mut child = match tokio::process::Command::new(exe)
        .arg("transcode-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return RunEnd::Restart(format!("cannot start the worker: {e}")),
    };
    let pid = child.id();
    tracing::info!(event = %cfg.event, pid, preset = cfg.preset.as_str(), "transcode worker started");
    shared.lock().expect("poisoned").worker_pid = pid;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let clock = Arc::new(OutClock { epoch: Instant::now(), last_ms: Default::default() });
    let mut reader = AbortOnDrop(tokio::spawn(read_loop(
        stdout,
        downstream.clone(),
        shared.clone(),
        clock.clone(),
        cfg.event.clone(),
    )));
    let mut buf = BytesMut::new();
    if let Err(e) = write_msg(&mut stdin, &mut buf, &Msg::Config(cfg.clone()), &clock, stop).await {
        return RunEnd::Restart(e);
    }
    // After a restart the worker starts from the current tracks, at the next video keyframe.
    let mut need_key = false;
    let mut video_ids: Vec<u32> = Vec::new();
    if let Some(t) = last_tracks.as_ref() {
        video_ids = t.iter().filter(|t| t.kind() == TrackKind::Video).map(|t| t.id).collect();
        need_key = true;
        if let Err(e) = write_msg(&mut stdin, &mut buf, &Msg::Tracks(t.clone()), &clock, stop).await {
            return RunEnd::Restart(e);
        }
    }
    let mut last_in: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let ended = |child: &mut tokio::process::Child, e: String| {
        let _ = child.start_kill();
        RunEnd::Restart(e)
    };
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = child.start_kill();
                return RunEnd::Stopped;
            }
            r = &mut reader.0 => {
                let why = r.unwrap_or_else(|e| format!("worker output task: {e}"));
                if why == "the packager is gone" {
                    let _ = child.start_kill();
                    return RunEnd::Stopped;
                }
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let status = status.ok().and_then(|s| s.ok()).map(|s| format!(" ({s})")).unwrap_or_default();
                return ended(&mut child, format!("{why}{status}"));
            }
            ev = rx.recv() => {
                let Some(ev) = ev else {
                    let _ = child.start_kill();
                    return RunEnd::Stopped;
                };
                let msg = match ev {
                    MediaEvent::Tracks(t) => {
                        video_ids = t.iter().filter(|t| t.kind() == TrackKind::Video).map(|t| t.id).collect();
                        need_key = false;
                        *last_tracks = Some(t.clone());
                        Msg::Tracks(t)
                    }
                    MediaEvent::Unit(au) => {
                        if need_key && video_ids.contains(&au.track) {
                            if !au.keyframe {
                                continue;
                            }
                            need_key = false;
                        }
                        if last_in.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                            // Input (re)starts: the hang clock starts now.
                            clock.touch();
                        }
                        last_in = Some(Instant::now());
                        Msg::Unit(WireUnit::from_au(&au))
                    }
                    MediaEvent::Discontinuity => Msg::Discontinuity,
                    MediaEvent::End => Msg::End,
                };
                if let Err(e) = write_msg(&mut stdin, &mut buf, &msg, &clock, stop).await {
                    return ended(&mut child, e);
                }
            }
            _ = tick.tick() => {
                let flowing = last_in.is_some_and(|t| t.elapsed() < Duration::from_secs(2));
                if flowing && clock.since() > HANG_LIMIT {
                    return ended(&mut child, format!("no output for {} s while input flows (hung)", HANG_LIMIT.as_secs()));
                }
            }
        }
    }
}

/// Records a stream event of one event: (type, level, data).
type Report = Box<dyn Fn(&str, &str, Value) + Send + Sync>;

/// One capture event's device and where its stream events go.
struct CaptureRun {
    id: CaptureDeviceId,
    path: PathBuf,
    single: bool,
    report: Report,
}

/// How often a missing device is looked for.
const DEVICE_POLL: Duration = Duration::from_secs(1);

/// The capture worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureState {
    /// A worker was started; no frame yet.
    Starting,
    /// Frames flow.
    Running,
    /// The device node is absent: waiting for it to come back.
    DeviceMissing { since: Instant },
    /// A worker ended with the device present: waiting before the next one.
    BackingOff { until: Instant },
}

impl CaptureState {
    fn name(self) -> &'static str {
        match self {
            CaptureState::Starting => "starting",
            CaptureState::Running => "running",
            CaptureState::DeviceMissing { .. } => "deviceMissing",
            CaptureState::BackingOff { .. } => "backingOff",
        }
    }
}

/// What the supervisor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureStep {
    /// Start a worker now.
    Spawn,
    /// Look again after this long.
    Wait(Duration),
}

/// The capture supervisor's decisions, with time and the device's presence as inputs (unit-tested).
#[derive(Debug)]
struct CaptureMachine {
    state: CaptureState,
    backoff: Duration,
    last_exit: Option<Instant>,
}

/// A note for the stream events when the state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureNote {
    None,
    /// The device just went missing.
    Missing,
    /// The device is back after being missing.
    Back,
}

impl CaptureMachine {
    fn new() -> Self {
        CaptureMachine { state: CaptureState::Starting, backoff: Duration::from_millis(250), last_exit: None }
    }

    /// Before starting a worker (and on each poll while waiting).
    fn next(&mut self, now: Instant, present: bool) -> (CaptureStep, CaptureNote) {
        match (self.state, present) {
            (CaptureState::DeviceMissing { .. }, false) => (CaptureStep::Wait(DEVICE_POLL), CaptureNote::None),
            (_, false) => {
                self.state = CaptureState::DeviceMissing { since: now };
                (CaptureStep::Wait(DEVICE_POLL), CaptureNote::Missing)
            }
            (CaptureState::DeviceMissing { .. }, true) => {
                self.state = CaptureState::Starting;
                (CaptureStep::Spawn, CaptureNote::Back)
            }
            (CaptureState::BackingOff { until }, true) if now < until => {
                (CaptureStep::Wait(until - now), CaptureNote::None)
            }
            (_, true) => {
                self.state = CaptureState::Starting;
                (CaptureStep::Spawn, CaptureNote::None)
            }
        }
    }

    /// The worker delivered its first output.
    fn running(&mut self) {
        self.state = CaptureState::Running;
    }

    /// The worker ended. Exits in quick succession back off (250 ms doubling up to 5 s); a
    /// missing device is polled instead.
    fn exited(&mut self, now: Instant, present: bool) -> CaptureNote {
        self.backoff = if self.last_exit.is_some_and(|t| now.duration_since(t) < QUICK_RESTART) {
            (self.backoff * 2).min(Duration::from_secs(5))
        } else {
            Duration::from_millis(250)
        };
        self.last_exit = Some(now);
        if present {
            self.state = CaptureState::BackingOff { until: now + self.backoff };
            CaptureNote::None
        } else {
            self.state = CaptureState::DeviceMissing { since: now };
            CaptureNote::Missing
        }
    }
}

/// Runs a capture event's workers until the event stops: a worker per device session; when it
/// ends (device unplugged, pipeline error, hang) the packager gets a discontinuity and the next
/// worker starts once the device is present, continuing the event's timeline.
async fn supervise_capture(
    exe: PathBuf,
    cfg: WorkerConfig,
    cap: CaptureRun,
    mut rx: MediaReceiver,
    downstream: MediaSender,
    shared: Arc<Mutex<Shared>>,
    mut stop: watch::Receiver<bool>,
) {
    let downstream: Downstream = Arc::new(tokio::sync::Mutex::new(downstream));
    let epoch = Instant::now();
    let mut machine = CaptureMachine::new();
    let mut produced = false;
    let set_state = |m: &CaptureMachine| {
        let mut sh = shared.lock().expect("poisoned");
        if let Some(c) = sh.capture.as_mut() {
            c.state = m.state.name();
            if !matches!(m.state, CaptureState::DeviceMissing { .. }) {
                c.missing_since = None;
            } else if c.missing_since.is_none() {
                c.missing_since = Some(edge_model::Timestamp::now());
            }
        }
    };
    let missing_message = format!(
        "The capture device {} is missing ({} does not exist): plug it in; the event resumes by itself.",
        cap.id,
        cap.path.display()
    );
    loop {
        let (step, note) = machine.next(Instant::now(), cap.path.exists());
        set_state(&machine);
        match note {
            CaptureNote::Missing => {
                tracing::warn!(event = %cfg.event, device = %cap.id, "capture device missing");
                shared.lock().expect("poisoned").last_error = Some(missing_message.clone());
                (cap.report)(
                    "StreamEvent/CaptureDeviceMissing",
                    "Warning",
                    json!({"captureDevice": cap.id.as_str(), "path": cap.path.display().to_string(), "resultCode": "DeviceMissing", "resultMessage": missing_message}),
                );
            }
            CaptureNote::Back => {
                tracing::info!(event = %cfg.event, device = %cap.id, "capture device is back");
                (cap.report)(
                    "StreamEvent/CaptureDeviceBack",
                    "Information",
                    json!({"captureDevice": cap.id.as_str(), "resultCode": "S_OK", "resultMessage": "The capture device is back; capture resumes."}),
                );
            }
            CaptureNote::None => {}
        }
        if let CaptureStep::Wait(d) = step {
            tokio::select! {
                _ = tokio::time::sleep(d) => continue,
                _ = stop.changed() => return,
                ev = rx.recv() => if ev.is_none() { return } else { continue },
            }
        }
        let mut run_cfg = cfg.clone();
        run_cfg.capture = Some(CaptureSpec {
            device: cap.id.clone(),
            path: cap.path.display().to_string(),
            single_rendition: cap.single,
            origin_ms: epoch.elapsed().as_millis() as u64,
        });
        let (end, delivered) = run_capture_worker(
            &exe,
            &run_cfg,
            &mut rx,
            &downstream,
            &shared,
            &mut stop,
            &cap,
            &mut machine,
            &set_state,
        )
        .await;
        produced |= delivered;
        let reason = match end {
            RunEnd::Stopped => return,
            RunEnd::Restart(_) if *stop.borrow() => return,
            RunEnd::Restart(r) => r,
        };
        if delivered {
            (cap.report)(
                "StreamEvent/EndIngest",
                "Information",
                json!({"captureDevice": cap.id.as_str(), "resultCode": "CaptureEnded", "resultMessage": reason}),
            );
        }
        let note = machine.exited(Instant::now(), cap.path.exists());
        {
            let mut sh = shared.lock().expect("poisoned");
            sh.restarts += 1;
            sh.worker_pid = None;
            sh.history.clear();
            sh.last_error = Some(if note == CaptureNote::Missing { missing_message.clone() } else { reason.clone() });
        }
        set_state(&machine);
        if note == CaptureNote::Missing {
            (cap.report)(
                "StreamEvent/CaptureDeviceMissing",
                "Warning",
                json!({"captureDevice": cap.id.as_str(), "path": cap.path.display().to_string(), "resultCode": "DeviceMissing", "resultMessage": missing_message}),
            );
        }
        tracing::warn!(event = %cfg.event, %reason, "capture worker ended; restarting it when the device is present (players see a discontinuity)");
        if produced
            && downstream.lock().await.send_control(MediaEvent::Discontinuity).await == edge_media::SendOutcome::Closed
        {
            return;
        }
    }
}

/// One capture worker: it produces on its own (publishers' units are discarded: capture events
/// accept none); returns why it ended and whether it delivered media.
#[allow(clippy::too_many_arguments)]
async fn run_capture_worker(
    exe: &PathBuf,
    cfg: &WorkerConfig,
    rx: &mut MediaReceiver,
    downstream: &Downstream,
    shared: &Arc<Mutex<Shared>>,
    stop: &mut watch::Receiver<bool>,
    cap: &CaptureRun,
    machine: &mut CaptureMachine,
    set_state: &(dyn Fn(&CaptureMachine) + Sync),
) -> (RunEnd, bool) {
    let mut child = match tokio::process::Command::new(exe)
        .arg("transcode-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (RunEnd::Restart(format!("cannot start the worker: {e}")), false),
    };
    let pid = child.id();
    tracing::info!(event = %cfg.event, pid, device = %cap.id, "capture worker started");
    shared.lock().expect("poisoned").worker_pid = pid;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let clock = Arc::new(OutClock { epoch: Instant::now(), last_ms: Default::default() });
    let mut reader = AbortOnDrop(tokio::spawn(read_loop(
        stdout,
        downstream.clone(),
        shared.clone(),
        clock.clone(),
        cfg.event.clone(),
    )));
    let mut buf = BytesMut::new();
    if let Err(e) = write_msg(&mut stdin, &mut buf, &Msg::Config(cfg.clone()), &clock, stop).await {
        return (RunEnd::Restart(e), false);
    }
    let started = Instant::now();
    let mut delivered = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = child.start_kill();
                return (RunEnd::Stopped, delivered);
            }
            r = &mut reader.0 => {
                let why = r.unwrap_or_else(|e| format!("worker output task: {e}"));
                let _ = child.start_kill();
                if why == "the packager is gone" {
                    return (RunEnd::Stopped, delivered);
                }
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let status = status.ok().and_then(|s| s.ok()).map(|s| format!(" ({s})")).unwrap_or_default();
                let last = shared.lock().expect("poisoned").last_error.clone().unwrap_or_default();
                return (RunEnd::Restart(format!("{why}{status}{}", if last.is_empty() { String::new() } else { format!(": {last}") })), delivered);
            }
            ev = rx.recv() => {
                if ev.is_none() {
                    let _ = child.start_kill();
                    return (RunEnd::Stopped, delivered);
                }
            }
            _ = tick.tick() => {
                if !delivered && clock.since() < clock.epoch.elapsed() {
                    delivered = true;
                    machine.running();
                    set_state(machine);
                    shared.lock().expect("poisoned").last_error = None;
                    (cap.report)(
                        "StreamEvent/BeginIngest",
                        "Information",
                        json!({"captureDevice": cap.id.as_str(), "resultCode": "S_OK", "resultMessage": "Capture from the local device started"}),
                    );
                }
                // No frame for the hang limit (from the start, or since the last one): the device or
                // its driver stalled.
                let quiet = if delivered { clock.since() } else { started.elapsed() };
                if quiet > HANG_LIMIT {
                    let _ = child.start_kill();
                    return (RunEnd::Restart(format!("no frame from the capture device for {} s", HANG_LIMIT.as_secs())), delivered);
                }
            }
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_machine_waits_for_a_missing_device_and_backs_off() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let mut m = CaptureMachine::new();
        // Missing at start: reported once, then polled quietly.
        assert_eq!(m.next(s(0), false), (CaptureStep::Wait(DEVICE_POLL), CaptureNote::Missing));
        assert_eq!(m.state.name(), "deviceMissing");
        assert_eq!(m.next(s(1000), false), (CaptureStep::Wait(DEVICE_POLL), CaptureNote::None));
        // Plugged in: start, and say it is back.
        assert_eq!(m.next(s(2000), true), (CaptureStep::Spawn, CaptureNote::Back));
        assert_eq!(m.state, CaptureState::Starting);
        m.running();
        assert_eq!(m.state.name(), "running");
        // The worker fails with the device present: back off 250 ms, then start again.
        assert_eq!(m.exited(s(60_000), true), CaptureNote::None);
        assert_eq!(m.next(s(60_100), true), (CaptureStep::Wait(Duration::from_millis(150)), CaptureNote::None));
        assert_eq!(m.next(s(60_250), true), (CaptureStep::Spawn, CaptureNote::None));
        // Quick repeated failures double the wait, up to 5 s.
        m.exited(s(61_000), true);
        assert_eq!(m.state, CaptureState::BackingOff { until: s(61_500) });
        for i in 0..10 {
            m.exited(s(62_000 + i * 100), true);
        }
        assert_eq!(m.backoff, Duration::from_secs(5));
        // Unplugged: the worker exits and the device is gone: missing, not backing off.
        assert_eq!(m.exited(s(70_000), false), CaptureNote::Missing);
        assert_eq!(m.state, CaptureState::DeviceMissing { since: s(70_000) });
        assert_eq!(m.next(s(71_000), false), (CaptureStep::Wait(DEVICE_POLL), CaptureNote::None));
        assert_eq!(m.next(s(72_000), true), (CaptureStep::Spawn, CaptureNote::Back));
        // A failure long after the last one starts the backoff over.
        m.exited(s(200_000), true);
        assert_eq!(m.backoff, Duration::from_millis(250));
    }
}
