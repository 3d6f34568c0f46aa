//! One pipeline per Running live event: media events in (from whichever publisher is
//! connected), CMAF out, recorded into the assets of the event's live outputs, and folded into
//! the live presentation that delivery serves.
//!
//! The pipeline outlives publishers: an encoder that drops and reconnects continues the same
//! timeline in a new period (a discontinuity), and the event's numbering never goes back.
//! Order of every step is the crash-safety order (docs/crash-safety.md): a segment reaches the
//! live presentation only after its file and index row are durable, so whatever a player was
//! shown survives a power cut.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use edge_cmaf::{
    InitSegment, MediaSegment, MediaTime, Output, Packager, PackagerConfig, Presentation, RenditionResume, ResumeState,
};
use edge_db::{Db, PeriodRow, RecordingRow, RenditionRow, SegmentRow, StreamEventRow};
use edge_media::{MediaReceiver, MediaSender, TrackKind};
use edge_model::Timestamp;
use edge_record::Recorder;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

/// Units queued between a publisher and its event's pipeline (about 8 s of 60 fps video plus
/// audio): enough to ride out a slow fsync, bounded so a stuck disk cannot eat the memory.
pub const QUEUE_CAPACITY: usize = 1024;

/// The live window kept in memory when no live output says otherwise.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 60);

/// Low latency: the part target of `LowLatency` / `LowLatencyV2` events (`ll-part-target-ms`),
/// in milliseconds.
static PART_TARGET_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_PART_TARGET_MS);

/// The default part target: ten frames at 30 fps, three part targets of hold-back = 1 s.
pub const DEFAULT_PART_TARGET_MS: u64 = 334;

/// Sets the part target of low-latency events started from now on (the configuration's
/// `ll-part-target-ms`; clamped to 100 ms – 2 s).
pub fn set_part_target(ms: u64) {
    PART_TARGET_MS.store(ms.clamp(100, 2000), std::sync::atomic::Ordering::Relaxed);
}

/// The part target of an event: `Some` when its `streamOptions` ask for low latency.
fn low_latency(db: &Db, cfg: &PipelineConfig) -> Option<Duration> {
    let ev = match db.live_event(&cfg.event_name.to_ascii_lowercase()) {
        Ok(Some(ev)) if ev.id == cfg.event_id => ev,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(event = %cfg.event_name, "cannot read the stream options: {e}");
            return None;
        }
    };
    let options = ev.properties["streamOptions"].as_array().cloned().unwrap_or_default();
    options
        .iter()
        .any(|o| o == "LowLatency" || o == "LowLatencyV2")
        .then(|| Duration::from_millis(PART_TARGET_MS.load(std::sync::atomic::Ordering::Relaxed)))
}

/// Low latency: the bytes of the newest parts, in memory only (the recording holds whole
/// segments). Bounded: the parts of the newest [`edge_cmaf::PART_SEGMENTS`]
/// segments and the open one, per rendition.
#[derive(Default)]
struct PartStore {
    by_rendition: HashMap<String, std::collections::VecDeque<(u64, u32, bytes::Bytes)>>,
}

impl PartStore {
    fn insert(&mut self, rendition: &str, seq: u64, index: u32, data: bytes::Bytes) {
        let q = self.by_rendition.entry(rendition.to_owned()).or_default();
        q.push_back((seq, index, data));
        let keep_from = seq.saturating_sub(edge_cmaf::PART_SEGMENTS);
        while q.front().is_some_and(|(s, _, _)| *s < keep_from) {
            q.pop_front();
        }
    }
}

/// Where a rendition's live edge stands, for blocking playlist reloads and part requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LivePosition {
    /// The newest complete segment.
    pub last_seq: Option<u64>,
    /// The newest part (segment seq, index).
    pub last_part: Option<(u64, u32)>,
}

/// Where an asset's recording begins in the event's timeline.
#[derive(Debug, Clone, Default)]
struct Attachment {
    /// First recorded seq per rendition (absent: nothing of that rendition recorded yet).
    first_seq: HashMap<String, u64>,
    /// Media time (seconds) from which this asset records; `None` for assets that were
    /// already recorded before this pipeline started (everything in the presentation is theirs).
    from_secs: Option<f64>,
    /// (rendition, period) init segments written.
    inits: HashSet<(String, u32)>,
    /// Periods recorded.
    periods: HashSet<u32>,
    /// The asset's live window (rewind window, else archive window).
    window: Duration,
}

/// What delivery reads: the event's live presentation and which part belongs to which asset.
pub struct EventMedia {
    /// Milliseconds since `epoch` of the last handled event: the watchdog's view of this
    /// pipeline's progress.
    progress_ms: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    presentation: RwLock<Presentation>,
    attached: RwLock<HashMap<String, Attachment>>,
    version: watch::Sender<u64>,
    /// Low latency: the part target (`None`: a normal event) and the newest parts.
    part_target: Option<Duration>,
    parts: RwLock<PartStore>,
    /// The video going into the packager: frame rate, keyframe interval, newest keyframe.
    meter: std::sync::Mutex<crate::meter::VideoMeter>,
}

impl EventMedia {
    /// How long ago the pipeline last handled an event.
    pub fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.progress_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Bumped after every change; `subscribe` to wait for the next segment.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The part target of a low-latency event.
    pub fn part_target(&self) -> Option<Duration> {
        self.part_target
    }

    /// The nominal segment duration.
    pub fn target_duration(&self) -> Duration {
        self.presentation.read().expect("poisoned").target_duration
    }

    /// A part's bytes, while it is among the newest.
    pub fn part(&self, rendition: &str, seq: u64, index: u32) -> Option<bytes::Bytes> {
        let store = self.parts.read().expect("poisoned");
        let q = store.by_rendition.get(rendition)?;
        q.iter().rev().find(|(s, i, _)| *s == seq && *i == index).map(|(_, _, d)| d.clone())
    }

    /// The parts of a segment held in memory, in order, and whether the segment is complete.
    pub fn segment_parts(&self, rendition: &str, seq: u64) -> (Vec<bytes::Bytes>, bool) {
        let complete = self.position(rendition).last_seq.is_some_and(|l| l >= seq);
        let store = self.parts.read().expect("poisoned");
        let parts = store
            .by_rendition
            .get(rendition)
            .map(|q| q.iter().filter(|(s, _, _)| *s == seq).map(|(_, _, d)| d.clone()).collect())
            .unwrap_or_default();
        (parts, complete)
    }

    /// Where a rendition's live edge stands (nothing for an unknown rendition).
    pub fn position(&self, rendition: &str) -> LivePosition {
        let p = self.presentation.read().expect("poisoned");
        p.tracks
            .get(rendition)
            .map(|l| LivePosition { last_seq: l.last_seq(), last_part: l.last_part() })
            .unwrap_or_default()
    }

    /// Whether the live manifests have something to play.
    /// The video input as measured (frame rate, keyframe interval, size).
    pub fn video_input(&self) -> Option<crate::meter::VideoInput> {
        self.meter.lock().expect("poisoned").reading()
    }

    /// The newest keyframe of the event's (first) video track: its thumbnail.
    pub fn keyframe(&self) -> Option<crate::meter::Keyframe> {
        self.meter.lock().expect("poisoned").keyframe()
    }

    pub fn is_ready(&self) -> bool {
        self.presentation.read().expect("poisoned").is_ready()
    }

    /// Whether this asset is being recorded by this event.
    pub fn records(&self, asset_id: &str) -> bool {
        self.attached.read().expect("poisoned").contains_key(asset_id)
    }

    /// The live presentation of one asset: the event's, from where the asset started
    /// recording, over the asset's live window.
    pub fn asset_view(&self, asset_id: &str) -> Option<Presentation> {
        let a = self.attached.read().expect("poisoned").get(asset_id)?.clone();
        let mut p = self.presentation.read().expect("poisoned").clone();
        p.window = a.window;
        if a.from_secs.is_some() {
            for (rendition, log) in p.tracks.iter_mut() {
                match a.first_seq.get(rendition) {
                    Some(first) => log.segments.retain(|s| s.seq >= *first),
                    None => log.segments.clear(),
                }
            }
            let first_period = p.tracks.values().filter_map(|l| l.segments.front()).map(|s| s.period).min();
            if let Some(fp) = first_period {
                p.periods.retain(|per| per.id >= fp);
            }
        }
        p.trim_to_window();
        Some(p)
    }
}

pub struct PipelineConfig {
    pub event_id: String,
    pub event_name: String,
    /// `keyFrameIntervalDuration`, the segment target.
    pub key_frame_interval: Option<Duration>,
    /// A stage between the publishers and the packager (the transcoder of an encoding event).
    pub front: Option<FrontFactory>,
}

/// A media stage in front of the packager: it consumes what publishers send and feeds the
/// packager's inlet (e.g. the ABR transcoder). It runs until dropped.
pub trait FrontStage: Send + Sync {
    /// Lines for getStatus's health descriptions and extra per-track rows (its outputs).
    fn status(&self) -> (Vec<String>, Vec<crate::TrackStatus>, Option<serde_json::Value>);
}

/// Builds a front stage from the packager's inlet; returns the inlet publishers send to.
pub type FrontFactory = Box<dyn FnOnce(MediaSender) -> (MediaSender, Box<dyn FrontStage>) + Send>;

/// Handle of a running pipeline.
pub struct PipelineHandle {
    inlet: MediaSender,
    /// The front stage, if any (`inlet` is then its input).
    pub front: Option<Box<dyn FrontStage>>,
    pub media: Arc<EventMedia>,
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<()>,
}

impl PipelineHandle {
    /// A pipeline with media waiting that has not made progress for `limit`: stuck (a hung
    /// disk, a deadlock). An idle pipeline (no publisher) is not stuck.
    pub fn is_stuck(&self, limit: Duration) -> bool {
        self.inlet.pending() > 0 && self.media.since_progress() > limit
    }

    /// A sender for the next publisher session.
    pub fn sender(&self) -> MediaSender {
        self.inlet.reattach()
    }

    /// Stops the pipeline: open segments are closed and recorded before this returns.
    pub async fn finish(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        drop(self.inlet);
        drop(self.front.take());
        if tokio::time::timeout(Duration::from_secs(30), &mut self.join).await.is_err() {
            tracing::error!("a live pipeline did not finish within 30 s; abandoning it");
            self.join.abort();
        }
    }
}

struct Pipeline {
    cfg: PipelineConfig,
    db: Arc<Db>,
    recorder: Recorder,
    packager: Packager,
    media: Arc<EventMedia>,
    /// Latest init segment per (rendition, period).
    inits: HashMap<(String, u32), InitSegment>,
    target: Duration,
    /// Assets whose recording is failing, with the kind of error last reported: a failure is
    /// reported once when it starts (or turns into another kind) and once when recording
    /// resumes, not at every segment (its message may change every time, e.g. the free space).
    failing: HashMap<String, std::mem::Discriminant<edge_record::RecordError>>,
}

/// Starts the pipeline of an event. Assets its live outputs already recorded into (a restart
/// while Running) are resumed: numbering and timeline continue after their last segment.
pub fn spawn(mut cfg: PipelineConfig, db: Arc<Db>, recorder: Recorder) -> Result<PipelineHandle, edge_db::DbError> {
    let mut pcfg = PackagerConfig::with_target(cfg.key_frame_interval);
    let part_target = low_latency(&db, &cfg);
    pcfg.part_target = part_target;
    let target = pcfg.target_segment;
    let mut presentation = None;
    let mut resume = ResumeState::default();
    let mut attached = HashMap::new();
    for (asset_id, _) in db.event_output_assets(&cfg.event_id)? {
        let window = asset_window(&db, &asset_id)?;
        let mut a = Attachment { window, ..Default::default() };
        if db.asset_has_recording(&asset_id)? {
            for t in db.recording_tails(&asset_id)? {
                resume.next_period = resume.next_period.max(t.last_period as u32 + 1);
                let end = MediaTime::new(t.end.max(0) as u64, t.timescale.max(1) as u32);
                match resume.renditions.iter_mut().find(|r| r.id == t.rendition) {
                    Some(r) => {
                        r.next_seq = r.next_seq.max(t.next_seq as u64);
                        r.end = r.end.max(end);
                    }
                    None => resume.renditions.push(RenditionResume {
                        id: t.rendition.clone(),
                        next_seq: t.next_seq as u64,
                        end,
                    }),
                }
                a.first_seq.insert(t.rendition.clone(), 0);
            }
            for r in db.renditions(&asset_id)? {
                a.inits.insert((r.rendition, r.period as u32));
                a.periods.insert(r.period as u32);
            }
            if presentation.is_none() {
                presentation = crate::presentation::from_index(&db, &asset_id, true, window)?;
            }
        } else {
            a.from_secs = Some(0.0);
        }
        attached.insert(asset_id, a);
    }
    let resumed = !resume.renditions.is_empty();
    let packager = if resumed { Packager::resume(pcfg, resume) } else { Packager::new(pcfg) };
    let mut presentation =
        presentation.unwrap_or_else(|| Presentation::new(true, OffsetDateTime::now_utc(), DEFAULT_WINDOW, target));
    presentation.part_target = part_target;
    let (version, _) = watch::channel(0);
    let media = Arc::new(EventMedia {
        progress_ms: Default::default(),
        epoch: std::time::Instant::now(),
        presentation: RwLock::new(presentation),
        attached: RwLock::new(attached),
        version,
        part_target,
        parts: RwLock::new(PartStore::default()),
        meter: Default::default(),
    });
    let (inlet, rx, _stats) = edge_media::queue(QUEUE_CAPACITY);
    let front_factory = cfg.front.take();
    let (inlet, front) = match front_factory {
        Some(f) => {
            let (i, stage) = f(inlet);
            (i, Some(stage))
        }
        None => (inlet, None),
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    if resumed {
        tracing::info!(event = %cfg.event_name, "live pipeline resumed after a restart: the recording continues");
    }
    let pipeline = Pipeline {
        cfg,
        db,
        recorder,
        packager,
        media: media.clone(),
        inits: HashMap::new(),
        target,
        failing: HashMap::new(),
    };
    let join = tokio::spawn(pipeline.run(rx, stop_rx));
    Ok(PipelineHandle { inlet, front, media, stop: Some(stop_tx), join })
}

fn asset_window(db: &Db, asset_id: &str) -> Result<Duration, edge_db::DbError> {
    Ok(match db.asset_live_info(asset_id)? {
        Some(i) => Duration::from_millis(i.rewind_window_ms.unwrap_or(i.archive_window_ms).max(60_000) as u64),
        None => DEFAULT_WINDOW,
    })
}

fn secs(t: u64, timescale: u32) -> f64 {
    t as f64 / f64::from(timescale.max(1))
}

impl Pipeline {
    async fn run(mut self, mut rx: MediaReceiver, mut stop: oneshot::Receiver<()>) {
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = &mut stop => None,
            };
            let Some(ev) = ev else { break };
            self.media.meter.lock().expect("poisoned").observe(&ev);
            // A publisher's End is the end of its session, not of the event: close the open
            // segments now (the next publisher starts a new period).
            let outs = self.packager.push(ev);
            self.handle(outs);
            let ms = self.media.epoch.elapsed().as_millis() as u64;
            self.media.progress_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
        }
        let outs = self.packager.flush();
        self.handle(outs);
        tracing::info!(event = %self.cfg.event_name, "live pipeline finished");
    }

    fn handle(&mut self, outs: Vec<Output>) {
        if outs.is_empty() {
            return;
        }
        // File IO and fsync: keep them off the async worker's hot loop.
        tokio::task::block_in_place(|| self.handle_blocking(outs));
    }

    fn handle_blocking(&mut self, outs: Vec<Output>) {
        let now = OffsetDateTime::now_utc();
        let mut segments = Vec::new();
        for out in outs {
            match &out {
                Output::Init(init) => {
                    let seen_before = self.inits.keys().any(|(r, p)| *r == init.rendition.id && *p < init.period);
                    if seen_before {
                        self.stream_event(
                            "StreamEvent/Discontinuity",
                            "Warning",
                            json!({
                                "trackName": init.rendition.id,
                                "mediaType": init.rendition.kind.as_str(),
                                "resultMessage": format!("The input restarted (encoder reconnect or new parameters): period {} begins; players see a discontinuity.", init.period),
                            }),
                        );
                    }
                    self.inits.insert((init.rendition.id.clone(), init.period), init.clone());
                    self.media.presentation.write().expect("poisoned").apply(&out, now);
                }
                Output::Segment(seg) => segments.push(seg.clone()),
                // Low latency: in memory only, listed at once (its segment is recorded whole).
                Output::Part(part) => {
                    self.media.parts.write().expect("poisoned").insert(
                        &part.rendition_id,
                        part.seq,
                        part.index,
                        part.data.clone(),
                    );
                    self.media.presentation.write().expect("poisoned").apply(&out, now);
                }
                Output::LongGop(g) => self.stream_event(
                    "StreamEvent/UnalignedKeyFrames",
                    "Warning",
                    json!({
                        "trackId": g.track_id,
                        "resultMessage": format!(
                            "The encoder's keyframe interval ({:.1} s) is longer than the segment target ({:.1} s): segments follow the GOP, so latency and rewind granularity grow. Set the encoder's keyframe interval to {:.0} s.",
                            g.gop.as_secs_f64(), g.target.as_secs_f64(), g.target.as_secs_f64()
                        ),
                    }),
                ),
                Output::Rejected { track_id, reason } => {
                    tracing::warn!(event = %self.cfg.event_name, track_id, %reason, "track rejected by the packager");
                    self.stream_event("StreamEvent/TrackRejected", "Error", json!({"trackId": track_id, "resultMessage": reason}));
                }
            }
        }
        if segments.is_empty() {
            self.bump();
            return;
        }
        self.sync_attachments(&segments);
        let assets: Vec<String> = self.media.attached.read().expect("poisoned").keys().cloned().collect();
        for asset in assets {
            match self.record(&asset, &segments) {
                Err(e) => {
                    let kind = std::mem::discriminant(&e);
                    if self.failing.get(&asset) != Some(&kind) {
                        tracing::error!(event = %self.cfg.event_name, asset = %asset, "recording failed: {e}");
                        self.stream_event(
                            "StreamEvent/RecordingError",
                            "Error",
                            json!({"resultMessage": e.to_string()}),
                        );
                        self.failing.insert(asset, kind);
                    }
                }
                Ok(()) => {
                    if self.failing.remove(&asset).is_some() {
                        tracing::info!(event = %self.cfg.event_name, asset = %asset, "recording resumed");
                        self.stream_event(
                            "StreamEvent/RecordingResumed",
                            "Information",
                            json!({"resultMessage": "Recording resumed: segments are written again."}),
                        );
                    }
                }
            }
        }
        {
            let mut p = self.media.presentation.write().expect("poisoned");
            for seg in &segments {
                p.apply(&Output::Segment(seg.clone()), now);
            }
            let window = self.media.attached.read().expect("poisoned").values().map(|a| a.window).max();
            p.window = window.unwrap_or(DEFAULT_WINDOW);
            p.trim_to_window();
        }
        self.bump();
    }

    fn bump(&self) {
        self.media.version.send_modify(|v| *v += 1);
    }

    /// Attaches the assets of newly created live outputs and detaches deleted ones.
    fn sync_attachments(&mut self, batch: &[MediaSegment]) {
        let current = match self.db.event_output_assets(&self.cfg.event_id) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(event = %self.cfg.event_name, "cannot read live outputs: {e}");
                return;
            }
        };
        let ids: HashSet<&String> = current.iter().map(|(a, _)| a).collect();
        let mut attached = self.media.attached.write().expect("poisoned");
        attached.retain(|a, _| ids.contains(a));
        // Recording of a new asset begins at this cut point: the video segment's start (audio
        // is cut at the same instant), or the earliest segment of an audio-only stream.
        let video = batch.iter().find(|s| self.kind(s) == Some(TrackKind::Video));
        let from = video.or(batch.first()).map(|s| secs(s.start, s.timescale));
        for (asset, output) in current {
            if attached.contains_key(&asset) {
                continue;
            }
            let window = asset_window(&self.db, &asset).unwrap_or(DEFAULT_WINDOW);
            tracing::info!(event = %self.cfg.event_name, output = %output, asset = %asset, "recording starts into the asset");
            attached.insert(asset, Attachment { from_secs: from, window, ..Default::default() });
        }
    }

    fn kind(&self, seg: &MediaSegment) -> Option<TrackKind> {
        self.inits.get(&(seg.rendition_id.clone(), seg.period)).map(|i| i.rendition.kind)
    }

    fn record(&self, asset: &str, batch: &[MediaSegment]) -> Result<(), edge_record::RecordError> {
        // Work on a copy: file IO and fsync happen without holding the lock delivery reads.
        let Some(mut copy) = self.media.attached.read().expect("poisoned").get(asset).cloned() else { return Ok(()) };
        let result = self.record_into(asset, &mut copy, batch);
        if let Some(a) = self.media.attached.write().expect("poisoned").get_mut(asset) {
            a.first_seq = copy.first_seq;
            a.inits = copy.inits;
            a.periods = copy.periods;
        }
        result
    }

    fn record_into(
        &self,
        asset: &str,
        a: &mut Attachment,
        batch: &[MediaSegment],
    ) -> Result<(), edge_record::RecordError> {
        let half_target = self.target.as_secs_f64() / 2.0;
        let mut rows = Vec::new();
        for seg in batch {
            if !a.first_seq.contains_key(&seg.rendition_id) {
                let starts_late_enough =
                    a.from_secs.is_none_or(|from| secs(seg.start, seg.timescale) + half_target >= from);
                if !starts_late_enough {
                    continue;
                }
                a.first_seq.insert(seg.rendition_id.clone(), seg.seq);
            }
            if !a.inits.contains(&(seg.rendition_id.clone(), seg.period)) {
                self.write_init(asset, a, &seg.rendition_id, seg.period)?;
            }
            let p = self.media.presentation.read().expect("poisoned");
            let wallclock = p
                .period(seg.period)
                .map(|per| {
                    let pto = per.media_start.rescale_ceil(seg.timescale);
                    p.availability_start
                        + per.start
                        + edge_cmaf::MediaTime::new(seg.start.saturating_sub(pto), seg.timescale).as_duration()
                })
                .unwrap_or_else(OffsetDateTime::now_utc);
            drop(p);
            rows.push((
                SegmentRow {
                    asset_id: asset.to_owned(),
                    rendition: seg.rendition_id.clone(),
                    seq: seg.seq as i64,
                    period: i64::from(seg.period),
                    start: seg.start as i64,
                    duration: seg.duration as i64,
                    size: seg.data.len() as i64,
                    independent: seg.independent,
                    wallclock: Timestamp(wallclock),
                },
                seg.data.clone(),
            ));
        }
        if !rows.is_empty() {
            self.recorder.write_segments(&rows)?;
        }
        Ok(())
    }

    fn write_init(
        &self,
        asset: &str,
        a: &mut Attachment,
        rendition: &str,
        period: u32,
    ) -> Result<(), edge_record::RecordError> {
        let Some(init) = self.inits.get(&(rendition.to_owned(), period)) else {
            tracing::warn!(asset, rendition, period, "no init segment to record");
            return Ok(());
        };
        let p = self.media.presentation.read().expect("poisoned");
        self.db.recording_ensure(&RecordingRow {
            asset_id: asset.to_owned(),
            availability_start: Timestamp(p.availability_start),
            target_duration_ms: self.target.as_millis() as i64,
        })?;
        let live_start_ms = p.period(period).map(|per| per.start.as_millis() as i64).unwrap_or(0);
        drop(p);
        let r = &init.rendition;
        let (fr_num, fr_den) = r.frame_rate.map(|f| (i64::from(f.num), i64::from(f.den))).unwrap_or((0, 1));
        self.recorder.write_init(
            &PeriodRow {
                asset_id: asset.to_owned(),
                period: i64::from(period),
                media_start: init.period_start.ticks as i64,
                media_timescale: i64::from(init.period_start.timescale),
                live_start_ms,
            },
            &RenditionRow {
                asset_id: asset.to_owned(),
                rendition: r.id.clone(),
                period: i64::from(period),
                track_id: i64::from(r.track_id),
                kind: r.kind.as_str().to_owned(),
                codec: r.codec.clone(),
                timescale: i64::from(r.timescale),
                bandwidth: i64::from(r.bandwidth),
                average_bandwidth: i64::from(r.average_bandwidth),
                width: i64::from(r.width),
                height: i64::from(r.height),
                frame_rate_num: fr_num,
                frame_rate_den: fr_den,
                sample_rate: i64::from(r.sample_rate),
                channels: i64::from(r.channels),
                created: Timestamp::now(),
            },
            &init.data,
        )?;
        a.inits.insert((rendition.to_owned(), period));
        a.periods.insert(period);
        Ok(())
    }

    fn stream_event(&self, event_type: &str, level: &str, data: serde_json::Value) {
        let row =
            StreamEventRow { time: Timestamp::now(), event_type: event_type.to_owned(), level: level.to_owned(), data };
        if let Err(e) = self.db.stream_event_append(&self.cfg.event_id, &row, 1000) {
            tracing::warn!(event = %self.cfg.event_name, "cannot record a stream event: {e}");
        }
    }
}
