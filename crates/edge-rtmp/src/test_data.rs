//! Real bytes for tests: 0.4 s of ffmpeg's libx264 (320x180, 30 fps, GOP 6, B-frames) and AAC
//! (48 kHz mono) in FLV.

pub const SAMPLE_FLV: &[u8] = include_bytes!("../tests/data/x264_aac_320x180.flv");

#[derive(Debug, Clone)]
pub struct Tag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    pub ts: u32,
    pub body: Vec<u8>,
}

pub fn flv_tags() -> Vec<Tag> {
    parse_flv(SAMPLE_FLV)
}

/// FLV file -> tags (header, then `[type][size u24][ts u24][ts_ext][stream u24][body][prev u32]`).
pub fn parse_flv(f: &[u8]) -> Vec<Tag> {
    assert_eq!(&f[..3], b"FLV");
    let mut pos = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) as usize + 4;
    let mut tags = Vec::new();
    while pos + 11 <= f.len() {
        let kind = f[pos] & 0x1f;
        let size = u32::from_be_bytes([0, f[pos + 1], f[pos + 2], f[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([f[pos + 7], f[pos + 4], f[pos + 5], f[pos + 6]]);
        let body = f[pos + 11..pos + 11 + size].to_vec();
        tags.push(Tag { kind, ts, body });
        pos += 11 + size + 4;
    }
    tags
}
