//! RTP (RFC 3550) and the depacketization of H.264 (RFC 6184), HEVC (RFC 7798) and AAC
//! (RFC 3640, mpeg4-generic AAC-hbr/lbr).
//!
//! Hand-written: retina's depacketizers are the natural choice, but retina 0.4 keeps
//! `Depacketizer::push` crate-private (only its own client can feed it), so a server that
//! receives packets itself cannot use them. The pull client (retina) uses retina's.
//!
//! Every function takes untrusted bytes and returns an error instead of panicking; buffers are
//! capped ([`MAX_AU_BYTES`]). A sequence gap drops the partial unit and marks the next access
//! unit damaged (the caller waits for a keyframe).

use bytes::{Bytes, BytesMut};

use crate::h26x::VideoCodec;

/// Largest access unit assembled (a 4K intra frame is a few MB).
pub const MAX_AU_BYTES: usize = 8 * 1024 * 1024;
/// Most NAL units in one access unit.
pub const MAX_AU_NALS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepackError {
    #[error("RTP: {0}")]
    Rtp(&'static str),
    #[error("{0}")]
    Payload(&'static str),
    #[error("unsupported packetization: {0}")]
    Unsupported(&'static str),
}

pub fn parse_rtp(data: &[u8]) -> Result<RtpPacket<'_>, DepackError> {
    if data.len() < 12 {
        return Err(DepackError::Rtp("shorter than the fixed header"));
    }
    if data[0] >> 6 != 2 {
        return Err(DepackError::Rtp("not version 2"));
    }
    let csrc = usize::from(data[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if data[0] & 0x10 != 0 {
        let ext = data.get(start + 2..start + 4).ok_or(DepackError::Rtp("extension past the end"))?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = data.len();
    if data[0] & 0x20 != 0 {
        let pad = usize::from(*data.last().unwrap_or(&0));
        if pad == 0 {
            return Err(DepackError::Rtp("zero padding length"));
        }
        end = end.checked_sub(pad).ok_or(DepackError::Rtp("padding past the start"))?;
    }
    if start > end {
        return Err(DepackError::Rtp("header past the end"));
    }
    Ok(RtpPacket {
        payload_type: data[1] & 0x7f,
        marker: data[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        payload: &data[start..end],
    })
}

/// Sequence tracking shared by the depacketizers: counts lost packets.
#[derive(Debug, Default)]
struct Sequence {
    last: Option<u16>,
}

impl Sequence {
    /// Packets missing before this one (0 in order); duplicates and late packets are `None`.
    fn step(&mut self, seq: u16) -> Option<u16> {
        let lost = match self.last {
            None => 0,
            Some(last) => {
                let d = seq.wrapping_sub(last);
                if d == 0 || d > 0x8000 {
                    return None;
                }
                d - 1
            }
        };
        self.last = Some(seq);
        Some(lost)
    }
}

/// One access unit of NAL units, all with the same RTP timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NalAu {
    pub timestamp: u32,
    pub nals: Vec<Bytes>,
    /// Packets were lost inside or just before it: not decodable as is.
    pub damaged: bool,
}

/// H.264 / HEVC depacketizer: single NAL units, STAP-A / AP aggregates and FU-A / FU fragments.
/// An access unit ends at the marker bit or when the timestamp changes.
#[derive(Debug)]
pub struct NalDepacketizer {
    codec: VideoCodec,
    seq: Sequence,
    au: Vec<Bytes>,
    au_bytes: usize,
    au_ts: Option<u32>,
    damaged: bool,
    /// A loss between units: the unit after it is damaged too (it may have lost its start).
    damage_next: bool,
    frag: Option<BytesMut>,
    /// Packets lost so far.
    pub lost: u64,
}

impl NalDepacketizer {
    pub fn new(codec: VideoCodec) -> Self {
        NalDepacketizer {
            codec,
            seq: Sequence::default(),
            au: Vec::new(),
            au_bytes: 0,
            au_ts: None,
            damaged: false,
            damage_next: false,
            frag: None,
            lost: 0,
        }
    }

    fn flush(&mut self, out: &mut Vec<NalAu>) {
        if let Some(ts) = self.au_ts.take()
            && !self.au.is_empty()
        {
            out.push(NalAu { timestamp: ts, nals: std::mem::take(&mut self.au), damaged: self.damaged });
            self.damaged = std::mem::take(&mut self.damage_next);
        }
        self.au.clear();
        self.au_bytes = 0;
    }

    fn add(&mut self, nal: Bytes) -> Result<(), DepackError> {
        if nal.is_empty() {
            return Ok(());
        }
        self.au_bytes += nal.len();
        if self.au_bytes > MAX_AU_BYTES || self.au.len() >= MAX_AU_NALS {
            self.au.clear();
            self.au_bytes = 0;
            self.damaged = true;
            return Err(DepackError::Payload("access unit too large"));
        }
        self.au.push(nal);
        Ok(())
    }

    /// Feeds one packet; completed access units are appended to `out`.
    pub fn push(&mut self, pkt: &RtpPacket<'_>, out: &mut Vec<NalAu>) -> Result<(), DepackError> {
        let Some(lost) = self.seq.step(pkt.sequence) else { return Ok(()) };
        if lost > 0 {
            self.lost += u64::from(lost);
            self.frag = None;
            self.damaged = true;
            self.damage_next = true;
        }
        if self.au_ts.is_some_and(|t| t != pkt.timestamp) {
            self.frag = None;
            self.flush(out);
        }
        self.au_ts = Some(pkt.timestamp);
        let r = match self.codec {
            VideoCodec::H264 => self.push_h264(pkt.payload),
            VideoCodec::H265 => self.push_h265(pkt.payload),
        };
        if r.is_err() {
            self.frag = None;
            self.damaged = true;
        }
        if pkt.marker {
            self.frag = None;
            self.flush(out);
        }
        r
    }

    fn push_h264(&mut self, p: &[u8]) -> Result<(), DepackError> {
        let &h = p.first().ok_or(DepackError::Payload("empty payload"))?;
        if h & 0x80 != 0 {
            return Err(DepackError::Payload("forbidden bit set"));
        }
        match h & 0x1f {
            0 => Err(DepackError::Payload("NAL type 0")),
            1..=23 => self.add(Bytes::copy_from_slice(p)),
            24 => self.aggregate(&p[1..]),
            28 => {
                let &fu = p.get(1).ok_or(DepackError::Payload("FU-A without header"))?;
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &[(h & 0xe0) | (fu & 0x1f)], &p[2..])
            }
            25 => Err(DepackError::Unsupported("STAP-B")),
            26 | 27 => Err(DepackError::Unsupported("MTAP")),
            29 => Err(DepackError::Unsupported("FU-B")),
            _ => Err(DepackError::Payload("reserved NAL type")),
        }
    }

    fn push_h265(&mut self, p: &[u8]) -> Result<(), DepackError> {
        if p.len() < 2 {
            return Err(DepackError::Payload("payload shorter than a NAL header"));
        }
        if p[0] & 0x80 != 0 {
            return Err(DepackError::Payload("forbidden bit set"));
        }
        match (p[0] >> 1) & 0x3f {
            48 => self.aggregate(&p[2..]),
            49 => {
                let &fu = p.get(2).ok_or(DepackError::Payload("FU without header"))?;
                let header = [(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]];
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &header, &p[3..])
            }
            50 => Err(DepackError::Unsupported("PACI")),
            _ => self.add(Bytes::copy_from_slice(p)),
        }
    }

    /// STAP-A / AP: 16-bit size, NAL unit, repeated (no DON fields: sprop-max-don-diff 0).
    fn aggregate(&mut self, mut p: &[u8]) -> Result<(), DepackError> {
        while !p.is_empty() {
            if p.len() < 2 {
                return Err(DepackError::Payload("aggregate: truncated size"));
            }
            let n = usize::from(u16::from_be_bytes([p[0], p[1]]));
            let nal = p.get(2..2 + n).ok_or(DepackError::Payload("aggregate: NAL past the end"))?;
            self.add(Bytes::copy_from_slice(nal))?;
            p = &p[2 + n..];
        }
        Ok(())
    }

    fn fragment(&mut self, start: bool, end: bool, header: &[u8], data: &[u8]) -> Result<(), DepackError> {
        if start && end {
            return Err(DepackError::Payload("fragment with both start and end bits"));
        }
        if start {
            let mut b = BytesMut::with_capacity(header.len() + data.len() * 4);
            b.extend_from_slice(header);
            b.extend_from_slice(data);
            self.frag = Some(b);
        } else {
            let Some(b) = self.frag.as_mut() else {
                // The start was lost (counted as loss already, or sent before we listened).
                self.damaged = true;
                return Ok(());
            };
            if b.len() + data.len() + self.au_bytes > MAX_AU_BYTES {
                self.frag = None;
                return Err(DepackError::Payload("fragmented NAL too large"));
            }
            b.extend_from_slice(data);
        }
        if end && let Some(b) = self.frag.take() {
            self.add(b.freeze())?;
        }
        Ok(())
    }
}

/// RFC 3640 parameters of an mpeg4-generic AAC stream (from its fmtp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacLayout {
    pub size_length: u8,
    pub index_length: u8,
    pub index_delta_length: u8,
    /// Samples per AU (1024, or 960).
    pub frame_samples: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacAu {
    pub timestamp: u32,
    pub data: Bytes,
}

/// AAC (RFC 3640): AU-headers section, then the AUs; one AU may span packets (marker on the
/// last).
#[derive(Debug)]
pub struct AacDepacketizer {
    layout: AacLayout,
    seq: Sequence,
    frag: Option<(u32, usize, BytesMut)>,
    pub lost: u64,
}

impl AacDepacketizer {
    pub fn new(layout: AacLayout) -> Result<Self, DepackError> {
        if !(1..=16).contains(&layout.size_length) || layout.index_length > 8 || layout.index_delta_length > 8 {
            return Err(DepackError::Unsupported("AU header field sizes"));
        }
        Ok(AacDepacketizer { layout, seq: Sequence::default(), frag: None, lost: 0 })
    }

    pub fn push(&mut self, pkt: &RtpPacket<'_>, out: &mut Vec<AacAu>) -> Result<(), DepackError> {
        let Some(lost) = self.seq.step(pkt.sequence) else { return Ok(()) };
        if lost > 0 {
            self.lost += u64::from(lost);
            self.frag = None;
        }
        let p = pkt.payload;
        if p.len() < 2 {
            return Err(DepackError::Payload("AAC: no AU-headers-length"));
        }
        let header_bits = usize::from(u16::from_be_bytes([p[0], p[1]]));
        let header_bytes = header_bits.div_ceil(8);
        let headers = p.get(2..2 + header_bytes).ok_or(DepackError::Payload("AAC: AU headers past the end"))?;
        let mut data = &p[2 + header_bytes..];
        let mut r = crate::h26x::BitReader::new(headers);
        let (sl, il, idl) = (
            u32::from(self.layout.size_length),
            u32::from(self.layout.index_length),
            u32::from(self.layout.index_delta_length),
        );
        let mut read = 0usize;
        let mut sizes = Vec::new();
        while read + (sl + if sizes.is_empty() { il } else { idl }) as usize <= header_bits {
            let size = r.bits(sl).ok_or(DepackError::Payload("AAC: AU header"))? as usize;
            let idx_bits = if sizes.is_empty() { il } else { idl };
            r.skip(idx_bits as usize).ok_or(DepackError::Payload("AAC: AU header"))?;
            read += (sl + idx_bits) as usize;
            sizes.push(size);
            if sizes.len() > 64 {
                return Err(DepackError::Payload("AAC: too many AUs in one packet"));
            }
        }
        if sizes.is_empty() {
            return Err(DepackError::Payload("AAC: no AU header"));
        }
        // A fragment continues: one header (the whole AU's size), the next piece of data.
        if let Some((ts, size, buf)) = self.frag.as_mut() {
            if *ts == pkt.timestamp && sizes.len() == 1 && sizes[0] == *size {
                buf.extend_from_slice(data);
                if buf.len() >= *size || pkt.marker {
                    let (ts, size, buf) = self.frag.take().expect("fragment");
                    if buf.len() != size {
                        return Err(DepackError::Payload("AAC: fragment sizes do not add up"));
                    }
                    out.push(AacAu { timestamp: ts, data: buf.freeze() });
                }
                return Ok(());
            }
            self.frag = None;
        }
        if sizes.len() == 1 && sizes[0] > data.len() {
            if pkt.marker {
                return Err(DepackError::Payload("AAC: AU larger than its packet"));
            }
            self.frag = Some((pkt.timestamp, sizes[0], BytesMut::from(data)));
            return Ok(());
        }
        for (i, size) in sizes.into_iter().enumerate() {
            if size > data.len() {
                return Err(DepackError::Payload("AAC: AU past the end"));
            }
            let ts = pkt.timestamp.wrapping_add(self.layout.frame_samples.wrapping_mul(i as u32));
            out.push(AacAu { timestamp: ts, data: Bytes::copy_from_slice(&data[..size]) });
            data = &data[size..];
        }
        Ok(())
    }
}

/// Builds an RTP packet (tests and fuzz seeds).
pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, (u8::from(marker) << 7) | pt];
    v.extend(seq.to_be_bytes());
    v.extend(ts.to_be_bytes());
    v.extend(ssrc.to_be_bytes());
    v.extend(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut NalDepacketizer, pkts: &[Vec<u8>]) -> Vec<NalAu> {
        let mut out = Vec::new();
        for p in pkts {
            d.push(&parse_rtp(p).unwrap(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn rtp_header_fields_csrc_extension_padding() {
        let mut p = rtp_packet(96, true, 7, 9000, 0xabcd, b"xyz\x00\x02");
        p[0] |= 0x20 | 0x01 | 0x10; // padding, 1 CSRC, extension
        let mut with = p[..12].to_vec();
        with.extend([0, 0, 0, 1]); // CSRC
        with.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        with.extend(&p[12..]);
        let r = parse_rtp(&with).unwrap();
        assert_eq!((r.payload_type, r.marker, r.sequence, r.timestamp, r.ssrc), (96, true, 7, 9000, 0xabcd));
        assert_eq!(r.payload, b"xyz");
        assert!(parse_rtp(&[0x80; 11]).is_err());
        assert!(parse_rtp(&[0x40; 12]).is_err());
        assert!(parse_rtp(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]).is_err());
    }

    #[test]
    fn h264_single_stap_a_and_fu_a() {
        let mut d = NalDepacketizer::new(VideoCodec::H264);
        let stap = [24, 0, 2, 0x67, 1, 0, 2, 0x68, 2];
        let fu1 = [0x7c, 0x85, 1, 2];
        let fu2 = [0x7c, 0x05, 3];
        let fu3 = [0x7c, 0x45, 4];
        let out = feed(
            &mut d,
            &[
                rtp_packet(96, false, 1, 1000, 1, &stap),
                rtp_packet(96, false, 2, 1000, 1, &fu1),
                rtp_packet(96, false, 3, 1000, 1, &fu2),
                rtp_packet(96, true, 4, 1000, 1, &fu3),
                rtp_packet(96, true, 5, 4000, 1, &[0x41, 9]),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].nals, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 1, 2, 3, 4]]);
        assert!(!out[0].damaged);
        assert_eq!((out[1].timestamp, &out[1].nals[0][..]), (4000, &[0x41, 9][..]));
    }

    #[test]
    fn loss_drops_the_fragment_and_marks_the_unit() {
        let mut d = NalDepacketizer::new(VideoCodec::H264);
        let out = feed(
            &mut d,
            &[
                rtp_packet(96, false, 10, 1000, 1, &[0x7c, 0x85, 1]),
                // seq 11 lost
                rtp_packet(96, true, 12, 1000, 1, &[0x7c, 0x45, 3]),
                rtp_packet(96, true, 13, 2000, 1, &[0x41, 1]),
            ],
        );
        assert_eq!(d.lost, 1);
        assert_eq!(out.len(), 1, "the broken unit had no complete NAL");
        assert!(out[0].damaged, "the next unit may reference the lost one");
        // A timestamp change without marker also ends a unit; duplicates are ignored.
        let out = feed(
            &mut d,
            &[
                rtp_packet(96, false, 14, 3000, 1, &[0x41, 2]),
                rtp_packet(96, false, 14, 3000, 1, &[0x41, 2]),
                rtp_packet(96, true, 16, 4000, 1, &[0x41, 3]),
            ],
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].damaged && out[1].damaged, "either may have lost a packet");
    }

    #[test]
    fn hevc_ap_and_fu() {
        let mut d = NalDepacketizer::new(VideoCodec::H265);
        let ap = [0x60, 1, 0, 3, 0x40, 1, 7, 0, 3, 0x42, 1, 8];
        // FU of an IDR_W_RADL (type 19).
        let fu1 = [0x62, 1, 0x80 | 19, 0xaa];
        let fu2 = [0x62, 1, 0x40 | 19, 0xbb];
        let out = feed(
            &mut d,
            &[
                rtp_packet(96, false, 1, 0, 1, &ap),
                rtp_packet(96, false, 2, 0, 1, &fu1),
                rtp_packet(96, true, 3, 0, 1, &fu2),
            ],
        );
        assert_eq!(out[0].nals, vec![&[0x40, 1, 7][..], &[0x42, 1, 8], &[19 << 1, 1, 0xaa, 0xbb]]);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut d = NalDepacketizer::new(VideoCodec::H264);
        let mut out = Vec::new();
        for (i, p) in [&[24u8, 0, 9, 1][..], &[], &[0x80], &[28], &[25, 1]].iter().enumerate() {
            let pkt = rtp_packet(96, false, i as u16, 0, 1, p);
            assert!(d.push(&parse_rtp(&pkt).unwrap(), &mut out).is_err(), "{p:?}");
        }
    }

    #[test]
    fn aac_multiple_aus_and_fragments() {
        let layout = AacLayout { size_length: 13, index_length: 3, index_delta_length: 3, frame_samples: 1024 };
        let mut d = AacDepacketizer::new(layout).unwrap();
        // Two AUs of 3 and 2 bytes: headers 16 bits each.
        let p = [0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5];
        let mut out = Vec::new();
        d.push(&parse_rtp(&rtp_packet(97, true, 1, 5000, 2, &p)).unwrap(), &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                AacAu { timestamp: 5000, data: Bytes::from_static(&[1, 2, 3]) },
                AacAu { timestamp: 6024, data: Bytes::from_static(&[4, 5]) }
            ]
        );
        // One AU of 5 bytes over two packets.
        out.clear();
        let h = [0, 16, 0, 5 << 3];
        let mut a = h.to_vec();
        a.extend([1, 2, 3]);
        let mut b = h.to_vec();
        b.extend([4, 5]);
        d.push(&parse_rtp(&rtp_packet(97, false, 2, 7048, 2, &a)).unwrap(), &mut out).unwrap();
        assert!(out.is_empty());
        d.push(&parse_rtp(&rtp_packet(97, true, 3, 7048, 2, &b)).unwrap(), &mut out).unwrap();
        assert_eq!(out, vec![AacAu { timestamp: 7048, data: Bytes::from_static(&[1, 2, 3, 4, 5]) }]);
        assert!(d.push(&parse_rtp(&rtp_packet(97, true, 4, 0, 2, &[0, 16, 0xff, 0xff])).unwrap(), &mut out).is_err());
        assert!(d.push(&parse_rtp(&rtp_packet(97, true, 5, 0, 2, &[0xff, 0xff])).unwrap(), &mut out).is_err());
    }
}
