//! AAC as MPEG-TS carries it: ADTS frames (stream type 0x0F) or LATM in LOAS (0x11), to raw
//! AAC frames and an AudioSpecificConfig.
//!
//! LATM: the common profile is supported, as encoders and ffmpeg (`-mpegts_flags latm`) send
//! it: one program, one layer, `allStreamsSameTimeFraming`, `frameLengthType` 0 (byte-counted
//! payloads), any number of subframes, `audioMuxVersion` 0 or 1. Anything else (several
//! programs or layers, CELP/HVXC framing, a configuration that defers to a program config
//! element) is refused with [`AudioError::Unsupported`] naming what was found.

use bytes::Bytes;

use crate::bits::{BitReader, copy_bits};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("unsupported AAC: {0}")]
    Unsupported(String),
    #[error("malformed AAC: {0}")]
    Malformed(&'static str),
}

/// One raw AAC frame and the configuration it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AacFrame {
    pub asc: Bytes,
    pub data: Bytes,
}

/// Splits ADTS frames. A trailing partial frame is returned as the remainder (it continues in
/// the next PES); bytes that are not ADTS are skipped up to the next syncword and counted.
pub(crate) fn parse_adts(data: &[u8], frames: &mut Vec<AacFrame>) -> Result<(usize, usize), AudioError> {
    let mut pos = 0;
    let mut skipped = 0;
    while pos + 7 <= data.len() {
        let h = &data[pos..];
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            pos += 1;
            skipped += 1;
            continue;
        }
        let protection_absent = h[1] & 1 == 1;
        let profile = h[2] >> 6;
        let sf_index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let raw_blocks = h[6] & 3;
        let header = if protection_absent { 7 } else { 9 };
        if frame_len < header || sf_index > 12 {
            pos += 1;
            skipped += 1;
            continue;
        }
        if pos + frame_len > data.len() {
            break;
        }
        if channels == 0 {
            return Err(AudioError::Unsupported("ADTS with a program config element (channel configuration 0)".into()));
        }
        if raw_blocks != 0 {
            return Err(AudioError::Unsupported(format!("ADTS frames of {} raw data blocks", raw_blocks + 1)));
        }
        if profile == 3 {
            return Err(AudioError::Unsupported("ADTS profile 3 (reserved)".into()));
        }
        // AudioSpecificConfig: object type = profile + 1, then rate index and channels.
        let asc = [((profile + 1) << 3) | (sf_index >> 1), ((sf_index & 1) << 7) | (channels << 3)];
        frames.push(AacFrame {
            asc: Bytes::copy_from_slice(&asc),
            data: Bytes::copy_from_slice(&data[pos + header..pos + frame_len]),
        });
        pos += frame_len;
    }
    Ok((pos, skipped))
}

/// The LATM stream state: the last StreamMuxConfig (later frames may reuse it).
#[derive(Debug, Default, Clone)]
pub(crate) struct Latm {
    config: Option<MuxConfig>,
}

#[derive(Debug, Clone)]
struct MuxConfig {
    asc: Bytes,
    sub_frames: u32,
}

impl Latm {
    /// Splits LOAS frames; returns bytes consumed (a partial frame stays for the next PES) and
    /// bytes skipped while looking for the syncword.
    pub(crate) fn parse(&mut self, data: &[u8], frames: &mut Vec<AacFrame>) -> Result<(usize, usize), AudioError> {
        let mut pos = 0;
        let mut skipped = 0;
        while pos + 3 <= data.len() {
            let h = &data[pos..];
            if h[0] != 0x56 || h[1] & 0xe0 != 0xe0 {
                pos += 1;
                skipped += 1;
                continue;
            }
            let len = (usize::from(h[1] & 0x1f) << 8) | usize::from(h[2]);
            if pos + 3 + len > data.len() {
                break;
            }
            self.mux_element(&data[pos + 3..pos + 3 + len], frames)?;
            pos += 3 + len;
        }
        Ok((pos, skipped))
    }

    /// AudioMuxElement(1) (ISO/IEC 14496-3 1.7.3).
    fn mux_element(&mut self, el: &[u8], frames: &mut Vec<AacFrame>) -> Result<(), AudioError> {
        let mut r = BitReader::new(el);
        let truncated = AudioError::Malformed("truncated LATM frame");
        let use_same = r.bit().ok_or(truncated.clone())? == 1;
        if !use_same {
            self.config = Some(stream_mux_config(el, &mut r)?);
        }
        let Some(cfg) = &self.config else {
            // Frames before the first configuration cannot be decoded.
            return Ok(());
        };
        for _ in 0..=cfg.sub_frames {
            // PayloadLengthInfo for frameLengthType 0: bytes in 255-escaped chunks.
            let mut len = 0usize;
            loop {
                let b = r.bits(8).ok_or(truncated.clone())? as usize;
                len += b;
                if b != 255 {
                    break;
                }
            }
            if r.remaining() < len * 8 {
                return Err(truncated);
            }
            let start = r.position();
            let data = copy_bits(el, start, start + len * 8).ok_or(truncated.clone())?;
            r.skip(len * 8);
            frames.push(AacFrame { asc: cfg.asc.clone(), data: Bytes::from(data) });
        }
        Ok(())
    }
}

fn latm_value(r: &mut BitReader) -> Option<u32> {
    let bytes = r.bits(2)?;
    let mut v = 0u32;
    for _ in 0..=bytes {
        v = (v << 8) | r.bits(8)?;
    }
    Some(v)
}

fn stream_mux_config(el: &[u8], r: &mut BitReader) -> Result<MuxConfig, AudioError> {
    let t = || AudioError::Malformed("truncated StreamMuxConfig");
    let version = r.bit().ok_or_else(t)?;
    let version_a = if version == 1 { r.bit().ok_or_else(t)? } else { 0 };
    if version_a != 0 {
        return Err(AudioError::Unsupported("LATM audioMuxVersionA 1".into()));
    }
    if version == 1 {
        latm_value(r).ok_or_else(t)?; // taraBufferFullness
    }
    let same_time_framing = r.bit().ok_or_else(t)?;
    let sub_frames = r.bits(6).ok_or_else(t)?;
    let programs = r.bits(4).ok_or_else(t)? + 1;
    let layers = r.bits(3).ok_or_else(t)? + 1;
    if programs != 1 || layers != 1 || same_time_framing != 1 {
        return Err(AudioError::Unsupported(format!(
            "LATM with {programs} program(s), {layers} layer(s), allStreamsSameTimeFraming {same_time_framing}"
        )));
    }
    let asc = if version == 1 {
        let asc_len = latm_value(r).ok_or_else(t)? as usize;
        let start = r.position();
        let asc = copy_bits(el, start, start + asc_len).ok_or_else(t)?;
        // Validate what it says; its length is given, so trailing extensions are kept.
        asc_bits(&asc)?;
        r.skip(asc_len).ok_or_else(t)?;
        asc
    } else {
        // Its length is only known by parsing it at its (unaligned) bit offset.
        let start = r.position();
        let tail = copy_bits(el, start, el.len() * 8).ok_or_else(t)?;
        let used = asc_bits(&tail)?;
        let asc = copy_bits(el, start, start + used).ok_or_else(t)?;
        r.skip(used).ok_or_else(t)?;
        asc
    };
    let frame_length_type = r.bits(3).ok_or_else(t)?;
    if frame_length_type != 0 {
        return Err(AudioError::Unsupported(format!("LATM frameLengthType {frame_length_type}")));
    }
    r.bits(8).ok_or_else(t)?; // latmBufferFullness
    if r.bit().ok_or_else(t)? == 1 {
        // otherData follows the payloads, so only its length field is read here.
        if version == 1 {
            latm_value(r).ok_or_else(t)?;
        } else {
            loop {
                let esc = r.bit().ok_or_else(t)?;
                r.bits(8).ok_or_else(t)?;
                if esc == 0 {
                    break;
                }
            }
        }
    }
    if r.bit().ok_or_else(t)? == 1 {
        r.bits(8).ok_or_else(t)?; // crcCheckSum
    }
    Ok(MuxConfig { asc: Bytes::from(asc), sub_frames })
}

/// The number of bits an AudioSpecificConfig occupies, for the object types live encoders use
/// (AAC Main/LC/SSR/LTP, SBR, PS). Needed because LATM version 0 embeds it without a length.
fn asc_bits(asc: &[u8]) -> Result<usize, AudioError> {
    let mut r = BitReader::new(asc);
    let t = || AudioError::Malformed("truncated AudioSpecificConfig");
    let object_type = |r: &mut BitReader| -> Option<u32> {
        let v = r.bits(5)?;
        if v == 31 { Some(32 + r.bits(6)?) } else { Some(v) }
    };
    let rate = |r: &mut BitReader| -> Option<()> {
        if r.bits(4)? == 15 {
            r.bits(24)?;
        }
        Some(())
    };
    let mut aot = object_type(&mut r).ok_or_else(t)?;
    rate(&mut r).ok_or_else(t)?;
    let channels = r.bits(4).ok_or_else(t)?;
    if aot == 5 || aot == 29 {
        rate(&mut r).ok_or_else(t)?;
        aot = object_type(&mut r).ok_or_else(t)?;
    }
    if !matches!(aot, 1..=4) {
        return Err(AudioError::Unsupported(format!("AAC object type {aot} in LATM")));
    }
    if channels == 0 {
        return Err(AudioError::Unsupported("AAC with a program config element (channel configuration 0)".into()));
    }
    // GASpecificConfig for object types 1-4: frameLengthFlag, dependsOnCoreCoder
    // (+ coreCoderDelay), extensionFlag (0 for these types).
    r.bit().ok_or_else(t)?;
    if r.bit().ok_or_else(t)? == 1 {
        r.bits(14).ok_or_else(t)?;
    }
    r.bit().ok_or_else(t)?;
    Ok(r.position())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    #[test]
    fn adts_frames_with_and_without_crc_and_a_partial_tail() {
        let mut data = synth::adts_frame(&[1, 2, 3], 3, 2);
        data.extend(synth::adts_frame(&[4, 5], 3, 2));
        let mut crc = synth::adts_frame(&[6], 3, 2);
        crc[1] &= 0xfe; // protection_absent = 0: two CRC bytes follow the header
        let len = crc.len() + 2;
        crc[3] = (crc[3] & 0xfc) | ((len >> 11) as u8 & 3);
        crc[4] = (len >> 3) as u8;
        crc[5] = (crc[5] & 0x1f) | ((len as u8 & 7) << 5);
        crc.splice(7..7, [0xaa, 0xbb]);
        data.extend(&crc);
        let partial = synth::adts_frame(&[7, 8, 9, 10], 3, 2);
        data.extend(&partial[..5]);
        let mut frames = Vec::new();
        let (used, skipped) = parse_adts(&data, &mut frames).unwrap();
        assert_eq!(used, data.len() - 5);
        assert_eq!(skipped, 0);
        let payloads: Vec<&[u8]> = frames.iter().map(|f| &f.data[..]).collect();
        assert_eq!(payloads, vec![&[1, 2, 3][..], &[4, 5], &[6]]);
        // LC, 48 kHz, stereo.
        assert_eq!(&frames[0].asc[..], &[0x11, 0x90]);
    }

    #[test]
    fn adts_resyncs_after_garbage_and_refuses_what_it_cannot_carry() {
        let mut data = vec![0x12, 0xff, 0x00];
        data.extend(synth::adts_frame(&[1], 4, 1));
        let mut frames = Vec::new();
        assert_eq!(parse_adts(&data, &mut frames).unwrap(), (data.len(), 3));
        let mut pce = synth::adts_frame(&[1], 4, 1);
        pce[2] &= 0xfe;
        pce[3] &= 0x3f;
        assert!(matches!(parse_adts(&pce, &mut Vec::new()), Err(AudioError::Unsupported(_))));
    }

    #[test]
    fn latm_version_0_with_config_then_reused_config() {
        // ffmpeg's form: a StreamMuxConfig with an embedded 2-byte ASC (LC 48 kHz stereo).
        let first = synth::loas_frame(&[0x11, 0x90], &[0xde, 0xad, 0xbe], true);
        let second = synth::loas_frame(&[0x11, 0x90], &[0x01], false);
        let mut data = first.clone();
        data.extend(&second);
        let mut latm = Latm::default();
        let mut frames = Vec::new();
        let (used, skipped) = latm.parse(&data, &mut frames).unwrap();
        assert_eq!((used, skipped), (data.len(), 0));
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0].asc[..], &[0x11, 0x90]);
        assert_eq!(&frames[0].data[..], &[0xde, 0xad, 0xbe]);
        assert_eq!(&frames[1].data[..], &[0x01]);
        // A reused config before any config: nothing to decode yet, not an error.
        let mut fresh = Latm::default();
        let mut none = Vec::new();
        fresh.parse(&second, &mut none).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn latm_unsupported_layouts_are_named() {
        let mut f = synth::loas_frame(&[0x11, 0x90], &[1], true);
        // The element's second byte: the last bit of numSubFrames, numProgram (4 bits),
        // numLayer (3 bits). numProgram 1 => two programs.
        f[4] |= 0x08;
        let err = Latm::default().parse(&f, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, AudioError::Unsupported(ref s) if s.contains("2 program")), "{err:?}");
    }
}
