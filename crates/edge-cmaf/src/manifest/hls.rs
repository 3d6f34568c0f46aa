//! HLS (RFC 8216, version 7) playlists.

use std::fmt::Write;

use edge_media::TrackKind;

use super::{bandwidths, frame_rate, media_playlist_path, wall_clock};
use crate::presentation::{Presentation, Rendition};

const VERSION: u32 = 7;
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
pub fn hls_media(p: &Presentation, rendition_id: &str) -> Option<String> {
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

    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{target}\n");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first_seq}");
    let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_seq}");
    if !p.live {
        s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    if listed.iter().all(|(_, seg)| seg.independent) {
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let mut prev_period = None;
    for (_, seg) in &listed {
        if prev_period != Some(seg.period) {
            if prev_period.is_some() {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"init-{}.mp4\"", seg.period);
            if let Some(pdt) = seg.program_date_time {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", wall_clock(pdt));
            }
            prev_period = Some(seg.period);
        }
        let _ = writeln!(s, "#EXTINF:{:.3},\n{}.m4s", seg.duration_time().as_secs_f64(), seg.seq);
    }
    if !p.live {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    Some(s)
}

fn all_independent(p: &Presentation) -> bool {
    p.tracks.keys().all(|id| p.listed(id).all(|(_, s)| s.independent))
}

/// Quoted-string attribute values cannot contain `"` or line breaks (RFC 8216 4.2).
fn quoted(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '"' | '\r' | '\n')).collect()
}
