//! Real media through the packager, checked by ffprobe: ffmpeg encodes H.264 (with B-frames)
//! and AAC into raw Annex B / ADTS files, this test splits them into access units, packages
//! them across a discontinuity, concatenates init + segments per track and has ffprobe decode
//! every frame. Skipped (with a message) when ffmpeg/ffprobe are not installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_cmaf::manifest::{self, dash_mpd, hls_media, hls_multivariant};
use edge_cmaf::{DashOptions, MediaSegment, Output, Packager, PackagerConfig, Presentation};
use edge_media::{AccessUnit, Codec, MediaEvent, Track};

const FPS: i64 = 30;
const SECS: i64 = 4;
const V_TS: u32 = 90_000;
const FRAME: i64 = V_TS as i64 / FPS;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success())
}

/// A scratch directory, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("edge-cmaf-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn encode(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let (v, a) = (dir.join("in.h264"), dir.join("in.aac"));
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x180:rate={FPS}:duration={SECS}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate=48000:duration={SECS}"))
        .args(["-map", "0:v", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "2"])
        .args(["-x264-params", "scenecut=0:b-adapt=0:open-gop=0", "-bsf:v", "h264_mp4toannexb", "-f", "h264"])
        .arg(&v)
        .args(["-map", "1:a", "-c:a", "aac", "-ac", "2", "-f", "adts"])
        .arg(&a)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read(v).unwrap(), std::fs::read(a).unwrap())
}

/// NAL units of an Annex B stream (without start codes).
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
            while end > s && data[end - 1] == 0 {
                end -= 1; // trailing zero of a 4-byte start code
            }
            &data[s..end]
        })
        .collect()
}

/// RBSP (emulation prevention bytes removed) of the first `max` bytes of a NAL unit.
fn rbsp(nal: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut zeros = 0;
    for &b in nal.iter().skip(1).take(max) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a>(&'a [u8], usize);

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        let b = (self.0[self.1 / 8] >> (7 - self.1 % 8)) & 1;
        self.1 += 1;
        u32::from(b)
    }
    fn bits(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |v, _| (v << 1) | self.bit())
    }
    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.bit() == 0 {
            zeros += 1;
        }
        (1 << zeros) - 1 + self.bits(zeros)
    }
}

/// What the slice headers need from the SPS (enough for x264's output).
struct Sps {
    log2_max_frame_num: u32,
    poc_type: u32,
    log2_max_poc_lsb: u32,
    frame_mbs_only: bool,
}

fn parse_sps(nal: &[u8]) -> Sps {
    let r = rbsp(nal, 64);
    let mut b = Bits(&r, 0);
    let profile = b.bits(8);
    b.bits(16); // constraint flags, level
    b.ue(); // sps id
    if [100, 110, 122, 244, 44, 83, 86, 118, 128].contains(&profile) {
        let chroma = b.ue();
        if chroma == 3 {
            b.bit();
        }
        b.ue();
        b.ue();
        b.bit();
        assert_eq!(b.bit(), 0, "no scaling matrices in x264's default output");
    }
    let log2_max_frame_num = b.ue() + 4;
    let poc_type = b.ue();
    assert_eq!(poc_type, 0, "x264 with B-frames uses POC type 0");
    let log2_max_poc_lsb = b.ue() + 4;
    b.ue(); // max_num_ref_frames
    b.bit();
    b.ue();
    b.ue(); // width, height in MBs
    let frame_mbs_only = b.bit() == 1;
    Sps { log2_max_frame_num, poc_type, log2_max_poc_lsb, frame_mbs_only }
}

/// pic_order_cnt_lsb of a slice.
fn slice_poc_lsb(nal: &[u8], sps: &Sps) -> u32 {
    let r = rbsp(nal, 32);
    let mut b = Bits(&r, 0);
    b.ue(); // first_mb_in_slice
    b.ue(); // slice_type
    b.ue(); // pps id
    b.bits(sps.log2_max_frame_num);
    if !sps.frame_mbs_only && b.bit() == 1 {
        b.bit();
    }
    if nal[0] & 0x1f == 5 {
        b.ue(); // idr_pic_id
    }
    assert_eq!(sps.poc_type, 0);
    b.bits(sps.log2_max_poc_lsb)
}

struct Video {
    avcc: Vec<u8>,
    /// (dts, pts, keyframe, AVCC sample)
    frames: Vec<(i64, i64, bool, Vec<u8>)>,
}

/// Splits Annex B into access units (a new one at each slice with first_mb_in_slice = 0),
/// turns them into AVCC samples, and derives PTS from the POC (reset at each IDR).
fn video_units(h264: &[u8]) -> Video {
    let nals = nal_units(h264);
    let sps_nal = nals.iter().find(|n| n[0] & 0x1f == 7).expect("SPS");
    let pps_nal = nals.iter().find(|n| n[0] & 0x1f == 8).expect("PPS");
    let sps = parse_sps(sps_nal);
    let mut avcc = vec![1, sps_nal[1], sps_nal[2], sps_nal[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps_nal.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps_nal);
    avcc.push(1);
    avcc.extend_from_slice(&(pps_nal.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps_nal);

    // (keyframe, poc, sample)
    let mut units: Vec<(bool, u32, Vec<u8>)> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for nal in nals {
        let t = nal[0] & 0x1f;
        if (7..=9).contains(&t) {
            continue; // parameter sets live in avcC; AUDs are not needed
        }
        let vcl = t == 1 || t == 5;
        if vcl && rbsp(nal, 1)[0] & 0x80 != 0 {
            // first_mb_in_slice == 0: a new picture.
            units.push((t == 5, slice_poc_lsb(nal, &sps), std::mem::take(&mut pending)));
        }
        let target = if vcl { &mut units.last_mut().unwrap().2 } else { &mut pending };
        target.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        target.extend_from_slice(nal);
    }
    // Display order within each GOP from the POC; decode timestamps lag by the reorder delay.
    let delay = 2 * FRAME;
    let mut frames = Vec::new();
    let mut gop_start = 0;
    for (n, (key, poc, data)) in units.into_iter().enumerate() {
        if key {
            gop_start = n as i64;
        }
        let pts = (gop_start + i64::from(poc / 2)) * FRAME;
        frames.push((n as i64 * FRAME - delay, pts, key, data));
    }
    Video { avcc, frames }
}

/// Raw AAC frames of an ADTS stream, and the AudioSpecificConfig.
fn audio_units(adts: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut asc = Vec::new();
    let mut i = 0;
    while i + 7 <= adts.len() {
        let h = &adts[i..];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "ADTS sync");
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        let len = ((usize::from(h[3]) & 3) << 11) | (usize::from(h[4]) << 3) | (usize::from(h[5]) >> 5);
        if asc.is_empty() {
            let object = (h[2] >> 6) + 1;
            let freq = (h[2] >> 2) & 0xf;
            let chan = ((h[2] & 1) << 2) | (h[3] >> 6);
            asc = vec![(object << 3) | (freq >> 1), ((freq & 1) << 7) | (chan << 3)];
        }
        frames.push(h[header..len].to_vec());
        i += len;
    }
    (asc, frames)
}

fn ffprobe(file: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().expect("ffprobe runs");
    assert!(out.status.success() && out.stderr.is_empty(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ffprobe_decodes_every_frame_across_a_discontinuity() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!("SKIPPED: ffmpeg/ffprobe not installed (apt-get install -y ffmpeg)");
        return;
    }
    let scratch = Scratch::new("ffprobe");
    let dir = &scratch.0;
    let (h264, adts) = encode(dir);
    let video = video_units(&h264);
    let (asc, aac) = audio_units(&adts);
    assert_eq!(video.frames.len() as i64, FPS * SECS);
    assert!(video.frames.iter().any(|f| f.1 < f.0 + 2 * FRAME), "the stream has B-frames");

    let tracks = vec![
        Track {
            id: 1,
            codec: Codec::H264,
            timescale: V_TS,
            config: video.avcc.clone().into(),
            codec_string: String::new(),
            width: 320,
            height: 180,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        },
        Track {
            id: 2,
            codec: Codec::Aac,
            timescale: 48_000,
            config: asc.clone().into(),
            codec_string: String::new(),
            width: 0,
            height: 0,
            sample_rate: 48_000,
            channels: 2,
            bitrate: 0,
        },
    ];
    // The same input twice, as if the encoder reconnected with timestamps from 0 again.
    let mut units: Vec<(f64, AccessUnit)> = Vec::new();
    for (dts, pts, key, data) in &video.frames {
        let au = AccessUnit {
            track: 1,
            dts: *dts,
            pts: *pts,
            keyframe: *key,
            data: Bytes::from(data.clone()),
            arrival: Instant::now(),
        };
        units.push((*dts as f64 / f64::from(V_TS), au));
    }
    for (n, frame) in aac.iter().enumerate() {
        let t = n as i64 * 1024;
        let au = AccessUnit {
            track: 2,
            dts: t,
            pts: t,
            keyframe: true,
            data: Bytes::from(frame.clone()),
            arrival: Instant::now(),
        };
        units.push((t as f64 / 48_000.0, au));
    }
    units.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut p = Packager::new(PackagerConfig::default());
    let mut outs = p.push(MediaEvent::Tracks(tracks));
    for round in 0..2 {
        if round == 1 {
            outs.extend(p.push(MediaEvent::Discontinuity));
        }
        for (_, au) in &units {
            outs.extend(p.push(MediaEvent::Unit(au.clone())));
        }
    }
    outs.extend(p.push(MediaEvent::End));
    assert_eq!(p.dropped(), 0);

    for (track, name, frames) in [(1u32, "video", video.frames.len()), (2, "audio", aac.len())] {
        let inits: Vec<&Bytes> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Init(i) if i.track_id == track => Some(&i.data),
                _ => None,
            })
            .collect();
        assert_eq!(inits.len(), 2);
        assert_eq!(inits[0], inits[1], "same parameters, same init segment");
        let segs: Vec<&MediaSegment> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Segment(s) if s.track_id == track => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(segs.iter().map(|s| s.samples as usize).sum::<usize>(), 2 * frames);
        let mut file = inits[0].to_vec();
        for s in &segs {
            file.extend_from_slice(&s.data);
        }
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, &file).unwrap();

        let info = ffprobe(
            &path,
            &["-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "default=nw=1"],
        );
        let expected_codec = if track == 1 { "codec_name=h264" } else { "codec_name=aac" };
        assert!(info.contains(expected_codec), "{info}");
        assert!(info.contains(&format!("nb_read_frames={}", 2 * frames)), "{name}: {info}");

        // Decode timestamps increase across the discontinuity, one frame apart within a period.
        let packets = ffprobe(&path, &["-show_entries", "packet=dts,pts", "-of", "csv=p=0"]);
        let ts: Vec<(i64, i64)> = packets
            .lines()
            .map(|l| {
                let mut it = l.split(',').map(|v| v.trim().parse::<i64>().unwrap());
                let (pts, dts) = (it.next().unwrap(), it.next().unwrap());
                (pts, dts)
            })
            .collect();
        assert_eq!(ts.len(), 2 * frames);
        assert!(ts.windows(2).all(|w| w[1].1 > w[0].1), "{name}: DTS not increasing");
        if track == 1 {
            // Presentation order is restored: per period, PTS are one frame per slot. (ffmpeg
            // adds the largest negative composition offset to every PTS, so they are compared
            // with each other, not with the decode times.)
            let second = segs.iter().find(|s| s.period == 1).unwrap().start as i64;
            let mut pts: Vec<i64> = ts.iter().map(|t| t.0).collect();
            pts.sort();
            let (p0, p1) = pts.split_at(frames);
            for half in [p0, p1] {
                assert!(half.windows(2).all(|w| w[1] - w[0] == FRAME), "video PTS gaps: {half:?}");
            }
            assert_eq!(p1[0] - p0[0], second, "period 1 starts where the packager put it");
        }
    }

    // The manifests and the URL layout, read by ffmpeg's own HLS and DASH clients from files
    // laid out as the HTTP delivery serves them below `.../manifest.ism/`.
    let root = dir.join("manifest.ism");
    let epoch = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let mut pres = Presentation::new(false, epoch, Duration::from_secs(300), Duration::from_secs(2));
    for o in &outs {
        pres.apply(o, epoch);
        let (path, data) = match o {
            Output::Init(i) => (manifest::init_path(&i.rendition.id, i.period), &i.data),
            Output::Segment(s) => (manifest::segment_path(&s.rendition_id, s.seq), &s.data),
            _ => continue,
        };
        std::fs::create_dir_all(root.join(&path).parent().unwrap()).unwrap();
        std::fs::write(root.join(path), data).unwrap();
    }
    std::fs::write(root.join("manifest.m3u8"), hls_multivariant(&pres)).unwrap();
    for r in ["video", "audio"] {
        std::fs::write(root.join(manifest::media_playlist_path(r)), hls_media(&pres, r).unwrap()).unwrap();
    }
    std::fs::write(root.join("manifest.mpd"), dash_mpd(&pres, epoch, &DashOptions::default())).unwrap();
    let (v, a) = (video.frames.len(), aac.len());
    for (name, periods) in [("manifest.m3u8", [2].as_slice()), ("manifest.mpd", [1, 2].as_slice())] {
        let info = ffprobe(
            &root.join(name),
            &["-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"],
        );
        let streams: Vec<(&str, usize)> = info
            .lines()
            .filter_map(|l| l.split_once(','))
            .map(|(codec, n)| (codec, n.trim().parse().unwrap()))
            .collect();
        assert!(streams.iter().any(|s| s.0 == "h264") && streams.iter().any(|s| s.0 == "aac"), "{name}: {info}");
        for (codec, n) in streams {
            let per_period = if codec == "h264" { v } else { a };
            // ffmpeg's DASH client reads only one Period; its HLS client follows discontinuities.
            assert!(periods.iter().any(|p| p * per_period == n), "{name}: {codec} {n} frames");
        }
    }
}
