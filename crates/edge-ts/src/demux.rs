//! The demultiplexer: TS packets -> PSI and PES -> access units, one program.

use std::time::Instant;

use bytes::Bytes;
use edge_media::{AccessUnit, Codec, MediaEvent, Track};
use edge_rtmp::codec::{self as rtmp_codec, AacConfig};

use crate::audio::{self, AacFrame, AudioError, Latm};
use crate::bits::crc32_mpeg2;
use crate::clock::{Clock, signed33};
use crate::video::{self, ParamSets, VideoCodec};
use crate::{AUDIO_TRACK, IgnoredStream, TsConfig, TsCounters, TsError, VIDEO_TIMESCALE, VIDEO_TRACK};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
/// Units held back while waiting for the other track's configuration, at most.
const MAX_PENDING: usize = 256;
/// A partial audio frame carried into the next PES, at most (an ADTS frame is < 8 KiB).
const MAX_CARRY: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EsKind {
    Video(VideoCodec),
    Adts,
    Latm,
}

#[derive(Debug, Clone, Copy)]
struct PesTime {
    dts: i64,
    pts: i64,
    epoch: u32,
}

#[derive(Debug)]
struct PesBuf {
    data: Vec<u8>,
    /// Payload bytes the header announced (None: unbounded, ends at the next PES).
    expected: Option<usize>,
    time: Option<PesTime>,
    /// Packets of it were lost (continuity gap, transport error) or it outgrew the limit.
    damaged: bool,
}

#[derive(Debug)]
struct EsState {
    pid: u16,
    kind: EsKind,
    cc: Option<u8>,
    /// Payload of the last packet, to tell a repeated packet from a loss of 15 (same counter).
    last_payload: Vec<u8>,
    pes: Option<PesBuf>,
    carry: Vec<u8>,
    latm: Latm,
}

#[derive(Debug, Default)]
struct Section {
    data: Vec<u8>,
    active: bool,
    cc: Option<u8>,
}

struct VideoTrack {
    codec: VideoCodec,
    params: ParamSets,
    track: Track,
}

struct AudioTrack {
    asc: Bytes,
    aac: AacConfig,
    track: Track,
    /// Stamp of the next frame if it follows the last one, and the epoch it belongs to.
    next: Option<(i64, u32)>,
}

enum Cc {
    Ok,
    Duplicate,
    Gap,
}

fn check_cc(last: &mut Option<u8>, cc: u8, discontinuity: bool) -> Cc {
    let prev = last.replace(cc);
    match prev {
        _ if discontinuity => Cc::Ok,
        None => Cc::Ok,
        Some(p) if p == cc => Cc::Duplicate,
        Some(p) if (p + 1) & 0x0f == cc => Cc::Ok,
        Some(_) => Cc::Gap,
    }
}

/// A 33-bit PTS/DTS field.
fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1 & 7) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// The human name of a stream type, for refusals and status.
fn stream_type_name(t: u8) -> &'static str {
    match t {
        0x01 => "MPEG-1 video",
        0x02 => "MPEG-2 video",
        0x03 => "MPEG-1 audio",
        0x04 => "MPEG-2 audio",
        0x0f => "AAC (ADTS)",
        0x10 => "MPEG-4 Part 2 video",
        0x11 => "AAC (LATM)",
        0x1b => "H.264",
        0x24 => "HEVC",
        0x33 => "VVC",
        0x42 => "AVS video",
        0x81 => "AC-3",
        0x87 => "E-AC-3",
        0xd1 => "Dirac",
        0xea => "VC-1",
        _ => "unknown",
    }
}

/// Stream types that are audio or video (others, such as SCTE-35 or private data, are
/// ignored without a word).
fn is_media_type(t: u8) -> bool {
    matches!(t, 0x01..=0x04 | 0x0f..=0x11 | 0x1b | 0x24 | 0x33 | 0x42 | 0x81 | 0x87 | 0xd1 | 0xea)
}

pub struct TsDemuxer {
    cfg: TsConfig,
    max_jump: i64,
    grace: i64,
    buf: Vec<u8>,
    in_sync: bool,
    pat: Section,
    pmt: Section,
    pmt_pid: Option<u16>,
    pcr_pid: Option<u16>,
    pmt_version: Option<(u8, u32)>,
    streams: Vec<EsState>,
    ignored: Vec<IgnoredStream>,
    expect_video: bool,
    expect_audio: bool,
    clock: Clock,
    last_pcr: Option<u64>,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    announced: Option<Vec<Track>>,
    pending: Vec<AccessUnit>,
    pending_since: Option<i64>,
    emitted_epoch: u32,
    counters: TsCounters,
    failed: Option<TsError>,
}

impl TsDemuxer {
    pub fn new(cfg: TsConfig) -> Self {
        let max_jump = i64::try_from(cfg.max_timestamp_jump.as_millis() * 90).unwrap_or(i64::MAX / 4);
        let grace = i64::try_from(cfg.track_grace.as_millis() * 90).unwrap_or(i64::MAX / 4);
        Self {
            cfg,
            max_jump,
            grace,
            buf: Vec::new(),
            in_sync: false,
            pat: Section::default(),
            pmt: Section::default(),
            pmt_pid: None,
            pcr_pid: None,
            pmt_version: None,
            streams: Vec::new(),
            ignored: Vec::new(),
            expect_video: false,
            expect_audio: false,
            clock: Clock::new(max_jump),
            last_pcr: None,
            video: None,
            audio: None,
            announced: None,
            pending: Vec::new(),
            pending_since: None,
            emitted_epoch: 0,
            counters: TsCounters::default(),
            failed: None,
        }
    }

    pub fn counters(&self) -> &TsCounters {
        &self.counters
    }

    /// Audio/video streams of the program that are not demultiplexed (unsupported codecs, or
    /// a second stream of a kind).
    pub fn ignored_streams(&self) -> &[IgnoredStream] {
        &self.ignored
    }

    /// The tracks last announced with `MediaEvent::Tracks`.
    pub fn tracks(&self) -> Option<&[Track]> {
        self.announced.as_deref()
    }

    /// Feeds bytes as they arrive (any split: packets may straddle calls). Media events are
    /// appended to `out`. An error is final: the stream cannot be used (every later call
    /// returns it again).
    pub fn push(&mut self, data: &[u8], arrival: Instant, out: &mut Vec<MediaEvent>) -> Result<(), TsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.counters.bytes += data.len() as u64;
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        let mut pos = 0;
        let mut result = Ok(());
        while buf.len() - pos >= PACKET {
            // Out of sync (and at the start), a sync byte counts only when the next packet's
            // confirms it: random bytes hold plenty of 0x47.
            let aligned = buf[pos] == SYNC
                && (self.in_sync
                    || match buf.get(pos + PACKET) {
                        Some(&b) => b == SYNC,
                        None => break,
                    });
            if !aligned {
                if self.in_sync {
                    self.in_sync = false;
                    self.counters.sync_losses += 1;
                }
                let (skip, wait) = find_sync(&buf[pos..]);
                self.counters.skipped_bytes += skip as u64;
                pos += skip;
                if wait {
                    break;
                }
                continue;
            }
            self.in_sync = true;
            if let Err(e) = self.packet(&buf[pos..pos + PACKET], arrival, out) {
                self.failed = Some(e.clone());
                result = Err(e);
                break;
            }
            pos += PACKET;
        }
        buf.drain(..pos);
        self.buf = buf;
        result
    }

    /// The input ended: completes the PES in progress and sends whatever is known (a short
    /// stream with one track still gets its `Tracks`).
    pub fn finish(&mut self, arrival: Instant, out: &mut Vec<MediaEvent>) {
        for i in 0..self.streams.len() {
            if let Some(pes) = self.streams[i].pes.take()
                && pes.expected.is_none()
                && self.failed.is_none()
                && let Err(e) = self.pes_done(i, pes, arrival, out)
            {
                self.failed = Some(e);
            }
        }
        self.announce(true, out);
        self.pending.clear();
    }

    fn packet(&mut self, p: &[u8], arrival: Instant, out: &mut Vec<MediaEvent>) -> Result<(), TsError> {
        self.counters.packets += 1;
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0f;
        if p[1] & 0x80 != 0 {
            // Transport error: the packet's contents cannot be trusted.
            self.counters.transport_errors += 1;
            if let Some(es) = self.streams.iter_mut().find(|s| s.pid == pid)
                && let Some(pes) = &mut es.pes
            {
                pes.damaged = true;
            }
            return Ok(());
        }
        let mut idx = 4;
        let mut discontinuity = false;
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            idx = 5 + len;
            if idx > PACKET {
                self.counters.transport_errors += 1;
                return Ok(());
            }
            if len > 0 {
                let flags = p[5];
                discontinuity = flags & 0x80 != 0;
                if flags & 0x10 != 0 && len >= 7 && Some(pid) == self.pcr_pid {
                    let base = (u64::from(p[6]) << 25)
                        | (u64::from(p[7]) << 17)
                        | (u64::from(p[8]) << 9)
                        | (u64::from(p[9]) << 1)
                        | u64::from(p[10] >> 7);
                    self.pcr(base);
                }
            }
        }
        if afc & 1 == 0 || p[3] & 0xc0 != 0 {
            // No payload, or scrambled (nothing to do without keys).
            return Ok(());
        }
        let payload = &p[idx..];
        if pid == 0 {
            if let Some(section) = section_packet(&mut self.pat, pusi, cc, discontinuity, payload, &mut self.counters) {
                self.parse_pat(&section);
            }
        } else if Some(pid) == self.pmt_pid {
            if let Some(section) = section_packet(&mut self.pmt, pusi, cc, discontinuity, payload, &mut self.counters) {
                self.parse_pmt(&section)?;
            }
        } else if let Some(i) = self.streams.iter().position(|s| s.pid == pid) {
            self.es_packet(i, pusi, cc, discontinuity, payload, arrival, out)?;
        }
        Ok(())
    }

    /// A PCR going backwards or leaping forward is a new time base (signalled or not; a
    /// signalled discontinuity that keeps the clock continuous changes nothing): the next
    /// timestamp starts a new epoch even if its own step looks small.
    fn pcr(&mut self, base: u64) {
        if let Some(last) = self.last_pcr.replace(base) {
            let step = signed33(base.wrapping_sub(last));
            if step < 0 || step > self.max_jump {
                self.counters.pcr_discontinuities += 1;
                self.clock.rebase();
            }
        }
    }

    fn parse_pat(&mut self, s: &[u8]) {
        if s[0] != 0x00 || s.len() < 12 {
            self.counters.psi_errors += 1;
            return;
        }
        let entries = &s[8..s.len() - 4];
        let pmt = entries
            .chunks_exact(4)
            .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
            .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]));
        if pmt.is_some() && pmt != self.pmt_pid {
            self.pmt_pid = pmt;
            self.pmt = Section::default();
            self.pmt_version = None;
        }
    }

    fn parse_pmt(&mut self, s: &[u8]) -> Result<(), TsError> {
        if s[0] != 0x02 || s.len() < 16 {
            self.counters.psi_errors += 1;
            return Ok(());
        }
        let version = ((s[5] >> 1) & 0x1f, crc32_mpeg2(&s[..s.len() - 4]));
        if self.pmt_version == Some(version) {
            return Ok(());
        }
        self.pmt_version = Some(version);
        self.pcr_pid = Some((u16::from(s[8] & 0x1f) << 8) | u16::from(s[9]));
        let info_len = (usize::from(s[10] & 0x0f) << 8) | usize::from(s[11]);
        let end = s.len() - 4;
        let mut pos = 12 + info_len;
        let mut listed = Vec::new();
        while pos + 5 <= end {
            let st = s[pos];
            let pid = (u16::from(s[pos + 1] & 0x1f) << 8) | u16::from(s[pos + 2]);
            let es_len = (usize::from(s[pos + 3] & 0x0f) << 8) | usize::from(s[pos + 4]);
            listed.push((pid, st));
            pos += 5 + es_len;
        }
        let mut video = None;
        let mut audio = None;
        let mut ignored = Vec::new();
        for &(pid, st) in &listed {
            let kind = match st {
                0x1b => Some(EsKind::Video(VideoCodec::H264)),
                0x24 => Some(EsKind::Video(VideoCodec::H265)),
                0x0f => Some(EsKind::Adts),
                0x11 => Some(EsKind::Latm),
                _ => None,
            };
            let slot = match kind {
                Some(EsKind::Video(_)) => &mut video,
                Some(_) => &mut audio,
                None => {
                    if is_media_type(st) {
                        ignored.push(IgnoredStream { pid, stream_type: st, name: stream_type_name(st) });
                    }
                    continue;
                }
            };
            match slot {
                None => *slot = Some((pid, kind.expect("matched above"))),
                Some(_) => ignored.push(IgnoredStream { pid, stream_type: st, name: stream_type_name(st) }),
            }
        }
        if video.is_none() && audio.is_none() && !ignored.is_empty() {
            let names: Vec<String> =
                ignored.iter().map(|i| format!("{} (stream type 0x{:02x})", i.name, i.stream_type)).collect();
            return Err(TsError::Unsupported(format!("no H.264, HEVC or AAC stream; found {}", names.join(", "))));
        }
        self.ignored = ignored;
        self.expect_video = video.is_some();
        self.expect_audio = audio.is_some();
        let mut streams = Vec::new();
        for (pid, kind) in [video, audio].into_iter().flatten() {
            match self.streams.iter().position(|s| s.pid == pid && s.kind == kind) {
                Some(i) => streams.push(self.streams.swap_remove(i)),
                None => {
                    // A new stream for this kind: its configuration must be learned again.
                    match kind {
                        EsKind::Video(_) => self.video = None,
                        _ => self.audio = None,
                    }
                    streams.push(EsState {
                        pid,
                        kind,
                        cc: None,
                        last_payload: Vec::new(),
                        pes: None,
                        carry: Vec::new(),
                        latm: Latm::default(),
                    })
                }
            }
        }
        if !self.expect_video {
            self.video = None;
        }
        if !self.expect_audio {
            self.audio = None;
        }
        self.streams = streams;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn es_packet(
        &mut self,
        i: usize,
        pusi: bool,
        cc: u8,
        discontinuity: bool,
        payload: &[u8],
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), TsError> {
        let cc_state = check_cc(&mut self.streams[i].cc, cc, discontinuity);
        // A duplicate repeats the previous packet; the same counter with another payload is a
        // loss of 15 (or 31, ...) packets.
        let repeated = self.streams[i].last_payload == payload;
        self.streams[i].last_payload.clear();
        self.streams[i].last_payload.extend_from_slice(payload);
        match cc_state {
            Cc::Duplicate if repeated => return Ok(()),
            Cc::Duplicate | Cc::Gap => {
                self.counters.cc_errors += 1;
                let es = &mut self.streams[i];
                es.carry.clear();
                if let Some(pes) = &mut es.pes {
                    pes.damaged = true;
                }
            }
            Cc::Ok => {}
        }
        if pusi {
            if let Some(mut pes) = self.streams[i].pes.take() {
                // A bounded PES cut short by the next one lost packets the counters missed.
                if pes.expected.is_some_and(|e| pes.data.len() < e) {
                    pes.damaged = true;
                }
                self.pes_done(i, pes, arrival, out)?;
            }
            match parse_pes_header(payload) {
                Some(h) => {
                    let time = self.stamp(h.pts, h.dts);
                    let body = &payload[h.body..];
                    let mut pes = PesBuf {
                        data: Vec::with_capacity(h.expected.unwrap_or(body.len() * 8).min(1 << 20)),
                        expected: h.expected,
                        time,
                        damaged: false,
                    };
                    pes.data.extend_from_slice(body);
                    self.streams[i].pes = Some(pes);
                }
                None => self.counters.dropped_units += 1,
            }
        } else if let Some(pes) = &mut self.streams[i].pes {
            if pes.data.len() + payload.len() > self.cfg.max_pes_size {
                pes.damaged = true;
            } else {
                pes.data.extend_from_slice(payload);
            }
        }
        let complete = self.streams[i].pes.as_ref().is_some_and(|p| p.expected.is_some_and(|e| p.data.len() >= e));
        if complete && let Some(mut pes) = self.streams[i].pes.take() {
            pes.data.truncate(pes.expected.unwrap_or(usize::MAX));
            self.pes_done(i, pes, arrival, out)?;
        }
        Ok(())
    }

    fn stamp(&mut self, pts: Option<u64>, dts: Option<u64>) -> Option<PesTime> {
        let pts = pts?;
        let dts_raw = dts.unwrap_or(pts);
        let s = self.clock.stamp(dts_raw);
        if s.jumped {
            self.counters.discontinuities += 1;
        }
        let offset = signed33(pts.wrapping_sub(dts_raw));
        // A composition offset outside [0, max jump] is damage, not B-frames.
        let offset = if (0..=self.max_jump).contains(&offset) { offset } else { 0 };
        self.clock.observe(s.ticks + offset);
        Some(PesTime { dts: s.ticks, pts: s.ticks + offset, epoch: s.epoch })
    }

    fn pes_done(&mut self, i: usize, pes: PesBuf, arrival: Instant, out: &mut Vec<MediaEvent>) -> Result<(), TsError> {
        let kind = self.streams[i].kind;
        let (Some(time), false) = (pes.time, pes.damaged) else {
            self.counters.dropped_units += 1;
            if kind != EsKind::Video(VideoCodec::H264) && kind != EsKind::Video(VideoCodec::H265) {
                self.streams[i].carry.clear();
            }
            return Ok(());
        };
        match kind {
            EsKind::Video(codec) => self.video_pes(codec, time, &pes.data, arrival, out),
            EsKind::Adts | EsKind::Latm => self.audio_pes(i, time, pes.data, arrival, out),
        }
    }

    fn video_pes(
        &mut self,
        codec: VideoCodec,
        time: PesTime,
        data: &[u8],
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), TsError> {
        let Some(au) = video::convert_au(codec, data) else {
            self.counters.dropped_units += 1;
            return Ok(());
        };
        // Parameter sets may come spread over units: merge into what is known.
        let mut params = self.video.as_ref().map(|v| v.params.clone()).unwrap_or_default();
        for (known, new) in
            [(&mut params.vps, &au.params.vps), (&mut params.sps, &au.params.sps), (&mut params.pps, &au.params.pps)]
        {
            if !new.is_empty() {
                known.clone_from(new);
            }
        }
        let changed = self.video.as_ref().is_none_or(|v| v.params != params);
        if changed && params.complete(codec) {
            match video::build_config(codec, &params) {
                Ok(cfg) => {
                    let track = Track {
                        id: VIDEO_TRACK,
                        codec: match codec {
                            VideoCodec::H264 => Codec::H264,
                            VideoCodec::H265 => Codec::H265,
                        },
                        timescale: VIDEO_TIMESCALE,
                        config: cfg.record,
                        codec_string: cfg.codec_string,
                        width: u16::try_from(cfg.width).unwrap_or(u16::MAX),
                        height: u16::try_from(cfg.height).unwrap_or(u16::MAX),
                        sample_rate: 0,
                        channels: 0,
                        bitrate: 0,
                    };
                    self.video = Some(VideoTrack { codec, params, track });
                    self.announce(false, out);
                }
                Err(_) => self.counters.config_errors += 1,
            }
        }
        let Some(v) = &self.video else {
            // Nothing decodable before the first parameter sets.
            self.counters.dropped_units += 1;
            return Ok(());
        };
        debug_assert_eq!(v.codec, codec);
        let au = AccessUnit {
            track: VIDEO_TRACK,
            dts: time.dts,
            pts: time.pts,
            keyframe: au.keyframe,
            data: au.sample,
            arrival,
        };
        self.unit(au, time.epoch, time.dts, out);
        Ok(())
    }

    fn audio_pes(
        &mut self,
        i: usize,
        time: PesTime,
        data: Vec<u8>,
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), TsError> {
        let es = &mut self.streams[i];
        let buf = if es.carry.is_empty() {
            data
        } else {
            let mut b = std::mem::take(&mut es.carry);
            b.extend(data);
            b
        };
        let mut frames = Vec::new();
        let parsed = match es.kind {
            EsKind::Latm => es.latm.parse(&buf, &mut frames),
            _ => audio::parse_adts(&buf, &mut frames),
        };
        let (used, skipped) = match parsed {
            Ok(r) => r,
            Err(AudioError::Unsupported(what)) => return Err(TsError::Unsupported(what)),
            Err(AudioError::Malformed(_)) => {
                self.counters.dropped_units += 1;
                return Ok(());
            }
        };
        if buf.len() - used <= MAX_CARRY {
            es.carry = buf[used..].to_vec();
        }
        self.counters.skipped_bytes += skipped as u64;
        for (k, f) in frames.into_iter().enumerate() {
            self.audio_frame(f, k as i64, time, arrival, out)?;
        }
        Ok(())
    }

    fn audio_frame(
        &mut self,
        f: AacFrame,
        index: i64,
        time: PesTime,
        arrival: Instant,
        out: &mut Vec<MediaEvent>,
    ) -> Result<(), TsError> {
        if self.audio.as_ref().is_none_or(|a| a.asc != f.asc) {
            let aac =
                rtmp_codec::parse_asc(&f.asc).map_err(|e| TsError::Invalid(format!("audio configuration: {e}")))?;
            if aac.channels == 0 {
                return Err(TsError::Unsupported("AAC with a program config element (channel configuration 0)".into()));
            }
            let track = Track {
                id: AUDIO_TRACK,
                codec: Codec::Aac,
                timescale: aac.sample_rate,
                config: f.asc.clone(),
                codec_string: aac.codec_string(),
                width: 0,
                height: 0,
                sample_rate: aac.sample_rate,
                channels: aac.channels,
                bitrate: 0,
            };
            let next = self.audio.as_ref().filter(|a| a.aac.sample_rate == aac.sample_rate).and_then(|a| a.next);
            self.audio = Some(AudioTrack { asc: f.asc.clone(), aac, track, next });
            self.announce(false, out);
        }
        let a = self.audio.as_mut().expect("set above");
        let rate = i64::from(a.aac.sample_rate);
        let step = i64::from(a.aac.frame_samples);
        let from_pes = (time.pts * rate).div_euclid(90_000) + index * step;
        // Counted stamps give the packager gapless audio; the PES stamp re-anchors them when
        // they drift apart (lost frames, a new epoch).
        let dts = match a.next {
            Some((n, epoch)) if epoch == time.epoch && (n - from_pes).abs() <= 2 * step => n,
            _ => from_pes,
        };
        a.next = Some((dts + step, time.epoch));
        let au = AccessUnit { track: AUDIO_TRACK, dts, pts: dts, keyframe: true, data: f.data, arrival };
        self.unit(au, time.epoch, time.dts, out);
        Ok(())
    }

    fn unit(&mut self, au: AccessUnit, epoch: u32, ticks: i64, out: &mut Vec<MediaEvent>) {
        if epoch < self.emitted_epoch {
            // Started before a discontinuity that later units already crossed.
            self.counters.dropped_units += 1;
            return;
        }
        if epoch > self.emitted_epoch {
            self.emitted_epoch = epoch;
            if self.announced.is_some() {
                out.push(MediaEvent::Discontinuity);
            }
        }
        if self.announced.as_ref().is_some_and(|t| t.iter().any(|t| t.id == au.track)) {
            out.push(MediaEvent::Unit(au));
            return;
        }
        let since = *self.pending_since.get_or_insert(ticks);
        self.pending.push(au);
        if ticks - since >= self.grace || self.pending.len() >= MAX_PENDING {
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

    /// Sends `Tracks` if the set changed, or for the first time once every stream of the PMT
    /// has its configuration (or `force`d by the grace), then releases held-back units.
    fn announce(&mut self, force: bool, out: &mut Vec<MediaEvent>) {
        let desired = self.desired();
        if desired.is_empty() || self.announced.as_ref() == Some(&desired) {
            return;
        }
        if self.announced.is_none() {
            let complete = (self.video.is_some() || !self.expect_video) && (self.audio.is_some() || !self.expect_audio);
            if !complete && !force {
                return;
            }
        }
        out.push(MediaEvent::Tracks(desired.clone()));
        self.pending_since = None;
        let ids: Vec<u32> = desired.iter().map(|t| t.id).collect();
        self.announced = Some(desired);
        for au in std::mem::take(&mut self.pending) {
            if ids.contains(&au.track) {
                out.push(MediaEvent::Unit(au));
            } else {
                self.counters.dropped_units += 1;
            }
        }
    }
}

/// Where the next packet starts: `(bytes to skip, wait)`; `wait` when the candidate cannot be
/// confirmed by a second sync byte yet (more data needed).
fn find_sync(buf: &[u8]) -> (usize, bool) {
    let mut off = 1;
    while off < buf.len() {
        if buf[off] == SYNC {
            if off + PACKET >= buf.len() {
                return (off, true);
            }
            if buf[off + PACKET] == SYNC {
                return (off, false);
            }
        }
        off += 1;
    }
    (buf.len(), true)
}

/// Collects one PSI section (PAT or PMT) over packets; returns it once complete with a valid
/// CRC.
fn section_packet(
    sec: &mut Section,
    pusi: bool,
    cc: u8,
    discontinuity: bool,
    payload: &[u8],
    counters: &mut TsCounters,
) -> Option<Vec<u8>> {
    match check_cc(&mut sec.cc, cc, discontinuity) {
        Cc::Duplicate => return None,
        Cc::Gap => {
            counters.cc_errors += 1;
            sec.active = false;
            sec.data.clear();
        }
        Cc::Ok => {}
    }
    if pusi {
        let pointer = usize::from(*payload.first()?);
        let start = payload.get(1 + pointer..)?;
        sec.data.clear();
        sec.data.extend_from_slice(start);
        sec.active = true;
    } else if sec.active {
        sec.data.extend_from_slice(payload);
    } else {
        return None;
    }
    if sec.data.len() < 3 {
        return None;
    }
    let len = (usize::from(sec.data[1] & 0x0f) << 8) | usize::from(sec.data[2]);
    if !(9..=1021).contains(&len) {
        counters.psi_errors += 1;
        sec.active = false;
        return None;
    }
    if sec.data.len() < 3 + len {
        return None;
    }
    sec.active = false;
    let section = sec.data[..3 + len].to_vec();
    if crc32_mpeg2(&section) != 0 {
        counters.psi_errors += 1;
        return None;
    }
    Some(section)
}

struct PesHeader {
    pts: Option<u64>,
    dts: Option<u64>,
    /// Offset of the payload in the packet payload.
    body: usize,
    expected: Option<usize>,
}

fn parse_pes_header(p: &[u8]) -> Option<PesHeader> {
    if p.len() < 9 || p[..3] != [0, 0, 1] {
        return None;
    }
    let stream_id = p[3];
    if !matches!(stream_id, 0xbd | 0xc0..=0xef | 0xfa | 0xfd) {
        return None;
    }
    let pes_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
    let flags = p[7] >> 6;
    let header_len = usize::from(p[8]);
    let body = 9 + header_len;
    if body > p.len() {
        return None;
    }
    let (pts, dts) = match flags {
        2 if header_len >= 5 => (Some(timestamp(&p[9..14])), None),
        3 if header_len >= 10 => (Some(timestamp(&p[9..14])), Some(timestamp(&p[14..19]))),
        _ => (None, None),
    };
    let expected = if pes_len == 0 { None } else { Some((pes_len + 6).checked_sub(body)?) };
    Some(PesHeader { pts, dts, body, expected })
}

#[cfg(test)]
#[path = "demux_tests.rs"]
mod tests;
