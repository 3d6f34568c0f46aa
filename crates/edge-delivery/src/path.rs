//! Playback URLs, decoded in one place:
//! `/{streamingLocatorId}/{manifestName}.ism/manifest(format=…[,filter=…][,audio-only=…])[.m3u8|.mpd]`
//! and, relative to `…/{manifestName}.ism/`, `{rendition}/index.m3u8`,
//! `{rendition}/init-{period}.mp4` and `{rendition}/{seq}.m4s`.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// HLS with CMAF segments (`m3u8-cmaf`).
    HlsCmaf,
    /// DASH with CMAF segments (`mpd-time-cmaf`; `mpd-time-csf` is served the same MPD, CMAF
    /// being a constrained CSF).
    DashCmaf,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Manifest {
        format: Format,
        params: Vec<(String, String)>,
    },
    MediaPlaylist {
        rendition: String,
    },
    Init {
        rendition: String,
        period: i64,
    },
    Segment {
        rendition: String,
        seq: i64,
    },
    /// Low latency: a partial segment, `{rendition}/{seq}.{index}.m4s`.
    Part {
        rendition: String,
        seq: u64,
        index: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackPath {
    pub locator_id: String,
    pub manifest: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not a playback path at all (let the API answer it).
    NotPlayback,
    /// A playback path the appliance does not serve; the message says what to use instead.
    Unsupported(String),
    NotFound,
}

fn rendition_ok(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether the first path segment is a locator id (a GUID): the cheap test used to route
/// between playback and the API.
pub fn looks_like_playback(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    uuid::Uuid::try_parse(first).is_ok()
}

pub fn parse(path: &str) -> Result<PlaybackPath, PathError> {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut segs = decoded.trim_start_matches('/').splitn(3, '/');
    let (Some(loc), Some(ism), Some(rest)) = (segs.next(), segs.next(), segs.next()) else {
        return Err(PathError::NotPlayback);
    };
    let locator = uuid::Uuid::try_parse(loc).map_err(|_| PathError::NotPlayback)?;
    let manifest = ism
        .strip_suffix(".ism")
        .or_else(|| ism.strip_suffix(".ISM"))
        .filter(|m| !m.is_empty())
        .ok_or(PathError::NotFound)?
        .to_owned();
    let target = if let Some(m) = strip_prefix_ci(rest, "manifest") {
        manifest_target(m)?
    } else {
        let (rendition, file) = rest.split_once('/').ok_or(PathError::NotFound)?;
        if !rendition_ok(rendition) {
            return Err(PathError::NotFound);
        }
        let rendition = rendition.to_owned();
        if file == "index.m3u8" {
            Target::MediaPlaylist { rendition }
        } else if let Some(p) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
            Target::Init { rendition, period: p.parse().map_err(|_| PathError::NotFound)? }
        } else if let Some(s) = file.strip_suffix(".m4s") {
            match s.split_once('.') {
                Some((seq, index)) => {
                    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                    if !digits(seq) || !digits(index) {
                        return Err(PathError::NotFound);
                    }
                    Target::Part {
                        rendition,
                        seq: seq.parse().map_err(|_| PathError::NotFound)?,
                        index: index.parse().map_err(|_| PathError::NotFound)?,
                    }
                }
                None => Target::Segment { rendition, seq: s.parse().map_err(|_| PathError::NotFound)? },
            }
        } else {
            return Err(PathError::NotFound);
        }
    };
    Ok(PlaybackPath { locator_id: locator.to_string(), manifest, target })
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    (s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)).then(|| &s[p.len()..])
}

fn manifest_target(m: &str) -> Result<Target, PathError> {
    let supported = "use format=m3u8-cmaf (HLS) or format=mpd-time-cmaf (DASH), as listPaths returns";
    if m.is_empty() || m.eq_ignore_ascii_case(".ism") {
        return Err(PathError::Unsupported(format!(
            "Smooth Streaming is not supported by this appliance; {supported}."
        )));
    }
    let inner = m
        .strip_prefix('(')
        .and_then(|r| r.rsplit_once(')'))
        .filter(|(_, ext)| ext.is_empty() || ext.eq_ignore_ascii_case(".m3u8") || ext.eq_ignore_ascii_case(".mpd"))
        .map(|(inner, _)| inner)
        .ok_or(PathError::NotFound)?;
    let params: Vec<(String, String)> = inner
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let format = params.iter().find(|(k, _)| k == "format").map(|(_, v)| v.to_ascii_lowercase());
    let format = match format.as_deref() {
        Some("m3u8-cmaf") => Format::HlsCmaf,
        Some("mpd-time-cmaf") | Some("mpd-time-csf") => Format::DashCmaf,
        Some(f @ ("m3u8-aapl" | "m3u8-aapl-v3")) => {
            return Err(PathError::Unsupported(format!(
                "format={f} (HLS with MPEG-TS segments) is not supported by this appliance; {supported}."
            )));
        }
        Some(other) => return Err(PathError::Unsupported(format!("Unknown format '{other}'; {supported}."))),
        None => {
            return Err(PathError::Unsupported(format!("Smooth Streaming (no format) is not supported; {supported}.")));
        }
    };
    if let Some((_, e)) = params.iter().find(|(k, _)| k == "encryption") {
        return Err(PathError::Unsupported(format!(
            "encryption={e} is not supported: this appliance serves clear streams only."
        )));
    }
    Ok(Target::Manifest { format, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "262a87b6-b538-4657-bac1-b6897924471d";

    #[test]
    fn manifests() {
        let p = parse(&format!("/{L}/manifest.ism/manifest(format=m3u8-cmaf)")).unwrap();
        assert_eq!(p.manifest, "manifest");
        assert!(matches!(p.target, Target::Manifest { format: Format::HlsCmaf, .. }));
        let p = parse(&format!("/{L}/output.ism/manifest(format=mpd-time-cmaf).mpd")).unwrap();
        assert!(matches!(p.target, Target::Manifest { format: Format::DashCmaf, .. }));
        let p = parse(&format!("/{L}/m.ism/Manifest(format=m3u8-cmaf,audio-only=false).m3u8")).unwrap();
        let Target::Manifest { params, .. } = p.target else { panic!() };
        assert!(params.contains(&("audio-only".into(), "false".into())));
        let p = parse(&format!("/{L}/m.ism/manifest%28format%3Dm3u8-cmaf%29")).unwrap();
        assert!(matches!(p.target, Target::Manifest { format: Format::HlsCmaf, .. }));
    }

    #[test]
    fn media_files() {
        assert_eq!(
            parse(&format!("/{L}/m.ism/video/index.m3u8")).unwrap().target,
            Target::MediaPlaylist { rendition: "video".into() }
        );
        assert_eq!(
            parse(&format!("/{L}/m.ism/audio/init-2.mp4")).unwrap().target,
            Target::Init { rendition: "audio".into(), period: 2 }
        );
        assert_eq!(
            parse(&format!("/{L}/m.ism/video/17.m4s")).unwrap().target,
            Target::Segment { rendition: "video".into(), seq: 17 }
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("/subscriptions/x/y"), Err(PathError::NotPlayback));
        assert!(
            matches!(parse(&format!("/{L}/m.ism/manifest")), Err(PathError::Unsupported(m)) if m.contains("Smooth"))
        );
        assert!(
            matches!(parse(&format!("/{L}/m.ism/manifest(format=m3u8-aapl)")), Err(PathError::Unsupported(m)) if m.contains("MPEG-TS"))
        );
        assert!(matches!(
            parse(&format!("/{L}/m.ism/manifest(format=mpd-time-cmaf,encryption=cenc)")),
            Err(PathError::Unsupported(_))
        ));
        assert_eq!(parse(&format!("/{L}/m.ism/../x/1.m4s")), Err(PathError::NotFound));
        assert_eq!(parse(&format!("/{L}/m.ism/video/x.m4s")), Err(PathError::NotFound));
        for bad in ["1.x.m4s", "1..m4s", ".1.m4s", "1.2.3.m4s", "1.-2.m4s", "-1.2.m4s", "1.99999999999.m4s"] {
            assert_eq!(parse(&format!("/{L}/m.ism/video/{bad}")), Err(PathError::NotFound), "{bad}");
        }
        assert_eq!(
            parse(&format!("/{L}/m.ism/video/17.3.m4s")).unwrap().target,
            Target::Part { rendition: "video".into(), seq: 17, index: 3 }
        );
        assert_eq!(parse(&format!("/{L}/m/video/1.m4s")), Err(PathError::NotFound));
        assert!(looks_like_playback(&format!("/{L}/x")));
        assert!(!looks_like_playback("/subscriptions/x"));
    }
}
