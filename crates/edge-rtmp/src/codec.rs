//! Decoder configurations: avcC, hvcC and AudioSpecificConfig, with just enough SPS parsing
//! for the picture size. Every parser takes untrusted bytes and returns `None`/`Err` rather
//! than panicking (they are fuzzed).
//!
//! A hand-written SPS reader instead of a crate: HEVC needs one anyway, and what is read here
//! (profile, level, size, cropping) is small and stable.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("unsupported {0} version {1}")]
    Version(&'static str, u8),
    #[error("{0} has no SPS")]
    NoSps(&'static str),
    #[error("invalid AudioSpecificConfig: {0}")]
    Asc(&'static str),
}

/// What the packager and manifests need from a video decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The configuration record rewritten for 4-byte NAL lengths.
    pub record: Bytes,
    pub codec_string: String,
    /// Bytes of each NAL length prefix in the samples as sent (1, 2 or 4).
    pub nal_length_size: usize,
    /// 0 when the SPS could not be read.
    pub width: u32,
    pub height: u32,
}

/// Parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
pub fn parse_avcc(record: &[u8]) -> Result<VideoConfig, ConfigError> {
    if record.len() < 7 {
        return Err(ConfigError::Truncated("avcC"));
    }
    if record[0] != 1 {
        return Err(ConfigError::Version("avcC", record[0]));
    }
    let nal_length_size = usize::from(record[4] & 3) + 1;
    if nal_length_size == 3 {
        return Err(ConfigError::Truncated("avcC (3-byte NAL lengths)"));
    }
    let num_sps = usize::from(record[5] & 0x1f);
    let mut pos = 6;
    let mut first_sps = None;
    for _ in 0..num_sps {
        let nal = read_u16_prefixed(record, &mut pos).ok_or(ConfigError::Truncated("avcC SPS"))?;
        first_sps.get_or_insert(nal);
    }
    let sps = first_sps.ok_or(ConfigError::NoSps("avcC"))?;
    let (width, height) = h264_sps_size(sps).unwrap_or((0, 0));
    let mut patched = BytesMut::from(record);
    patched[4] |= 3;
    Ok(VideoConfig {
        record: patched.freeze(),
        codec_string: format!("avc1.{:02x}{:02x}{:02x}", record[1], record[2], record[3]),
        nal_length_size,
        width,
        height,
    })
}

/// Parses an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1).
pub fn parse_hvcc(record: &[u8]) -> Result<VideoConfig, ConfigError> {
    if record.len() < 23 {
        return Err(ConfigError::Truncated("hvcC"));
    }
    if record[0] != 1 {
        return Err(ConfigError::Version("hvcC", record[0]));
    }
    let nal_length_size = usize::from(record[21] & 3) + 1;
    if nal_length_size == 3 {
        return Err(ConfigError::Truncated("hvcC (3-byte NAL lengths)"));
    }
    let num_arrays = record[22];
    let mut pos = 23;
    let mut sps = None;
    for _ in 0..num_arrays {
        let nal_type = *record.get(pos).ok_or(ConfigError::Truncated("hvcC array"))? & 0x3f;
        pos += 1;
        let count = read_u16(record, &mut pos).ok_or(ConfigError::Truncated("hvcC array"))?;
        for _ in 0..count {
            let nal = read_u16_prefixed(record, &mut pos).ok_or(ConfigError::Truncated("hvcC NAL"))?;
            if nal_type == 33 && sps.is_none() {
                sps = Some(nal);
            }
        }
    }
    let sps = sps.ok_or(ConfigError::NoSps("hvcC"))?;
    let (width, height) = hevc_sps_size(sps).unwrap_or((0, 0));
    let mut patched = BytesMut::from(record);
    patched[21] |= 3;
    Ok(VideoConfig {
        record: patched.freeze(),
        codec_string: hvc1_codec_string(record),
        nal_length_size,
        width,
        height,
    })
}

/// `hvc1.<space><profile>.<compat>.<tier><level>[.<constraint bytes>]` (ISO/IEC 14496-15 E.3).
fn hvc1_codec_string(r: &[u8]) -> String {
    let space = ["", "A", "B", "C"][usize::from(r[1] >> 6)];
    let tier = if r[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = r[1] & 0x1f;
    let compat = u32::from_be_bytes([r[2], r[3], r[4], r[5]]).reverse_bits();
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", r[12]);
    let constraints = &r[6..12];
    let used = constraints.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

fn read_u16(b: &[u8], pos: &mut usize) -> Option<u16> {
    let v = b.get(*pos..*pos + 2)?;
    *pos += 2;
    Some(u16::from_be_bytes([v[0], v[1]]))
}

fn read_u16_prefixed<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::from(read_u16(b, pos)?);
    let v = b.get(*pos..*pos + len)?;
    *pos += len;
    Some(v)
}

/// Removes emulation-prevention bytes (`00 00 03` -> `00 00`).
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

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// Exp-Golomb ue(v), refusing codes longer than 32 bits (never valid in an SPS).
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

    fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Some(v as i32)
    }
}

/// Cropped picture size from an H.264 SPS NAL unit (with its header byte), ITU-T H.264 7.3.2.1.
pub fn h264_sps_size(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let data = rbsp(&nal[1..]);
    let mut r = BitReader::new(&data);
    let profile_idc = r.bits(8)?;
    r.skip(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        crop_l = r.ue()?.into();
        crop_r = r.ue()?.into();
        crop_t = r.ue()?.into();
        crop_b = r.ue()?.into();
    }
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (crop_x, crop_y) =
        if chroma_array_type == 0 { (1, 2 - frame_mbs_only) } else { (sub_w, sub_h * (2 - frame_mbs_only)) };
    let width = (width_mbs * 16).checked_sub(crop_x * (crop_l + crop_r))?;
    let height = ((2 - frame_mbs_only) * height_map_units * 16).checked_sub(crop_y * (crop_t + crop_b))?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// Cropped picture size from an HEVC SPS NAL unit (with its 2-byte header), ITU-T H.265 7.3.2.2.
pub fn hevc_sps_size(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.len() < 3 || (nal[0] >> 1) & 0x3f != 33 {
        return None;
    }
    let data = rbsp(&nal[2..]);
    let mut r = BitReader::new(&data);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    // profile_tier_level(1, max_sub_layers_minus1)
    r.skip(96)?;
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
    let chroma_format_idc = r.ue()?;
    let mut separate_colour_plane = false;
    if chroma_format_idc == 3 {
        separate_colour_plane = r.bit()? == 1;
    }
    let width = u64::from(r.ue()?);
    let height = u64::from(r.ue()?);
    let (mut l, mut rt, mut t, mut b) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        l = r.ue()?.into();
        rt = r.ue()?.into();
        t = r.ue()?.into();
        b = r.ue()?.into();
    }
    let (sub_w, sub_h) = match (separate_colour_plane, chroma_format_idc) {
        (false, 1) => (2, 2),
        (false, 2) => (2, 1),
        _ => (1, 1),
    };
    let w = width.checked_sub(sub_w * (l + rt))?;
    let h = height.checked_sub(sub_h * (t + b))?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// What an AudioSpecificConfig says (ISO/IEC 14496-3 1.6.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The audio object type as signalled first (2 = AAC-LC, 5 = HE-AAC, 29 = HE-AACv2): the `N`
    /// of `mp4a.40.N`.
    pub object_type: u8,
    /// The core sampling rate (for HE-AAC half the output rate); units count frames at this rate.
    pub sample_rate: u32,
    /// 0 when the channel configuration is in a program config element.
    pub channels: u16,
    /// Samples per frame at `sample_rate`: 1024, or 960 with frameLengthFlag.
    pub frame_samples: u32,
}

impl AacConfig {
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

pub fn parse_asc(asc: &[u8]) -> Result<AacConfig, ConfigError> {
    let mut r = BitReader::new(asc);
    let truncated = ConfigError::Asc("truncated");
    let object_type = |r: &mut BitReader| -> Option<u32> {
        let t = r.bits(5)?;
        if t == 31 { Some(32 + r.bits(6)?) } else { Some(t) }
    };
    let rate = |r: &mut BitReader| -> Option<Result<u32, ConfigError>> {
        let idx = r.bits(4)?;
        Some(match idx {
            15 => Ok(r.bits(24)?),
            i => AAC_RATES.get(i as usize).copied().ok_or(ConfigError::Asc("reserved sampling frequency index")),
        })
    };
    let signalled = object_type(&mut r).ok_or(truncated.clone())?;
    let sample_rate = rate(&mut r).ok_or(truncated.clone())??;
    let channels = r.bits(4).ok_or(truncated.clone())?;
    let mut core_type = signalled;
    if signalled == 5 || signalled == 29 {
        rate(&mut r).ok_or(truncated.clone())??; // extension (output) rate
        core_type = object_type(&mut r).ok_or(truncated.clone())?;
    }
    if signalled == 0 || signalled > 255 {
        return Err(ConfigError::Asc("object type"));
    }
    if sample_rate == 0 {
        return Err(ConfigError::Asc("zero sampling rate"));
    }
    // GASpecificConfig starts with frameLengthFlag for the general-audio object types.
    let frame_length_flag = if matches!(core_type, 1..=4 | 6 | 7 | 17 | 19..=23) { r.bit().unwrap_or(0) } else { 0 };
    Ok(AacConfig {
        object_type: signalled as u8,
        sample_rate,
        channels: channels as u16,
        frame_samples: if frame_length_flag == 1 { 960 } else { 1024 },
    })
}

/// Rewrites length-prefixed NAL units to 4-byte prefixes (what [`edge_media::Codec`] promises);
/// a no-op clone for 4-byte input. `None` if a length runs past the end.
pub fn to_four_byte_nal_lengths(data: &Bytes, nal_length_size: usize) -> Option<Bytes> {
    if nal_length_size == 4 {
        return Some(data.clone());
    }
    if !matches!(nal_length_size, 1 | 2) {
        return None;
    }
    let mut out = BytesMut::with_capacity(data.len() + data.len() / 8 + 16);
    let mut pos = 0;
    while pos < data.len() {
        let hdr = data.get(pos..pos + nal_length_size)?;
        let len = hdr.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        pos += nal_length_size;
        let nal = data.get(pos..pos + len)?;
        out.put_u32(len as u32);
        out.put_slice(nal);
        pos += len;
    }
    Some(out.freeze())
}

/// Checks that 4-byte length-prefixed NAL units tile the sample exactly.
pub fn nal_lengths_valid(data: &[u8]) -> bool {
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(hdr) = data.get(pos..pos + 4) else {
            return false;
        };
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        pos = match pos.checked_add(4 + len) {
            Some(p) if p <= data.len() => p,
            _ => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// avcC of ffmpeg's libx264 at 320x180, High profile level 1.3 (from tests/data).
    pub(crate) fn x264_avcc() -> Vec<u8> {
        crate::test_data::flv_tags()
            .into_iter()
            .find(|t| t.kind == 9 && t.body[1] == 0)
            .map(|t| t.body[5..].to_vec())
            .expect("sample has an AVC sequence header")
    }

    #[test]
    fn real_avcc_gives_codec_string_and_size() {
        let cfg = parse_avcc(&x264_avcc()).unwrap();
        assert_eq!(cfg.codec_string, "avc1.64000d");
        assert_eq!((cfg.width, cfg.height), (320, 180));
        assert_eq!(cfg.nal_length_size, 4);
    }

    #[test]
    fn cropped_1080p_baseline() {
        // 1088 coded lines, 8 cropped.
        let avcc = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x264_1920x1080.avcC")).unwrap();
        let cfg = parse_avcc(&avcc).unwrap();
        assert_eq!((cfg.width, cfg.height), (1920, 1080));
        assert_eq!(cfg.codec_string, "avc1.42c028");
    }

    #[test]
    fn real_hvcc_gives_codec_string_and_size() {
        let hvcc = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/x265_320x180.hvcC")).unwrap();
        let cfg = parse_hvcc(&hvcc).unwrap();
        assert_eq!(cfg.codec_string, "hvc1.1.6.L60.90");
        assert_eq!((cfg.width, cfg.height), (320, 180));
    }

    #[test]
    fn asc_variants() {
        // AAC-LC 44.1 kHz stereo.
        let lc = parse_asc(&[0x12, 0x10]).unwrap();
        assert_eq!(lc, AacConfig { object_type: 2, sample_rate: 44100, channels: 2, frame_samples: 1024 });
        assert_eq!(lc.codec_string(), "mp4a.40.2");
        // AAC-LC 48 kHz mono.
        let m = parse_asc(&[0x11, 0x88]).unwrap();
        assert_eq!((m.sample_rate, m.channels), (48000, 1));
        // HE-AAC, explicit: AOT 5, core 24 kHz, stereo, extension 48 kHz, then AOT 2.
        let he = parse_asc(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!((he.object_type, he.sample_rate, he.channels), (5, 24000, 2));
        assert_eq!(he.codec_string(), "mp4a.40.5");
        // 960-sample frames.
        assert_eq!(parse_asc(&[0x12, 0x14]).unwrap().frame_samples, 960);
        assert!(parse_asc(&[0x12]).is_err());
        assert!(parse_asc(&[0x16, 0x90]).is_err(), "reserved rate index 13");
        assert!(parse_asc(&[]).is_err());
    }

    #[test]
    fn nal_length_rewrite() {
        let two = Bytes::from_static(&[0, 2, 0x65, 0xaa, 0, 1, 0x41]);
        let four = to_four_byte_nal_lengths(&two, 2).unwrap();
        assert_eq!(&four[..], &[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x41]);
        assert!(nal_lengths_valid(&four));
        assert!(to_four_byte_nal_lengths(&Bytes::from_static(&[0, 5, 1]), 2).is_none());
        assert!(!nal_lengths_valid(&[0, 0, 0, 9, 1]));
        assert!(nal_lengths_valid(&[]));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse_avcc(&data);
            let _ = parse_hvcc(&data);
            let _ = parse_asc(&data);
            let _ = h264_sps_size(&data);
            let _ = hevc_sps_size(&data);
        }
    }
}
