use std::time::Instant;

use edge_media::{AccessUnit, Codec, MediaEvent};

use crate::synth::{self, Stream, TsWriter};
use crate::{TsConfig, TsDemuxer, TsError};

static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

const V: Stream = Stream { pid: 0x100, stream_type: 0x1b };
const A: Stream = Stream { pid: 0x101, stream_type: 0x0f };

fn demux_in(data: &[u8], piece: usize) -> (Vec<MediaEvent>, TsDemuxer) {
    let mut d = TsDemuxer::new(TsConfig::default());
    let mut out = Vec::new();
    let now = *EPOCH;
    for chunk in data.chunks(piece) {
        d.push(chunk, now, &mut out).unwrap();
    }
    d.finish(now, &mut out);
    (out, d)
}

fn demux(data: &[u8]) -> (Vec<MediaEvent>, TsDemuxer) {
    demux_in(data, 1316)
}

fn units(ev: &[MediaEvent], track: u32) -> Vec<&AccessUnit> {
    ev.iter()
        .filter_map(|e| match e {
            MediaEvent::Unit(u) if u.track == track => Some(u),
            _ => None,
        })
        .collect()
}

fn count(ev: &[MediaEvent], f: fn(&MediaEvent) -> bool) -> usize {
    ev.iter().filter(|e| f(e)).count()
}

fn is_disc(e: &MediaEvent) -> bool {
    matches!(e, MediaEvent::Discontinuity)
}

fn is_tracks(e: &MediaEvent) -> bool {
    matches!(e, MediaEvent::Tracks(_))
}

fn assert_monotonic(ev: &[MediaEvent]) {
    for track in [1, 2] {
        let u = units(ev, track);
        assert!(u.windows(2).all(|w| w[1].dts > w[0].dts), "track {track} DTS strictly increasing");
        assert!(u.iter().all(|u| u.pts >= u.dts));
    }
}

#[test]
fn h264_and_adts_to_tracks_then_units() {
    let (ev, d) = demux(&synth::h264_aac_program(2, 126_000));
    let MediaEvent::Tracks(t) = &ev[0] else { panic!("Tracks first: {:?}", ev[0]) };
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].id, t[0].codec, t[0].timescale), (1, Codec::H264, 90_000));
    assert_eq!((t[0].codec_string.as_str(), t[0].width, t[0].height), ("avc1.64001f", 1280, 720));
    assert_eq!((t[1].id, t[1].codec, t[1].timescale), (2, Codec::Aac, 48_000));
    assert_eq!((t[1].codec_string.as_str(), t[1].sample_rate, t[1].channels), ("mp4a.40.2", 48_000, 2));
    assert_eq!(&t[1].config[..], &[0x11, 0x90]);
    assert_eq!(count(&ev, is_tracks), 1);
    assert_eq!(count(&ev, is_disc), 0);
    let video = units(&ev, 1);
    assert_eq!(video.len(), 60);
    assert_eq!(video.iter().filter(|u| u.keyframe).count(), 2);
    assert_eq!(video[0].dts, 126_000);
    assert_eq!(video[0].pts - video[0].dts, 3000, "composition offset kept");
    assert!(video.iter().all(|u| edge_rtmp::codec::nal_lengths_valid(&u.data)));
    let audio = units(&ev, 2);
    assert!(audio.len() >= 93, "{}", audio.len());
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024), "gapless");
    assert_eq!(audio[0].dts, 126_000 * 48_000 / 90_000);
    assert_monotonic(&ev);
    let c = d.counters();
    assert_eq!((c.cc_errors, c.dropped_units, c.psi_errors, c.sync_losses), (0, 0, 0, 0));
}

#[test]
fn any_split_gives_the_same_events() {
    let ts = synth::h264_aac_program(1, 0);
    let (whole, _) = demux_in(&ts, ts.len());
    for piece in [1, 7, 188, 1316, 1500] {
        assert!(demux_in(&ts, piece).0 == whole, "piece {piece}");
    }
}

#[test]
fn the_33_bit_wrap_is_unwrapped() {
    let start = (1u64 << 33) - 90_000;
    let (ev, _) = demux(&synth::h264_aac_program(3, start));
    assert_eq!(count(&ev, is_disc), 0);
    assert_monotonic(&ev);
    let video = units(&ev, 1);
    assert!(video.last().unwrap().dts > 1 << 33, "continues past 2^33");
    let audio = units(&ev, 2);
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
}

#[test]
fn a_lost_packet_drops_the_damaged_unit_only() {
    // Video frames of ~1000 bytes (6 packets each) next to single-packet audio frames.
    let mut w = TsWriter::new(&[V, A]);
    w.psi();
    let mut big_p = synth::h264_p_au();
    big_p.extend(std::iter::repeat_n(0x5a, 1000));
    for f in 0..30u64 {
        let au = if f == 0 { synth::h264_idr_au() } else { big_p.clone() };
        w.pes(0x100, f * 3000 + 3000, Some(f * 3000), &au);
        w.pes(0x101, f * 3000, None, &synth::adts_frame(&[1, 2], 3, 2));
    }
    let ts = w.take();
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let packets: Vec<&[u8]> = ts.chunks(188).collect();
    // The third packet of the tenth video PES, and the only packet of the twentieth audio PES.
    let video_starts: Vec<usize> =
        (0..packets.len()).filter(|&i| pid(packets[i]) == 0x100 && packets[i][1] & 0x40 != 0).collect();
    let audio_starts: Vec<usize> = (0..packets.len()).filter(|&i| pid(packets[i]) == 0x101).collect();
    let lost = [video_starts[10] + 2, audio_starts[20]];
    let damaged: Vec<u8> =
        packets.iter().enumerate().filter(|(i, _)| !lost.contains(i)).flat_map(|(_, p)| p.to_vec()).collect();
    let (ev, d) = demux(&damaged);
    assert_eq!(d.counters().cc_errors, 2);
    assert_eq!(count(&ev, is_disc), 0, "loss is not a timeline discontinuity");
    let video = units(&ev, 1);
    assert_eq!(video.len(), 29);
    assert!(!video.iter().any(|u| u.dts == 10 * 3000), "the damaged frame is dropped");
    assert_eq!(units(&ev, 2).len(), 29);
    assert_monotonic(&ev);
}

#[test]
fn an_encoder_restart_is_one_discontinuity_on_a_monotonic_timeline() {
    let mut ts = synth::h264_aac_program(1, 900_000);
    // A fresh clock at 0; continuity counters restart too, so the first adaptation field
    // signals the discontinuity (as a restarting encoder does).
    let mut second = synth::h264_aac_program(1, 0);
    for p in second.chunks_mut(188) {
        if p[3] & 0x20 != 0 && p[4] > 0 {
            p[5] |= 0x80; // discontinuity_indicator on every adaptation field
            break;
        }
    }
    ts.extend(second);
    let (ev, d) = demux(&ts);
    assert_eq!(count(&ev, is_disc), 1, "{:?}", d.counters());
    assert_eq!(count(&ev, is_tracks), 1);
    assert_monotonic(&ev);
    assert_eq!(units(&ev, 1).len(), 60);
}

#[test]
fn a_pcr_step_back_rebases_even_when_timestamps_step_little() {
    // 1 s of media, then the time base steps back 2 s (under the 10 s jump limit).
    let mut ts = synth::h264_aac_program(1, 900_000);
    let mut second = synth::h264_aac_program(1, 900_000 - 180_000);
    for p in second.chunks_mut(188) {
        if p[3] & 0x20 != 0 && p[4] > 0 {
            p[5] |= 0x80;
            break;
        }
    }
    ts.extend(second);
    let (ev, d) = demux(&ts);
    assert!(d.counters().pcr_discontinuities >= 1);
    assert_eq!(count(&ev, is_disc), 1);
    assert_monotonic(&ev);
}

#[test]
fn garbage_before_and_between_packets_is_skipped() {
    let ts = synth::h264_aac_program(1, 0);
    let mut noisy = vec![0x47, 1, 2, 3, 0x47, 9, 9];
    for (i, p) in ts.chunks(188).enumerate() {
        noisy.extend(p);
        if i == 50 {
            noisy.extend([0x00, 0x47, 0x11]);
        }
    }
    let (clean, _) = demux(&ts);
    let (ev, d) = demux(&noisy);
    assert!(d.counters().sync_losses >= 1, "{:?}", d.counters());
    assert_eq!(units(&ev, 1).len(), units(&clean, 1).len());
    assert_eq!(units(&ev, 2).len(), units(&clean, 2).len());
}

#[test]
fn hevc_and_latm() {
    let mut w = TsWriter::new(&[Stream { pid: 0x100, stream_type: 0x24 }, Stream { pid: 0x101, stream_type: 0x11 }]);
    w.psi();
    for f in 0..30u64 {
        let au = if f == 0 { synth::hevc_idr_au() } else { synth::hevc_p_au() };
        w.pes(0x100, f * 3000 + 3000, Some(f * 3000), &au);
        w.pes(0x101, f * 1920, None, &synth::loas_frame(&[0x11, 0x90], &[f as u8; 40], f % 5 == 0));
    }
    let (ev, _) = demux(&w.take());
    let MediaEvent::Tracks(t) = &ev[0] else { panic!("{:?}", ev[0]) };
    assert_eq!(
        (t[0].codec, t[0].codec_string.as_str(), t[0].width, t[0].height),
        (Codec::H265, "hvc1.1.6.L60.90", 320, 180)
    );
    assert_eq!((t[1].codec, t[1].codec_string.as_str(), t[1].sample_rate), (Codec::Aac, "mp4a.40.2", 48_000));
    assert_eq!(units(&ev, 1).len(), 30);
    let audio = units(&ev, 2);
    assert_eq!(audio.len(), 30);
    assert_eq!(&audio[3].data[..], &[3u8; 40][..]);
}

#[test]
fn unsupported_programs_are_refused_and_extra_streams_ignored() {
    let mut w = TsWriter::new(&[Stream { pid: 0x100, stream_type: 0x02 }, Stream { pid: 0x101, stream_type: 0x03 }]);
    w.psi();
    let mut d = TsDemuxer::new(TsConfig::default());
    let err = d.push(&w.take(), Instant::now(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, TsError::Unsupported(s) if s.contains("MPEG-2 video") && s.contains("MPEG-1 audio")),
        "{err}"
    );
    assert!(d.push(&[], Instant::now(), &mut Vec::new()).is_err(), "final");

    let mut w = TsWriter::new(&[V, Stream { pid: 0x102, stream_type: 0x81 }]);
    w.psi();
    w.pes(0x100, 3000, Some(0), &synth::h264_idr_au());
    w.pes(0x100, 6000, Some(3000), &synth::h264_p_au());
    let (ev, d) = demux(&w.take());
    assert_eq!(d.ignored_streams().len(), 1);
    assert_eq!(d.ignored_streams()[0].name, "AC-3");
    assert!(matches!(&ev[0], MediaEvent::Tracks(t) if t.len() == 1), "video alone, at once");
    assert_eq!(units(&ev, 1).len(), 2);
}

#[test]
fn audio_late_after_the_grace_announces_again() {
    let mut w = TsWriter::new(&[V, A]);
    w.psi();
    for f in 0..60u64 {
        let au = if f % 30 == 0 { synth::h264_idr_au() } else { synth::h264_p_au() };
        w.pes(0x100, f * 3000 + 3000, Some(f * 3000), &au);
        if f >= 45 {
            w.pes(0x101, f * 3000, None, &synth::adts_frame(&[1, 2], 3, 2));
        }
    }
    let (ev, _) = demux(&w.take());
    let sets: Vec<usize> = ev
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Tracks(t) => Some(t.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sets, vec![1, 2]);
    assert_eq!(units(&ev, 1).len(), 60, "nothing lost while waiting");
}

#[test]
fn units_before_the_first_keyframe_are_dropped_and_psi_crc_is_checked() {
    let mut w = TsWriter::new(&[V]);
    w.psi();
    let mut ts = w.take();
    // Corrupt the PMT's CRC: the program stays unknown until a good PMT arrives.
    ts[188 + 20] ^= 0xff;
    w.pes(0x100, 3000, Some(0), &synth::h264_p_au());
    w.psi();
    w.pes(0x100, 6000, Some(3000), &synth::h264_p_au());
    w.pes(0x100, 9000, Some(6000), &synth::h264_idr_au());
    w.pes(0x100, 12000, Some(9000), &synth::h264_p_au());
    ts.extend(w.take());
    let (ev, d) = demux(&ts);
    assert_eq!(d.counters().psi_errors, 1);
    let video = units(&ev, 1);
    assert_eq!(video.len(), 2);
    assert!(video[0].keyframe);
    assert_eq!(d.counters().dropped_units, 1, "the P frame after the PMT, before the IDR");
}

#[test]
fn fifteen_lost_packets_are_a_gap_not_a_duplicate() {
    // A loss of 15 packets of one PID brings the continuity counter back to the last value seen:
    // the next packet is not a duplicate (its payload differs), the frame it belongs to is damaged.
    let mut w = TsWriter::new(&[V, A]);
    w.psi();
    let mut big_p = synth::h264_p_au();
    big_p.extend((0..6000u32).map(|i| (i % 251) as u8));
    for f in 0..30u64 {
        let au = if f == 0 { synth::h264_idr_au() } else { big_p.clone() };
        w.pes(0x100, f * 3000 + 3000, Some(f * 3000), &au);
    }
    let ts = w.take();
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let packets: Vec<&[u8]> = ts.chunks(188).collect();
    let video_starts: Vec<usize> =
        (0..packets.len()).filter(|&i| pid(packets[i]) == 0x100 && packets[i][1] & 0x40 != 0).collect();
    let lost = video_starts[10] + 2..video_starts[10] + 17;
    assert!(lost.end < video_starts[11], "the loss stays inside the tenth frame");
    let damaged: Vec<u8> =
        packets.iter().enumerate().filter(|(i, _)| !lost.contains(i)).flat_map(|(_, p)| p.to_vec()).collect();
    let (ev, d) = demux(&damaged);
    assert_eq!(d.counters().cc_errors, 1);
    let video = units(&ev, 1);
    assert!(!video.iter().any(|u| u.dts == 10 * 3000), "the damaged frame is dropped");
    assert_eq!(video.len(), 29);
}

#[test]
fn a_repeated_packet_is_skipped() {
    let mut w = TsWriter::new(&[V, A]);
    w.psi();
    let mut big_p = synth::h264_p_au();
    big_p.extend(std::iter::repeat_n(0x5a, 1000));
    for f in 0..10u64 {
        let au = if f == 0 { synth::h264_idr_au() } else { big_p.clone() };
        w.pes(0x100, f * 3000 + 3000, Some(f * 3000), &au);
    }
    let ts = w.take();
    let packets: Vec<&[u8]> = ts.chunks(188).collect();
    let again = packets.len() / 2;
    let mut twice = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        twice.extend_from_slice(p);
        if i == again {
            twice.extend_from_slice(p);
        }
    }
    let (ev, d) = demux(&twice);
    assert_eq!(d.counters().cc_errors, 0);
    assert_eq!(units(&ev, 1).len(), 10);
}
