//! The presentation model the manifests are written from: periods with their renditions, and
//! per rendition the list of segments. [`Presentation::apply`] folds packager outputs into it;
//! a recorder can equally rebuild it from its index (every field is plain data).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use edge_media::TrackKind;
use time::OffsetDateTime;

use crate::packager::Output;
use crate::time::{MediaTime, ticks_to_duration};

/// What a manifest says about one CMAF track (a "rendition": `video`, `audio`, later
/// `video_3500000` for an ABR rung).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Path segment of its URLs and DASH `Representation@id`.
    pub id: String,
    /// The CMAF track id (tfhd) of its segments.
    pub track_id: u32,
    pub kind: TrackKind,
    /// RFC 6381 codec string, e.g. `avc1.64001f`, `mp4a.40.2`.
    pub codec: String,
    /// Declared peak bit/s (0 = unknown; the manifests then use the measured rate).
    pub bandwidth: u32,
    /// Declared average bit/s (0 = unknown).
    pub average_bandwidth: u32,
    pub width: u16,
    pub height: u16,
    /// Frame rate if known (the manifests fall back to the rate measured from segments).
    pub frame_rate: Option<FrameRate>,
    pub sample_rate: u32,
    pub channels: u16,
    pub timescale: u32,
}

/// A frame rate as a fraction (`30000/1001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }

    /// `frames` frames in `duration` ticks of `timescale`, snapped to a common broadcast rate
    /// when within 0.5 % of one, otherwise kept to 1/1000 fps.
    pub fn estimate(frames: u32, duration: u64, timescale: u32) -> Option<FrameRate> {
        if frames == 0 || duration == 0 {
            return None;
        }
        let fps = f64::from(frames) * f64::from(timescale) / duration as f64;
        const COMMON: [(u32, u32); 10] = [
            (24000, 1001),
            (24, 1),
            (25, 1),
            (30000, 1001),
            (30, 1),
            (48, 1),
            (50, 1),
            (60000, 1001),
            (60, 1),
            (15, 1),
        ];
        let error = |&(num, den): &(u32, u32)| {
            let r = f64::from(num) / f64::from(den);
            (fps - r).abs() / r
        };
        match COMMON.iter().min_by(|a, b| error(a).total_cmp(&error(b))) {
            Some(&(num, den)) if error(&(num, den)) < 0.005 => Some(FrameRate { num, den }),
            _ => Some(FrameRate { num: (fps * 1000.0).round() as u32, den: 1000 }),
        }
    }
}

/// A period: what lies between two discontinuities (encoder reconnects, parameter changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub id: u32,
    /// Where the period starts on the packager's continuous media timeline
    /// ([`crate::InitSegment::period_start`]); each rendition's `presentationTimeOffset` is
    /// this instant in its timescale, rounded up (as the packager does).
    pub media_start: MediaTime,
    /// Where the period starts in the live presentation, from `availability_start`. Periods
    /// are anchored to the wall clock so that a live DASH timeline keeps up with real time
    /// across encoder outages; VOD manifests ignore it and play the media timeline gap-free.
    pub start: Duration,
    pub renditions: Vec<Rendition>,
}

/// One segment as the manifests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef {
    /// Its number (`{seq}.m4s`), monotonic and contiguous per rendition.
    pub seq: u64,
    /// baseMediaDecodeTime, in `timescale`.
    pub start: u64,
    pub duration: u64,
    pub timescale: u32,
    pub period: u32,
    /// Wall clock of the segment's start (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: Option<OffsetDateTime>,
    /// Starts with a random access point (every segment does unless a GOP exceeded
    /// `max_segment`).
    pub independent: bool,
    /// Its size, for measured bandwidth (0 = unknown).
    pub bytes: u64,
}

/// Low latency: one CMAF partial segment as the manifests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRef {
    /// The segment it belongs to.
    pub seq: u64,
    pub period: u32,
    /// 0, 1, … within the segment.
    pub index: u32,
    /// baseMediaDecodeTime, in `timescale`.
    pub start: u64,
    pub duration: u64,
    pub timescale: u32,
    pub independent: bool,
    pub bytes: u64,
}

impl PartRef {
    pub fn duration_time(&self) -> Duration {
        ticks_to_duration(self.duration, self.timescale)
    }
}

/// Low latency: parts are kept (and listed) for this many of the newest segments, plus the
/// one being written (RFC 8216bis asks for at least the last three target durations).
pub const PART_SEGMENTS: u64 = 3;

impl SegmentRef {
    pub fn duration_time(&self) -> Duration {
        ticks_to_duration(self.duration, self.timescale)
    }
}

/// The segments of one rendition and what must survive trimming them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackLog {
    pub segments: VecDeque<SegmentRef>,
    /// The discontinuity sequence number of the first segment in `segments` (period changes
    /// before it, including ones trimmed away).
    pub discontinuity_base: u64,
    /// The longest segment ever added (HLS target durations must not shrink).
    pub max_duration: Duration,
    /// Highest bit rate of one segment seen (bit/s).
    pub peak_bandwidth: u32,
    pub total_bytes: u64,
    pub total_time: Duration,
    /// Measured from video segments.
    pub frame_rate: Option<FrameRate>,
    /// Low latency: the parts of the newest [`PART_SEGMENTS`] segments and of the one being
    /// written, in order.
    pub parts: VecDeque<PartRef>,
}

impl TrackLog {
    /// Seq of the newest complete segment.
    pub fn last_seq(&self) -> Option<u64> {
        self.segments.back().map(|s| s.seq)
    }

    /// The newest part as (segment seq, index).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.parts.back().map(|p| (p.seq, p.index))
    }

    /// Seq of the segment being written (it has parts but is not complete yet).
    pub fn open_seq(&self) -> Option<u64> {
        let (seq, _) = self.last_part()?;
        (self.last_seq().is_none_or(|l| seq > l)).then_some(seq)
    }

    /// The parts of one segment.
    pub fn parts_of(&self, seq: u64) -> impl Iterator<Item = &PartRef> {
        self.parts.iter().filter(move |p| p.seq == seq)
    }

    /// Measured average bit/s (0 if nothing measured).
    pub fn average_bandwidth(&self) -> u32 {
        let secs = self.total_time.as_secs_f64();
        if secs <= 0.0 { 0 } else { (self.total_bytes as f64 * 8.0 / secs).round() as u32 }
    }
}

/// Everything the HLS and DASH writers need. See the crate docs for how to fill it.
#[derive(Debug, Clone, PartialEq)]
pub struct Presentation {
    /// Live (sliding window, `type="dynamic"`) or VOD (everything, `ENDLIST`, `static`).
    pub live: bool,
    /// Wall clock of presentation time zero (DASH `availabilityStartTime`).
    pub availability_start: OffsetDateTime,
    /// Live DVR window (`archiveWindowLength`, DASH `timeShiftBufferDepth`).
    pub window: Duration,
    /// Nominal segment duration (keyFrameIntervalDuration).
    pub target_duration: Duration,
    /// Ascending by id.
    pub periods: Vec<Period>,
    /// By rendition id.
    pub tracks: BTreeMap<String, TrackLog>,
    /// Low latency: the part target (`None`: normal mode, no parts in the manifests).
    pub part_target: Option<Duration>,
}

impl Presentation {
    pub fn new(live: bool, availability_start: OffsetDateTime, window: Duration, target_duration: Duration) -> Self {
        Presentation {
            live,
            availability_start,
            window,
            target_duration,
            periods: Vec::new(),
            tracks: BTreeMap::new(),
            part_target: None,
        }
    }

    /// Folds one packager output in. `now` is the wall clock when it was produced: it anchors
    /// a new period's start (a period never starts before the previous one's media ended).
    pub fn apply(&mut self, out: &Output, now: OffsetDateTime) {
        match out {
            Output::Init(init) => {
                if self.period(init.period).is_none() {
                    let since_ast = duration_between(self.availability_start, now);
                    let start = match self.periods.last() {
                        Some(prev) => {
                            let media = init.period_start.as_duration().saturating_sub(prev.media_start.as_duration());
                            since_ast.max(prev.start + media)
                        }
                        None => since_ast,
                    };
                    self.add_period(Period {
                        id: init.period,
                        media_start: init.period_start,
                        start,
                        renditions: Vec::new(),
                    });
                }
                self.add_rendition(init.period, init.rendition.clone());
            }
            Output::Segment(seg) => {
                let mut r = SegmentRef {
                    seq: seg.seq,
                    start: seg.start,
                    duration: seg.duration,
                    timescale: seg.timescale,
                    period: seg.period,
                    program_date_time: None,
                    independent: seg.independent,
                    bytes: seg.data.len() as u64,
                };
                r.program_date_time = self.live_start(&r).map(|t| self.availability_start + t);
                let video = self.rendition(seg.period, &seg.rendition_id).is_some_and(|x| x.kind == TrackKind::Video);
                let log = self.tracks.entry(seg.rendition_id.clone()).or_default();
                if video && let Some(fr) = FrameRate::estimate(seg.samples, seg.duration, seg.timescale) {
                    log.frame_rate = Some(fr);
                }
                self.add_segment(&seg.rendition_id, r);
            }
            Output::Part(part) => self.add_part(
                &part.rendition_id,
                PartRef {
                    seq: part.seq,
                    period: part.period,
                    index: part.index,
                    start: part.start,
                    duration: part.duration,
                    timescale: part.timescale,
                    independent: part.independent,
                    bytes: part.data.len() as u64,
                },
            ),
            Output::LongGop(_) | Output::Rejected { .. } => {}
        }
    }

    /// Appends a part to a rendition's log, dropping the parts of segments older than the
    /// newest [`PART_SEGMENTS`].
    pub fn add_part(&mut self, rendition_id: &str, part: PartRef) {
        let log = self.tracks.entry(rendition_id.to_owned()).or_default();
        let keep_from = part.seq.saturating_sub(PART_SEGMENTS);
        log.parts.push_back(part);
        while log.parts.front().is_some_and(|p| p.seq < keep_from) {
            log.parts.pop_front();
        }
    }

    /// Adds (or replaces) a period, keeping them sorted by id.
    pub fn add_period(&mut self, period: Period) {
        match self.periods.binary_search_by_key(&period.id, |p| p.id) {
            Ok(i) => self.periods[i] = period,
            Err(i) => self.periods.insert(i, period),
        }
    }

    /// Adds (or replaces, by id) a rendition of a period that exists.
    pub fn add_rendition(&mut self, period: u32, rendition: Rendition) {
        if let Some(p) = self.periods.iter_mut().find(|p| p.id == period) {
            match p.renditions.iter_mut().find(|r| r.id == rendition.id) {
                Some(r) => *r = rendition,
                None => p.renditions.push(rendition),
            }
        }
    }

    /// Appends a segment to a rendition's log and updates its measurements.
    pub fn add_segment(&mut self, rendition_id: &str, seg: SegmentRef) {
        let log = self.tracks.entry(rendition_id.to_owned()).or_default();
        let d = seg.duration_time();
        log.max_duration = log.max_duration.max(d);
        if seg.bytes > 0 && !d.is_zero() {
            log.peak_bandwidth = log.peak_bandwidth.max((seg.bytes as f64 * 8.0 / d.as_secs_f64()).round() as u32);
            log.total_bytes += seg.bytes;
            log.total_time += d;
        }
        log.segments.push_back(seg);
    }

    /// Drops segments that ended before the live window (with a margin of two target
    /// durations), keeping the discontinuity count. Call it on live presentations to bound
    /// memory; VOD manifests then need the full list again (e.g. from the recorder's index).
    pub fn trim_to_window(&mut self) {
        let Some(start) = self.window_start() else { return };
        let margin = self.target_duration * 2;
        let keys: Vec<String> = self.tracks.keys().cloned().collect();
        for key in keys {
            loop {
                let log = &self.tracks[&key];
                let (Some(first), Some(second)) = (log.segments.front(), log.segments.get(1)) else { break };
                match self.live_end(first) {
                    Some(end) if end + margin <= start => {}
                    _ => break,
                }
                let changed = second.period != first.period;
                let log = self.tracks.get_mut(&key).expect("key exists");
                log.segments.pop_front();
                if changed {
                    log.discontinuity_base += 1;
                }
            }
        }
    }

    pub fn period(&self, id: u32) -> Option<&Period> {
        self.periods.iter().find(|p| p.id == id)
    }

    pub fn rendition(&self, period: u32, id: &str) -> Option<&Rendition> {
        self.period(period)?.renditions.iter().find(|r| r.id == id)
    }

    /// True once every rendition of the latest period has a segment: the moment a live
    /// manifest becomes useful to a player.
    pub fn is_ready(&self) -> bool {
        let Some(p) = self.periods.last() else { return false };
        !p.renditions.is_empty()
            && p.renditions.iter().all(|r| self.tracks.get(&r.id).is_some_and(|l| !l.segments.is_empty()))
    }

    /// True once this rendition has a segment: the moment its own media playlist is useful.
    pub fn has_segments(&self, rendition_id: &str) -> bool {
        self.tracks.get(rendition_id).is_some_and(|l| !l.segments.is_empty())
    }

    /// A segment's start in the live presentation (since `availability_start`).
    pub fn live_start(&self, seg: &SegmentRef) -> Option<Duration> {
        let p = self.period(seg.period)?;
        let pto = p.media_start.rescale_ceil(seg.timescale);
        Some(p.start + ticks_to_duration(seg.start.saturating_sub(pto), seg.timescale))
    }

    pub fn live_end(&self, seg: &SegmentRef) -> Option<Duration> {
        Some(self.live_start(seg)? + seg.duration_time())
    }

    /// The end of the newest segment of any rendition, in the live presentation.
    pub fn live_edge(&self) -> Option<Duration> {
        self.tracks.values().filter_map(|l| l.segments.back()).filter_map(|s| self.live_end(s)).max()
    }

    /// Live segments ending after this instant are in the window. The window is at least four
    /// target durations (HLS requires three behind the live edge).
    pub fn window_start(&self) -> Option<Duration> {
        let window = self.window.max(self.target_duration * 4);
        Some(self.live_edge()?.saturating_sub(window))
    }

    /// The segments of a rendition a manifest lists: all of them for VOD, those ending inside
    /// the window for live. Returns them with their index in the log.
    pub fn listed(&self, rendition_id: &str) -> impl Iterator<Item = (usize, &SegmentRef)> {
        let from = if self.live { self.window_start() } else { None };
        self.tracks
            .get(rendition_id)
            .into_iter()
            .flat_map(|l| l.segments.iter().enumerate())
            .filter(move |(_, s)| from.is_none_or(|from| self.live_end(s).is_some_and(|end| end > from)))
    }
}

fn duration_between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    let d = to - from;
    if d.is_negative() { Duration::ZERO } else { d.unsigned_abs() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_snap_to_broadcast_rates() {
        assert_eq!(FrameRate::estimate(60, 180_180, 90_000), Some(FrameRate { num: 30000, den: 1001 }));
        assert_eq!(FrameRate::estimate(50, 2000, 1000), Some(FrameRate { num: 25, den: 1 }));
        assert_eq!(FrameRate::estimate(60, 180_000, 90_000), Some(FrameRate { num: 30, den: 1 }));
        assert_eq!(FrameRate::estimate(7, 1000, 1000), Some(FrameRate { num: 7000, den: 1000 }));
        assert_eq!(FrameRate::estimate(0, 1000, 1000), None);
    }
}
