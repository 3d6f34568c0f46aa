//! The SDP of an ANNOUNCE (RFC 4566, through `sdp-types`) to the streams this appliance can
//! take: H.264 and HEVC video, AAC audio (mpeg4-generic), with their fmtp parameters (RFC 6184
//! `sprop-parameter-sets`, RFC 7798 `sprop-vps/sps/pps`, RFC 3640 `config`, `sizelength` …).

use base64::Engine;
use bytes::Bytes;

use crate::depack::AacLayout;
use crate::h26x::{ParamSets, VideoCodec};

/// Largest SDP accepted.
pub const MAX_SDP: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP does not parse: {0}")]
    Parse(String),
    #[error("SDP has no media the appliance can take (H.264, HEVC, AAC): {0}")]
    NoUsableMedia(String),
    #[error("SDP larger than {MAX_SDP} bytes")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCodec {
    Video { codec: VideoCodec, params: ParamSets },
    Aac { config: Bytes, layout: AacLayout },
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpStream {
    /// Position among the `m=` sections.
    pub index: usize,
    /// `a=control` (relative or absolute), if any.
    pub control: Option<String>,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// `None` when not usable, with `unusable` saying why.
    pub codec: Option<StreamCodec>,
    pub unusable: Option<String>,
}

/// Parses an SDP; at least one stream must be usable.
pub fn parse(body: &[u8]) -> Result<Vec<SdpStream>, SdpError> {
    if body.len() > MAX_SDP {
        return Err(SdpError::TooLarge);
    }
    // sdp-types 0.1.8 asserts (panics) on some malformed inputs, e.g. a session line whose key
    // is followed by a non-ASCII byte (found by the `sdp` fuzz target; regression in fuzz/regressions/sdp/): an
    // encoder's bytes must not take the connection task down, so a panic is a parse error.
    let parsed = std::panic::catch_unwind(|| sdp_types::Session::parse(body))
        .map_err(|_| SdpError::Parse("malformed SDP (line order)".into()))?;
    let session = parsed.map_err(|e| SdpError::Parse(format!("{e:?}")))?;
    if session.medias.is_empty() {
        return Err(SdpError::Parse("no media description (m=): truncated?".into()));
    }
    let mut out = Vec::new();
    for (index, m) in session.medias.iter().enumerate() {
        let control = m.get_first_attribute_value("control").ok().flatten().map(str::to_owned);
        let pt: u8 = m.fmt.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(255);
        let attr = |name: &str| {
            m.get_attribute_values(name)
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .find(|v| v.split_whitespace().next().and_then(|p| p.parse::<u8>().ok()) == Some(pt))
                .and_then(|v| v.split_once(' ').map(|(_, rest)| rest.trim().to_owned()))
        };
        let rtpmap = attr("rtpmap");
        let fmtp = attr("fmtp").unwrap_or_default();
        let mut s = SdpStream { index, control, payload_type: pt, clock_rate: 0, codec: None, unusable: None };
        match stream_codec(&m.media, rtpmap.as_deref(), &fmtp) {
            Ok((clock, codec)) => {
                s.clock_rate = clock;
                s.codec = Some(codec);
            }
            Err(why) => s.unusable = Some(why),
        }
        out.push(s);
    }
    if !out.iter().any(|s| s.codec.is_some()) {
        let why: Vec<String> = out.iter().filter_map(|s| s.unusable.clone()).collect();
        return Err(SdpError::NoUsableMedia(why.join("; ")));
    }
    Ok(out)
}

fn fmtp_params(fmtp: &str) -> impl Iterator<Item = (String, &str)> {
    fmtp.split(';').filter_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        Some((k.trim().to_ascii_lowercase(), v.trim()))
    })
}

fn b64(s: &str) -> Option<Bytes> {
    let e = base64::engine::general_purpose::STANDARD;
    e.decode(s.trim()).ok().filter(|v| !v.is_empty()).map(Bytes::from)
}

fn stream_codec(media: &str, rtpmap: Option<&str>, fmtp: &str) -> Result<(u32, StreamCodec), String> {
    let rtpmap = rtpmap.ok_or_else(|| format!("{media}: no rtpmap for its payload type"))?;
    let mut parts = rtpmap.split('/');
    let encoding = parts.next().unwrap_or_default().to_ascii_lowercase();
    let clock: u32 = parts
        .next()
        .and_then(|c| c.trim().parse().ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| format!("{media}: no clock rate in rtpmap '{rtpmap}'"))?;
    match (media, encoding.as_str()) {
        ("video", "h264") | ("video", "h265") => {
            let codec = if encoding == "h264" { VideoCodec::H264 } else { VideoCodec::H265 };
            let mut params = ParamSets::default();
            for (k, v) in fmtp_params(fmtp) {
                if !matches!(k.as_str(), "sprop-parameter-sets" | "sprop-vps" | "sprop-sps" | "sprop-pps") {
                    continue;
                }
                // Malformed parameter sets are ignored: the stream usually repeats them in band
                // (see `quirks::MissingParameterSets`).
                for nal in v.split(',').filter_map(b64) {
                    params.add_nal(codec, &nal);
                }
            }
            Ok((clock, StreamCodec::Video { codec, params }))
        }
        ("audio", "mpeg4-generic") => {
            let mut config = None;
            let mut layout = AacLayout { size_length: 0, index_length: 0, index_delta_length: 0, frame_samples: 1024 };
            let mut mode = String::new();
            for (k, v) in fmtp_params(fmtp) {
                match k.as_str() {
                    "config" => config = hex(v),
                    "mode" => mode = v.to_ascii_lowercase(),
                    "sizelength" => layout.size_length = v.parse().unwrap_or(0),
                    "indexlength" => layout.index_length = v.parse().unwrap_or(0),
                    "indexdeltalength" => layout.index_delta_length = v.parse().unwrap_or(0),
                    "constantduration" => layout.frame_samples = v.parse().unwrap_or(1024),
                    _ => {}
                }
            }
            if !mode.is_empty() && !mode.starts_with("aac-") {
                return Err(format!("audio: mpeg4-generic mode {mode} is not AAC"));
            }
            let config = config.ok_or("audio: AAC without a usable config in fmtp")?;
            let asc = edge_rtmp::codec::parse_asc(&config).map_err(|e| format!("audio: {e}"))?;
            if layout.frame_samples == 1024 {
                layout.frame_samples = asc.frame_samples;
            }
            if layout.size_length == 0 {
                return Err("audio: AAC without sizelength".into());
            }
            Ok((clock, StreamCodec::Aac { config, layout }))
        }
        ("audio", "mp4a-latm") => Err("audio: MP4A-LATM over RTP is not supported (use mpeg4-generic)".into()),
        (m, e) => Err(format!("{m}: codec {e} is not supported")),
    }
}

fn hex(s: &str) -> Option<Bytes> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(2) || s.len() > 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What ffmpeg 5.1 announces for libx264 + aac.
    pub(crate) const FFMPEG_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat 59.27.100\r\nm=video 0 RTP/AVP 96\r\nb=AS:1000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190\r\na=control:streamid=1\r\n";

    #[test]
    fn ffmpeg_announce() {
        let s = parse(FFMPEG_SDP.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].payload_type, s[0].clock_rate, s[0].control.as_deref()), (96, 90000, Some("streamid=0")));
        let Some(StreamCodec::Video { codec: VideoCodec::H264, params }) = &s[0].codec else { panic!() };
        assert!(params.complete(VideoCodec::H264));
        assert_eq!(&params.sps[0][..], edge_ts::synth::H264_SPS);
        let Some(StreamCodec::Aac { config, layout }) = &s[1].codec else { panic!() };
        assert_eq!(&config[..], &[0x11, 0x90]);
        assert_eq!((layout.size_length, layout.index_length, layout.frame_samples), (13, 3, 1024));
        assert_eq!(s[1].clock_rate, 48000);
    }

    #[test]
    fn truncated_and_unusable_sdps_are_refused() {
        assert!(matches!(parse(&FFMPEG_SDP.as_bytes()[..40]), Err(SdpError::Parse(_))));
        assert!(matches!(parse(b"garbage"), Err(SdpError::Parse(_))));
        let reg = include_bytes!("../../../fuzz/regressions/sdp/bad-s-line.sdp");
        assert!(matches!(parse(reg), Err(SdpError::Parse(_))));
        let opus =
            "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(matches!(parse(opus.as_bytes()), Err(SdpError::NoUsableMedia(m)) if m.contains("opus")));
        // A missing sprop is tolerated: parameter sets may come in band.
        let no_sps = FFMPEG_SDP.replace("sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA; ", "");
        let s = parse(no_sps.as_bytes()).unwrap();
        let Some(StreamCodec::Video { params, .. }) = &s[0].codec else { panic!() };
        assert!(!params.complete(VideoCodec::H264));
    }
}
