//! Hand-built MPEG-TS for tests and fuzz seeds: a minimal multiplexer (PAT, PMT, PES with
//! PCR and continuity counters) and sample elementary-stream units. Not a general muxer.

use crate::bits::crc32_mpeg2;

/// H.264 SPS and PPS of libx264, High profile level 3.1, 1280x720.
pub const H264_SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
    0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
pub const H264_PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// HEVC VPS, SPS and PPS of libx265, Main profile, 320x180.
pub const HEVC_VPS: &[u8] = &[
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0x95, 0x98, 0x09,
];
pub const HEVC_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0,
    0x0a, 0x08, 0x0b, 0x9f, 0x79, 0x65, 0x66, 0x92, 0x4c, 0xaf, 0x01, 0x68, 0x08, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00,
    0x00, 0x03, 0x00, 0xf0, 0x40,
];
pub const HEVC_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nals {
        out.extend([0, 0, 0, 1]);
        out.extend(*n);
    }
    out
}

/// AUD, SPS, PPS, SEI, IDR slice.
pub fn h264_idr_au() -> Vec<u8> {
    annex_b(&[&[0x09, 0xf0], H264_SPS, H264_PPS, &[0x06, 0x05, 0x01, 0x00, 0x80], &[0x65, 0x88, 0x84, 0x00, 0x33]])
}

/// AUD, non-IDR slice.
pub fn h264_p_au() -> Vec<u8> {
    annex_b(&[&[0x09, 0xf0], &[0x41, 0x9a, 0x02, 0x03]])
}

/// AUD, VPS, SPS, PPS, IDR_W_RADL slice.
pub fn hevc_idr_au() -> Vec<u8> {
    annex_b(&[&[0x46, 0x01, 0x10], HEVC_VPS, HEVC_SPS, HEVC_PPS, &[0x26, 0x01, 0xaf, 0x09, 0x40]])
}

/// TRAIL_R slice.
pub fn hevc_p_au() -> Vec<u8> {
    annex_b(&[&[0x02, 0x01, 0xd0, 0x09, 0x7e]])
}

/// One ADTS frame (no CRC) around `payload`; `sf_index` 3 = 48 kHz, 4 = 44.1 kHz.
pub fn adts_frame(payload: &[u8], sf_index: u8, channels: u8) -> Vec<u8> {
    let len = payload.len() + 7;
    let mut h = vec![
        0xff,
        0xf1,
        (1 << 6) | (sf_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ];
    h.extend(payload);
    h
}

/// MSB-first bit writer for LATM.
struct BitWriter {
    out: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.out.push(0);
            }
            if (v >> i) & 1 == 1 {
                *self.out.last_mut().unwrap() |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
    }
}

/// One LOAS frame carrying one LATM AudioMuxElement (version 0, one subframe); with
/// `config`, it carries the StreamMuxConfig with the 2-byte `asc` as ffmpeg writes it.
pub fn loas_frame(asc: &[u8; 2], payload: &[u8], config: bool) -> Vec<u8> {
    let mut w = BitWriter { out: Vec::new(), bits: 0 };
    w.put(1, u32::from(!config));
    if config {
        w.put(1, 0); // audioMuxVersion
        w.put(1, 1); // allStreamsSameTimeFraming
        w.put(6, 0); // numSubFrames
        w.put(4, 0); // numProgram
        w.put(3, 0); // numLayer
        w.put(16, u32::from(u16::from_be_bytes(*asc)));
        w.put(3, 0); // frameLengthType
        w.put(8, 0xff); // latmBufferFullness
        w.put(1, 0); // otherDataPresent
        w.put(1, 0); // crcCheckPresent
    }
    let mut len = payload.len();
    while len >= 255 {
        w.put(8, 255);
        len -= 255;
    }
    w.put(8, len as u32);
    for &b in payload {
        w.put(8, u32::from(b));
    }
    let el = w.out;
    let mut f = vec![0x56, 0xe0 | (el.len() >> 8) as u8, el.len() as u8];
    f.extend(el);
    f
}

/// An elementary stream of the synthetic program.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub pid: u16,
    pub stream_type: u8,
}

/// A minimal TS multiplexer: PAT/PMT (program 1, PMT on PID 0x1000, PCR on the first
/// stream), PES packets with PTS/DTS, continuity counters per PID.
pub struct TsWriter {
    pub streams: Vec<Stream>,
    cc: std::collections::HashMap<u16, u8>,
    pub out: Vec<u8>,
    /// Set on the next packet of the PCR PID (with a PCR).
    pub discontinuity: bool,
}

pub const PMT_PID: u16 = 0x1000;

impl TsWriter {
    pub fn new(streams: &[Stream]) -> Self {
        Self { streams: streams.to_vec(), cc: Default::default(), out: Vec::new(), discontinuity: false }
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let c = self.cc.entry(pid).or_insert(15);
        *c = (*c + 1) & 15;
        *c
    }

    fn section_packet(&mut self, pid: u16, section: &[u8]) {
        let mut body = section.to_vec();
        body.extend(crc32_mpeg2(section).to_be_bytes());
        let cc = self.next_cc(pid);
        let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0];
        p.extend(body);
        p.resize(188, 0xff);
        self.out.extend(p);
    }

    pub fn psi(&mut self) {
        let pat =
            [0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
        self.section_packet(0, &pat);
        let pcr = self.streams[0].pid;
        let mut pmt = vec![0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe0 | (pcr >> 8) as u8, pcr as u8, 0xf0, 0];
        for s in &self.streams {
            pmt.extend([s.stream_type, 0xe0 | (s.pid >> 8) as u8, s.pid as u8, 0xf0, 0]);
        }
        pmt[2] = (pmt.len() - 3 + 4) as u8;
        self.section_packet(PMT_PID, &pmt);
    }

    /// One PES (unbounded length for video stream types, bounded otherwise), split into
    /// packets; the first packet of the PCR PID carries a PCR equal to `dts - 0.1 s`.
    pub fn pes(&mut self, pid: u16, pts: u64, dts: Option<u64>, payload: &[u8]) {
        let video = self.streams.iter().any(|s| s.pid == pid && matches!(s.stream_type, 0x1b | 0x24));
        let mut hdr = vec![0, 0, 1, if video { 0xe0 } else { 0xc0 }, 0, 0, 0x80];
        let ts = |flag: u8, v: u64| -> [u8; 5] {
            [
                (flag << 4) | (((v >> 30) as u8 & 7) << 1) | 1,
                (v >> 22) as u8,
                (((v >> 15) as u8) << 1) | 1,
                (v >> 7) as u8,
                ((v as u8) << 1) | 1,
            ]
        };
        match dts {
            Some(d) => {
                hdr.extend([0xc0, 10]);
                hdr.extend(ts(3, pts));
                hdr.extend(ts(1, d));
            }
            None => {
                hdr.extend([0x80, 5]);
                hdr.extend(ts(2, pts));
            }
        }
        if !video {
            let len = hdr.len() - 6 + payload.len();
            hdr[4] = (len >> 8) as u8;
            hdr[5] = len as u8;
        }
        let mut data = hdr;
        data.extend(payload);
        let pcr_pid = self.streams[0].pid;
        let mut first = true;
        let mut pos = 0;
        while pos < data.len() {
            let cc = self.next_cc(pid);
            let mut af = Vec::new();
            if first && pid == pcr_pid {
                let pcr = dts.unwrap_or(pts).wrapping_sub(9000) & crate::clock::MASK33;
                let flags = 0x10 | if std::mem::take(&mut self.discontinuity) { 0x80 } else { 0 };
                af.extend([flags, (pcr >> 25) as u8, (pcr >> 17) as u8, (pcr >> 9) as u8, (pcr >> 1) as u8]);
                af.extend([((pcr as u8 & 1) << 7) | 0x7e, 0]);
            }
            let room = 184 - if af.is_empty() { 0 } else { 1 + af.len() };
            let take = (data.len() - pos).min(room);
            // Stuff through the adaptation field so the packet is exactly 188 bytes; `None`:
            // no adaptation field at all.
            let mut af_len = (!af.is_empty()).then_some(af.len());
            if take < room {
                let stuffing = room - take;
                match af_len {
                    Some(n) => {
                        af.extend(std::iter::repeat_n(0xff, stuffing));
                        af_len = Some(n + stuffing);
                    }
                    // The length byte itself takes one byte of the stuffing.
                    None => {
                        if stuffing > 1 {
                            af.push(0x00);
                            af.extend(std::iter::repeat_n(0xff, stuffing - 2));
                        }
                        af_len = Some(stuffing - 1);
                    }
                }
            }
            let afc = if af_len.is_some() { 0x30 } else { 0x10 };
            let pusi = if first { 0x40 } else { 0 };
            let mut p = vec![0x47, pusi | (pid >> 8) as u8, pid as u8, afc | cc];
            if let Some(n) = af_len {
                p.push(n as u8);
                p.extend(&af);
            }
            p.extend(&data[pos..pos + take]);
            debug_assert_eq!(p.len(), 188, "packet size");
            self.out.extend(p);
            pos += take;
            first = false;
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// A program of H.264 (PID 0x100) and ADTS AAC (PID 0x101, 48 kHz stereo): `seconds` of
/// 30 fps video with a keyframe every 30 frames, and audio frames of 1024 samples, starting
/// at `start` (90 kHz).
pub fn h264_aac_program(seconds: u32, start: u64) -> Vec<u8> {
    let mut w = TsWriter::new(&[Stream { pid: 0x100, stream_type: 0x1b }, Stream { pid: 0x101, stream_type: 0x0f }]);
    w.psi();
    let frames = seconds * 30;
    let mut audio_t = 0u64; // in samples at 48 kHz
    for f in 0..u64::from(frames) {
        let dts = start + f * 3000;
        let au = if f % 30 == 0 { h264_idr_au() } else { h264_p_au() };
        w.pes(0x100, dts + 3000, Some(dts), &au);
        // Audio up to this video time.
        while audio_t * 90_000 / 48_000 <= f * 3000 {
            let pts = start + audio_t * 90_000 / 48_000;
            w.pes(0x101, pts, None, &adts_frame(&[0x21, 0x10, (audio_t / 1024) as u8], 3, 2));
            audio_t += 1024;
        }
        if f % 10 == 9 {
            w.psi();
        }
    }
    w.take()
}
