//! FLV tag bodies as RTMP audio (type 8) and video (type 9) messages carry them: the legacy
//! AVC/AAC forms and Enhanced RTMP (v1/v2) `ExVideoTagHeader`/`ExAudioTagHeader` with FourCCs.
//! Pure functions over untrusted bytes (fuzzed).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// The decoder configuration record (avcC / hvcC).
    SequenceHeader {
        codec: VideoCodec,
        record: &'a [u8],
    },
    /// One coded picture: length-prefixed NAL units.
    Frame {
        codec: VideoCodec,
        keyframe: bool,
        /// PTS - DTS in milliseconds (signed 24-bit on the wire).
        composition_ms: i32,
        data: &'a [u8],
    },
    EndOfSequence,
    /// Carries nothing for the media model (command frames, metadata packets).
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// The AudioSpecificConfig.
    SequenceHeader(&'a [u8]),
    /// One raw AAC frame.
    Frame(&'a [u8]),
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("empty tag")]
    Empty,
    #[error("truncated {0} tag")]
    Truncated(&'static str),
    #[error("unsupported video codec {0}")]
    UnsupportedVideo(String),
    #[error("unsupported audio codec {0}")]
    UnsupportedAudio(String),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}

const FRAME_KEY: u8 = 1;
const FRAME_COMMAND: u8 = 5;

// Enhanced RTMP packet types (shared numbering for the ones used here).
const PKT_SEQUENCE_START: u8 = 0;
const PKT_CODED_FRAMES: u8 = 1;
const PKT_SEQUENCE_END: u8 = 2;
const PKT_CODED_FRAMES_X: u8 = 3;
const PKT_METADATA: u8 = 4;
const PKT_VIDEO_MULTITRACK: u8 = 6;
const PKT_AUDIO_MULTICHANNEL_CONFIG: u8 = 4;
const PKT_AUDIO_MULTITRACK: u8 = 5;
const PKT_MODEX: u8 = 7;

fn si24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

fn fourcc_name(f: &[u8]) -> String {
    f.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect()
}

/// Skips Enhanced RTMP v2 ModEx prefixes; returns the real packet type and the new position.
fn skip_modex(data: &[u8], mut pos: usize, mut packet_type: u8) -> Result<(u8, usize), FlvError> {
    let t = FlvError::Truncated("ModEx");
    while packet_type == PKT_MODEX {
        let mut size = usize::from(*data.get(pos).ok_or(t.clone())?) + 1;
        pos += 1;
        if size == 256 {
            let b = data.get(pos..pos + 2).ok_or(t.clone())?;
            size = usize::from(u16::from_be_bytes([b[0], b[1]])) + 1;
            pos += 2;
        }
        pos += size;
        let b = *data.get(pos).ok_or(t.clone())?;
        packet_type = b & 0x0f;
        pos += 1;
    }
    Ok((packet_type, pos))
}

pub fn parse_video(data: &[u8]) -> Result<VideoTag<'_>, FlvError> {
    let first = *data.first().ok_or(FlvError::Empty)?;
    if first & 0x80 != 0 {
        return parse_ex_video(data);
    }
    let frame_type = first >> 4;
    let codec = match first & 0x0f {
        7 => VideoCodec::Avc,
        // Codec id 12: the pre-standard "FLV HEVC" extension some encoders still send, laid
        // out exactly like AVC.
        12 => VideoCodec::Hevc,
        2 => return Err(FlvError::UnsupportedVideo("Sorenson H.263".into())),
        3 => return Err(FlvError::UnsupportedVideo("Screen video".into())),
        4 | 5 => return Err(FlvError::UnsupportedVideo("VP6".into())),
        id => return Err(FlvError::UnsupportedVideo(format!("FLV codec id {id}"))),
    };
    if frame_type == FRAME_COMMAND {
        return Ok(VideoTag::Ignored);
    }
    if data.len() < 5 {
        return Err(FlvError::Truncated("video"));
    }
    let composition_ms = si24(&data[2..5]);
    let body = &data[5..];
    match data[1] {
        0 => Ok(VideoTag::SequenceHeader { codec, record: body }),
        1 => Ok(VideoTag::Frame { codec, keyframe: frame_type == FRAME_KEY, composition_ms, data: body }),
        2 => Ok(VideoTag::EndOfSequence),
        _ => Ok(VideoTag::Ignored),
    }
}

fn parse_ex_video(data: &[u8]) -> Result<VideoTag<'_>, FlvError> {
    let frame_type = (data[0] >> 4) & 0x07;
    let (packet_type, pos) = skip_modex(data, 1, data[0] & 0x0f)?;
    if packet_type != PKT_METADATA && frame_type == FRAME_COMMAND {
        return Ok(VideoTag::Ignored);
    }
    if packet_type == PKT_VIDEO_MULTITRACK {
        return Err(FlvError::Unsupported("multitrack video"));
    }
    let fourcc = data.get(pos..pos + 4).ok_or(FlvError::Truncated("video"))?;
    let codec = match fourcc {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        other => return Err(FlvError::UnsupportedVideo(fourcc_name(other))),
    };
    let body = &data[pos + 4..];
    match packet_type {
        PKT_SEQUENCE_START => Ok(VideoTag::SequenceHeader { codec, record: body }),
        PKT_CODED_FRAMES => {
            if body.len() < 3 {
                return Err(FlvError::Truncated("video"));
            }
            Ok(VideoTag::Frame {
                codec,
                keyframe: frame_type == FRAME_KEY,
                composition_ms: si24(&body[..3]),
                data: &body[3..],
            })
        }
        PKT_CODED_FRAMES_X => {
            Ok(VideoTag::Frame { codec, keyframe: frame_type == FRAME_KEY, composition_ms: 0, data: body })
        }
        PKT_SEQUENCE_END => Ok(VideoTag::EndOfSequence),
        _ => Ok(VideoTag::Ignored),
    }
}

pub fn parse_audio(data: &[u8]) -> Result<AudioTag<'_>, FlvError> {
    let first = *data.first().ok_or(FlvError::Empty)?;
    match first >> 4 {
        10 => {
            let kind = *data.get(1).ok_or(FlvError::Truncated("audio"))?;
            Ok(match kind {
                0 => AudioTag::SequenceHeader(&data[2..]),
                1 => AudioTag::Frame(&data[2..]),
                _ => AudioTag::Ignored,
            })
        }
        9 => {
            let (packet_type, pos) = skip_modex(data, 1, first & 0x0f)?;
            if packet_type == PKT_AUDIO_MULTITRACK {
                return Err(FlvError::Unsupported("multitrack audio"));
            }
            let fourcc = data.get(pos..pos + 4).ok_or(FlvError::Truncated("audio"))?;
            if fourcc != b"mp4a" {
                return Err(FlvError::UnsupportedAudio(fourcc_name(fourcc)));
            }
            let body = &data[pos + 4..];
            Ok(match packet_type {
                PKT_SEQUENCE_START => AudioTag::SequenceHeader(body),
                PKT_CODED_FRAMES => AudioTag::Frame(body),
                PKT_SEQUENCE_END | PKT_AUDIO_MULTICHANNEL_CONFIG => AudioTag::Ignored,
                _ => AudioTag::Ignored,
            })
        }
        format => Err(FlvError::UnsupportedAudio(
            match format {
                0 | 3 => "PCM",
                1 => "ADPCM",
                2 | 14 => "MP3",
                4..=6 => "Nellymoser",
                7 | 8 => "G.711",
                11 => "Speex",
                _ => "unknown",
            }
            .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let hdr = [0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f];
        assert_eq!(
            parse_video(&hdr),
            Ok(VideoTag::SequenceHeader { codec: VideoCodec::Avc, record: &[1, 0x64, 0, 0x1f] })
        );
        let key = [0x17, 0x01, 0, 0, 0x42, 0, 0, 0, 1, 0x65];
        assert_eq!(
            parse_video(&key),
            Ok(VideoTag::Frame {
                codec: VideoCodec::Avc,
                keyframe: true,
                composition_ms: 66,
                data: &[0, 0, 0, 1, 0x65]
            })
        );
        // Negative composition offset (signed 24-bit).
        let inter = [0x27, 0x01, 0xff, 0xff, 0xdf, 0xaa];
        assert_eq!(
            parse_video(&inter),
            Ok(VideoTag::Frame { codec: VideoCodec::Avc, keyframe: false, composition_ms: -33, data: &[0xaa] })
        );
        assert_eq!(parse_video(&[0x17, 0x02, 0, 0, 0]), Ok(VideoTag::EndOfSequence));
        assert_eq!(parse_video(&[0x57, 0x00]), Ok(VideoTag::Ignored), "command frame");
        assert_eq!(parse_video(&[0x17, 0x01, 0]), Err(FlvError::Truncated("video")));
        assert_eq!(parse_video(&[]), Err(FlvError::Empty));
        assert!(matches!(parse_video(&[0x12, 0]), Err(FlvError::UnsupportedVideo(_))));
    }

    #[test]
    fn enhanced_hevc() {
        // IsExHeader | key frame | SequenceStart, 'hvc1', record.
        let seq = [0x90, b'h', b'v', b'c', b'1', 1, 2, 3];
        assert_eq!(parse_video(&seq), Ok(VideoTag::SequenceHeader { codec: VideoCodec::Hevc, record: &[1, 2, 3] }));
        // CodedFrames with composition time.
        let coded = [0x91, b'h', b'v', b'c', b'1', 0, 0, 40, 9, 9];
        assert_eq!(
            parse_video(&coded),
            Ok(VideoTag::Frame { codec: VideoCodec::Hevc, keyframe: true, composition_ms: 40, data: &[9, 9] })
        );
        // CodedFramesX: no composition time, inter frame.
        let x = [0xa3, b'h', b'v', b'c', b'1', 7];
        assert_eq!(
            parse_video(&x),
            Ok(VideoTag::Frame { codec: VideoCodec::Hevc, keyframe: false, composition_ms: 0, data: &[7] })
        );
        // ModEx (size 1, one byte of data) in front of CodedFramesX.
        let modex = [0xa7, 0, 0xee, 0x03, b'h', b'v', b'c', b'1', 7];
        assert_eq!(parse_video(&modex), parse_video(&x));
        assert_eq!(parse_video(&[0x90, b'a', b'v', b'0', b'1', 0]), Err(FlvError::UnsupportedVideo("av01".into())));
        assert!(matches!(parse_video(&[0x96, 0]), Err(FlvError::Unsupported(_))));
        assert_eq!(parse_video(&[0x90, b'h']), Err(FlvError::Truncated("video")));
        assert_eq!(parse_video(&[0x97, 5]), Err(FlvError::Truncated("ModEx")));
    }

    #[test]
    fn audio() {
        assert_eq!(parse_audio(&[0xaf, 0, 0x12, 0x10]), Ok(AudioTag::SequenceHeader(&[0x12, 0x10])));
        assert_eq!(parse_audio(&[0xaf, 1, 0x21]), Ok(AudioTag::Frame(&[0x21])));
        assert_eq!(parse_audio(&[0xaf]), Err(FlvError::Truncated("audio")));
        assert_eq!(parse_audio(&[0x2f, 0]), Err(FlvError::UnsupportedAudio("MP3".into())));
        // Enhanced audio: SoundFormat 9, SequenceStart, 'mp4a'.
        assert_eq!(
            parse_audio(&[0x90, b'm', b'p', b'4', b'a', 0x12, 0x10]),
            Ok(AudioTag::SequenceHeader(&[0x12, 0x10]))
        );
        assert_eq!(parse_audio(&[0x91, b'm', b'p', b'4', b'a', 0x21]), Ok(AudioTag::Frame(&[0x21])));
        assert_eq!(parse_audio(&[0x91, b'O', b'p', b'u', b's', 0]), Err(FlvError::UnsupportedAudio("Opus".into())));
    }

    #[test]
    fn real_tags_from_ffmpeg() {
        let tags = crate::test_data::flv_tags();
        let mut video = 0;
        let mut audio = 0;
        let mut keys = 0;
        for t in &tags {
            match t.kind {
                9 => match parse_video(&t.body).unwrap() {
                    VideoTag::Frame { keyframe, data, .. } => {
                        video += 1;
                        keys += usize::from(keyframe);
                        assert!(crate::codec::nal_lengths_valid(data));
                    }
                    VideoTag::SequenceHeader { .. } | VideoTag::EndOfSequence => {}
                    VideoTag::Ignored => panic!("unexpected"),
                },
                8 => {
                    if let AudioTag::Frame(_) = parse_audio(&t.body).unwrap() {
                        audio += 1;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(video, 12, "0.4 s at 30 fps");
        assert_eq!(keys, 2, "GOP of 6");
        assert!(audio >= 18, "{audio} AAC frames");
    }
}
