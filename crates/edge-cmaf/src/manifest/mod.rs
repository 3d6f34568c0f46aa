//! HLS and DASH manifests: pure functions of a [`crate::Presentation`].
//!
//! Every URL is relative. The manifests are served at
//! `/{locatorId}/{manifestName}.ism/manifest(format=...)`, so DASH and the HLS multivariant
//! playlist resolve against `.../manifest.ism/`; a media playlist lives at
//! `{rendition}/index.m3u8` and names its init and media segments relative to itself.

mod dash;
mod hls;

pub use dash::{DashOptions, dash_mpd, ll_target_latency};
pub use hls::{hls_media, hls_media_with, hls_multivariant, next_part, part_hold_back};

use std::time::Duration;

use time::OffsetDateTime;
use time::macros::format_description;

use crate::presentation::{Presentation, Rendition};

/// A rendition's media playlist, relative to the manifest directory.
pub fn media_playlist_path(rendition: &str) -> String {
    format!("{rendition}/index.m3u8")
}

/// A rendition's init segment for a period, relative to the manifest directory.
pub fn init_path(rendition: &str, period: u32) -> String {
    format!("{rendition}/init-{period}.mp4")
}

/// A media segment, relative to the manifest directory.
pub fn segment_path(rendition: &str, seq: u64) -> String {
    format!("{rendition}/{seq}.m4s")
}

/// A low-latency part, relative to the manifest directory: `{rendition}/{seq}.{index}.m4s`.
pub fn part_path(rendition: &str, seq: u64, index: u32) -> String {
    format!("{rendition}/{}", part_file(seq, index))
}

/// A part's file name, relative to its media playlist.
pub fn part_file(seq: u64, index: u32) -> String {
    format!("{seq}.{index}.m4s")
}

/// What a request path below the manifest directory names (the inverse of the functions
/// above), for the HTTP delivery's router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource<'a> {
    MediaPlaylist { rendition: &'a str },
    Init { rendition: &'a str, period: u32 },
    Segment { rendition: &'a str, seq: u64 },
    Part { rendition: &'a str, seq: u64, index: u32 },
}

/// Parses `{rendition}/index.m3u8`, `{rendition}/init-{period}.mp4` or `{rendition}/{seq}.m4s`.
pub fn parse_resource(path: &str) -> Option<Resource<'_>> {
    let (rendition, file) = path.split_once('/')?;
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid(rendition) {
        return None;
    }
    if file == "index.m3u8" {
        Some(Resource::MediaPlaylist { rendition })
    } else if let Some(p) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        Some(Resource::Init { rendition, period: number(p)? })
    } else {
        let name = file.strip_suffix(".m4s")?;
        match name.split_once('.') {
            Some((seq, index)) => Some(Resource::Part { rendition, seq: number(seq)?, index: number(index)? }),
            None => Some(Resource::Segment { rendition, seq: number(name)? }),
        }
    }
}

/// Plain decimal digits only (no sign, no `+`).
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// (peak, average) bit/s of a rendition: declared values, raised to what was measured.
fn bandwidths(p: &Presentation, r: &Rendition) -> (u32, u32) {
    let log = p.tracks.get(&r.id);
    let peak = r.bandwidth.max(log.map_or(0, |l| l.peak_bandwidth));
    let measured = log.map_or(0, |l| l.average_bandwidth());
    let average = if measured > 0 {
        measured
    } else if r.average_bandwidth > 0 {
        r.average_bandwidth
    } else {
        r.bandwidth
    };
    (peak.max(average), average)
}

fn frame_rate(p: &Presentation, r: &Rendition) -> Option<crate::FrameRate> {
    r.frame_rate.or_else(|| p.tracks.get(&r.id).and_then(|l| l.frame_rate))
}

/// UTC with milliseconds: `2024-05-01T12:00:00.000Z`.
fn wall_clock(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(&fmt).unwrap_or_default()
}

/// Seconds with up to `decimals` decimals, trailing zeros removed: `2`, `2.5`, `1.962667`.
fn seconds(d: Duration, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    let units = (d.as_nanos() * scale + 500_000_000) / 1_000_000_000;
    let (whole, frac) = (units / scale, units % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = decimals as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// xs:duration in seconds: `PT2S`, `PT0.5S`.
fn xs_duration(d: Duration, decimals: u32) -> String {
    format!("PT{}S", seconds(d, decimals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presentation::{Period, SegmentRef};
    use crate::time::MediaTime;
    use edge_media::TrackKind;

    fn rendition(id: &str, kind: TrackKind) -> Rendition {
        Rendition {
            id: id.into(),
            track_id: 1,
            kind,
            codec: if kind == TrackKind::Video { "avc1.64001f" } else { "mp4a.40.2" }.into(),
            bandwidth: 1000,
            average_bandwidth: 0,
            width: 0,
            height: 0,
            frame_rate: None,
            sample_rate: 48_000,
            channels: 2,
            timescale: 1000,
        }
    }

    fn single(renditions: Vec<Rendition>, segments: u64) -> Presentation {
        let mut p =
            Presentation::new(true, OffsetDateTime::UNIX_EPOCH, Duration::from_secs(60), Duration::from_secs(2));
        p.add_period(Period {
            id: 0,
            media_start: MediaTime::ZERO,
            start: Duration::ZERO,
            renditions: renditions.clone(),
        });
        for r in &renditions {
            for seq in 1..=segments {
                let seg = SegmentRef {
                    seq,
                    start: (seq - 1) * 2000,
                    duration: 2000,
                    timescale: 1000,
                    period: 0,
                    program_date_time: None,
                    independent: true,
                    bytes: 0,
                };
                p.add_segment(&r.id, seg);
            }
        }
        p
    }

    #[test]
    fn audio_only_and_video_only_multivariants() {
        let audio = hls_multivariant(&single(vec![rendition("audio", TrackKind::Audio)], 1));
        assert!(!audio.contains("EXT-X-MEDIA:"));
        assert_eq!(audio.matches("#EXT-X-STREAM-INF:").count(), 1);
        assert!(audio.contains("CODECS=\"mp4a.40.2\"\naudio/index.m3u8"));

        let video = hls_multivariant(&single(vec![rendition("video", TrackKind::Video)], 1));
        assert!(!video.contains("AUDIO=") && !video.contains("RESOLUTION"));
        assert_eq!(video.matches("#EXT-X-STREAM-INF:BANDWIDTH=1000,").count(), 1);
    }

    #[test]
    fn readiness_unknown_renditions_and_escaping() {
        let mut p = single(vec![rendition("video", TrackKind::Video), rendition("a&b", TrackKind::Audio)], 0);
        assert!(!p.is_ready());
        assert!(hls_media(&p, "nope").is_none());
        let empty = hls_media(&p, "video").unwrap();
        assert!(empty.contains("#EXT-X-MEDIA-SEQUENCE:1\n") && !empty.contains("EXTINF"));
        p = single(p.periods[0].renditions.clone(), 2);
        assert!(p.is_ready());
        let mpd = dash_mpd(&p, OffsetDateTime::UNIX_EPOCH, &DashOptions::default());
        assert!(mpd.contains("<Representation id=\"a&amp;b\""), "{mpd}");
        assert!(mpd.contains("<S t=\"0\" d=\"2000\" r=\"1\"/>"));
        assert!(!mpd.contains("UTCTiming"), "only with a URL");
    }

    #[test]
    fn formats_times() {
        assert_eq!(seconds(Duration::from_millis(2000), 3), "2");
        assert_eq!(seconds(Duration::from_millis(2500), 3), "2.5");
        assert_eq!(seconds(Duration::from_nanos(1_962_666_667), 6), "1.962667");
        assert_eq!(xs_duration(Duration::from_secs(300), 3), "PT300S");
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_714_564_800_123_456_789).unwrap();
        assert_eq!(wall_clock(t), "2024-05-01T12:00:00.123Z");
    }

    #[test]
    fn resource_paths_round_trip() {
        assert_eq!(parse_resource(&media_playlist_path("video")), Some(Resource::MediaPlaylist { rendition: "video" }));
        assert_eq!(parse_resource(&init_path("audio", 3)), Some(Resource::Init { rendition: "audio", period: 3 }));
        assert_eq!(
            parse_resource(&segment_path("video_3500000", 42)),
            Some(Resource::Segment { rendition: "video_3500000", seq: 42 })
        );
        assert_eq!(
            parse_resource(&part_path("video", 7, 2)),
            Some(Resource::Part { rendition: "video", seq: 7, index: 2 })
        );
        for bad in [
            "video/1.2.3.m4s",
            "video/1..m4s",
            "video/.1.m4s",
            "video",
            "../x/1.m4s",
            "video/-1.m4s",
            "video/init-.mp4",
            "video/1.m4s/x",
            "video/a.m4s",
            "/1.m4s",
        ] {
            assert_eq!(parse_resource(bad), None, "{bad}");
        }
    }
}
