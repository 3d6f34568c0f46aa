use std::time::Instant;

use mp4_atom::{Decode, Ftyp, Moof, Moov, Styp};

use super::*;

const AVCC: &[u8] = &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0x00, 0x1f, 1, 0, 2, 0x68, 0xee];
const ASC: &[u8] = &[0x11, 0x90];
const V_TS: u32 = 90_000;
const FRAME: i64 = 3000; // 30 fps
const A_TS: u32 = 48_000;
const AAC_FRAME: i64 = 1024;

fn video_track(id: u32) -> Track {
    Track {
        id,
        codec: Codec::H264,
        timescale: V_TS,
        config: Bytes::from_static(AVCC),
        codec_string: String::new(),
        width: 1280,
        height: 720,
        sample_rate: 0,
        channels: 0,
        bitrate: 2_500_000,
    }
}

fn audio_track(id: u32) -> Track {
    Track {
        id,
        codec: Codec::Aac,
        timescale: A_TS,
        config: Bytes::from_static(ASC),
        codec_string: "mp4a.40.2".into(),
        width: 0,
        height: 0,
        sample_rate: 48_000,
        channels: 2,
        bitrate: 128_000,
    }
}

fn unit(track: u32, dts: i64, pts: i64, keyframe: bool) -> MediaEvent {
    // An AVCC-looking payload whose bytes identify the unit.
    let mut data = vec![0, 0, 0, 4];
    data.extend_from_slice(&(dts as u32).to_be_bytes());
    MediaEvent::Unit(AccessUnit { track, dts, pts, keyframe, data: data.into(), arrival: Instant::now() })
}

/// `secs` seconds of 30 fps video (keyframe every `gop` frames) and AAC audio, interleaved by
/// time, starting at `v0`/`a0` in each track's timescale.
fn av(secs: i64, gop: i64, v0: i64, a0: i64) -> Vec<MediaEvent> {
    let frames = secs * 30;
    let audio_frames = secs * A_TS as i64 / AAC_FRAME;
    let mut events: Vec<(f64, MediaEvent)> = Vec::new();
    for n in 0..frames {
        let dts = v0 + n * FRAME;
        events.push((dts as f64 / V_TS as f64, unit(1, dts, dts, n % gop == 0)));
    }
    for n in 0..audio_frames {
        let dts = a0 + n * AAC_FRAME;
        events.push((dts as f64 / A_TS as f64, unit(2, dts, dts, true)));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    events.into_iter().map(|(_, e)| e).collect()
}

fn run(p: &mut Packager, events: Vec<MediaEvent>) -> Vec<Output> {
    events.into_iter().flat_map(|e| p.push(e)).collect()
}

fn segments(outs: &[Output], track: u32) -> Vec<&MediaSegment> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Segment(s) if s.track_id == track => Some(s),
            _ => None,
        })
        .collect()
}

struct Parsed {
    moof: Moof,
    data_offset: usize,
    mdat: Vec<u8>,
}

fn parse_segment(data: &[u8]) -> Parsed {
    let mut buf = data;
    let styp = Styp::decode(&mut buf).expect("styp");
    assert_eq!(styp.major_brand, b"cmfs".into());
    let before = buf.len();
    let moof = Moof::decode(&mut buf).expect("moof");
    let moof_len = before - buf.len();
    let size = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(&buf[4..8], b"mdat");
    assert_eq!(size, buf.len(), "mdat is the rest of the segment");
    Parsed { moof, data_offset: moof_len + 8, mdat: buf[8..].to_vec() }
}

fn trun(p: &Parsed) -> Vec<mp4_atom::TrunEntry> {
    p.moof.traf[0].trun[0].samples.iter().collect()
}

fn tfdt(p: &Parsed) -> u64 {
    p.moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time
}

#[test]
fn init_segments_parse_back_with_one_track_each() {
    let mut p = Packager::new(PackagerConfig::default());
    let outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    assert_eq!(outs.len(), 2);
    for (o, (id, ts, handler)) in outs.iter().zip([(1, V_TS, b"vide"), (2, A_TS, b"soun")]) {
        let Output::Init(init) = o else { panic!("{o:?}") };
        assert_eq!((init.track_id, init.period, init.period_start), (id, 0, MediaTime::ZERO));
        let mut buf = &init.data[..];
        let ftyp = Ftyp::decode(&mut buf).unwrap();
        assert_eq!(ftyp.major_brand, b"cmfc".into());
        assert!(ftyp.compatible_brands.contains(&b"iso6".into()) && ftyp.compatible_brands.contains(&b"cmf2".into()));
        let moov = Moov::decode(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(moov.trak.len(), 1);
        let trak = &moov.trak[0];
        assert_eq!(trak.tkhd.track_id, id);
        assert_eq!(trak.mdia.mdhd.timescale, ts);
        assert_eq!(&trak.mdia.hdlr.handler, &(*handler).into());
        assert_eq!(moov.mvex.as_ref().unwrap().trex[0].track_id, id);
        match &trak.mdia.minf.stbl.stsd.codecs[0] {
            mp4_atom::Codec::Avc1(avc1) => {
                assert_eq!((avc1.visual.width, avc1.visual.height), (1280, 720));
                assert_eq!(avc1.avcc.avc_profile_indication, 0x64);
                assert_eq!(init.rendition.codec, "avc1.64001f");
                assert_eq!(init.rendition.id, "video");
            }
            mp4_atom::Codec::Mp4a(mp4a) => {
                assert_eq!(mp4a.audio.channel_count, 2);
                let ds = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
                assert_eq!(ds.raw, ASC);
                assert_eq!(init.rendition.id, "audio");
                assert_eq!((init.rendition.sample_rate, init.rendition.channels), (48_000, 2));
            }
            other => panic!("unexpected sample entry {other:?}"),
        }
    }
}

#[test]
fn segments_parse_back_and_align_across_tracks() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    outs.extend(run(&mut p, av(10, 30, 0, 0)));
    outs.extend(p.push(MediaEvent::End));
    let video = segments(&outs, 1);
    let audio = segments(&outs, 2);
    assert_eq!(video.len(), 5, "2 s segments from 1 s GOPs");
    assert_eq!(audio.len(), 5);

    let mut next_dts = 0;
    for (k, seg) in video.iter().enumerate() {
        assert_eq!(seg.seq, k as u64 + 1);
        assert_eq!(seg.start, next_dts, "contiguous");
        assert_eq!(seg.duration, 2 * V_TS as u64);
        assert!(seg.independent);
        assert_eq!(seg.samples, 60);
        let parsed = parse_segment(&seg.data);
        assert_eq!(parsed.moof.mfhd.sequence_number, seg.seq as u32);
        let traf = &parsed.moof.traf[0];
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfhd.track_id, 1);
        assert_eq!(tfdt(&parsed), seg.start);
        assert_eq!(traf.trun[0].data_offset, Some(parsed.data_offset as i32));
        let entries = trun(&parsed);
        assert_eq!(entries.len(), 60);
        for (n, e) in entries.iter().enumerate() {
            assert_eq!(e.flags, Some(if n % 30 == 0 { FLAGS_SYNC } else { FLAGS_NON_SYNC }));
            assert_eq!(e.duration, Some(FRAME as u32));
            assert_eq!(e.cts, Some(0));
        }
        let sizes: u32 = entries.iter().map(|e| e.size.unwrap()).sum();
        assert_eq!(sizes as usize, parsed.mdat.len());
        // The first sample's bytes are the unit with this DTS.
        assert_eq!(&parsed.mdat[4..8], &(seg.start as u32).to_be_bytes());
        next_dts = seg.start + seg.duration;
    }

    // Audio cuts land on the AAC frame boundary nearest each video cut.
    let mut next = 0;
    for (v, a) in video.iter().zip(&audio) {
        assert_eq!(a.start, next);
        let cut = MediaTime::new(v.start + v.duration, V_TS).rescale_round(A_TS) as i64;
        let end = (a.start + a.duration) as i64;
        if a.seq < audio.len() as u64 {
            assert!((end - cut).abs() <= AAC_FRAME / 2, "audio end {end} vs video cut {cut}");
            assert_eq!(end % AAC_FRAME, 0);
        }
        let parsed = parse_segment(&a.data);
        let entries = trun(&parsed);
        assert!(entries.iter().all(|e| e.flags == Some(FLAGS_SYNC) && e.cts.is_none()));
        assert_eq!(entries.iter().map(|e| u64::from(e.duration.unwrap())).sum::<u64>(), a.duration);
        next = a.start + a.duration;
    }
    assert_eq!(p.dropped(), 0);
}

#[test]
fn audio_running_ahead_of_video_still_aligns() {
    // Audio arrives 300 ms before video of the same media time.
    let mut events: Vec<(f64, MediaEvent)> = Vec::new();
    for n in 0..180 {
        let dts = n * FRAME;
        events.push((dts as f64 / V_TS as f64, unit(1, dts, dts, n % 60 == 0)));
    }
    for n in 0..280 {
        let dts = n * AAC_FRAME;
        events.push((dts as f64 / A_TS as f64 - 0.3, unit(2, dts, dts, true)));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    outs.extend(run(&mut p, events.into_iter().map(|(_, e)| e).collect()));
    outs.extend(p.flush());
    let video = segments(&outs, 1);
    let audio = segments(&outs, 2);
    assert_eq!(video.len(), 3);
    for (v, a) in video.iter().zip(&audio).take(2) {
        let cut = MediaTime::new(v.start + v.duration, V_TS).rescale_round(A_TS) as i64;
        assert!(((a.start + a.duration) as i64 - cut).abs() <= AAC_FRAME / 2);
    }
}

#[test]
fn b_frames_get_signed_composition_offsets() {
    let mut p = Packager::new(PackagerConfig::default());
    p.push(MediaEvent::Tracks(vec![video_track(1)]));
    // Decode order I P B B P B B, two frames of reorder delay: PTS = DTS + 2 frames for I.
    let order = [0, 3, 1, 2, 6, 4, 5];
    let mut outs = Vec::new();
    for (n, &display) in order.iter().enumerate() {
        let dts = n as i64 * FRAME - 2 * FRAME;
        let pts = display * FRAME;
        outs.extend(p.push(unit(1, dts, pts, n == 0)));
    }
    outs.extend(p.flush());
    let seg = segments(&outs, 1)[0];
    assert_eq!(seg.start, 0, "the first frame is presented at the period start");
    let entries = trun(&parse_segment(&seg.data));
    let cts: Vec<i64> = entries.iter().map(|e| e.cts.unwrap()).collect();
    assert_eq!(cts, [0, 2, -1, -1, 2, -1, -1].map(|f| f * FRAME));
    // Presentation order restored: dts + cts.
    let pts: Vec<i64> = (0..7).map(|n| n * FRAME + cts[n as usize]).collect();
    assert_eq!(pts, order.map(|d| d * FRAME));
}

#[test]
fn discontinuity_rebases_the_next_period_onto_the_timeline() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    outs.extend(run(&mut p, av(4, 30, 0, 0)));
    // The encoder reconnects: its timestamps start again, at an arbitrary value.
    outs.extend(p.push(MediaEvent::Discontinuity));
    outs.extend(run(&mut p, av(4, 30, 9 * 90_000, 9 * 48_000)));
    // And changes parameters: a new Tracks is a new period too.
    outs.extend(p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)])));
    outs.extend(run(&mut p, av(4, 30, 4_500_000, 2_400_000)));
    outs.extend(p.push(MediaEvent::End));

    let inits: Vec<&InitSegment> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Init(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(inits.iter().map(|i| i.period).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2]);
    for track in [1, 2] {
        let segs = segments(&outs, track);
        for w in segs.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1, "seq continues across periods");
            assert!(w[1].start >= w[0].start + w[0].duration, "never backwards");
            let (a, b) = (parse_segment(&w[0].data), parse_segment(&w[1].data));
            assert_eq!(tfdt(&b), w[1].start);
            assert!(tfdt(&b) >= tfdt(&a) + w[0].duration);
        }
        // A period's first segment starts at the period start (the latest end of the last).
        for period in [1, 2] {
            let init = inits.iter().find(|i| i.period == period && i.track_id == track).unwrap();
            let first = segs.iter().find(|s| s.period == period).unwrap();
            let prev = segs.iter().rev().find(|s| s.period == period - 1).unwrap();
            let ts = first.timescale;
            assert_eq!(first.start, init.period_start.rescale_ceil(ts));
            assert!(init.period_start >= MediaTime::new(prev.start + prev.duration, ts));
        }
    }
    // Video: the period ends one frame after its last frame, so periods abut exactly.
    let v = segments(&outs, 1);
    assert_eq!(v.iter().map(|s| s.start).collect::<Vec<_>>(), [0, 180_000, 360_000, 540_000, 720_000, 900_000]);
}

#[test]
fn long_gop_is_reported_once_per_episode() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1)]));
    // GOPs of 4 s, 4 s, then 2 s, then 6 s.
    let keys = [0, 120, 240, 300, 480];
    for n in 0..540 {
        outs.extend(p.push(unit(1, n * FRAME, n * FRAME, keys.contains(&n))));
    }
    outs.extend(p.flush());
    let long: Vec<&LongGop> = outs
        .iter()
        .filter_map(|o| match o {
            Output::LongGop(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(long.len(), 2);
    assert_eq!(long[0].gop, Duration::from_secs(4));
    assert_eq!(long[1].gop, Duration::from_secs(6));
    assert_eq!(long[0].target, Duration::from_secs(2));
    // Segments follow the GOPs.
    let d: Vec<u64> = segments(&outs, 1).iter().map(|s| s.duration / V_TS as u64).collect();
    assert_eq!(d, [4, 4, 2, 6, 2]);
}

#[test]
fn a_two_second_gop_with_jittery_timestamps_cuts_every_gop() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1)]));
    // Millisecond timestamps rounded down make the keyframe land 1 ms early.
    for n in 0..240i64 {
        let dts = (n * 1000 / 30 - i64::from(n % 60 == 0 && n > 0)) * 90;
        outs.extend(p.push(unit(1, dts, dts, n % 60 == 0)));
    }
    outs.extend(p.flush());
    assert_eq!(segments(&outs, 1).len(), 4);
    assert!(!outs.iter().any(|o| matches!(o, Output::LongGop(_))));
}

#[test]
fn audio_only_and_video_only_streams_cut_on_their_own() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![audio_track(1)]));
    for n in 0..470 {
        outs.extend(p.push(unit(1, n * AAC_FRAME, n * AAC_FRAME, true)));
    }
    outs.extend(p.flush());
    let segs = segments(&outs, 1);
    assert_eq!(segs.len(), 5);
    assert!(segs[..4].iter().all(|s| s.duration.abs_diff(2 * A_TS as u64) <= AAC_FRAME as u64 / 2));

    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1)]));
    for n in 0..120 {
        outs.extend(p.push(unit(1, n * FRAME, n * FRAME, n % 30 == 0)));
    }
    outs.extend(p.flush());
    assert_eq!(segments(&outs, 1).len(), 2);
}

#[test]
fn video_waits_for_a_keyframe_and_drops_non_monotonic_units() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1)]));
    outs.extend(p.push(unit(1, 0, 0, false)));
    outs.extend(p.push(unit(1, FRAME, FRAME, true)));
    outs.extend(p.push(unit(1, 2 * FRAME, 2 * FRAME, false)));
    outs.extend(p.push(unit(1, 2 * FRAME, 2 * FRAME, false))); // repeated DTS
    outs.extend(p.push(unit(1, 3 * FRAME, 3 * FRAME, false))); // skipped: after a drop, wait for a key
    outs.extend(p.push(unit(1, 4 * FRAME, 4 * FRAME, true)));
    outs.extend(p.push(unit(9, 0, 0, true))); // unknown track
    outs.extend(p.flush());
    assert_eq!(p.dropped(), 4);
    let segs = segments(&outs, 1);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].samples, 3);
    assert_eq!(segs[0].start, 0);
}

#[test]
fn audio_before_the_first_video_keyframe_is_kept() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    // Audio from 0; video's first keyframe 100 ms later.
    outs.extend(run(&mut p, av(3, 30, 9000, 0)));
    outs.extend(p.flush());
    assert_eq!(segments(&outs, 2)[0].start, 0);
    assert_eq!(segments(&outs, 1)[0].start, 9000);
    assert_eq!(p.dropped(), 0);
}

#[test]
fn bad_configuration_rejects_the_track_only() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut bad = video_track(1);
    bad.config = Bytes::from_static(&[1, 2, 3]);
    let mut outs = p.push(MediaEvent::Tracks(vec![bad, audio_track(2)]));
    assert!(matches!(&outs[0], Output::Rejected { track_id: 1, .. }));
    assert!(matches!(&outs[1], Output::Init(i) if i.track_id == 2));
    outs.extend(run(&mut p, av(4, 30, 0, 0)));
    outs.extend(p.flush());
    assert!(segments(&outs, 1).is_empty());
    assert_eq!(segments(&outs, 2).len(), 2, "audio cuts on its own");
}

#[test]
fn resume_continues_numbering_and_time() {
    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    outs.extend(run(&mut p, av(4, 30, 0, 0)));
    outs.extend(p.flush());
    let state = p.resume_state();
    assert_eq!(state.next_period, 1);
    let last_video = *segments(&outs, 1).last().unwrap();

    let mut p = Packager::resume(PackagerConfig::default(), state);
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    let Output::Init(init) = &outs[0] else { panic!() };
    assert_eq!(init.period, 1);
    outs.extend(run(&mut p, av(4, 30, 0, 0)));
    outs.extend(p.flush());
    let first = segments(&outs, 1)[0];
    assert_eq!(first.seq, last_video.seq + 1);
    assert_eq!(first.start, last_video.start + last_video.duration);
}

#[test]
fn custom_rendition_ids_and_a_unit_after_flush_opens_a_period() {
    let cfg = PackagerConfig { rendition_ids: vec![(1, "video_3500000".into())], ..PackagerConfig::default() };
    let mut p = Packager::new(cfg);
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), video_track(3)]));
    let ids: Vec<String> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Init(i) => Some(i.rendition.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["video_3500000", "video_3"]);
    outs.extend(p.flush());
    assert_eq!(p.period(), None);
    outs = p.push(unit(1, 0, 0, true));
    assert!(matches!(&outs[0], Output::Init(i) if i.period == 1));
    assert_eq!(p.period(), Some(1));
}

#[test]
fn a_segment_holds_only_its_own_samples_and_max_segment_caps_it() {
    let cfg = PackagerConfig { max_segment: Duration::from_secs(5), ..PackagerConfig::default() };
    let mut p = Packager::new(cfg);
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1)]));
    for n in 0..360 {
        outs.extend(p.push(unit(1, n * FRAME, n * FRAME, n == 0)));
        let held = p.tracks[0].open.as_ref().map_or(0, |o| o.samples.len());
        assert!(held <= 150, "never more than one segment's samples ({held})");
    }
    outs.extend(p.flush());
    let segs = segments(&outs, 1);
    assert_eq!(segs.iter().map(|s| s.independent).collect::<Vec<_>>(), [true, false, false]);
    assert!(!outs.iter().any(|o| matches!(o, Output::LongGop(_))), "no keyframe, no GOP measured");
}

// ---- Low latency: parts ----

fn ll_config(part_ms: u64) -> PackagerConfig {
    PackagerConfig { part_target: Some(Duration::from_millis(part_ms)), ..PackagerConfig::default() }
}

fn parts(outs: &[Output], track: u32) -> Vec<&MediaPart> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Part(p) if p.track_id == track => Some(p),
            _ => None,
        })
        .collect()
}

/// moof + mdat chunks of a segment (after an optional styp), as (tfdt, sample count).
fn chunks(data: &[u8]) -> Vec<(u64, usize)> {
    let mut buf = data;
    if &buf[4..8] == b"styp" {
        Styp::decode(&mut buf).expect("styp");
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let moof = Moof::decode(&mut buf).expect("moof");
        let size = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(&buf[4..8], b"mdat");
        let n = moof.traf[0].trun[0].samples.len();
        out.push((moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time, n));
        buf = &buf[size..];
    }
    out
}

#[test]
fn parts_are_cut_at_the_target_and_at_keyframes_and_make_up_their_segment() {
    // 1 s GOPs, 2 s segments, 334 ms parts: 30 fps gives three 10-frame parts per GOP.
    let mut p = Packager::new(ll_config(334));
    let mut outs = p.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
    outs.extend(run(&mut p, av(6, 30, 0, 0)));
    outs.extend(p.flush());
    for track in [1, 2] {
        let segs = segments(&outs, track);
        let prts = parts(&outs, track);
        assert!(segs.len() >= 3, "track {track}: {} segments", segs.len());
        let target = duration_to_ticks(Duration::from_millis(334), if track == 1 { V_TS } else { A_TS });
        for seg in &segs {
            let mine: Vec<&&MediaPart> = prts.iter().filter(|x| x.seq == seg.seq).collect();
            assert!(!mine.is_empty(), "segment {} has parts", seg.seq);
            // Byte identity: the segment is its parts back to back.
            let joined: Vec<u8> = mine.iter().flat_map(|x| x.data.iter().copied()).collect();
            assert_eq!(joined, seg.data.to_vec(), "track {track} segment {}", seg.seq);
            assert_eq!(mine.iter().map(|x| x.index).collect::<Vec<_>>(), (0..mine.len() as u32).collect::<Vec<_>>());
            assert_eq!(&mine[0].data[4..8], b"styp", "the first part starts the segment");
            assert!(mine[1..].iter().all(|x| &x.data[4..8] == b"moof"));
            // Contiguous, within the target, covering the segment.
            let mut t = seg.start;
            for x in &mine {
                assert_eq!(x.start, t);
                assert!(x.duration <= target, "part {}.{} is {} ticks", x.seq, x.index, x.duration);
                assert_eq!(chunks(&x.data)[0].0, x.start, "tfdt");
                t += x.duration;
            }
            assert_eq!(t, seg.start + seg.duration);
            assert_eq!(chunks(&seg.data).len(), mine.len());
        }
        if track == 1 {
            // Every GOP starts an independent part; the others are not independent.
            for x in &prts {
                let key = (x.start % (30 * FRAME as u64)) == 0;
                assert_eq!(x.independent, key, "part {}.{}", x.seq, x.index);
                assert_eq!(x.duration, 10 * FRAME as u64);
            }
        }
    }
    // The emitted order: a part is out before its segment.
    let first_seg = outs.iter().position(|o| matches!(o, Output::Segment(s) if s.track_id == 1)).unwrap();
    assert!(outs[..first_seg].iter().filter(|o| matches!(o, Output::Part(x) if x.track_id == 1)).count() >= 6);
}

#[test]
fn low_latency_cuts_the_same_segments_as_normal_mode() {
    // Audio running ahead of video (it is cut where video is cut, after the fact): parts must
    // never hold audio that a later video cut moves into the next segment.
    for (v0, a0) in [(0, 0), (0, 12_000), (9_000, 0)] {
        let mut normal = Packager::new(PackagerConfig::default());
        let mut ll = Packager::new(ll_config(334));
        let mut a = normal.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
        let mut b = ll.push(MediaEvent::Tracks(vec![video_track(1), audio_track(2)]));
        a.extend(run(&mut normal, av(7, 30, v0, a0)));
        b.extend(run(&mut ll, av(7, 30, v0, a0)));
        a.extend(normal.flush());
        b.extend(ll.flush());
        for track in [1, 2] {
            let key = |s: &&MediaSegment| (s.seq, s.start, s.duration, s.samples, s.independent);
            let sa: Vec<_> = segments(&a, track).iter().map(key).collect();
            let sb: Vec<_> = segments(&b, track).iter().map(key).collect();
            assert_eq!(sa, sb, "track {track}, offsets {v0}/{a0}");
            // The same samples in the same order: the mdat payloads match.
            for (x, y) in segments(&a, track).iter().zip(segments(&b, track)) {
                let pa = parse_segment(&x.data);
                let total: usize = chunks(&y.data).iter().map(|c| c.1).sum();
                assert_eq!(trun(&pa).len(), total);
            }
            assert!(parts(&b, track).len() > segments(&b, track).len());
            assert!(parts(&a, track).is_empty(), "no parts in normal mode");
        }
    }
}

#[test]
fn an_audio_only_stream_gets_parts_too() {
    let mut p = Packager::new(ll_config(500));
    let mut outs = p.push(MediaEvent::Tracks(vec![audio_track(2)]));
    outs.extend(run(
        &mut p,
        av(5, 30, 0, 0).into_iter().filter(|e| matches!(e, MediaEvent::Unit(u) if u.track == 2)).collect(),
    ));
    outs.extend(p.flush());
    let segs = segments(&outs, 2);
    let prts = parts(&outs, 2);
    assert!(segs.len() >= 2);
    for seg in segs {
        let joined: Vec<u8> = prts.iter().filter(|x| x.seq == seg.seq).flat_map(|x| x.data.iter().copied()).collect();
        assert_eq!(joined, seg.data.to_vec());
    }
    assert!(prts.iter().all(|x| x.duration <= 24_000 && x.independent));
}
