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
use edge_gst::ladder::{FPS, Preset};
use edge_gst::proto::{Decoder, Msg, WireUnit, WorkerConfig, WorkerEvent, WorkerStats};
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

/// Starts workers for the transcoding events.
pub struct Transcoding {
    exe: PathBuf,
    x264_speed_preset: String,
}

impl Transcoding {
    /// `RMS_EDGE_X264_PRESET` overrides x264's speed preset on the software path (default
    /// `veryfast`).
    pub fn new() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let x264_speed_preset = std::env::var("RMS_EDGE_X264_PRESET").unwrap_or_else(|_| "veryfast".into());
        Ok(Transcoding { exe, x264_speed_preset })
    }
}

impl FrontProvider for Transcoding {
    fn front_for(&self, s: &LiveSession) -> Option<FrontFactory> {
        let preset = match s.encoding {
            EncodingType::Standard => Preset::Default720p,
            EncodingType::Premium1080p => Preset::Default1080p,
            _ => return None,
        };
        let kfi = s.encoding_key_frame_interval.unwrap_or(Duration::from_secs(2));
        let cfg = WorkerConfig {
            event: s.event_name.clone(),
            preset,
            key_frame_interval_ms: kfi.as_millis().clamp(500, 20_000) as u32,
            x264_speed_preset: self.x264_speed_preset.clone(),
        };
        let exe = self.exe.clone();
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
                        WorkerEvent::Started { encoder, reason, renditions } => {
                            tracing::info!(%event, %encoder, %reason, ?renditions, "transcode ladder started");
                            let mut sh = shared.lock().expect("poisoned");
                            sh.encoder = encoder;
                            sh.reason = reason;
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

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
