//! Decoder configurations: parsed into mp4-atom sample entries, and RFC 6381 codec strings
//! for tracks whose ingest did not provide one.

use edge_media::{Codec, Track};
use mp4_atom::{Atom, Audio, Avc1, Avcc, Buf, Hvc1, Hvcc, Mp4a, Visual};

/// The sample entry (`stsd` child) for a track, or why it cannot be built.
pub(crate) fn sample_entry(track: &Track) -> Result<mp4_atom::Codec, String> {
    match track.codec {
        Codec::H264 => {
            let avcc = parse_body::<Avcc>(&track.config).map_err(|e| format!("invalid avcC: {e}"))?;
            if avcc.length_size != 4 {
                // Samples are copied as they are; a different NAL length size would need rewriting.
                return Err(format!("unsupported NAL length size {}", avcc.length_size));
            }
            Ok(Avc1 {
                visual: visual(track),
                avcc,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                spatial: None,
            }
            .into())
        }
        Codec::H265 => {
            let hvcc = parse_body::<Hvcc>(&track.config).map_err(|e| format!("invalid hvcC: {e}"))?;
            if hvcc.length_size_minus_one != 3 {
                return Err(format!("unsupported NAL length size {}", hvcc.length_size_minus_one + 1));
            }
            Ok(Hvc1 {
                visual: visual(track),
                hvcc,
                lhvc: None,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                ccst: None,
                spatial: None,
            }
            .into())
        }
        Codec::Aac => {
            let asc = AudioSpecificConfig::parse(&track.config).ok_or("invalid AudioSpecificConfig")?;
            let channels = if track.channels > 0 { track.channels } else { u16::from(asc.channels) };
            let rate = if track.sample_rate > 0 { track.sample_rate } else { asc.sample_rate };
            let esds = mp4_atom::Esds {
                es_desc: mp4_atom::esds::EsDescriptor {
                    es_id: 0,
                    depends_on_es_id: None,
                    url: None,
                    ocr_es_id: None,
                    stream_priority: 0,
                    dec_config: mp4_atom::esds::DecoderConfig {
                        object_type_indication: 0x40, // MPEG-4 Audio
                        stream_type: 5,               // audio stream
                        up_stream: 0,
                        buffer_size_db: Default::default(),
                        max_bitrate: track.bitrate,
                        avg_bitrate: track.bitrate,
                        dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                            profile: asc.object_type,
                            freq_index: asc.freq_index,
                            chan_conf: asc.channels,
                            raw: track.config.to_vec(),
                        }),
                    },
                    sl_config: Default::default(),
                },
            };
            Ok(Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: channels,
                    sample_size: 16,
                    // 16.16 fixed point: rates above 65535 Hz do not fit; the decoder reads the ASC.
                    sample_rate: u16::try_from(rate).unwrap_or(0).into(),
                },
                esds,
                btrt: None,
                taic: None,
            }
            .into())
        }
    }
}

fn visual(track: &Track) -> Visual {
    Visual { data_reference_index: 1, width: track.width, height: track.height, ..Visual::default() }
}

/// Decodes a box body that the media model carries without its box header.
fn parse_body<T: Atom>(config: &[u8]) -> Result<T, mp4_atom::Error> {
    let mut buf = config;
    let atom = T::decode_body(&mut buf)?;
    if buf.has_remaining() {
        return Err(mp4_atom::Error::UnderDecode(T::KIND));
    }
    Ok(atom)
}

/// The track's RFC 6381 codec string: the ingest's, else derived from the configuration.
pub(crate) fn codec_string(track: &Track) -> String {
    if !track.codec_string.is_empty() {
        return track.codec_string.clone();
    }
    match track.codec {
        Codec::H264 => parse_body::<Avcc>(&track.config)
            .map(|c| {
                format!(
                    "avc1.{:02x}{:02x}{:02x}",
                    c.avc_profile_indication, c.profile_compatibility, c.avc_level_indication
                )
            })
            .unwrap_or_else(|_| "avc1".into()),
        Codec::H265 => {
            parse_body::<Hvcc>(&track.config).map(|c| hevc_codec_string(&c)).unwrap_or_else(|_| "hvc1".into())
        }
        Codec::Aac => match AudioSpecificConfig::parse(&track.config) {
            Some(asc) => format!("mp4a.40.{}", asc.object_type),
            None => "mp4a.40.2".into(),
        },
    }
}

/// ISO/IEC 14496-15 Annex E: `hvc1.[space][profile].[compat reversed].[tier][level].[constraints]`.
fn hevc_codec_string(c: &Hvcc) -> String {
    let space = match c.general_profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let compat = u32::from_be_bytes(c.general_profile_compatibility_flags).reverse_bits();
    let tier = if c.general_tier_flag { 'H' } else { 'L' };
    let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", c.general_profile_idc, c.general_level_idc);
    let flags = &c.general_constraint_indicator_flags;
    let used = flags.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for b in &flags[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// The fields of an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) the packager needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioSpecificConfig {
    pub object_type: u8,
    pub freq_index: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

impl AudioSpecificConfig {
    pub fn parse(asc: &[u8]) -> Option<Self> {
        let mut bits = Bits { data: asc, pos: 0 };
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let freq_index = bits.read(4)? as u8;
        let sample_rate = if freq_index == 15 { bits.read(24)? } else { *AAC_RATES.get(usize::from(freq_index))? };
        let channels = bits.read(4)? as u8;
        Some(AudioSpecificConfig { object_type, freq_index, sample_rate, channels })
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn track(codec: Codec, config: &[u8]) -> Track {
        Track {
            id: 1,
            codec,
            timescale: 90_000,
            config: Bytes::copy_from_slice(config),
            codec_string: String::new(),
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
            bitrate: 0,
        }
    }

    #[test]
    fn parses_audio_specific_config() {
        let asc = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(asc, AudioSpecificConfig { object_type: 2, freq_index: 3, sample_rate: 48000, channels: 2 });
        assert_eq!(AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap().sample_rate, 44100);
        assert!(AudioSpecificConfig::parse(&[0x11]).is_none());
        assert_eq!(codec_string(&track(Codec::Aac, &[0x11, 0x90])), "mp4a.40.2");
        // HE-AAC signalled explicitly (object type 5).
        assert_eq!(codec_string(&track(Codec::Aac, &[0x2b, 0x92, 0x08, 0x00])), "mp4a.40.5");
    }

    #[test]
    fn derives_video_codec_strings() {
        let avcc = [1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0x00, 0x1f, 1, 0, 2, 0x68, 0xee];
        assert_eq!(codec_string(&track(Codec::H264, &avcc)), "avc1.64001f");
        assert!(sample_entry(&track(Codec::H264, &avcc)).is_ok());
        assert!(sample_entry(&track(Codec::H264, &[1, 2])).is_err());

        let mut hvcc = Hvcc::new();
        hvcc.general_profile_idc = 1;
        hvcc.general_profile_compatibility_flags = [0x60, 0, 0, 0];
        hvcc.general_constraint_indicator_flags = [0x90, 0, 0, 0, 0, 0];
        hvcc.general_level_idc = 93;
        assert_eq!(hevc_codec_string(&hvcc), "hvc1.1.6.L93.90");
    }
}
