//! DASH MPD (ISO/IEC 23009-1, DASH-IF IOP): live `dynamic`, VOD `static`, one Period per
//! period, SegmentTemplate with `$Number$` and a SegmentTimeline.

use std::fmt::Write;
use std::time::Duration;

use edge_media::TrackKind;
use time::OffsetDateTime;

use super::{bandwidths, frame_rate, wall_clock, xs_duration};
use crate::presentation::{Period, Presentation, Rendition, SegmentRef};

const PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019";

/// Knobs of the MPD that are not part of the presentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashOptions {
    /// `UTCTiming` (`urn:mpeg:dash:utc:http-iso:2014`) URL, e.g. `/time`; live only.
    pub utc_timing_url: Option<String>,
    /// Default: three target durations.
    pub suggested_presentation_delay: Option<Duration>,
    /// Default: the target duration.
    pub min_buffer_time: Option<Duration>,
    /// Low latency: the `ServiceDescription` target latency. Default: [`ll_target_latency`].
    pub target_latency: Option<Duration>,
}

/// The default target latency of a low-latency MPD: the HLS part hold-back plus half a second.
pub fn ll_target_latency(part_target: Duration) -> Duration {
    super::part_hold_back(part_target) + Duration::from_millis(500)
}

/// The MPD. `now` is its `publishTime`.
///
/// Live: Period@start is the period's wall-clock-anchored start ([`Period::start`]); VOD:
/// periods follow each other on the media timeline without gaps. Either way each
/// Representation's `presentationTimeOffset` is the period's media start in its timescale, so
/// `Period@start + (S@t - presentationTimeOffset) / timescale` is the segment's presentation
/// time.
pub fn dash_mpd(p: &Presentation, now: OffsetDateTime, opts: &DashOptions) -> String {
    let periods: Vec<&Period> = p
        .periods
        .iter()
        .filter(|per| per.renditions.iter().any(|r| p.listed(&r.id).any(|(_, s)| s.period == per.id)))
        .collect();
    let vod_origin = periods.first().map_or(Duration::ZERO, |per| per.media_start.as_duration());
    let period_start = |per: &Period| {
        if p.live { per.start } else { per.media_start.as_duration().saturating_sub(vod_origin) }
    };
    let max_segment = p.tracks.values().map(|l| l.max_duration).max().unwrap_or(p.target_duration);

    let ll = p.part_target.filter(|_| p.live);
    let latency = ll.map(|part| opts.target_latency.unwrap_or_else(|| ll_target_latency(part)));

    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(s, "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"{PROFILES}\"");
    if p.live {
        let window = p.window.max(p.target_duration * 4);
        let delay = opts.suggested_presentation_delay.or(latency).unwrap_or(p.target_duration * 3);
        // Low latency: the segment being written is announced once its first chunk exists, so
        // the MPD is refreshed every part.
        let update = ll.unwrap_or(p.target_duration);
        let _ = write!(
            s,
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" \
             timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\"",
            wall_clock(p.availability_start),
            wall_clock(now),
            xs_duration(update, 3),
            xs_duration(window, 3),
            xs_duration(delay, 3),
        );
    } else {
        let end = p
            .tracks
            .values()
            .filter_map(|l| l.segments.back())
            .map(|seg| crate::time::ticks_to_duration(seg.start + seg.duration, seg.timescale))
            .max()
            .unwrap_or_default();
        let _ = write!(
            s,
            " type=\"static\" mediaPresentationDuration=\"{}\"",
            xs_duration(end.saturating_sub(vod_origin), 3)
        );
    }
    let _ = writeln!(
        s,
        " maxSegmentDuration=\"{}\" minBufferTime=\"{}\">",
        xs_duration(max_segment, 3),
        xs_duration(opts.min_buffer_time.unwrap_or(p.target_duration), 3)
    );

    if let Some(latency) = latency {
        let ms = latency.as_millis();
        let _ = writeln!(
            s,
            "  <ServiceDescription id=\"0\">\n    <Latency referenceId=\"0\" target=\"{ms}\" min=\"{}\" max=\"{}\"/>\n    \
             <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n  </ServiceDescription>",
            ms / 2,
            ms * 2
        );
    }
    for per in periods {
        let _ = writeln!(s, "  <Period id=\"{}\" start=\"{}\">", per.id, xs_duration(period_start(per), 6));
        for (set_id, kind) in [(0, TrackKind::Video), (1, TrackKind::Audio)] {
            let reps: Vec<(&Rendition, Vec<&SegmentRef>)> = per
                .renditions
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| {
                    (r, p.listed(&r.id).map(|(_, seg)| seg).filter(|seg| seg.period == per.id).collect::<Vec<_>>())
                })
                .filter(|(_, segs)| !segs.is_empty())
                .collect();
            if reps.is_empty() {
                continue;
            }
            let _ = write!(
                s,
                "    <AdaptationSet id=\"{set_id}\" contentType=\"{kind}\" mimeType=\"{kind}/mp4\" \
                 segmentAlignment=\"true\" startWithSAP=\"1\"",
                kind = kind.as_str()
            );
            if kind == TrackKind::Video {
                let max_w = reps.iter().map(|(r, _)| r.width).max().unwrap_or(0);
                let max_h = reps.iter().map(|(r, _)| r.height).max().unwrap_or(0);
                if max_w > 0 && max_h > 0 {
                    let _ = write!(s, " maxWidth=\"{max_w}\" maxHeight=\"{max_h}\"");
                }
            }
            s.push_str(">\n");
            for (r, mut segs) in reps {
                // Low latency: the segment being written, with its nominal duration.
                let open = ll.and_then(|_| open_segment(p, per, r, segs.last().copied()));
                if let Some(open) = &open {
                    segs.push(open);
                }
                representation(&mut s, p, per, r, &segs, ll);
            }
            s.push_str("    </AdaptationSet>\n");
        }
        s.push_str("  </Period>\n");
    }
    if p.live
        && let Some(url) = &opts.utc_timing_url
    {
        let _ = writeln!(s, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>", escape(url));
    }
    s.push_str("</MPD>\n");
    s
}

/// The segment of `r` being written in period `per`, once it has a part, as a timeline entry of
/// the nominal segment duration (the next MPD corrects it if the segment ends up different).
fn open_segment(p: &Presentation, per: &Period, r: &Rendition, last: Option<&SegmentRef>) -> Option<SegmentRef> {
    let log = p.tracks.get(&r.id)?;
    let seq = log.open_seq()?;
    let first = log.parts_of(seq).next()?;
    if first.period != per.id || last.is_some_and(|l| l.seq + 1 != seq) {
        return None;
    }
    Some(SegmentRef {
        seq,
        start: first.start,
        duration: crate::time::duration_to_ticks(p.target_duration, first.timescale),
        timescale: first.timescale,
        period: per.id,
        program_date_time: None,
        independent: first.independent,
        bytes: 0,
    })
}

fn representation(
    s: &mut String,
    p: &Presentation,
    per: &Period,
    r: &Rendition,
    segs: &[&SegmentRef],
    ll: Option<Duration>,
) {
    let (peak, _) = bandwidths(p, r);
    let _ = write!(
        s,
        "      <Representation id=\"{}\" bandwidth=\"{peak}\" codecs=\"{}\"",
        escape(&r.id),
        escape(&r.codec)
    );
    match r.kind {
        TrackKind::Video => {
            if r.width > 0 && r.height > 0 {
                let _ = write!(s, " width=\"{}\" height=\"{}\"", r.width, r.height);
            }
            if let Some(fr) = frame_rate(p, r) {
                if fr.den == 1 {
                    let _ = write!(s, " frameRate=\"{}\"", fr.num);
                } else {
                    let _ = write!(s, " frameRate=\"{}/{}\"", fr.num, fr.den);
                }
            }
            s.push_str(">\n");
        }
        TrackKind::Audio => {
            if r.sample_rate > 0 {
                let _ = write!(s, " audioSamplingRate=\"{}\"", r.sample_rate);
            }
            s.push_str(">\n");
            if r.channels > 0 {
                let _ = writeln!(
                    s,
                    "        <AudioChannelConfiguration \
                     schemeIdUri=\"urn:mpeg:mpegB:cicp:ChannelConfiguration\" value=\"{}\"/>",
                    r.channels
                );
            }
        }
    }
    // Segments of a period share the timescale their init segment declared.
    let timescale = segs[0].timescale;
    let pto = per.media_start.rescale_ceil(timescale);
    let _ = write!(
        s,
        "        <SegmentTemplate timescale=\"{timescale}\" presentationTimeOffset=\"{pto}\" \
         initialization=\"$RepresentationID$/init-{}.mp4\" media=\"$RepresentationID$/$Number$.m4s\" \
         startNumber=\"{}\"",
        per.id, segs[0].seq
    );
    if let Some(part) = ll {
        // A segment may be fetched once its first chunk exists; it then arrives chunk by chunk.
        let offset = p.target_duration.saturating_sub(part);
        let _ =
            write!(s, " availabilityTimeOffset=\"{}\" availabilityTimeComplete=\"false\"", super::seconds(offset, 3));
    }
    s.push_str(">\n");
    s.push_str("          <SegmentTimeline>\n");
    // Runs of equal, back-to-back durations become one S with @r; @t only where needed.
    let mut i = 0;
    let mut expected: Option<u64> = None;
    while i < segs.len() {
        let seg = segs[i];
        let mut repeat = 0;
        while i + repeat + 1 < segs.len() {
            let (a, b) = (segs[i + repeat], segs[i + repeat + 1]);
            if b.duration != seg.duration || b.start != a.start + a.duration {
                break;
            }
            repeat += 1;
        }
        s.push_str("            <S");
        if expected != Some(seg.start) {
            let _ = write!(s, " t=\"{}\"", seg.start);
        }
        let _ = write!(s, " d=\"{}\"", seg.duration);
        if repeat > 0 {
            let _ = write!(s, " r=\"{repeat}\"");
        }
        s.push_str("/>\n");
        let last = segs[i + repeat];
        expected = Some(last.start + last.duration);
        i += repeat + 1;
    }
    s.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n");
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
