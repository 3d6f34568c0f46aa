//! HLS (RFC 8216, version 7) playlists.

use std::fmt::Write;

use edge_media::TrackKind;

use super::{bandwidths, frame_rate, media_playlist_path, part_file, seconds, wall_clock};
use crate::presentation::{Presentation, Rendition};

const VERSION: u32 = 7;
/// Low-latency playlists: partial segments and `EXT-X-SKIP` need version 9.
const LL_VERSION: u32 = 9;
const AUDIO_GROUP: &str = "audio";

/// The multivariant playlist: one variant per video rendition (with the audio group), an
/// audio-only variant, and the audio renditions as `EXT-X-MEDIA`. Describes the latest period.
pub fn hls_multivariant(p: &Presentation) -> String {
    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n");
    let Some(period) = p.periods.last() else { return s };
    if all_independent(p) {
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let videos: Vec<&Rendition> = period.renditions.iter().filter(|r| r.kind == TrackKind::Video).collect();
    let audios: Vec<&Rendition> = period.renditions.iter().filter(|r| r.kind == TrackKind::Audio).collect();
    let group = !videos.is_empty() && !audios.is_empty();
    if group {
        for (i, a) in audios.iter().enumerate() {
            let default = if i == 0 { "YES" } else { "NO" };
            let _ = write!(s, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",", quoted(&a.id));
            let _ = write!(s, "DEFAULT={default},AUTOSELECT=YES");
            if a.channels > 0 {
                let _ = write!(s, ",CHANNELS=\"{}\"", a.channels);
            }
            let _ = writeln!(s, ",URI=\"{}\"", quoted(&media_playlist_path(&a.id)));
        }
    }
    let main_audio = audios.first().copied();
    let (audio_peak, audio_avg) = main_audio.map_or((0, 0), |a| bandwidths(p, a));
    for v in &videos {
        let (peak, avg) = bandwidths(p, v);
        let mut codecs = v.codec.clone();
        if let Some(a) = main_audio {
            codecs = format!("{codecs},{}", a.codec);
        }
        let _ = write!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
            peak + audio_peak,
            avg + audio_avg,
            quoted(&codecs)
        );
        if v.width > 0 && v.height > 0 {
            let _ = write!(s, ",RESOLUTION={}x{}", v.width, v.height);
        }
        if let Some(fr) = frame_rate(p, v) {
            let _ = write!(s, ",FRAME-RATE={:.3}", fr.as_f64());
        }
        if group {
            let _ = write!(s, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(s, "\n{}", media_playlist_path(&v.id));
    }
    if let Some(a) = main_audio {
        // Audio-only variant (for poor links and audio-only streams).
        let _ = writeln!(
            s,
            "#EXT-X-STREAM-INF:BANDWIDTH={audio_peak},AVERAGE-BANDWIDTH={audio_avg},CODECS=\"{}\"\n{}",
            quoted(&a.codec),
            media_playlist_path(&a.id)
        );
    }
    s
}

/// A rendition's media playlist: the live window (or everything for VOD), one `EXT-X-MAP` per
/// period, `EXT-X-DISCONTINUITY` at period changes. `None` for an unknown rendition.
///
/// A live low-latency presentation ([`Presentation::part_target`]) also gets LL-HLS:
/// `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, the parts of the newest segments and of the one
/// being written (`EXT-X-PART`), `EXT-X-PRELOAD-HINT` for the next part and an
/// `EXT-X-RENDITION-REPORT` for every other rendition.
pub fn hls_media(p: &Presentation, rendition_id: &str) -> Option<String> {
    hls_media_with(p, rendition_id, false)
}

/// [`hls_media`], as a delta update (`_HLS_skip=YES`) when `skip`: on a low-latency playlist,
/// the segments older than `CAN-SKIP-UNTIL` before the end are replaced by `EXT-X-SKIP`.
pub fn hls_media_with(p: &Presentation, rendition_id: &str, skip: bool) -> Option<String> {
    let known = p.periods.iter().any(|per| per.renditions.iter().any(|r| r.id == rendition_id));
    let log = p.tracks.get(rendition_id);
    if !known && log.is_none() {
        return None;
    }
    let listed: Vec<_> = p.listed(rendition_id).collect();
    // RFC 8216 4.3.3.1: every EXTINF, rounded to the nearest integer, is at most the target.
    // (A plain ceiling would make audio playlists say 3 for 2.005 s segments, the AAC frame
    // nearest to a 2 s video cut.) The longest segment ever, so that it never shrinks.
    let longest = log.map_or(p.target_duration, |l| l.max_duration.max(p.target_duration));
    let target = longest.as_secs_f64().round().max(1.0) as u64;
    let (first_seq, discontinuity_seq) = match (listed.first(), log) {
        (Some(&(idx, seg)), Some(log)) => {
            let changes = (1..=idx).filter(|&k| log.segments[k].period != log.segments[k - 1].period).count();
            (seg.seq, log.discontinuity_base + changes as u64)
        }
        _ => (log.and_then(|l| l.segments.back()).map_or(1, |s| s.seq + 1), 0),
    };

    let ll = p.part_target.filter(|_| p.live);
    let version = if ll.is_some() { LL_VERSION } else { VERSION };
    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n");
    let skip_until = std::time::Duration::from_secs(target * 6);
    if let Some(part) = ll {
        let _ = writeln!(
            s,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}",
            seconds(skip_until, 3),
            seconds(part_hold_back(part), 3)
        );
        let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={}", seconds(part, 5));
    }
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first_seq}");
    let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_seq}");
    if !p.live {
        s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    if listed.iter().all(|(_, seg)| seg.independent) {
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    // Delta update: whole segments from the start that end more than CAN-SKIP-UNTIL before
    // the end of the playlist.
    let skipped = match (ll, skip) {
        (Some(_), true) => {
            let mut from_end = std::time::Duration::ZERO;
            let mut keep = 0;
            for (_, seg) in listed.iter().rev() {
                if from_end >= skip_until {
                    break;
                }
                from_end += seg.duration_time();
                keep += 1;
            }
            listed.len() - keep
        }
        _ => 0,
    };
    if skipped > 0 {
        let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let mut prev_period = listed[..skipped].last().map(|(_, seg)| seg.period);
    let mut need_map = true;
    for (_, seg) in &listed[skipped..] {
        if prev_period != Some(seg.period) || need_map {
            if prev_period.is_some_and(|pp| pp != seg.period) {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"init-{}.mp4\"", seg.period);
            if let Some(pdt) = seg.program_date_time {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", wall_clock(pdt));
            }
            prev_period = Some(seg.period);
            need_map = false;
        }
        if ll.is_some()
            && let Some(log) = log
        {
            for part in log.parts_of(seg.seq) {
                write_part(&mut s, part);
            }
        }
        let _ = writeln!(s, "#EXTINF:{:.3},\n{}.m4s", seg.duration_time().as_secs_f64(), seg.seq);
    }
    if ll.is_some()
        && let Some(log) = log
    {
        // The segment being written: its parts so far, then the hint for the next part.
        if let Some(open) = log.open_seq() {
            for part in log.parts_of(open) {
                if prev_period != Some(part.period) {
                    if prev_period.is_some() {
                        s.push_str("#EXT-X-DISCONTINUITY\n");
                    }
                    let _ = writeln!(s, "#EXT-X-MAP:URI=\"init-{}.mp4\"", part.period);
                    prev_period = Some(part.period);
                }
                write_part(&mut s, part);
            }
        }
        let (seq, index) = next_part(log);
        let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", part_file(seq, index));
        if let Some(period) = p.periods.last() {
            for r in period.renditions.iter().filter(|r| r.id != rendition_id) {
                let Some(other) = p.tracks.get(&r.id) else { continue };
                let uri = format!("../{}", media_playlist_path(&r.id));
                match other.last_part() {
                    Some((msn, part)) => {
                        let _ = writeln!(
                            s,
                            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={msn},LAST-PART={part}",
                            quoted(&uri)
                        );
                    }
                    None => {
                        if let Some(msn) = other.last_seq() {
                            let _ = writeln!(s, "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={msn}", quoted(&uri));
                        }
                    }
                }
            }
        }
    }
    if !p.live {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    Some(s)
}

/// `PART-HOLD-BACK`: three part targets (RFC 8216bis: at least three).
pub fn part_hold_back(part_target: std::time::Duration) -> std::time::Duration {
    part_target * 3
}

/// The part the next `EXT-X-PRELOAD-HINT` names: (segment seq, part index).
pub fn next_part(log: &crate::TrackLog) -> (u64, u32) {
    match (log.open_seq(), log.last_part()) {
        (Some(open), Some((_, index))) => (open, index + 1),
        _ => (log.last_seq().map_or(1, |l| l + 1), 0),
    }
}

fn write_part(s: &mut String, part: &crate::PartRef) {
    let _ = write!(
        s,
        "#EXT-X-PART:DURATION={},URI=\"{}\"",
        seconds(part.duration_time(), 5),
        part_file(part.seq, part.index)
    );
    if part.independent {
        s.push_str(",INDEPENDENT=YES");
    }
    s.push('\n');
}

fn all_independent(p: &Presentation) -> bool {
    p.tracks.keys().all(|id| p.listed(id).all(|(_, s)| s.independent))
}

/// Quoted-string attribute values cannot contain `"` or line breaks (RFC 8216 4.2).
fn quoted(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '"' | '\r' | '\n')).collect()
}
