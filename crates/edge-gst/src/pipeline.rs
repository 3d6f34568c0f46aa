//! The GStreamer ladder pipeline: access units in through `appsrc`, one H.264 access-unit stream
//! per rendition (and one AAC stream) out through `appsink`s, bus messages as [`WorkerEvent`]s.
//!
//! ```text
//! appsrc(avc|hvc1) ! h26xparse ! decoder ! videoconvert ! videorate ! I420@30 ! tee
//!   t.  ! queue ! videoscale ! I420 rung 0 ! tee r0 ! queue ! encoder ! video/x-h264,profile=high ! h264parse ! avc/au ! appsink
//!   r0. ! queue ! videoscale ! I420 rung 1 ! tee r1 ! queue ! encoder ! … ! appsink     (each rung from the one above)
//!   r1. ! …
//! appsrc(aac raw) ! aacparse ! avdec_aac ! audioconvert ! audioresample ! 48k stereo ! audiorate skip-to-first=true ! aac enc ! appsink
//! ```
//!
//! Keyframes line up across renditions because every encoder sees the same frames (after the
//! tee) with a fixed GOP of `fps * keyFrameInterval` frames, no scene-cut keyframes and no
//! B-frames. Gaps in the input (units dropped upstream) are filled (videorate repeats frames,
//! audiorate inserts silence), so the output timelines stay continuous. Output timestamps are the input's media time (an origin is subtracted on the way in
//! and added back on the way out), so a restarted pipeline continues the same timeline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use edge_media::{Codec, Track};
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use crate::capture::{PixelFormat, Selected};
use crate::encoders::{BitrateProp, EncoderChoice, EncoderKind, Platform};
use crate::ladder::{self, AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE, FPS, Rung};
use crate::proto::{CaptureSpec, Msg, RenditionStats, WireUnit, WorkerConfig, WorkerEvent, WorkerStats};

/// Output timestamps are shifted by this so that a unit slightly before the origin (audio ahead of
/// video) never has a negative running time.
const PAD_NS: i64 = 10_000_000_000;
const VIDEO_TIMESCALE: u32 = 90_000;

/// Initialises GStreamer (once per process).
pub fn init() -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())
}

/// The real platform: GStreamer's registry and the device nodes.
pub struct GstPlatform;

impl Platform for GstPlatform {
    fn has_element(&self, name: &str) -> bool {
        gst::ElementFactory::find(name).is_some()
    }
    fn render_nodes(&self) -> Vec<String> {
        list_dev("/dev/dri", "renderD")
    }
    fn m2m_encoders(&self) -> Vec<String> {
        // GStreamer's v4l2 plugin registers `v4l2h264enc` only when it found a memory-to-memory H.264
        // encoder while scanning the video devices; the node is then one of /dev/video*.
        if gst::ElementFactory::find("v4l2h264enc").is_none() {
            return Vec::new();
        }
        list_dev("/dev", "video")
    }
}

fn list_dev(dir: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The launch description of one encoder element for a rung (from the property table).
/// The video branches of a ladder (one `gst-launch` line each), from the tee `t` of the decoded input.
///
/// Scaling cascade: each rung is scaled from the rung above it (the top one from the input), never all
/// from the input: GStreamer's scaler costs grow with the downscale ratio (its filter widens), so
/// 1080p → 720p → 540p → 396p → 288p in steps of ~1.3× takes about 9 % less CPU for the whole
/// Standard ladder than scaling every rung from 720p, at the same picture (41 dB PSNR between the
/// two 288p outputs; docs/benchmarks.md).
pub fn ladder_branches(rungs: &[Rung], encoder: impl Fn(&Rung) -> String) -> Vec<String> {
    const QUEUE: &str = "queue max-size-buffers=8 max-size-bytes=0 max-size-time=0";
    let mut out = Vec::with_capacity(rungs.len());
    for (i, r) in rungs.iter().enumerate() {
        let from = if i == 0 { "t.".to_owned() } else { format!("r{}.", i - 1) };
        // A rung that feeds the next one splits after its scaler: one branch encodes, one scales on.
        let split = if i + 1 < rungs.len() { format!(" ! tee name=r{i} ! {QUEUE}") } else { String::new() };
        out.push(format!(
            "{from} ! {QUEUE} ! videoscale ! video/x-raw,format=I420,width={},height={},pixel-aspect-ratio=1/1{split} ! {} ! video/x-h264,profile=high ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=v{i} sync=false async=false max-buffers=16\n",
            r.width,
            r.height,
            encoder(r)
        ));
    }
    out
}

pub fn encoder_desc(kind: EncoderKind, rung: &Rung, gop: u32, x264_speed: &str) -> String {
    let p = kind.props();
    let mut s = p.element.to_owned();
    match p.bitrate {
        BitrateProp::Kbps(prop) => s += &format!(" {prop}={}", rung.bitrate / 1000),
        BitrateProp::V4l2ControlBps(field) => {
            s += &format!(
                " extra-controls=\"controls,{field}={},h264_i_frame_period={gop},video_bitrate_mode=1\"",
                rung.bitrate
            )
        }
    }
    if let Some(g) = p.gop_frames {
        s += &format!(" {g}={gop}");
    }
    for (k, v) in p.rate_control.iter().chain(p.alignment) {
        s += &format!(" {k}=\"{v}\"");
    }
    if kind == EncoderKind::X264 {
        s += &format!(" speed-preset={x264_speed} vbv-buf-capacity=1000");
    }
    s
}

struct SinkState {
    rung: Option<Rung>,
    config: Option<Bytes>,
}

/// Output numbers of one sink. Kept apart from the [`Collector`] (whose lock is held while a
/// full output channel blocks) so the heartbeat can always read them.
#[derive(Clone, Copy, Default)]
struct Counters {
    rung: Option<Rung>,
    frames: u64,
    bytes: u64,
    first_pts: Option<u64>,
    last_pts: Option<u64>,
}

struct Collector {
    sinks: Vec<SinkState>,
    announced: bool,
    pending: Vec<(usize, WireUnit)>,
    out: SyncSender<Msg>,
    origin_ns: Arc<std::sync::atomic::AtomicI64>,
    counters: Arc<Mutex<Vec<Counters>>>,
}

impl Collector {
    fn tracks(&self) -> Vec<Track> {
        let n = self.sinks.len();
        self.sinks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let config = s.config.clone().unwrap_or_default();
                match s.rung {
                    Some(r) => Track {
                        id: i as u32 + 1,
                        codec: Codec::H264,
                        timescale: VIDEO_TIMESCALE,
                        codec_string: if config.len() >= 4 {
                            format!("avc1.{:02x}{:02x}{:02x}", config[1], config[2], config[3])
                        } else {
                            "avc1.640028".into()
                        },
                        config,
                        width: r.width,
                        height: r.height,
                        sample_rate: 0,
                        channels: 0,
                        bitrate: r.bitrate,
                    },
                    None => Track {
                        id: n as u32,
                        codec: Codec::Aac,
                        timescale: AUDIO_RATE,
                        config,
                        codec_string: "mp4a.40.2".into(),
                        width: 0,
                        height: 0,
                        sample_rate: AUDIO_RATE,
                        channels: AUDIO_CHANNELS,
                        bitrate: AUDIO_BITRATE,
                    },
                }
            })
            .collect()
    }

    fn sample(&mut self, i: usize, sample: &gst::Sample) -> Result<(), gst::FlowError> {
        let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
        if self.sinks[i].config.is_none() {
            let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
            let s = caps.structure(0).ok_or(gst::FlowError::NotNegotiated)?;
            let cd = s.get::<gst::Buffer>("codec_data").map_err(|_| gst::FlowError::NotNegotiated)?;
            let map = cd.map_readable().map_err(|_| gst::FlowError::Error)?;
            self.sinks[i].config = Some(Bytes::copy_from_slice(&map));
        }
        // Running time, not the raw timestamps: encoders may shift them (x264enc adds 1000 hours
        // so that DTS never goes negative) and compensate in the segment.
        let Some(raw_pts) = buf.pts() else { return Ok(()) };
        let shift = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .and_then(|seg| seg.to_running_time(raw_pts))
            .map_or(0, |run| i128::from(run.nseconds()) - i128::from(raw_pts.nseconds()));
        let shifted = |t: gst::ClockTime| (i128::from(t.nseconds()) + shift).max(0) as u64;
        let pts = shifted(raw_pts);
        let dts = buf.dts().map_or(pts, shifted);
        let timescale = if self.sinks[i].rung.is_some() { VIDEO_TIMESCALE } else { AUDIO_RATE };
        let origin = self.origin_ns.load(Ordering::Relaxed);
        let ticks = |ns: u64| -> i64 {
            let media_ns = ns as i128 - i128::from(PAD_NS) + i128::from(origin);
            (media_ns * i128::from(timescale)).div_euclid(1_000_000_000) as i64
        };
        let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
        let unit = WireUnit {
            track: i as u32 + 1,
            dts: ticks(dts),
            pts: ticks(pts),
            keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
            data: Bytes::copy_from_slice(&map),
        };
        {
            let mut counters = self.counters.lock().map_err(|_| gst::FlowError::Error)?;
            let s = &mut counters[i];
            s.frames += 1;
            s.bytes += unit.data.len() as u64;
            s.first_pts.get_or_insert(pts);
            s.last_pts = Some(pts);
        }
        if !self.announced {
            self.pending.push((i, unit));
            if self.sinks.iter().all(|s| s.config.is_some()) {
                self.announced = true;
                self.out.send(Msg::Tracks(self.tracks())).map_err(|_| gst::FlowError::Flushing)?;
                for (_, u) in std::mem::take(&mut self.pending) {
                    self.out.send(Msg::Unit(u)).map_err(|_| gst::FlowError::Flushing)?;
                }
            }
            return Ok(());
        }
        self.out.send(Msg::Unit(unit)).map_err(|_| gst::FlowError::Flushing)
    }
}

/// Where a ladder's input comes from.
enum Source<'a> {
    /// Access units on the worker's stdin (the first video and first audio track are used).
    Tracks(&'a [Track]),
    /// A local V4L2 device in the selected mode (video only).
    Capture(&'a CaptureSpec, &'a Selected),
}

/// One running ladder for one input track set.
pub struct Ladder {
    pipeline: gst::Pipeline,
    video: Option<(u32, u32, gst_app::AppSrc)>,
    audio: Option<(u32, u32, gst_app::AppSrc)>,
    origin_ns: Arc<std::sync::atomic::AtomicI64>,
    origin_set: bool,
    stats: StatsSource,
    drained: Arc<AtomicBool>,
    bus_stop: Arc<AtomicBool>,
    bus_thread: Option<std::thread::JoinHandle<()>>,
}

impl Ladder {
    /// Builds and starts the ladder for `tracks` (the first video and first audio track are used).
    pub fn start(
        cfg: &WorkerConfig,
        choice: &EncoderChoice,
        tracks: &[Track],
        out: SyncSender<Msg>,
    ) -> Result<Ladder, String> {
        Self::start_from(cfg, choice, Source::Tracks(tracks), out)
    }

    /// Builds and starts the ladder of a capture event: `v4l2src` in the `selected` mode (MJPEG
    /// decoded by `jpegdec`), then the same rate converter, scalers and encoders; a pass-through
    /// event gets one rendition at the device's size. Output timestamps are the pipeline's running
    /// time plus `spec.origin_ms`.
    pub fn start_capture(
        cfg: &WorkerConfig,
        choice: &EncoderChoice,
        spec: &CaptureSpec,
        selected: &Selected,
        out: SyncSender<Msg>,
    ) -> Result<Ladder, String> {
        Self::start_from(cfg, choice, Source::Capture(spec, selected), out)
    }

    fn start_from(
        cfg: &WorkerConfig,
        choice: &EncoderChoice,
        source: Source<'_>,
        out: SyncSender<Msg>,
    ) -> Result<Ladder, String> {
        let tracks: &[Track] = match source {
            Source::Tracks(t) => t,
            Source::Capture(..) => &[],
        };
        let video = tracks.iter().find(|t| matches!(t.codec, Codec::H264 | Codec::H265));
        let audio = tracks.iter().find(|t| t.codec == Codec::Aac);
        let capture = match source {
            Source::Capture(spec, sel) => Some((spec, sel)),
            Source::Tracks(_) => None,
        };
        if video.is_none() && audio.is_none() && capture.is_none() {
            return Err("no video or audio track to transcode".into());
        }
        let rungs = match capture {
            Some((spec, sel)) => {
                let (w, h) = (sel.width.min(u32::from(u16::MAX)) as u16, sel.height.min(u32::from(u16::MAX)) as u16);
                if spec.single_rendition { vec![ladder::single(w, h)] } else { ladder::select(cfg.preset, w, h) }
            }
            None => video.map(|v| ladder::select(cfg.preset, v.width, v.height)).unwrap_or_default(),
        };
        let gop = (FPS * cfg.key_frame_interval_ms.max(500)).div_ceil(1000).max(1);
        let mut desc = String::new();
        if let Some((spec, sel)) = capture {
            let decode = if sel.format == PixelFormat::Mjpeg { "jpegdec ! " } else { "" };
            // A leaky queue: when the encoders fall behind, frames are dropped here (the device keeps
            // its pace) rather than stalling the capture.
            desc += &format!(
                "v4l2src name=cam device=\"{}\" do-timestamp=true ! {} ! queue leaky=downstream max-size-buffers=4 max-size-bytes=0 max-size-time=0 ! {decode}videoconvert ! videorate name=rate skip-to-first=true ! video/x-raw,format=I420,framerate={FPS}/1 ! tee name=t\n",
                spec.path.replace(['"', '\\'], ""),
                sel.caps()
            );
        }
        if let Some(v) = video {
            let (parse, dec) = match v.codec {
                Codec::H265 => ("h265parse", "avdec_h265"),
                _ => ("h264parse", choice.decoder),
            };
            desc += &format!(
                "appsrc name=vsrc format=time is-live=false block=true max-buffers=30 max-bytes=0 max-time=0 ! {parse} ! {dec} ! videoconvert ! videorate name=rate skip-to-first=true ! video/x-raw,format=I420,framerate={FPS}/1 ! tee name=t\n"
            );
        }
        for line in ladder_branches(&rungs, |r| encoder_desc(choice.encoder, r, gop, &cfg.x264_speed_preset)) {
            desc += &line;
        }
        if audio.is_some() {
            let aenc = if gst::ElementFactory::find("avenc_aac").is_some() { "avenc_aac" } else { "voaacenc" };
            desc += &format!(
                "appsrc name=asrc format=time is-live=false block=true max-buffers=64 max-bytes=0 max-time=0 ! aacparse ! avdec_aac ! audioconvert ! audioresample ! audio/x-raw,rate={AUDIO_RATE},channels={AUDIO_CHANNELS} ! audiorate skip-to-first=true ! {aenc} bitrate={AUDIO_BITRATE} ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw ! appsink name=a sync=false async=false max-buffers=64\n"
            );
        }
        tracing::debug!(%desc, "ladder pipeline");
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| format!("pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_owned())?;
        let origin_ns = Arc::new(std::sync::atomic::AtomicI64::new(match capture {
            // Running time + PAD_NS - origin = media time: running time 0 is `origin_ms`.
            Some((spec, _)) => PAD_NS.saturating_add((spec.origin_ms as i64).saturating_mul(1_000_000)),
            None => 0,
        }));
        let mut sinks: Vec<SinkState> = rungs.iter().map(|r| SinkState { rung: Some(*r), config: None }).collect();
        if audio.is_some() {
            sinks.push(SinkState { rung: None, config: None });
        }
        let counters = Arc::new(Mutex::new(
            sinks.iter().map(|s| Counters { rung: s.rung, ..Default::default() }).collect::<Vec<_>>(),
        ));
        let collector = Arc::new(Mutex::new(Collector {
            sinks,
            announced: false,
            pending: Vec::new(),
            out: out.clone(),
            origin_ns: origin_ns.clone(),
            counters: counters.clone(),
        }));
        let mut sink_names: Vec<String> = (0..rungs.len()).map(|i| format!("v{i}")).collect();
        if audio.is_some() {
            sink_names.push("a".into());
        }
        for (i, name) in sink_names.iter().enumerate() {
            let sink = pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| format!("no appsink {name}"))?;
            let c = collector.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        c.lock().map_err(|_| gst::FlowError::Error)?.sample(i, &sample)?;
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        let src = |name: &str, caps: gst::Caps| -> Result<gst_app::AppSrc, String> {
            let s = pipeline
                .by_name(name)
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                .ok_or_else(|| format!("no appsrc {name}"))?;
            s.set_caps(Some(&caps));
            Ok(s)
        };
        let video_src = match video {
            Some(v) => {
                let (media, format) =
                    if v.codec == Codec::H265 { ("video/x-h265", "hvc1") } else { ("video/x-h264", "avc") };
                let caps = gst::Caps::builder(media)
                    .field("stream-format", format)
                    .field("alignment", "au")
                    .field("codec_data", gst::Buffer::from_slice(v.config.to_vec()))
                    .build();
                Some((v.id, v.timescale.max(1), src("vsrc", caps)?))
            }
            None => None,
        };
        let audio_src = match audio {
            Some(a) => {
                let caps = gst::Caps::builder("audio/mpeg")
                    .field("mpegversion", 4i32)
                    .field("stream-format", "raw")
                    .field("codec_data", gst::Buffer::from_slice(a.config.to_vec()))
                    .build();
                Some((a.id, a.timescale.max(1), src("asrc", caps)?))
            }
            None => None,
        };
        let rate = pipeline.by_name("rate");
        let drained = Arc::new(AtomicBool::new(false));
        let drained2 = drained.clone();
        // Bus messages become typed events.
        let bus = pipeline.bus().ok_or("no bus")?;
        let bus_stop = Arc::new(AtomicBool::new(false));
        let stop = bus_stop.clone();
        let bus_out = out.clone();
        let bus_thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else { continue };
                let ev = bus_event(&msg);
                let end = matches!(ev, Some(WorkerEvent::Drained) | Some(WorkerEvent::Error { .. }));
                if matches!(ev, Some(WorkerEvent::Drained)) {
                    drained2.store(true, Ordering::Relaxed);
                }
                if let Some(ev) = ev
                    && bus_out.send(Msg::Event(ev)).is_err()
                {
                    return;
                }
                if end {
                    return;
                }
            }
        });
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the pipeline: {e}"))?;
        let _ = out.send(Msg::Event(WorkerEvent::Started {
            encoder: choice.element.to_owned(),
            reason: choice.reason.clone(),
            renditions: rungs.iter().map(|r| (r.width, r.height, r.bitrate)).collect(),
            input: capture
                .map(|(spec, sel)| {
                    format!(
                        "{} {}x{} at {}/{} fps from {}",
                        sel.format.label(),
                        sel.width,
                        sel.height,
                        sel.rate.num,
                        sel.rate.den,
                        spec.path
                    )
                })
                .unwrap_or_default(),
        }));
        Ok(Ladder {
            pipeline,
            video: video_src,
            audio: audio_src,
            origin_ns,
            origin_set: capture.is_some(),
            stats: StatsSource {
                counters,
                input_frames: Default::default(),
                rate,
                started: Instant::now(),
                encoder: choice.element.to_owned(),
            },
            drained,
            bus_stop,
            bus_thread: Some(bus_thread),
        })
    }

    /// Pushes one input unit (blocks while the pipeline's input queue is full: back-pressure to the
    /// supervisor, whose bounded queue then drops and counts).
    pub fn push(&mut self, u: WireUnit) -> Result<(), String> {
        let (timescale, src, video) = match (&self.video, &self.audio) {
            (Some((id, ts, s)), _) if *id == u.track => (*ts, s, true),
            (_, Some((id, ts, s))) if *id == u.track => (*ts, s, false),
            _ => return Ok(()),
        };
        let ns = |t: i64| (i128::from(t) * 1_000_000_000 / i128::from(timescale)) as i64;
        if !self.origin_set {
            self.origin_ns.store(ns(u.dts), Ordering::Relaxed);
            self.origin_set = true;
        }
        let origin = self.origin_ns.load(Ordering::Relaxed);
        let run = |t: i64| ns(t) - origin + PAD_NS;
        let (dts, pts) = (run(u.dts), run(u.pts));
        if dts < 0 || pts < 0 {
            return Ok(()); // far before the origin: cannot be placed
        }
        let mut buf = gst::Buffer::from_slice(u.data);
        {
            let b = buf.get_mut().expect("fresh buffer");
            b.set_pts(gst::ClockTime::from_nseconds(pts as u64));
            b.set_dts(gst::ClockTime::from_nseconds(dts as u64));
            if !u.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        if video {
            self.stats.input_frames.fetch_add(1, Ordering::Relaxed);
        }
        src.push_buffer(buf).map(|_| ()).map_err(|e| format!("push: {e:?}"))
    }

    /// Ends the input: what is queued is encoded and delivered (the bus reports `Drained`).
    pub fn end_input(&self) {
        for (_, _, s) in self.video.iter().chain(self.audio.iter()) {
            let _ = s.end_of_stream();
        }
    }

    /// Whether everything was delivered after [`Ladder::end_input`].
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// A handle that reads the statistics from another thread.
    pub fn stats_source(&self) -> StatsSource {
        self.stats.clone()
    }
}

/// Reads a ladder's numbers (cloneable, for the worker's heartbeat thread).
#[derive(Clone)]
pub struct StatsSource {
    counters: Arc<Mutex<Vec<Counters>>>,
    input_frames: Arc<AtomicU64>,
    rate: Option<gst::Element>,
    started: Instant,
    encoder: String,
}

impl StatsSource {
    pub fn stats(&self) -> WorkerStats {
        let c = self.counters.lock().expect("poisoned").clone();
        let renditions = c
            .iter()
            .enumerate()
            .map(|(i, s)| RenditionStats {
                track: i as u32 + 1,
                width: s.rung.map_or(0, |r| r.width),
                height: s.rung.map_or(0, |r| r.height),
                target_bitrate: s.rung.map_or(AUDIO_BITRATE, |r| r.bitrate),
                frames: s.frames,
                bytes: s.bytes,
            })
            .collect();
        let media_ns = c.first().and_then(|s| Some(s.last_pts? - s.first_pts?)).unwrap_or(0);
        let dropped = self.rate.as_ref().map_or(0, |r| r.property::<u64>("drop"));
        WorkerStats {
            encoder: self.encoder.clone(),
            renditions,
            input_frames: self.input_frames.load(Ordering::Relaxed),
            dropped_frames: dropped,
            media_secs: media_ns as f64 / 1e9,
            wall_secs: self.started.elapsed().as_secs_f64(),
        }
    }
}

impl Drop for Ladder {
    fn drop(&mut self) {
        self.bus_stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(t) = self.bus_thread.take() {
            let _ = t.join();
        }
    }
}

fn bus_event(msg: &gst::Message) -> Option<WorkerEvent> {
    use gst::MessageView;
    let source = || msg.src().map(|s| s.path_string().to_string()).unwrap_or_default();
    match msg.view() {
        MessageView::Error(e) => Some(WorkerEvent::Error {
            source: source(),
            message: format!("{} ({})", e.error(), e.debug().map(|d| d.to_string()).unwrap_or_default()),
        }),
        MessageView::Warning(w) => Some(WorkerEvent::Warning { source: source(), message: w.error().to_string() }),
        MessageView::Eos(_) => Some(WorkerEvent::Drained),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rung_is_scaled_from_the_one_above_and_feeds_its_own_sink() {
        let rungs = crate::ladder::select(crate::ladder::Preset::Default720p, 1920, 1080);
        let lines = ladder_branches(&rungs, |r| format!("enc{}", r.height));
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("t. ! queue") && lines[0].contains("width=1280,height=720"));
        assert!(lines[0].contains("tee name=r0"));
        assert!(lines[1].starts_with("r0. ! queue") && lines[1].contains("width=960,height=540"));
        assert!(lines[1].contains("tee name=r1"));
        assert!(lines[3].starts_with("r2. ! queue") && lines[3].contains("width=512,height=288"));
        assert!(!lines[3].contains("tee"));
        for (i, l) in lines.iter().enumerate() {
            assert!(l.contains(&format!("enc{} !", rungs[i].height)), "{l}");
            assert!(l.ends_with(&format!("appsink name=v{i} sync=false async=false max-buffers=16\n")), "{l}");
        }
        // One rung (a small input): no tee at all.
        let one = ladder_branches(&crate::ladder::select(crate::ladder::Preset::Default720p, 320, 240), |_| "e".into());
        assert_eq!(one.len(), 1);
        assert!(!one[0].contains("tee"));
    }
}
