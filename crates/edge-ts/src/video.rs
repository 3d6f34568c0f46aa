//! H.264 and HEVC elementary streams as MPEG-TS carries them (Annex B byte streams, one access
//! unit per PES) to the media model's form: 4-byte length-prefixed NAL units, with parameter
//! sets moved out of the samples into an avcC / hvcC record built here. The records are then
//! read back with edge-rtmp's `codec` parsers, so codec strings and picture sizes come from
//! the same code as for RTMP.

use bytes::{BufMut, Bytes, BytesMut};
use edge_rtmp::codec::{self, VideoConfig};

use crate::bits::{BitReader, rbsp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    H264,
    H265,
}

/// NAL units of an Annex B byte stream (start codes and trailing zero bytes removed).
pub(crate) fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_trimmed(&mut nals, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut nals, &data[s..]);
    }
    nals
}

fn push_trimmed<'a>(nals: &mut Vec<&'a [u8]>, nal: &'a [u8]) {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if end > 0 {
        nals.push(&nal[..end]);
    }
}

/// Parameter sets seen in one access unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ParamSets {
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl ParamSets {
    fn add(list: &mut Vec<Bytes>, nal: &[u8]) {
        if list.len() < 16 && !list.iter().any(|n| n[..] == *nal) {
            list.push(Bytes::copy_from_slice(nal));
        }
    }

    /// Whether these make a complete configuration for `codec`.
    pub(crate) fn complete(&self, codec: VideoCodec) -> bool {
        !self.sps.is_empty() && !self.pps.is_empty() && (codec == VideoCodec::H264 || !self.vps.is_empty())
    }
}

/// One access unit converted.
pub(crate) struct VideoAu {
    pub sample: Bytes,
    pub keyframe: bool,
    pub params: ParamSets,
}

/// Converts an Annex B access unit; `None` if it holds no picture data.
pub(crate) fn convert_au(codec: VideoCodec, data: &[u8]) -> Option<VideoAu> {
    let nals = split_annex_b(data);
    let mut sample = BytesMut::with_capacity(data.len() + 16);
    let mut keyframe = false;
    let mut params = ParamSets::default();
    let mut has_vcl = false;
    for nal in nals {
        match codec {
            VideoCodec::H264 => match nal[0] & 0x1f {
                7 => ParamSets::add(&mut params.sps, nal),
                8 => ParamSets::add(&mut params.pps, nal),
                // AUD, filler, SPS extension: not sample data in MP4.
                9 | 12 | 13 => {}
                t => {
                    has_vcl |= matches!(t, 1..=5);
                    keyframe |= t == 5;
                    sample.put_u32(nal.len() as u32);
                    sample.put_slice(nal);
                }
            },
            VideoCodec::H265 => {
                if nal.len() < 2 {
                    continue;
                }
                match (nal[0] >> 1) & 0x3f {
                    32 => ParamSets::add(&mut params.vps, nal),
                    33 => ParamSets::add(&mut params.sps, nal),
                    34 => ParamSets::add(&mut params.pps, nal),
                    35 | 38 => {}
                    t => {
                        has_vcl |= t < 32;
                        keyframe |= (16..=21).contains(&t);
                        sample.put_u32(nal.len() as u32);
                        sample.put_slice(nal);
                    }
                }
            }
        }
    }
    has_vcl.then(|| VideoAu { sample: sample.freeze(), keyframe, params })
}

/// Builds the decoder configuration record from parameter sets and reads it back.
pub(crate) fn build_config(codec: VideoCodec, p: &ParamSets) -> Result<VideoConfig, String> {
    let record = match codec {
        VideoCodec::H264 => build_avcc(p).ok_or("unreadable H.264 SPS")?,
        VideoCodec::H265 => build_hvcc(p).ok_or("unreadable HEVC SPS")?,
    };
    match codec {
        VideoCodec::H264 => codec::parse_avcc(&record),
        VideoCodec::H265 => codec::parse_hvcc(&record),
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

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), 4-byte NAL lengths, with the
/// chroma/bit-depth extension the High profiles require.
fn build_avcc(p: &ParamSets) -> Option<Bytes> {
    let sps = p.sps.first()?;
    if sps.len() < 4 || p.pps.is_empty() {
        return None;
    }
    let mut out = BytesMut::new();
    out.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe0 | p.sps.len() as u8]);
    put_nals(&mut out, &p.sps)?;
    out.put_u8(p.pps.len() as u8);
    put_nals(&mut out, &p.pps)?;
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        let data = rbsp(&sps[1..]);
        let mut r = BitReader::new(&data);
        r.skip(24)?;
        r.ue()?; // seq_parameter_set_id
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

/// What hvcC needs from an HEVC SPS (ITU-T H.265 7.3.2.2).
struct HevcSpsInfo {
    /// general_profile_space .. general_level_idc: 12 bytes, as hvcC lays them out.
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
    r.ue()?; // sps_seq_parameter_set_id
    let chroma = r.ue()?;
    if chroma == 3 {
        r.bit()?;
    }
    r.ue()?; // width
    r.ue()?; // height
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

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1), 4-byte NAL lengths.
fn build_hvcc(p: &ParamSets) -> Option<Bytes> {
    let info = hevc_sps_info(p.sps.first()?)?;
    if p.vps.is_empty() || p.pps.is_empty() {
        return None;
    }
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_slice(&info.ptl);
    out.put_u16(0xf000); // min_spatial_segmentation_idc 0
    out.put_u8(0xfc); // parallelismType 0
    out.put_u8(0xfc | info.chroma_format);
    out.put_u8(0xf8 | info.bit_depth_luma_minus8);
    out.put_u8(0xf8 | info.bit_depth_chroma_minus8);
    out.put_u16(0); // avgFrameRate
    out.put_u8(((info.sub_layers & 7) << 3) | (u8::from(info.temporal_id_nested) << 2) | 3);
    out.put_u8(3);
    for (nal_type, list) in [(32u8, &p.vps), (33, &p.sps), (34, &p.pps)] {
        out.put_u8(0x80 | nal_type);
        out.put_u16(list.len() as u16);
        put_nals(&mut out, list)?;
    }
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    #[test]
    fn annex_b_split_handles_3_and_4_byte_start_codes_and_trailing_zeros() {
        let data = [0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 0, 1, 0x41, 7];
        assert_eq!(split_annex_b(&data), vec![&[9, 0xf0][..], &[0x65, 1, 2], &[0x41, 7]]);
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
        assert!(split_annex_b(&[]).is_empty());
    }

    #[test]
    fn h264_au_to_length_prefixed_sample_and_avcc() {
        let au = synth::h264_idr_au();
        let v = convert_au(VideoCodec::H264, &au).unwrap();
        assert!(v.keyframe);
        assert_eq!((v.params.sps.len(), v.params.pps.len()), (1, 1));
        // AUD, SPS and PPS are gone; SEI and the slice remain, each with a 4-byte length.
        assert!(codec::nal_lengths_valid(&v.sample));
        assert_eq!(v.sample[4] & 0x1f, 6);
        let cfg = build_config(VideoCodec::H264, &v.params).unwrap();
        assert_eq!(cfg.codec_string, "avc1.64001f");
        assert_eq!((cfg.width, cfg.height), (1280, 720));
        assert_eq!(cfg.nal_length_size, 4);
        // High profile: the avcC extension is present (chroma 4:2:0, 8 bit).
        assert_eq!(&cfg.record[cfg.record.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
        let p = convert_au(VideoCodec::H264, &synth::h264_p_au()).unwrap();
        assert!(!p.keyframe && p.params.sps.is_empty());
        assert!(convert_au(VideoCodec::H264, &[0, 0, 1, 9, 0xf0]).is_none(), "no picture");
    }

    #[test]
    fn hevc_au_to_hvcc() {
        let v = convert_au(VideoCodec::H265, &synth::hevc_idr_au()).unwrap();
        assert!(v.keyframe);
        assert!(v.params.complete(VideoCodec::H265));
        let cfg = build_config(VideoCodec::H265, &v.params).unwrap();
        assert_eq!((cfg.width, cfg.height), (320, 180));
        assert_eq!(cfg.codec_string, "hvc1.1.6.L60.90");
    }
}
