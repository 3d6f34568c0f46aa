//! RTMP audio/video messages to [`MediaEvent`]s.
//!
//! Timescales: video uses 90 kHz (the MPEG convention the packager and players expect; RTMP's
//! millisecond stamps map exactly, ×90). Audio uses its sampling rate, and AAC frames are
//! stamped by counting samples from the first frame, re-anchored to the RTMP stamp whenever
//! the two differ by more than two frames: millisecond stamps cannot express 1024/44100 s, and
//! counted stamps give the packager gapless audio.
//!
//! Track ids are fixed, video 1 and audio 2, so they stay stable when a track shows up late.
//! `Tracks` is sent once both sequence headers are known; with only one of them, once
//! `onMetaData` says the other kind is absent or after a grace of media time or units (held
//! back meanwhile, then sent). A changed sequence header sends `Tracks` again; an identical
//! repeat does not.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use edge_media::{AccessUnit, Codec, MediaEvent, Track};

use crate::Refusal;
use crate::codec::{self, AacConfig, VideoConfig};
use crate::flv::{self, AudioTag, VideoCodec, VideoTag};
use crate::stats::{EncoderMetadata, IngestStats};
use crate::timeline::Timeline;

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Units held back while waiting for the other sequence header, at most.
const MAX_PENDING: usize = 256;

struct Video {
    codec: VideoCodec,
    record: Bytes,
    nal_length_size: usize,
    track: Track,
}

struct Audio {
    asc: Bytes,
    aac: AacConfig,
    track: Track,
    /// Stamp of the next frame if it follows the last one.
    next_dts: Option<i64>,
}

pub struct Demuxer {
    clock: Timeline,
    grace_ms: i64,
    video: Option<Video>,
    audio: Option<Audio>,
    announced: Option<Vec<Track>>,
    pending: Vec<AccessUnit>,
    pending_since_ms: Option<i64>,
    metadata: Option<EncoderMetadata>,
    stats: Arc<IngestStats>,
}

impl Demuxer {
    pub fn new(max_jump_ms: u32, grace_ms: u32, stats: Arc<IngestStats>) -> Self {
        Self {
            clock: Timeline::new(max_jump_ms),
            grace_ms: i64::from(grace_ms),
            video: None,
            audio: None,
            announced: None,
            pending: Vec::new(),
            pending_since_ms: None,
            metadata: None,
            stats,
        }
    }

    pub fn metadata(&mut self, md: EncoderMetadata, out: &mut Vec<MediaEvent>) {
        self.stats.metadata(md.clone());
        self.metadata = Some(md);
        self.announce(false, out);
    }

    pub fn video(
        &mut self,
        raw_ts: u32,
        msg: &Bytes,
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), Refusal> {
        let tag = flv::parse_video(msg).map_err(flv_refusal)?;
        match tag {
            VideoTag::SequenceHeader { codec, record } => {
                if self.video.as_ref().is_some_and(|v| v.record == record) {
                    return Ok(());
                }
                let cfg = match codec {
                    VideoCodec::Avc => codec::parse_avcc(record),
                    VideoCodec::Hevc => codec::parse_hvcc(record),
                }
                .map_err(|e| Refusal::InvalidMedia(format!("video configuration: {e}")))?;
                let track = self.video_track(codec, &cfg);
                self.video =
                    Some(Video { codec, record: msg.slice_ref(record), nal_length_size: cfg.nal_length_size, track });
                self.announce(false, out);
            }
            VideoTag::Frame { codec, keyframe, composition_ms, data } => {
                let ms = self.stamp(raw_ts, out);
                let Some(v) = &self.video else {
                    self.stats.dropped();
                    return Ok(());
                };
                if v.codec != codec {
                    return Err(Refusal::InvalidMedia("video codec changed without a sequence header".into()));
                }
                let data = match codec::to_four_byte_nal_lengths(&msg.slice_ref(data), v.nal_length_size) {
                    Some(d) if !d.is_empty() && codec::nal_lengths_valid(&d) => d,
                    _ => {
                        self.stats.dropped();
                        return Ok(());
                    }
                };
                let dts = ms * i64::from(VIDEO_TIMESCALE / 1000);
                let pts = (ms + i64::from(composition_ms)) * i64::from(VIDEO_TIMESCALE / 1000);
                self.unit(AccessUnit { track: VIDEO_TRACK, dts, pts, keyframe, data, arrival }, ms, out);
            }
            VideoTag::EndOfSequence | VideoTag::Ignored => {}
        }
        Ok(())
    }

    pub fn audio(
        &mut self,
        raw_ts: u32,
        msg: &Bytes,
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), Refusal> {
        let tag = flv::parse_audio(msg).map_err(flv_refusal)?;
        match tag {
            AudioTag::SequenceHeader(asc) => {
                if self.audio.as_ref().is_some_and(|a| a.asc == asc) {
                    return Ok(());
                }
                let aac =
                    codec::parse_asc(asc).map_err(|e| Refusal::InvalidMedia(format!("audio configuration: {e}")))?;
                // Legacy AAC tags carry a mono/stereo bit; use it if the ASC defers to a PCE.
                let flv_channels = if msg[0] >> 4 == 10 { 1 + u16::from(msg[0] & 1) } else { 0 };
                let asc = msg.slice_ref(asc);
                let track = self.audio_track(&aac, &asc, flv_channels);
                self.audio = Some(Audio { asc, aac, track, next_dts: None });
                self.announce(false, out);
            }
            AudioTag::Frame(frame) => {
                let ms = self.stamp(raw_ts, out);
                let Some(a) = &mut self.audio else {
                    self.stats.dropped();
                    return Ok(());
                };
                if frame.is_empty() {
                    return Ok(());
                }
                let rate = i64::from(a.aac.sample_rate);
                let step = i64::from(a.aac.frame_samples);
                let from_rtmp = (ms * rate).div_euclid(1000);
                let dts = match a.next_dts {
                    Some(n) if (n - from_rtmp).abs() <= 2 * step => n,
                    _ => from_rtmp,
                };
                a.next_dts = Some(dts + step);
                self.unit(
                    AccessUnit {
                        track: AUDIO_TRACK,
                        dts,
                        pts: dts,
                        keyframe: true,
                        data: msg.slice_ref(frame),
                        arrival,
                    },
                    ms,
                    out,
                );
            }
            AudioTag::Ignored => {}
        }
        Ok(())
    }

    /// Sends whatever is known before the session ends (a short stream with one track).
    pub fn finish(&mut self, out: &mut Vec<MediaEvent>) {
        self.announce(true, out);
        self.pending.clear();
    }

    fn stamp(&mut self, raw: u32, out: &mut Vec<MediaEvent>) -> i64 {
        let s = self.clock.stamp(raw);
        if s.jumped {
            self.stats.discontinuity();
            if self.announced.is_some() {
                out.push(MediaEvent::Discontinuity);
            }
        }
        s.ms
    }

    fn unit(&mut self, au: AccessUnit, ms: i64, out: &mut Vec<MediaEvent>) {
        if self.announced.as_ref().is_some_and(|t| t.iter().any(|t| t.id == au.track)) {
            self.stats.unit(au.track, au.data.len(), au.keyframe, au.dts, au.arrival);
            out.push(MediaEvent::Unit(au));
            return;
        }
        let since = *self.pending_since_ms.get_or_insert(ms);
        self.pending.push(au);
        if ms - since >= self.grace_ms || self.pending.len() >= MAX_PENDING {
            self.announce(true, out);
        }
    }

    fn desired(&self) -> Vec<Track> {
        let mut t = Vec::with_capacity(2);
        if let Some(v) = &self.video {
            t.push(v.track.clone());
        }
        if let Some(a) = &self.audio {
            t.push(a.track.clone());
        }
        t
    }

    /// Sends `Tracks` if the set changed, or for the first time once it is complete (or
    /// `force`d by the grace), then releases held-back units.
    fn announce(&mut self, force: bool, out: &mut Vec<MediaEvent>) {
        let desired = self.desired();
        if desired.is_empty() || self.announced.as_ref() == Some(&desired) {
            return;
        }
        if self.announced.is_none() {
            let md = self.metadata.as_ref();
            let complete = match (&self.video, &self.audio) {
                (Some(_), Some(_)) => true,
                (Some(_), None) => md.is_some_and(|m| m.audio_codec_id.is_none()),
                (None, Some(_)) => md.is_some_and(|m| m.video_codec_id.is_none()),
                (None, None) => false,
            };
            if !complete && !force {
                return;
            }
        }
        self.stats.tracks(&desired);
        out.push(MediaEvent::Tracks(desired.clone()));
        self.announced = Some(desired);
        self.pending_since_ms = None;
        for au in std::mem::take(&mut self.pending) {
            self.stats.unit(au.track, au.data.len(), au.keyframe, au.dts, au.arrival);
            out.push(MediaEvent::Unit(au));
        }
    }

    fn video_track(&self, codec: VideoCodec, cfg: &VideoConfig) -> Track {
        let md = self.metadata.clone().unwrap_or_default();
        let (mut w, mut h) = (cfg.width, cfg.height);
        if w == 0 || h == 0 {
            // Unreadable SPS: trust the encoder's metadata rather than report nothing.
            w = md.width.unwrap_or(0);
            h = md.height.unwrap_or(0);
        }
        Track {
            id: VIDEO_TRACK,
            codec: match codec {
                VideoCodec::Avc => Codec::H264,
                VideoCodec::Hevc => Codec::H265,
            },
            timescale: VIDEO_TIMESCALE,
            config: cfg.record.clone(),
            codec_string: cfg.codec_string.clone(),
            width: u16::try_from(w).unwrap_or(u16::MAX),
            height: u16::try_from(h).unwrap_or(u16::MAX),
            sample_rate: 0,
            channels: 0,
            bitrate: md.video_data_rate_kbps.unwrap_or(0).saturating_mul(1000),
        }
    }

    fn audio_track(&self, aac: &AacConfig, asc: &Bytes, flv_channels: u16) -> Track {
        let md = self.metadata.clone().unwrap_or_default();
        Track {
            id: AUDIO_TRACK,
            codec: Codec::Aac,
            timescale: aac.sample_rate,
            config: asc.clone(),
            codec_string: aac.codec_string(),
            width: 0,
            height: 0,
            sample_rate: aac.sample_rate,
            channels: if aac.channels > 0 { aac.channels } else { flv_channels },
            bitrate: md.audio_data_rate_kbps.unwrap_or(0).saturating_mul(1000),
        }
    }
}

fn flv_refusal(e: flv::FlvError) -> Refusal {
    match e {
        flv::FlvError::UnsupportedVideo(_) | flv::FlvError::UnsupportedAudio(_) | flv::FlvError::Unsupported(_) => {
            Refusal::UnsupportedMedia(e.to_string())
        }
        _ => Refusal::InvalidMedia(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{Tag, flv_tags};

    fn run(tags: &[Tag], md: Option<EncoderMetadata>) -> Vec<MediaEvent> {
        let mut d = Demuxer::new(10_000, 1000, Arc::new(IngestStats::new()));
        let mut out = Vec::new();
        if let Some(md) = md {
            d.metadata(md, &mut out);
        }
        let now = Instant::now();
        for t in tags {
            let body = Bytes::from(t.body.clone());
            match t.kind {
                8 => d.audio(t.ts, &body, now, &mut out).unwrap(),
                9 => d.video(t.ts, &body, now, &mut out).unwrap(),
                _ => {}
            }
        }
        d.finish(&mut out);
        out
    }

    fn units(ev: &[MediaEvent], track: u32) -> Vec<&AccessUnit> {
        ev.iter()
            .filter_map(|e| match e {
                MediaEvent::Unit(u) if u.track == track => Some(u),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ffmpeg_sample_to_tracks_and_units() {
        let ev = run(&flv_tags(), None);
        let MediaEvent::Tracks(tracks) = &ev[0] else {
            panic!("Tracks first: {:?}", ev[0]);
        };
        assert_eq!(tracks.len(), 2);
        let (v, a) = (&tracks[0], &tracks[1]);
        assert_eq!((v.id, v.codec, v.timescale), (1, Codec::H264, 90_000));
        assert_eq!((v.width, v.height, v.codec_string.as_str()), (320, 180, "avc1.64000d"));
        assert_eq!((a.id, a.codec, a.timescale), (2, Codec::Aac, 48_000));
        assert_eq!((a.sample_rate, a.channels, a.codec_string.as_str()), (48_000, 1, "mp4a.40.2"));
        assert_eq!(ev.iter().filter(|e| matches!(e, MediaEvent::Tracks(_))).count(), 1);

        let video = units(&ev, 1);
        assert_eq!(video.len(), 12);
        assert!(video[0].keyframe && video[6].keyframe);
        assert_eq!(video.iter().filter(|u| u.keyframe).count(), 2);
        // 30 fps in 90 kHz, B-frames: PTS >= DTS, DTS strictly increasing.
        assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
        assert!(video.iter().all(|u| u.pts >= u.dts));
        assert!(video.iter().any(|u| u.pts > u.dts), "composition offsets applied");
        assert!((33 * 90..=34 * 90).contains(&(video[1].dts - video[0].dts)));

        let audio = units(&ev, 2);
        assert!(audio.len() >= 18);
        // Counted, gapless: exactly 1024 samples apart.
        assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
        assert!(audio.iter().all(|u| u.keyframe));
    }

    #[test]
    fn audio_only_waits_for_the_grace_then_sends_held_units() {
        let audio_only: Vec<Tag> = flv_tags().into_iter().filter(|t| t.kind == 8).collect();
        let ev = run(&audio_only, None);
        let MediaEvent::Tracks(tracks) = &ev[0] else { panic!() };
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0].id, AUDIO_TRACK);
        assert_eq!(units(&ev, 2).len(), audio_only.len() - 1, "nothing lost while waiting");
    }

    #[test]
    fn metadata_without_audio_announces_video_at_once() {
        let video_only: Vec<Tag> = flv_tags().into_iter().filter(|t| t.kind == 9).collect();
        let md = EncoderMetadata { video_codec_id: Some(7), ..Default::default() };
        let mut d = Demuxer::new(10_000, 1000, Arc::new(IngestStats::new()));
        let mut out = Vec::new();
        d.metadata(md, &mut out);
        let body = Bytes::from(video_only[0].body.clone());
        d.video(0, &body, Instant::now(), &mut out).unwrap();
        assert!(matches!(&out[..], [MediaEvent::Tracks(t)] if t.len() == 1));
    }

    #[test]
    fn changed_headers_resend_tracks_and_repeats_do_not() {
        let mut tags = flv_tags();
        let seq: Vec<Tag> = tags.iter().filter(|t| t.kind == 9 && t.body[1] == 0).cloned().collect();
        // A repeat of the same header, then a different one (1080p).
        tags.push(seq[0].clone());
        let mut big = vec![0x17, 0, 0, 0, 0];
        big.extend(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x264_1920x1080.avcC")).unwrap());
        tags.push(Tag { kind: 9, ts: 500, body: big });
        let ev = run(&tags, None);
        let sets: Vec<&Vec<Track>> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Tracks(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(sets.len(), 2);
        assert_eq!((sets[1][0].width, sets[1][0].height), (1920, 1080));
        assert_eq!(sets[1][1], sets[0][1], "audio unchanged");
    }

    #[test]
    fn timestamp_jump_is_a_discontinuity_on_a_continuous_timeline() {
        let mut tags = flv_tags();
        for t in tags.iter_mut().filter(|t| t.ts >= 200) {
            t.ts += 3_600_000;
        }
        let ev = run(&tags, None);
        assert_eq!(ev.iter().filter(|e| matches!(e, MediaEvent::Discontinuity)).count(), 1);
        let video = units(&ev, 1);
        assert!(video.windows(2).all(|w| w[1].dts > w[0].dts && w[1].dts - w[0].dts < 90_000));
    }

    #[test]
    fn hevc_over_enhanced_rtmp() {
        let hvcc = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x265_320x180.hvcC")).unwrap();
        let mut seq = vec![0x90, b'h', b'v', b'c', b'1'];
        seq.extend(hvcc);
        let frame = vec![0x93, b'h', b'v', b'c', b'1', 0, 0, 0, 2, 0x26, 0x01];
        let md = EncoderMetadata::default();
        let mut d = Demuxer::new(10_000, 1000, Arc::new(IngestStats::new()));
        let mut out = Vec::new();
        d.metadata(md, &mut out);
        let now = Instant::now();
        d.video(0, &Bytes::from(seq), now, &mut out).unwrap();
        d.video(0, &Bytes::from(frame), now, &mut out).unwrap();
        let MediaEvent::Tracks(t) = &out[0] else { panic!("{out:?}") };
        assert_eq!((t[0].codec, t[0].width, t[0].height), (Codec::H265, 320, 180));
        assert!(matches!(&out[1], MediaEvent::Unit(u) if u.keyframe && u.data.len() == 6));
    }

    #[test]
    fn unsupported_and_broken_media_are_refused() {
        let mut d = Demuxer::new(10_000, 1000, Arc::new(IngestStats::new()));
        let mut out = Vec::new();
        let now = Instant::now();
        assert!(matches!(
            d.video(0, &Bytes::from_static(&[0x90, b'v', b'p', b'0', b'9']), now, &mut out),
            Err(Refusal::UnsupportedMedia(_))
        ));
        assert!(matches!(
            d.audio(0, &Bytes::from_static(&[0x2f, 0xff]), now, &mut out),
            Err(Refusal::UnsupportedMedia(_))
        ));
        assert!(matches!(
            d.video(0, &Bytes::from_static(&[0x17, 0, 0, 0, 0, 9]), now, &mut out),
            Err(Refusal::InvalidMedia(_))
        ));
        // Frames before any configuration are dropped, not fatal.
        d.video(0, &Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 5]), now, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
