//! The CMAF packager: media events in, init and media segments out. Sans-IO: no clocks (media
//! time only), no files, no tasks.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use edge_media::{AccessUnit, Codec, MediaEvent, Track, TrackKind};

use crate::boxes::{self, FLAGS_NON_SYNC, FLAGS_SYNC, SampleOut};
use crate::codec;
use crate::presentation::Rendition;
use crate::time::{MediaTime, duration_to_ticks, ticks_to_duration};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Aimed segment duration: a video segment is cut at the first keyframe once it is this
    /// long (within 5 %, so that a 2 s GOP with millisecond timestamps still cuts every GOP).
    pub target_segment: Duration,
    /// Hard cap: a video segment is cut here even without a keyframe (the next segment is then
    /// not independent). Bounds memory for encoders that never send keyframes.
    pub max_segment: Duration,
    /// Rendition ids by track id. Tracks not listed get `video` / `audio` (the first of each
    /// kind) or `{kind}_{track_id}`.
    pub rendition_ids: Vec<(u32, String)>,
    /// Low latency: also emit each segment as CMAF partial segments ([`Output::Part`]) of at
    /// most this duration, cut at sample boundaries and at every keyframe. `None`: whole
    /// segments only (the normal mode).
    pub part_target: Option<Duration>,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        PackagerConfig {
            target_segment: Duration::from_secs(2),
            max_segment: Duration::from_secs(30),
            rendition_ids: Vec::new(),
            part_target: None,
        }
    }
}

impl PackagerConfig {
    /// The live event's `keyFrameIntervalDuration` if it has one, else 2 s.
    pub fn with_target(key_frame_interval: Option<Duration>) -> Self {
        let mut cfg = PackagerConfig::default();
        if let Some(t) = key_frame_interval.filter(|t| !t.is_zero()) {
            cfg.target_segment = t;
            cfg.max_segment = cfg.max_segment.max(t * 4);
        }
        cfg
    }
}

/// Where each rendition's timeline stands, to continue numbering after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeState {
    /// The id the next period gets.
    pub next_period: u32,
    pub renditions: Vec<RenditionResume>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionResume {
    pub id: String,
    /// The seq the next segment gets.
    pub next_seq: u64,
    /// The end of the last segment.
    pub end: MediaTime,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The init segment of a track for a period (`{rendition}/init-{period}.mp4`). Emitted
    /// for every track at the start of every period, before its segments.
    Init(InitSegment),
    /// A finished media segment (`{rendition}/{seq}.m4s`). In low-latency mode its data is
    /// exactly its parts' data concatenated, and it follows its last part.
    Segment(MediaSegment),
    /// Low latency: a partial segment (`{rendition}/{seq}.{index}.m4s`) of the segment `seq`
    /// still being written: moof + mdat (the first part of a segment starts with styp).
    Part(MediaPart),
    /// A video GOP longer than the target: segments follow the GOP, so they are longer
    /// than asked. Emitted when such a GOP first ends (again only after a normal one).
    LongGop(LongGop),
    /// A track that cannot be packaged (bad decoder configuration); its units are dropped.
    Rejected { track_id: u32, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InitSegment {
    pub track_id: u32,
    pub period: u32,
    /// The period's start on the continuous media timeline (common to all its tracks; each
    /// track starts at this instant in its timescale, rounded up).
    pub period_start: MediaTime,
    pub rendition: Rendition,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaSegment {
    pub track_id: u32,
    pub rendition_id: String,
    pub period: u32,
    /// Per rendition, +1 per segment, across periods.
    pub seq: u64,
    /// baseMediaDecodeTime in `timescale`; never goes backwards per rendition.
    pub start: u64,
    pub duration: u64,
    pub timescale: u32,
    /// Starts with a keyframe (always true for audio).
    pub independent: bool,
    /// Number of samples (frames) in it.
    pub samples: u32,
    pub data: Bytes,
}

/// A CMAF chunk of an open segment, as soon as its samples are complete.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPart {
    pub track_id: u32,
    pub rendition_id: String,
    pub period: u32,
    /// The segment it belongs to.
    pub seq: u64,
    /// 0, 1, … within the segment.
    pub index: u32,
    /// baseMediaDecodeTime in `timescale`.
    pub start: u64,
    pub duration: u64,
    pub timescale: u32,
    /// Starts with a keyframe (HLS `INDEPENDENT=YES`; always true for audio).
    pub independent: bool,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongGop {
    pub track_id: u32,
    pub gop: Duration,
    pub target: Duration,
}

/// See the crate docs.
pub struct Packager {
    cfg: PackagerConfig,
    declared: Vec<Track>,
    /// The open period, if any.
    period: Option<u32>,
    next_period: u32,
    tracks: Vec<TrackState>,
    timelines: HashMap<String, Timeline>,
    /// The earliest PTS of the period as (value, timescale), once the start buffer settled.
    origin: Option<(i64, u32)>,
    /// Units held at a period start until every track has shown up, so that the period's
    /// timeline starts at the earliest of them instead of dropping the others' first frames.
    start_buffer: Vec<AccessUnit>,
    dropped: u64,
}

#[derive(Debug, Clone)]
struct Timeline {
    next_seq: u64,
    end: MediaTime,
    /// Low latency: mfhd sequence number of the next chunk.
    next_fragment: u32,
}

struct TrackState {
    track: Track,
    rendition_id: String,
    ok: bool,
    /// The period start in this track's timescale.
    start: u64,
    /// `out_dts = dts + offset` (set by the track's first unit of the period).
    offset: Option<i64>,
    /// The first unit's PTS - DTS: subtracted from composition offsets so that a period's
    /// first frame is presented at its decode time (CMAF, trun version 1).
    shift: i64,
    /// Video: a keyframe was seen (units before it are undecodable).
    started: bool,
    seen_in_buffer: bool,
    last_dts: Option<u64>,
    /// The last sample-to-sample DTS delta: the last sample's duration at a period's end.
    last_delta: u64,
    open: Option<OpenSegment>,
    /// Audio: media times of video cuts not yet applied.
    cuts: VecDeque<MediaTime>,
    /// Audio of a stream with video: segments are cut where the (primary) video cut.
    follows_video: bool,
    /// The video track whose cuts audio follows.
    primary_video: bool,
    last_key: Option<u64>,
    long_gop: bool,
    target: u64,
    tolerance: u64,
    max: u64,
    /// Low latency: the part target in this track's timescale (0: no parts).
    part: u64,
}

struct OpenSegment {
    start: u64,
    independent: bool,
    samples: Vec<Sample>,
    /// Low latency: the parts emitted so far, and how many samples they hold.
    parts: Vec<Bytes>,
    emitted: usize,
}

impl OpenSegment {
    fn new(start: u64, independent: bool, samples: Vec<Sample>) -> Self {
        OpenSegment { start, independent, samples, parts: Vec::new(), emitted: 0 }
    }
}

struct Sample {
    dts: u64,
    cts: i32,
    key: bool,
    data: Bytes,
}

impl Packager {
    pub fn new(cfg: PackagerConfig) -> Self {
        Packager {
            cfg,
            declared: Vec::new(),
            period: None,
            next_period: 0,
            tracks: Vec::new(),
            timelines: HashMap::new(),
            origin: None,
            start_buffer: Vec::new(),
            dropped: 0,
        }
    }

    /// A packager that continues numbering where a previous one (e.g. before a restart) left.
    pub fn resume(cfg: PackagerConfig, state: ResumeState) -> Self {
        let mut p = Packager::new(cfg);
        p.next_period = state.next_period;
        for r in state.renditions {
            p.timelines.insert(r.id, Timeline { next_seq: r.next_seq, end: r.end, next_fragment: 1 });
        }
        p
    }

    /// The state to pass to [`Packager::resume`] (after [`Packager::flush`], it covers every
    /// segment emitted).
    pub fn resume_state(&self) -> ResumeState {
        let mut renditions: Vec<RenditionResume> = self
            .timelines
            .iter()
            .map(|(id, t)| RenditionResume { id: id.clone(), next_seq: t.next_seq, end: t.end })
            .collect();
        renditions.sort_by(|a, b| a.id.cmp(&b.id));
        ResumeState { next_period: self.next_period, renditions }
    }

    /// Units dropped so far: before a video keyframe, non-monotonic DTS, unknown or rejected
    /// tracks, before any `Tracks`.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The current period, if one is open.
    pub fn period(&self) -> Option<u32> {
        self.period
    }

    pub fn push(&mut self, event: MediaEvent) -> Vec<Output> {
        let mut out = Vec::new();
        match event {
            MediaEvent::Tracks(tracks) => {
                self.close_period(&mut out);
                self.declared = tracks;
                self.open_period(&mut out);
            }
            MediaEvent::Discontinuity => {
                if self.period.is_some() {
                    self.close_period(&mut out);
                    self.open_period(&mut out);
                }
            }
            MediaEvent::Unit(au) => {
                if self.period.is_none() && !self.declared.is_empty() {
                    // Units after a flush continue in a new period with the same tracks.
                    self.open_period(&mut out);
                }
                self.unit(au, &mut out);
            }
            MediaEvent::End => self.close_period(&mut out),
        }
        out
    }

    /// Closes the open segments and the period (as at `End`). A later unit or `Tracks` opens
    /// the next period.
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.close_period(&mut out);
        out
    }

    fn open_period(&mut self, out: &mut Vec<Output>) {
        let period = self.next_period;
        self.next_period += 1;
        self.period = Some(period);
        self.origin = None;
        // Never before any rendition's end: every timeline stays monotonic.
        let start = self.timelines.values().fold(MediaTime::ZERO, |m, t| m.max(t.end));
        let mut kinds_seen = Vec::new();
        let mut have_primary = false;
        let any_video = self.declared.iter().any(|t| t.kind() == TrackKind::Video);
        self.tracks = Vec::with_capacity(self.declared.len());
        for track in &self.declared {
            let kind = track.kind();
            let rendition_id = match self.cfg.rendition_ids.iter().find(|(id, _)| *id == track.id) {
                Some((_, name)) => name.clone(),
                None if !kinds_seen.contains(&kind) => kind.as_str().to_owned(),
                None => format!("{}_{}", kind.as_str(), track.id),
            };
            kinds_seen.push(kind);
            let timescale = track.timescale.max(1);
            let mut state = TrackState {
                track: track.clone(),
                rendition_id: rendition_id.clone(),
                ok: false,
                start: start.rescale_ceil(timescale),
                offset: None,
                shift: 0,
                started: kind == TrackKind::Audio,
                seen_in_buffer: false,
                last_dts: None,
                last_delta: 0,
                open: None,
                cuts: VecDeque::new(),
                follows_video: kind == TrackKind::Audio && any_video,
                primary_video: false,
                last_key: None,
                long_gop: false,
                target: duration_to_ticks(self.cfg.target_segment, timescale),
                tolerance: duration_to_ticks(self.cfg.target_segment / 20, timescale),
                max: duration_to_ticks(self.cfg.max_segment, timescale),
                part: self.cfg.part_target.map_or(0, |p| duration_to_ticks(p, timescale).max(1)),
            };
            let built = if track.timescale == 0 {
                Err("timescale 0".to_owned())
            } else {
                codec::sample_entry(track)
                    .and_then(|entry| boxes::init_segment(track, entry).map_err(|e| format!("init segment: {e}")))
            };
            match built {
                Ok(data) => {
                    state.ok = true;
                    if kind == TrackKind::Video && !have_primary {
                        state.primary_video = true;
                        have_primary = true;
                    }
                    self.timelines.entry(rendition_id.clone()).or_insert(Timeline {
                        next_seq: 1,
                        end: start,
                        next_fragment: 1,
                    });
                    out.push(Output::Init(InitSegment {
                        track_id: track.id,
                        period,
                        period_start: start,
                        rendition: rendition_for(track, rendition_id),
                        data,
                    }));
                }
                Err(reason) => {
                    tracing::warn!(track = track.id, %reason, "track rejected");
                    out.push(Output::Rejected { track_id: track.id, reason });
                }
            }
            self.tracks.push(state);
        }
        if !have_primary {
            // Video declared but unusable: audio cuts on its own.
            for t in &mut self.tracks {
                t.follows_video = false;
            }
        }
    }

    fn close_period(&mut self, out: &mut Vec<Output>) {
        if self.period.is_none() {
            return;
        }
        if self.origin.is_none() && !self.start_buffer.is_empty() {
            self.settle(out);
        }
        self.start_buffer.clear();
        for i in 0..self.tracks.len() {
            if self.tracks[i].follows_video {
                self.apply_cuts(i, out);
            }
            let t = &mut self.tracks[i];
            t.cuts.clear();
            if let Some(open) = &t.open {
                let last = open.samples.last().map_or(open.start, |s| s.dts);
                let d = if t.last_delta > 0 { t.last_delta } else { default_duration(&t.track) };
                self.finish(i, last + d, out);
            }
        }
        self.period = None;
        self.origin = None;
    }

    fn unit(&mut self, au: AccessUnit, out: &mut Vec<Output>) {
        let Some(i) = self.tracks.iter().position(|t| t.track.id == au.track && t.ok) else {
            self.dropped += 1;
            return;
        };
        if self.origin.is_some() {
            self.process(i, au, out);
            return;
        }
        let t = &mut self.tracks[i];
        if !t.seen_in_buffer {
            if t.track.kind() == TrackKind::Video && !au.keyframe {
                self.dropped += 1;
                return;
            }
            t.seen_in_buffer = true;
        }
        self.start_buffer.push(au);
        let all_seen = self.tracks.iter().filter(|t| t.ok).all(|t| t.seen_in_buffer);
        if all_seen || self.start_buffer.len() >= 1024 || self.buffered_span() >= self.cfg.target_segment {
            self.settle(out);
        }
    }

    fn buffered_span(&self) -> Duration {
        let secs = |au: &AccessUnit| {
            let ts = self.tracks.iter().find(|t| t.track.id == au.track).map_or(1, |t| t.track.timescale.max(1));
            au.pts as f64 / f64::from(ts)
        };
        let (min, max) = self
            .start_buffer
            .iter()
            .map(secs)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s)));
        if max > min { Duration::from_secs_f64(max - min) } else { Duration::ZERO }
    }

    /// Fixes the period's origin at the earliest buffered PTS and replays the buffer.
    fn settle(&mut self, out: &mut Vec<Output>) {
        let mut origin: Option<(i64, u32)> = None;
        for au in &self.start_buffer {
            let ts = self.tracks.iter().find(|t| t.track.id == au.track).map_or(1, |t| t.track.timescale.max(1));
            let earlier = match origin {
                None => true,
                Some((v, ots)) => i128::from(au.pts) * i128::from(ots) < i128::from(v) * i128::from(ts),
            };
            if earlier {
                origin = Some((au.pts, ts));
            }
        }
        self.origin = Some(origin.unwrap_or((0, 1)));
        for au in std::mem::take(&mut self.start_buffer) {
            if let Some(i) = self.tracks.iter().position(|t| t.track.id == au.track) {
                self.process(i, au, out);
            }
        }
    }

    fn process(&mut self, i: usize, au: AccessUnit, out: &mut Vec<Output>) {
        let (origin, ots) = self.origin.unwrap_or((0, 1));
        let t = &mut self.tracks[i];
        let video = t.track.kind() == TrackKind::Video;
        if !t.started {
            if !au.keyframe {
                self.dropped += 1;
                return;
            }
            t.started = true;
        }
        let ts = i128::from(t.track.timescale);
        let offset = match t.offset {
            Some(o) => o,
            None => {
                // The period maps media time `origin` to its start; PTS keeps A/V sync.
                t.shift = au.pts - au.dts;
                let origin_here = (i128::from(origin) * ts).div_euclid(i128::from(ots)) as i64;
                let o = t.shift - origin_here + t.start as i64;
                t.offset = Some(o);
                o
            }
        };
        let dts = au.dts.saturating_add(offset);
        if dts < t.start as i64 || t.last_dts.is_some_and(|l| dts <= l as i64) {
            // Before the period start or not after the previous unit: it cannot be placed.
            tracing::debug!(track = t.track.id, dts = au.dts, "unit dropped: non-monotonic DTS");
            self.dropped += 1;
            if video {
                t.started = false;
            }
            return;
        }
        let dts = dts as u64;
        if let Some(l) = t.last_dts {
            t.last_delta = dts - l;
        }
        t.last_dts = Some(dts);
        let cts = (au.pts - au.dts - t.shift).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let sample = Sample { dts, cts, key: au.keyframe || !video, data: au.data };

        if video {
            self.video_sample(i, sample, out);
        } else {
            self.audio_sample(i, sample, out);
        }
    }

    fn video_sample(&mut self, i: usize, sample: Sample, out: &mut Vec<Output>) {
        let t = &mut self.tracks[i];
        let dts = sample.dts;
        let ts = t.track.timescale;
        let mut cut = None;
        if sample.key {
            if let Some(k) = t.last_key {
                let gop = dts - k;
                let long = gop > t.target + t.tolerance;
                if long && !t.long_gop {
                    out.push(Output::LongGop(LongGop {
                        track_id: t.track.id,
                        gop: ticks_to_duration(gop, ts),
                        target: self.cfg.target_segment,
                    }));
                }
                t.long_gop = long;
            }
            t.last_key = Some(dts);
            match &t.open {
                Some(open) if dts - open.start + t.tolerance >= t.target => cut = Some(true),
                Some(_) => {}
                None => t.open = Some(OpenSegment::new(dts, true, Vec::new())),
            }
        } else {
            match &t.open {
                Some(open) if dts - open.start >= t.max => cut = Some(false),
                Some(_) => {}
                None => t.open = Some(OpenSegment::new(dts, false, Vec::new())),
            }
        }
        if let Some(independent) = cut {
            self.finish(i, dts, out);
            let t = &mut self.tracks[i];
            t.open = Some(OpenSegment::new(dts, independent, Vec::new()));
            if t.primary_video {
                let at = MediaTime::new(dts, ts);
                for j in 0..self.tracks.len() {
                    if self.tracks[j].follows_video {
                        self.tracks[j].cuts.push_back(at);
                        self.apply_cuts(j, out);
                    }
                }
            }
        }
        let t = &self.tracks[i];
        if t.part > 0
            && let Some(open) = &t.open
            && let Some(first) = open.samples.get(open.emitted)
            && (sample.key || sample.dts + t.last_delta - first.dts > t.part)
        {
            // The pending samples make a part: the next one would overshoot the target, or
            // starts a GOP (so that parts starting with a keyframe are independent).
            let n = open.samples.len();
            self.emit_part(i, n, sample.dts, out);
        }
        if let Some(open) = &mut self.tracks[i].open {
            open.samples.push(sample);
        }
    }

    /// Low latency, audio: emits the parts that are complete and can no longer be moved into
    /// the next segment by a pending or future video cut.
    fn audio_parts(&mut self, i: usize, out: &mut Vec<Output>) {
        loop {
            let t = &self.tracks[i];
            let Some(open) = &t.open else { return };
            if t.part == 0 || open.emitted >= open.samples.len() {
                return;
            }
            let half = t.last_delta / 2;
            // A future video cut lies after the newest video sample; a queued one is known.
            let limit = if !t.follows_video {
                u64::MAX
            } else if let Some(cut) = t.cuts.front() {
                cut.rescale_round(t.track.timescale)
            } else {
                match self.tracks.iter().find(|v| v.primary_video).and_then(|v| v.last_dts.map(|d| (d, v))) {
                    Some((d, v)) => MediaTime::new(d, v.track.timescale).rescale_round(t.track.timescale),
                    None => return,
                }
            };
            let pending = &open.samples[open.emitted..];
            let first = pending[0].dts;
            let Some(j) = (1..pending.len()).find(|&j| pending[j].dts + t.last_delta - first > t.part) else { return };
            if pending[j - 1].dts + half + 1 >= limit {
                return;
            }
            let (upto, end) = (open.emitted + j, pending[j].dts);
            self.emit_part(i, upto, end, out);
        }
    }

    /// Emits the open segment's samples `emitted..upto` as its next part, ending at `end`.
    fn emit_part(&mut self, i: usize, upto: usize, end: u64, out: &mut Vec<Output>) {
        let period = self.period.unwrap_or_default();
        let t = &mut self.tracks[i];
        let Some(open) = &mut t.open else { return };
        if upto <= open.emitted {
            return;
        }
        let video = t.track.kind() == TrackKind::Video;
        let samples = &open.samples[open.emitted..upto];
        let outs = sample_outs(samples, end, video);
        let timeline = self.timelines.entry(t.rendition_id.clone()).or_insert(Timeline {
            next_seq: 1,
            end: MediaTime::new(open.start, t.track.timescale),
            next_fragment: 1,
        });
        let index = open.parts.len() as u32;
        let start = samples[0].dts;
        match boxes::fragment(t.track.id, timeline.next_fragment, start, &outs, index == 0) {
            Ok(data) => {
                timeline.next_fragment = timeline.next_fragment.wrapping_add(1);
                open.parts.push(data.clone());
                out.push(Output::Part(MediaPart {
                    track_id: t.track.id,
                    rendition_id: t.rendition_id.clone(),
                    period,
                    seq: timeline.next_seq,
                    index,
                    start,
                    duration: end - start,
                    timescale: t.track.timescale,
                    independent: samples[0].key,
                    data,
                }));
            }
            Err(e) => {
                tracing::warn!(track = t.track.id, error = %e, "part dropped: cannot encode");
                self.dropped += samples.len() as u64;
            }
        }
        open.emitted = upto;
    }

    fn audio_sample(&mut self, i: usize, sample: Sample, out: &mut Vec<Output>) {
        let dts = sample.dts;
        let t = &mut self.tracks[i];
        let own_cut = match &t.open {
            None => {
                t.open = Some(OpenSegment::new(dts, true, Vec::new()));
                false
            }
            // With video, audio follows its cuts; cutting alone only if video stalls for long.
            Some(open) if t.follows_video => dts - open.start >= t.max + t.target,
            // Alone, at the frame boundary nearest to the target.
            Some(open) => dts - open.start + t.last_delta / 2 >= t.target,
        };
        if own_cut {
            self.finish(i, dts, out);
            let t = &mut self.tracks[i];
            t.cuts.clear();
            t.open = Some(OpenSegment::new(dts, true, Vec::new()));
        }
        if let Some(open) = &mut self.tracks[i].open {
            open.samples.push(sample);
        }
        if self.tracks[i].follows_video {
            self.apply_cuts(i, out);
        }
        self.audio_parts(i, out);
    }

    /// Cuts an audio track at the sample boundary nearest to each pending video cut, once a
    /// sample at or past that boundary has arrived (audio may run ahead of video or behind).
    fn apply_cuts(&mut self, i: usize, out: &mut Vec<Output>) {
        loop {
            let t = &mut self.tracks[i];
            let (Some(&cut), Some(open)) = (t.cuts.front(), &t.open) else { return };
            let at = cut.rescale_round(t.track.timescale);
            let half = t.last_delta / 2;
            if at < open.start + half || open.samples.is_empty() {
                // At (or before) this segment's start already.
                t.cuts.pop_front();
                continue;
            }
            let Some(idx) = open.samples.iter().position(|s| s.dts + half >= at) else { return };
            t.cuts.pop_front();
            if idx == 0 {
                continue;
            }
            let open = t.open.as_mut().expect("checked above");
            let rest = open.samples.split_off(idx);
            let end = rest[0].dts;
            self.finish(i, end, out);
            self.tracks[i].open = Some(OpenSegment::new(end, true, rest));
        }
    }

    /// Writes the open segment of track `i`, ending at `end` (the next segment's start).
    fn finish(&mut self, i: usize, end: u64, out: &mut Vec<Output>) {
        let period = self.period.unwrap_or_default();
        let t = &mut self.tracks[i];
        let Some(open) = t.open.take() else { return };
        if open.samples.is_empty() {
            return;
        }
        let video = t.track.kind() == TrackKind::Video;
        let n = open.samples.len();
        if t.part > 0 {
            // Low latency: the rest becomes the last part; the segment is its parts.
            let rest = open.emitted < n;
            t.open = Some(open);
            if rest {
                self.emit_part(i, n, end, out);
            }
            let t = &mut self.tracks[i];
            let open = t.open.take().expect("put back above");
            let mut data = Vec::with_capacity(open.parts.iter().map(Bytes::len).sum());
            for p in &open.parts {
                data.extend_from_slice(p);
            }
            if data.is_empty() {
                return;
            }
            let start = open.samples[0].dts;
            let timeline = self.timelines.get_mut(&t.rendition_id).expect("a part created it");
            let seq = timeline.next_seq;
            timeline.next_seq += 1;
            timeline.end = MediaTime::new(end, t.track.timescale);
            out.push(Output::Segment(MediaSegment {
                track_id: t.track.id,
                rendition_id: t.rendition_id.clone(),
                period,
                seq,
                start,
                duration: end - start,
                timescale: t.track.timescale,
                independent: open.independent,
                samples: n as u32,
                data: data.into(),
            }));
            return;
        }
        let samples = sample_outs(&open.samples, end, video);
        let start = open.samples[0].dts;
        let timeline = self.timelines.entry(t.rendition_id.clone()).or_insert(Timeline {
            next_seq: 1,
            end: MediaTime::new(start, t.track.timescale),
            next_fragment: 1,
        });
        let seq = timeline.next_seq;
        match boxes::media_segment(t.track.id, seq as u32, start, &samples) {
            Ok(data) => {
                timeline.next_seq += 1;
                timeline.end = MediaTime::new(end, t.track.timescale);
                out.push(Output::Segment(MediaSegment {
                    track_id: t.track.id,
                    rendition_id: t.rendition_id.clone(),
                    period,
                    seq,
                    start,
                    duration: end - start,
                    timescale: t.track.timescale,
                    independent: open.independent,
                    samples: n as u32,
                    data,
                }));
            }
            Err(e) => {
                tracing::warn!(track = t.track.id, error = %e, "segment dropped: cannot encode");
                self.dropped += n as u64;
            }
        }
    }
}

/// The trun entries of consecutive samples; the last one ends at `end`.
fn sample_outs(samples: &[Sample], end: u64, video: bool) -> Vec<SampleOut<'_>> {
    let n = samples.len();
    samples
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let next = if k + 1 < n { samples[k + 1].dts } else { end };
            SampleOut {
                duration: u32::try_from(next.saturating_sub(s.dts)).unwrap_or(u32::MAX),
                flags: if s.key { FLAGS_SYNC } else { FLAGS_NON_SYNC },
                cts: video.then_some(s.cts),
                data: &s.data,
            }
        })
        .collect()
}

/// A last sample's duration when nothing better is known: an AAC frame, or 1/30 s.
fn default_duration(track: &Track) -> u64 {
    let ts = u64::from(track.timescale);
    match track.codec {
        Codec::Aac => {
            let rate = if track.sample_rate > 0 {
                track.sample_rate
            } else {
                codec::AudioSpecificConfig::parse(&track.config).map_or(48_000, |a| a.sample_rate)
            };
            (1024 * ts).div_ceil(u64::from(rate.max(1)))
        }
        _ => ts.div_ceil(30),
    }
    .max(1)
}

fn rendition_for(track: &Track, id: String) -> Rendition {
    let asc = (track.codec == Codec::Aac).then(|| codec::AudioSpecificConfig::parse(&track.config)).flatten();
    Rendition {
        id,
        track_id: track.id,
        kind: track.kind(),
        codec: codec::codec_string(track),
        bandwidth: track.bitrate,
        average_bandwidth: 0,
        width: track.width,
        height: track.height,
        frame_rate: None,
        sample_rate: if track.sample_rate > 0 { track.sample_rate } else { asc.map_or(0, |a| a.sample_rate) },
        channels: if track.channels > 0 { track.channels } else { asc.map_or(0, |a| u16::from(a.channels)) },
        timescale: track.timescale,
    }
}

#[cfg(test)]
#[path = "packager_tests.rs"]
mod tests;
