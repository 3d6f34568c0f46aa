//! Object keys of the cloud copy. They mirror the local layout under the asset's container
//! name, and use the manifest path functions of `edge-cmaf`, so the static manifests' relative
//! URLs resolve to these keys:
//!
//! ```text
//! <container>/index.m3u8                HLS multivariant playlist
//! <container>/manifest.mpd              DASH MPD
//! <container>/<rendition>/index.m3u8    HLS media playlist
//! <container>/<rendition>/init-<p>.mp4  init segment of period p
//! <container>/<rendition>/<seq>.m4s     media segment
//! ```
//!
//! A key names immutable content (a segment never changes once recorded), so uploading it
//! again, after a crash or a retry, writes the same bytes: keys are idempotent.

use edge_cmaf::manifest;

pub const MULTIVARIANT: &str = "index.m3u8";
pub const MPD: &str = "manifest.mpd";

/// The asset's prefix in the target: its container name (immutable once created; AMS
/// assets are one container each, here a folder of the configured container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Container names are validated by the API (3 to 63 lowercase letters, digits and
    /// hyphens); checked again here because they become object keys.
    pub fn new(container: &str) -> Option<Prefix> {
        let ok = !container.is_empty()
            && container.len() <= 63
            && container.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Prefix(container.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn init(&self, rendition: &str, period: u32) -> String {
        format!("{}/{}", self.0, manifest::init_path(rendition, period))
    }

    pub fn segment(&self, rendition: &str, seq: u64) -> String {
        format!("{}/{}", self.0, manifest::segment_path(rendition, seq))
    }

    pub fn media_playlist(&self, rendition: &str) -> String {
        format!("{}/{}", self.0, manifest::media_playlist_path(rendition))
    }

    pub fn multivariant(&self) -> String {
        format!("{}/{MULTIVARIANT}", self.0)
    }

    pub fn mpd(&self) -> String {
        format!("{}/{MPD}", self.0)
    }
}

/// The content type of an object, from its key.
pub fn content_type(key: &str) -> &'static str {
    if key.ends_with(".m3u8") {
        "application/vnd.apple.mpegurl"
    } else if key.ends_with(".mpd") {
        "application/dash+xml"
    } else if key.contains("/audio") {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_mirrors_the_local_one_and_the_manifest_urls() {
        let p = Prefix::new("asset-1f2e").unwrap();
        assert_eq!(p.segment("video", 12), "asset-1f2e/video/12.m4s");
        assert_eq!(p.init("audio", 1), "asset-1f2e/audio/init-1.mp4");
        assert_eq!(p.media_playlist("video"), "asset-1f2e/video/index.m3u8");
        assert_eq!(p.multivariant(), "asset-1f2e/index.m3u8");
        assert_eq!(p.mpd(), "asset-1f2e/manifest.mpd");
        // The local file names are the same as the keys' last components.
        assert!(p.segment("video", 12).ends_with(&format!("/video/{}", edge_record::segment_name(12))));
        assert!(p.init("video", 3).ends_with(&format!("/video/{}", edge_record::init_name(3))));
        // What the multivariant playlist references resolves under the prefix.
        let rel = manifest::media_playlist_path("video");
        assert_eq!(format!("{}/{rel}", p.as_str()), p.media_playlist("video"));
        for bad in ["", "Asset", "a/b", "a..b", "x y", &"a".repeat(64)] {
            assert!(Prefix::new(bad).is_none(), "{bad}");
        }
        assert_eq!(content_type(&p.segment("audio", 1)), "audio/mp4");
        assert_eq!(content_type(&p.mpd()), "application/dash+xml");
    }
}
