//! `rms-edge transcode-worker`: reads [`Msg`]s from stdin, runs the ladder, writes [`Msg`]s to
//! stdout. One worker per transcoding event; the appliance supervises it (a crash, a pipeline
//! error or a hang ends this process and the supervisor starts a new one).
//!
//! Threads: the main thread reads stdin and drives the [`Ladder`] (its pushes block while the
//! pipeline is busy: back-pressure through the pipe); the appsink callbacks and the bus thread
//! send output into a bounded channel; one writer thread frames it to stdout and adds a
//! statistics heartbeat every second. A pipeline error exits the process with status 3.

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::capture;
use crate::encoders::{self, EncoderChoice};
use crate::pipeline::{GstPlatform, Ladder, StatsSource};
use crate::proto::{CaptureSpec, Decoder, Msg, WorkerConfig, WorkerEvent};

/// Exit status after a pipeline error.
pub const EXIT_PIPELINE_ERROR: i32 = 3;
/// Output messages buffered between the pipeline and the pipe.
const OUT_CAPACITY: usize = 256;

/// The encoder this machine would use (for logs and the appliance info).
pub fn probe() -> Result<EncoderChoice, String> {
    crate::pipeline::init()?;
    encoders::probe(&GstPlatform).ok_or_else(|| "no H.264 encoder (not even x264enc) is installed".to_owned())
}

/// Runs the worker until stdin closes. Returns the process exit status.
pub fn run(mut input: impl Read, output: impl Write + Send + 'static) -> i32 {
    let choice = match probe() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("transcode worker: {e}");
            return 2;
        }
    };
    tracing::info!(encoder = choice.element, decoder = choice.decoder, reason = %choice.reason, "transcode encoder chosen");
    let (tx, rx) = sync_channel::<Msg>(OUT_CAPACITY);
    let stats: Arc<Mutex<Option<StatsSource>>> = Default::default();
    let writer = {
        let stats = stats.clone();
        std::thread::spawn(move || write_loop(rx, output, stats))
    };
    let mut cfg: Option<WorkerConfig> = None;
    let mut ladder: Option<Ladder> = None;
    let mut last_tracks = None;
    let mut produced = false;
    let mut dec = Decoder::new();
    let mut buf = vec![0u8; 256 * 1024];
    let status = 'outer: loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break 0,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("transcode worker: stdin: {e}");
                break 2;
            }
        };
        dec.push(&buf[..n]);
        loop {
            let msg = match dec.next_msg() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("transcode worker: bad frame from the appliance: {e}");
                    break 'outer 2;
                }
            };
            match msg {
                Msg::Config(c) => {
                    if let Some(spec) = c.capture.clone() {
                        // A capture worker: its source is the device, from now until stdin closes.
                        match start_capture(&c, &choice, &spec, tx.clone()) {
                            Ok(l) => {
                                *stats.lock().expect("poisoned") = Some(l.stats_source());
                                ladder = Some(l);
                            }
                            Err(e) => {
                                let _ =
                                    tx.send(Msg::Event(WorkerEvent::Error { source: "capture".into(), message: e }));
                                break 'outer EXIT_PIPELINE_ERROR;
                            }
                        }
                    }
                    cfg = Some(c);
                }
                Msg::Tracks(t) => {
                    if let Some(l) = ladder.take() {
                        drop(l);
                        *stats.lock().expect("poisoned") = None;
                    }
                    if produced {
                        let _ = tx.send(Msg::Discontinuity);
                    }
                    last_tracks = Some(t);
                }
                Msg::Unit(_) if cfg.as_ref().is_some_and(|c| c.capture.is_some()) => {}
                Msg::Unit(u) => {
                    if ladder.is_none() {
                        let (Some(c), Some(t)) = (&cfg, &last_tracks) else { continue };
                        let kinds: Vec<String> = t.iter().map(|t| format!("{}:{:?}", t.id, t.codec)).collect();
                        tracing::info!(event = %c.event, input = ?kinds, "building the ladder");
                        match Ladder::start(c, &choice, t, tx.clone()) {
                            Ok(l) => {
                                *stats.lock().expect("poisoned") = Some(l.stats_source());
                                ladder = Some(l);
                                produced = true;
                            }
                            Err(e) => {
                                let _ = tx.send(Msg::Event(WorkerEvent::Error { source: "worker".into(), message: e }));
                                break 'outer EXIT_PIPELINE_ERROR;
                            }
                        }
                    }
                    if let Some(l) = &mut ladder
                        && let Err(e) = l.push(u)
                    {
                        let _ = tx.send(Msg::Event(WorkerEvent::Error { source: "appsrc".into(), message: e }));
                        break 'outer EXIT_PIPELINE_ERROR;
                    }
                }
                Msg::Discontinuity => {
                    ladder = None;
                    *stats.lock().expect("poisoned") = None;
                    let _ = tx.send(Msg::Discontinuity);
                }
                Msg::End => {
                    if let Some(l) = ladder.take() {
                        l.end_input();
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while !l.is_drained() && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        *stats.lock().expect("poisoned") = None;
                    }
                    let _ = tx.send(Msg::End);
                }
                Msg::Stats(_) | Msg::Event(_) => {}
            }
        }
    };
    drop(ladder);
    drop(tx);
    let _ = writer.join();
    status
}

/// Opens the device, picks its mode for the ladder's top rung (the device's largest smooth mode up
/// to 1080p for a single rendition) and starts the capture ladder.
fn start_capture(
    cfg: &WorkerConfig,
    choice: &EncoderChoice,
    spec: &CaptureSpec,
    tx: std::sync::mpsc::SyncSender<Msg>,
) -> Result<Ladder, String> {
    let node = std::path::Path::new(&spec.path);
    if !node.exists() {
        return Err(format!("the capture device {} is missing ({} does not exist)", spec.device, spec.path));
    }
    let modes = crate::devices::modes_of(node)?;
    let target = match (spec.single_rendition, cfg.preset.rungs().first()) {
        (false, Some(top)) => (u32::from(top.0), u32::from(top.1)),
        _ => (1920, 1080),
    };
    let selected = capture::select(&modes, target, crate::ladder::FPS)
        .ok_or_else(|| format!("the capture device {} offers no raw or MJPEG mode", spec.device))?;
    tracing::info!(device = %spec.device, caps = %selected.caps(), "capture mode selected");
    Ladder::start_capture(cfg, choice, spec, &selected, tx)
}

fn write_loop(rx: Receiver<Msg>, output: impl Write, stats: Arc<Mutex<Option<StatsSource>>>) {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, output);
    let mut frame = BytesMut::new();
    let mut last_stats = Instant::now();
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let fatal = matches!(msg, Some(Msg::Event(WorkerEvent::Error { .. })));
        if let Some(m) = msg {
            frame.clear();
            crate::proto::encode(&m, &mut frame);
            if out.write_all(&frame).is_err() {
                return;
            }
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            let s = stats.lock().expect("poisoned").clone();
            if let Some(s) = s {
                frame.clear();
                crate::proto::encode(&Msg::Stats(s.stats()), &mut frame);
                if out.write_all(&frame).is_err() {
                    return;
                }
            }
        }
        if fatal {
            let _ = out.flush();
            tracing::error!("transcode worker: pipeline error; exiting");
            std::process::exit(EXIT_PIPELINE_ERROR);
        }
        if out.flush().is_err() {
            return;
        }
    }
    let _ = out.flush();
}
