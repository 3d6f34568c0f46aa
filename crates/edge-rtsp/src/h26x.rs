//! H.264 / HEVC parameter sets to a decoder configuration record (avcC / hvcC), and NAL units
//! to a 4-byte length-prefixed sample.
//!
//! The record builders are a port of edge-ts's (`video.rs`), which keeps them crate-private;
//! the records are read back with edge-rtmp's public `codec` parsers, so codec strings and
//! picture sizes come from the same code as for RTMP and SRT. (Moving the builders next to
//! those parsers would let both crates share them.)

use bytes::{BufMut, Bytes, BytesMut};
use edge_rtmp::codec::{self, VideoConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

/// Parameter sets of a stream, as the SDP or the stream itself carried them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSets {
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl ParamSets {
    /// Adds a parameter set NAL by its type; returns whether it was one.
    pub fn add_nal(&mut self, codec: VideoCodec, nal: &[u8]) -> bool {
        let list = match (codec, nal_type(codec, nal)) {
            (VideoCodec::H264, Some(7)) => &mut self.sps,
            (VideoCodec::H264, Some(8)) => &mut self.pps,
            (VideoCodec::H265, Some(32)) => &mut self.vps,
            (VideoCodec::H265, Some(33)) => &mut self.sps,
            (VideoCodec::H265, Some(34)) => &mut self.pps,
            _ => return false,
        };
        // The newest set of an id wins; a handful at most (a stream uses one or two).
        if !list.iter().any(|n| n[..] == *nal) {
            if list.len() >= 8 {
                list.remove(0);
            }
            list.push(Bytes::copy_from_slice(nal));
        }
        true
    }

    pub fn complete(&self, codec: VideoCodec) -> bool {
        !self.sps.is_empty() && !self.pps.is_empty() && (codec == VideoCodec::H264 || !self.vps.is_empty())
    }
}

pub fn nal_type(codec: VideoCodec, nal: &[u8]) -> Option<u8> {
    let b = *nal.first()?;
    Some(match codec {
        VideoCodec::H264 => b & 0x1f,
        VideoCodec::H265 => (b >> 1) & 0x3f,
    })
}

/// One access unit of NAL units as a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub data: Bytes,
    pub keyframe: bool,
}

/// Builds the sample of an access unit: parameter sets go to `params` (out of the sample, as
/// avc1/hvc1 want), access unit delimiters and filler are dropped. `None` without a picture.
pub fn to_sample(codec: VideoCodec, nals: &[Bytes], params: &mut ParamSets) -> Option<Sample> {
    let mut out = BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
    let (mut keyframe, mut picture) = (false, false);
    for nal in nals {
        if nal.is_empty() || params.add_nal(codec, nal) {
            continue;
        }
        let t = nal_type(codec, nal)?;
        match codec {
            VideoCodec::H264 => {
                if matches!(t, 9 | 12 | 13) {
                    continue;
                }
                picture |= matches!(t, 1..=5);
                keyframe |= t == 5;
            }
            VideoCodec::H265 => {
                if nal.len() < 2 || matches!(t, 35 | 38) {
                    continue;
                }
                picture |= t < 32;
                keyframe |= (16..=21).contains(&t);
            }
        }
        out.put_u32(u32::try_from(nal.len()).ok()?);
        out.put_slice(nal);
    }
    picture.then(|| Sample { data: out.freeze(), keyframe })
}

/// The decoder configuration record of these parameter sets, read back for its codec string
/// and picture size.
pub fn build_config(codec: VideoCodec, p: &ParamSets) -> Result<VideoConfig, String> {
    match codec {
        VideoCodec::H264 => codec::parse_avcc(&build_avcc(p).ok_or("unreadable H.264 SPS")?),
        VideoCodec::H265 => codec::parse_hvcc(&build_hvcc(p).ok_or("unreadable HEVC SPS")?),
    }
    .map_err(|e| e.to_string())
}

fn put_nals(out: &mut BytesMut, nals: &[Bytes]) -> Option<()> {
    for n in nals {
        out.put_u16(u16::try_from(n.len()).ok()?);
        out.put_slice(n);
    }
    Some(())
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with the High-profile extension.
fn build_avcc(p: &ParamSets) -> Option<Bytes> {
    let sps = p.sps.last()?;
    if sps.len() < 4 || p.pps.is_empty() {
        return None;
    }
    let mut out = BytesMut::new();
    out.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    put_nals(&mut out, std::slice::from_ref(sps))?;
    out.put_u8(p.pps.len() as u8);
    put_nals(&mut out, &p.pps)?;
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        let data = rbsp(&sps[1..]);
        let mut r = BitReader::new(&data);
        r.skip(24)?;
        r.ue()?;
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?;
        }
        let luma = r.ue()?;
        let chroma_depth = r.ue()?;
        out.put_slice(&[
            0xfc | (chroma.min(3) as u8),
            0xf8 | (luma.min(7) as u8),
            0xf8 | (chroma_depth.min(7) as u8),
            0,
        ]);
    }
    Some(out.freeze())
}

struct HevcSpsInfo {
    ptl: [u8; 12],
    sub_layers: u8,
    temporal_id_nested: bool,
    chroma_format: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
}

fn hevc_sps_info(sps: &[u8]) -> Option<HevcSpsInfo> {
    if sps.len() < 3 {
        return None;
    }
    let data = rbsp(&sps[2..]);
    let mut r = BitReader::new(&data);
    r.skip(4)?;
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    let temporal_id_nested = r.bit()? == 1;
    let mut ptl = [0u8; 12];
    for b in &mut ptl {
        *b = r.bits(8)? as u8;
    }
    let mut present = Vec::with_capacity(max_sub_layers_minus1);
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.bit()?, r.bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for (profile, level) in present {
        if profile == 1 {
            r.skip(88)?;
        }
        if level == 1 {
            r.skip(8)?;
        }
    }
    r.ue()?;
    let chroma = r.ue()?;
    if chroma == 3 {
        r.bit()?;
    }
    r.ue()?;
    r.ue()?;
    if r.bit()? == 1 {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    let luma = r.ue()?;
    let chroma_depth = r.ue()?;
    Some(HevcSpsInfo {
        ptl,
        sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
        chroma_format: chroma.min(3) as u8,
        bit_depth_luma_minus8: luma.min(7) as u8,
        bit_depth_chroma_minus8: chroma_depth.min(7) as u8,
    })
}

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1).
fn build_hvcc(p: &ParamSets) -> Option<Bytes> {
    let sps = p.sps.last()?;
    let info = hevc_sps_info(sps)?;
    if p.vps.is_empty() || p.pps.is_empty() {
        return None;
    }
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_slice(&info.ptl);
    out.put_u16(0xf000);
    out.put_u8(0xfc);
    out.put_u8(0xfc | info.chroma_format);
    out.put_u8(0xf8 | info.bit_depth_luma_minus8);
    out.put_u8(0xf8 | info.bit_depth_chroma_minus8);
    out.put_u16(0);
    out.put_u8(((info.sub_layers & 7) << 3) | (u8::from(info.temporal_id_nested) << 2) | 3);
    out.put_u8(3);
    for (nal_type, list) in [(32u8, &p.vps[..]), (33, std::slice::from_ref(sps)), (34, &p.pps[..])] {
        out.put_u8(0x80 | nal_type);
        out.put_u16(list.len() as u16);
        put_nals(&mut out, list)?;
    }
    Some(out.freeze())
}

/// Bounds-checked MSB-first bit reader (every read past the end is `None`).
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 || self.remaining() < n as usize {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        if self.remaining() < n {
            return None;
        }
        self.pos += n;
        Some(())
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_ts::synth;

    #[test]
    fn h264_sample_and_config() {
        let mut p = ParamSets::default();
        let nals: Vec<Bytes> = [synth::H264_SPS, synth::H264_PPS, &[0x09, 0xf0], &[0x65, 0x88, 0x84]]
            .iter()
            .map(|n| Bytes::copy_from_slice(n))
            .collect();
        let s = to_sample(VideoCodec::H264, &nals, &mut p).unwrap();
        assert!(s.keyframe);
        assert_eq!(&s.data[..], &[0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert!(p.complete(VideoCodec::H264));
        let cfg = build_config(VideoCodec::H264, &p).unwrap();
        assert_eq!((cfg.codec_string.as_str(), cfg.width, cfg.height), ("avc1.64001f", 1280, 720));
        assert!(to_sample(VideoCodec::H264, &[Bytes::from_static(&[0x09, 0xf0])], &mut p).is_none());
    }

    #[test]
    fn hevc_config() {
        let mut p = ParamSets::default();
        for n in [synth::HEVC_VPS, synth::HEVC_SPS, synth::HEVC_PPS] {
            assert!(p.add_nal(VideoCodec::H265, n));
        }
        let cfg = build_config(VideoCodec::H265, &p).unwrap();
        assert_eq!((cfg.codec_string.as_str(), cfg.width, cfg.height), ("hvc1.1.6.L60.90", 320, 180));
    }
}
