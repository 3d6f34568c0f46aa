//! Golden files for the manifests, from a presentation built by the real packager with a
//! simulated clock. `UPDATE_GOLDEN=1 cargo test -p edge-cmaf --test golden` rewrites them;
//! otherwise they must match byte for byte. Each is also parsed back (m3u8-rs, quick-xml)
//! and checked for the properties players rely on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_cmaf::manifest::{dash_mpd, hls_media, hls_multivariant};
use edge_cmaf::{DashOptions, MediaTime, Output, Packager, PackagerConfig, Presentation};
use edge_media::{AccessUnit, Codec, MediaEvent, Track};
use m3u8_rs::Playlist;
use quick_xml::events::Event;
use time::OffsetDateTime;
use time::macros::datetime;

const AST: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

fn tracks() -> Vec<Track> {
    let video = Track {
        id: 1,
        codec: Codec::H264,
        timescale: 90_000,
        config: Bytes::from_static(&[
            1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0x00, 0x1f, 1, 0, 2, 0x68, 0xee,
        ]),
        codec_string: "avc1.64001f".into(),
        width: 1280,
        height: 720,
        sample_rate: 0,
        channels: 0,
        bitrate: 2_000_000,
    };
    let audio = Track {
        id: 2,
        codec: Codec::Aac,
        timescale: 48_000,
        config: Bytes::from_static(&[0x11, 0x90]),
        codec_string: "mp4a.40.2".into(),
        width: 0,
        height: 0,
        sample_rate: 48_000,
        channels: 2,
        bitrate: 128_000,
    };
    vec![video, audio]
}

/// `secs` of 30 fps video (1 s GOPs) and AAC from media time `base` seconds, as (media
/// seconds, event), interleaved.
fn av(secs: u32, base: u32) -> Vec<(f64, MediaEvent)> {
    let mut ev = Vec::new();
    for n in 0..secs as i64 * 30 {
        let dts = i64::from(base) * 90_000 + n * 3000;
        let size = if n % 30 == 0 { 20_000 } else { 7_000 + (n % 7) as usize * 100 };
        let au = AccessUnit {
            track: 1,
            dts,
            pts: dts,
            keyframe: n % 30 == 0,
            data: vec![0; size].into(),
            arrival: Instant::now(),
        };
        ev.push((n as f64 / 30.0, MediaEvent::Unit(au)));
    }
    for n in 0..i64::from(secs) * 48_000 / 1024 {
        let dts = i64::from(base) * 48_000 + n * 1024;
        let au =
            AccessUnit { track: 2, dts, pts: dts, keyframe: true, data: vec![0; 340].into(), arrival: Instant::now() };
        ev.push((n as f64 * 1024.0 / 48_000.0, MediaEvent::Unit(au)));
    }
    ev.sort_by(|a, b| a.0.total_cmp(&b.0));
    ev
}

/// 20 s of stream, the encoder away for 10 s, then 10 s more after a reconnect (timestamps
/// restarting from 0). Wall clock = AST + when each unit arrived. `end`: the event stopped.
fn presentation(end: bool) -> Presentation {
    let mut pres = Presentation::new(true, AST, Duration::from_secs(30), Duration::from_secs(2));
    let mut p = Packager::new(PackagerConfig::default());
    let feed = |pres: &mut Presentation, outs: Vec<Output>, wall: f64| {
        for o in &outs {
            pres.apply(o, AST + Duration::from_secs_f64(wall));
        }
    };
    feed(&mut pres, p.push(MediaEvent::Tracks(tracks())), 0.0);
    for (t, ev) in av(20, 0) {
        feed(&mut pres, p.push(ev), t + 0.05);
    }
    feed(&mut pres, p.push(MediaEvent::Discontinuity), 30.0);
    for (t, ev) in av(10, 0) {
        feed(&mut pres, p.push(ev), 30.0 + t + 0.05);
    }
    if end {
        feed(&mut pres, p.push(MediaEvent::End), 40.1);
        pres.live = false;
    } else {
        pres.trim_to_window();
    }
    pres
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)");
}

fn media_playlist(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MediaPlaylist(m)) => m,
        other => panic!("not a media playlist: {other:?}"),
    }
}

#[test]
fn live_hls_multivariant() {
    let pres = presentation(false);
    let text = hls_multivariant(&pres);
    golden("live_multivariant.m3u8", &text);
    let Ok(Playlist::MasterPlaylist(m)) = m3u8_rs::parse_playlist_res(text.as_bytes()) else { panic!("{text}") };
    assert!(m.independent_segments);
    assert_eq!(m.alternatives.len(), 1);
    assert_eq!(m.alternatives[0].uri.as_deref(), Some("audio/index.m3u8"));
    assert_eq!(m.variants.len(), 2);
    let v = &m.variants[0];
    assert_eq!(v.uri, "video/index.m3u8");
    assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(v.audio.as_deref(), Some("audio"));
    assert_eq!(v.frame_rate, Some(30.0));
    assert!(v.bandwidth >= v.average_bandwidth.unwrap());
    assert_eq!(m.variants[1].codecs.as_deref(), Some("mp4a.40.2"));
}

#[test]
fn live_media_playlist_with_a_discontinuity() {
    let pres = presentation(false);
    let text = hls_media(&pres, "video").unwrap();
    golden("live_video_discontinuity.m3u8", &text);
    golden("live_audio_discontinuity.m3u8", &hls_media(&pres, "audio").unwrap());
    let m = media_playlist(&text);
    assert!(!m.end_list && m.playlist_type.is_none());
    assert_eq!(m.target_duration, 2);
    // The window (30 s) ends at the live edge (38 s): 2 s segments ending after 8 s.
    assert_eq!(m.media_sequence, 5);
    assert_eq!(m.discontinuity_sequence, 0);
    let disc: Vec<usize> = (0..m.segments.len()).filter(|&i| m.segments[i].discontinuity).collect();
    assert_eq!(disc, [6]);
    assert_eq!(m.segments[6].map.as_ref().unwrap().uri, "init-1.mp4");
    assert_eq!(m.segments[0].map.as_ref().unwrap().uri, "init-0.mp4");
    // Wall clock after the gap: the encoder came back at 30 s.
    let pdt = |i: usize| m.segments[i].program_date_time.unwrap().timestamp_millis();
    assert_eq!(pdt(0), (AST + Duration::from_secs(8)).unix_timestamp() * 1000);
    assert_eq!(pdt(6), (AST + Duration::from_secs(30)).unix_timestamp() * 1000);
    assert!(m.segments.iter().all(|s| (s.duration - 2.0).abs() < 1e-6));
    // Audio segments end on AAC frames near the video cuts; the target still rounds to 2.
    let a = media_playlist(&hls_media(&pres, "audio").unwrap());
    assert_eq!(a.target_duration, 2);
    assert_eq!((a.media_sequence, a.segments.len()), (5, 10));
}

#[test]
fn discontinuity_sequence_counts_periods_that_slid_out() {
    let mut pres = presentation(false);
    pres.window = Duration::from_secs(8);
    pres.trim_to_window();
    let m = media_playlist(&hls_media(&pres, "video").unwrap());
    assert_eq!(m.discontinuity_sequence, 1);
    assert!(m.segments.iter().all(|s| !s.discontinuity));
    assert_eq!(m.segments[0].map.as_ref().unwrap().uri, "init-1.mp4");
    assert_eq!(m.media_sequence, 11);
    // The audio playlist agrees (same window, same numbering of discontinuities).
    let a = media_playlist(&hls_media(&pres, "audio").unwrap());
    assert_eq!(a.discontinuity_sequence, 1);
}

#[test]
fn vod_media_playlist() {
    let pres = presentation(true);
    let text = hls_media(&pres, "video").unwrap();
    golden("vod_video.m3u8", &text);
    let m = media_playlist(&text);
    assert!(m.end_list);
    assert_eq!(m.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    assert_eq!((m.media_sequence, m.segments.len()), (1, 15));
    assert_eq!(m.segments.iter().filter(|s| s.discontinuity).count(), 1);
}

/// A parsed MPD: per Period its start and, per Representation, its segments' presentation
/// times (Period@start + (t - presentationTimeOffset) / timescale) and numbers.
#[derive(Debug, Default)]
struct Mpd {
    attrs: Vec<(String, String)>,
    periods: Vec<MpdPeriod>,
}

/// (number, presentation time, duration) in seconds.
type MpdSegment = (u64, f64, f64);

#[derive(Debug, Default)]
struct MpdPeriod {
    id: String,
    start: f64,
    reps: Vec<(String, Vec<MpdSegment>)>,
}

fn parse_xs_duration(v: &str) -> f64 {
    v.strip_prefix("PT").and_then(|v| v.strip_suffix('S')).unwrap().parse().unwrap()
}

fn parse_mpd(text: &str) -> Mpd {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut mpd = Mpd::default();
    let (mut timescale, mut pto, mut number, mut t) = (1u64, 0u64, 0u64, 0u64);
    loop {
        let ev = reader.read_event().expect("well-formed XML");
        let (e, _empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::Eof => break,
            _ => continue,
        };
        let attr = |name: &str| {
            e.attributes()
                .map(|a| a.unwrap())
                .find(|a| a.key.as_ref() == name.as_bytes())
                .map(|a| a.unescape_value().unwrap().into_owned())
        };
        match e.name().as_ref() {
            b"MPD" => {
                mpd.attrs = e
                    .attributes()
                    .map(|a| a.unwrap())
                    .map(|a| {
                        (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), a.unescape_value().unwrap().into_owned())
                    })
                    .collect()
            }
            b"Period" => mpd.periods.push(MpdPeriod {
                id: attr("id").unwrap(),
                start: parse_xs_duration(&attr("start").unwrap()),
                reps: Vec::new(),
            }),
            b"Representation" => mpd.periods.last_mut().unwrap().reps.push((attr("id").unwrap(), Vec::new())),
            b"SegmentTemplate" => {
                timescale = attr("timescale").unwrap().parse().unwrap();
                pto = attr("presentationTimeOffset").unwrap().parse().unwrap();
                number = attr("startNumber").unwrap().parse().unwrap();
                assert_eq!(attr("media").unwrap(), "$RepresentationID$/$Number$.m4s");
                let period = mpd.periods.last().unwrap();
                assert_eq!(attr("initialization").unwrap(), format!("$RepresentationID$/init-{}.mp4", period.id));
            }
            b"S" => {
                if let Some(v) = attr("t") {
                    t = v.parse().unwrap();
                }
                let d: u64 = attr("d").unwrap().parse().unwrap();
                let r: u64 = attr("r").map_or(0, |v| v.parse().unwrap());
                let period = mpd.periods.last_mut().unwrap();
                let start = period.start;
                for _ in 0..=r {
                    assert!(t >= pto, "segment before the period start");
                    let at = start + (t - pto) as f64 / timescale as f64;
                    period.reps.last_mut().unwrap().1.push((number, at, d as f64 / timescale as f64));
                    number += 1;
                    t += d;
                }
            }
            _ => {}
        }
    }
    mpd
}

fn mpd_attr<'a>(mpd: &'a Mpd, name: &str) -> Option<&'a str> {
    mpd.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn live_dash_mpd_with_two_periods() {
    let pres = presentation(false);
    let now = AST + Duration::from_secs(40);
    let opts = DashOptions { utc_timing_url: Some("/time".into()), ..DashOptions::default() };
    let text = dash_mpd(&pres, now, &opts);
    golden("live_two_periods.mpd", &text);
    let mpd = parse_mpd(&text);
    assert_eq!(mpd_attr(&mpd, "type"), Some("dynamic"));
    assert_eq!(mpd_attr(&mpd, "availabilityStartTime"), Some("2024-05-01T12:00:00.000Z"));
    assert_eq!(mpd_attr(&mpd, "timeShiftBufferDepth"), Some("PT30S"));
    assert!(text.contains("<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"/time\"/>"));
    assert_eq!(mpd.periods.len(), 2);
    assert_eq!((mpd.periods[0].start, mpd.periods[1].start), (0.0, 30.0));
    // Each segment's presentation time is its wall clock since AST (the HLS program date
    // time), and its number is its seq.
    for period in &mpd.periods {
        for (rep, segs) in &period.reps {
            for &(number, at, _) in segs {
                let seg = pres.tracks[rep].segments.iter().find(|s| s.seq == number).unwrap();
                let pdt = seg.program_date_time.unwrap() - AST;
                assert!((pdt.as_seconds_f64() - at).abs() < 0.001, "{rep} #{number}: {at} vs {pdt}");
            }
        }
    }
    // Live segments stay inside the time-shift buffer; the newest ends at the live edge.
    let last = mpd.periods[1].reps[0].1.last().unwrap();
    assert!((last.1 + last.2 - 38.0).abs() < 0.001);
}

#[test]
fn vod_mpd() {
    let pres = presentation(true);
    let text = dash_mpd(&pres, AST + Duration::from_secs(41), &DashOptions::default());
    golden("vod.mpd", &text);
    let mpd = parse_mpd(&text);
    assert_eq!(mpd_attr(&mpd, "type"), Some("static"));
    assert_eq!(mpd_attr(&mpd, "mediaPresentationDuration"), Some("PT30S"));
    assert!(mpd_attr(&mpd, "availabilityStartTime").is_none() && !text.contains("UTCTiming"));
    // The VOD timeline has no gap: period 1 starts where period 0 ended, for every track.
    assert_eq!((mpd.periods[0].start, mpd.periods[1].start), (0.0, 20.0));
    for (rep, segs) in &mpd.periods[0].reps {
        let (_, at, d) = *segs.last().unwrap();
        let next = mpd.periods[1].reps.iter().find(|(r, _)| r == rep).unwrap().1[0];
        assert!(next.1 >= at + d - 0.001 && next.1 - (at + d) < 0.025, "{rep}: {at}+{d} -> {}", next.1);
    }
    let numbers: Vec<u64> = mpd.periods.iter().flat_map(|p| p.reps[0].1.iter().map(|s| s.0)).collect();
    assert_eq!(numbers, (1..=15).collect::<Vec<_>>());
    // Period starts agree with the packager's media timeline.
    assert_eq!(pres.periods[1].media_start, MediaTime::new(20, 1));
}

/// Low latency: 21.5 s of stream with 334 ms parts, the segment 20–22 s still being written.
fn ll_presentation() -> Presentation {
    let mut pres = Presentation::new(true, AST, Duration::from_secs(30), Duration::from_secs(2));
    pres.part_target = Some(Duration::from_millis(334));
    let cfg = PackagerConfig { part_target: pres.part_target, ..PackagerConfig::default() };
    let mut p = Packager::new(cfg);
    for o in p.push(MediaEvent::Tracks(tracks())) {
        pres.apply(&o, AST);
    }
    for (t, ev) in av(22, 0).into_iter().filter(|(t, _)| *t < 21.5) {
        for o in p.push(ev) {
            pres.apply(&o, AST + Duration::from_secs_f64(t + 0.05));
        }
    }
    pres.trim_to_window();
    pres
}

#[test]
fn low_latency_media_playlist() {
    let pres = ll_presentation();
    let text = hls_media(&pres, "video").unwrap();
    golden("ll_video.m3u8", &text);
    golden("ll_audio.m3u8", &hls_media(&pres, "audio").unwrap());
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"), "{text}");
    assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.002\n"));
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.334\n"));
    // Parts of the newest three complete segments (8, 9, 10) and of the open one (11): six
    // parts per 2 s segment, every third one starting a GOP; 1.5 s of segment 11 = 4 parts.
    let parts: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-PART:")).collect();
    assert_eq!(parts.len(), 3 * 6 + 4, "{text}");
    assert_eq!(parts[0], "#EXT-X-PART:DURATION=0.33333,URI=\"8.0.m4s\",INDEPENDENT=YES");
    assert_eq!(parts[1], "#EXT-X-PART:DURATION=0.33333,URI=\"8.1.m4s\"");
    assert_eq!(parts.iter().filter(|l| l.ends_with("INDEPENDENT=YES")).count(), 3 * 2 + 2);
    assert!(text.contains("#EXTINF:2.000,\n10.m4s\n#EXT-X-PART:DURATION=0.33333,URI=\"11.0.m4s\",INDEPENDENT=YES\n"));
    assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"11.4.m4s\"\n"));
    assert!(text.ends_with("#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=11,LAST-PART=3\n"));
    // m3u8-rs still reads it as a playlist of ten complete segments.
    let m = media_playlist(&text);
    assert_eq!((m.media_sequence, m.segments.len()), (1, 10));
    // A normal-mode presentation of the same stream has none of it.
    let mut normal = pres.clone();
    normal.part_target = None;
    let plain = hls_media(&normal, "video").unwrap();
    assert!(!plain.contains("EXT-X-PART") && !plain.contains("SERVER-CONTROL") && plain.contains("VERSION:7"));
}

#[test]
fn low_latency_delta_update_skips_old_segments() {
    let pres = ll_presentation();
    let full = hls_media(&pres, "video").unwrap();
    let delta = edge_cmaf::manifest::hls_media_with(&pres, "video", true).unwrap();
    golden("ll_video_delta.m3u8", &delta);
    // 20 s of complete segments; the newest 12 s (six segments) stay.
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n#EXT-X-MAP:URI=\"init-0.mp4\"\n"), "{delta}");
    assert_eq!(delta.matches("#EXTINF:").count(), 6);
    assert!(delta.contains("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z"));
    // Everything after the skipped segments is the same as in the full playlist.
    let tail =
        |t: &str| t[t.find("#EXT-X-PROGRAM-DATE-TIME").unwrap()..].lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(tail(&full).ends_with(&tail(&delta)));
    // No skipping without low latency, or when nothing is old enough.
    let mut normal = pres.clone();
    normal.part_target = None;
    assert_eq!(edge_cmaf::manifest::hls_media_with(&normal, "video", true), hls_media(&normal, "video"));
}

#[test]
fn low_latency_mpd() {
    let pres = ll_presentation();
    let opts = DashOptions { utc_timing_url: Some("/time".into()), ..Default::default() };
    let text = dash_mpd(&pres, AST + Duration::from_secs(22), &opts);
    golden("ll.mpd", &text);
    assert!(text.contains("<ServiceDescription id=\"0\">\n    <Latency referenceId=\"0\" target=\"1502\""), "{text}");
    assert!(text.contains("suggestedPresentationDelay=\"PT1.502S\""));
    assert!(text.contains("minimumUpdatePeriod=\"PT0.334S\""));
    assert_eq!(text.matches("availabilityTimeOffset=\"1.666\" availabilityTimeComplete=\"false\"").count(), 2);
    assert!(text.contains("UTCTiming"));
    // The timeline announces the open segment 11 (20 s) with the nominal duration.
    assert!(text.contains("<S t=\"0\" d=\"180000\" r=\"10\"/>"), "{text}");
    let parsed = parse_mpd(&text);
    assert!(!parsed.periods.is_empty());
}
