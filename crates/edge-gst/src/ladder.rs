//! The ABR ladders of `Standard` (Default720p) and `Premium1080p` (Default1080p) live events, and the
//! rule that picks the renditions for an input: never above the input's height, always at least one.

use serde::{Deserialize, Serialize};

/// `encoding.presetName` of an encoding live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// `Standard`: 720p, four renditions.
    Default720p,
    /// `Premium1080p`: 1080p, five renditions.
    Default1080p,
}

impl Preset {
    /// From `encoding.encodingType` (case-insensitive): `None` for pass-through types.
    pub fn for_encoding_type(encoding_type: &str) -> Option<Preset> {
        if encoding_type.eq_ignore_ascii_case("Standard") {
            Some(Preset::Default720p)
        } else if encoding_type.eq_ignore_ascii_case("Premium1080p") {
            Some(Preset::Default1080p)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Default720p => "Default720p",
            Preset::Default1080p => "Default1080p",
        }
    }

    /// The full ladder, top first: (width, height, kbit/s).
    pub fn rungs(self) -> &'static [(u16, u16, u32)] {
        match self {
            Preset::Default720p => &[(1280, 720, 3500), (960, 540, 2200), (704, 396, 1350), (512, 288, 850)],
            Preset::Default1080p => {
                &[(1920, 1080, 5500), (1280, 720, 3500), (960, 540, 1600), (640, 360, 800), (480, 270, 400)]
            }
        }
    }
}

/// Frame rate of every rendition (RMS: 30 fps).
pub const FPS: u32 = 30;
/// Audio of every ladder: AAC-LC 128 kbit/s stereo 48 kHz.
pub const AUDIO_BITRATE: u32 = 128_000;
pub const AUDIO_RATE: u32 = 48_000;
pub const AUDIO_CHANNELS: u16 = 2;

/// One video rendition of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    pub width: u16,
    pub height: u16,
    /// Target bitrate in bit/s.
    pub bitrate: u32,
}

/// The renditions for an input of `in_w` x `in_h`: every rung whose height (and width) fits the
/// input, top first. An input smaller than the lowest rung gets one rendition at its own size (even
/// dimensions) at the lowest rung's bitrate. Rung widths follow the input's aspect ratio (the ladder's
/// widths are for 16:9) so a 4:3 camera is not stretched.
pub fn select(preset: Preset, in_w: u16, in_h: u16) -> Vec<Rung> {
    let even = |v: u32| (v.max(2) / 2 * 2) as u16;
    let (in_w, in_h) = (u32::from(in_w.max(2)), u32::from(in_h.max(2)));
    let mut out: Vec<Rung> = Vec::new();
    for &(w, h, kbps) in preset.rungs() {
        if u32::from(h) > in_h {
            continue;
        }
        // Width from the input's aspect ratio, rounded to even; exact 16:9 keeps the table's width.
        let width = if in_w * 9 == in_h * 16 { w } else { even((u32::from(h) * in_w + in_h / 2) / in_h) };
        if u32::from(width) > in_w {
            continue;
        }
        out.push(Rung { width, height: h, bitrate: kbps * 1000 });
    }
    if out.is_empty() {
        let lowest = preset.rungs().last().map_or(400, |r| r.2);
        out.push(Rung { width: even(in_w), height: even(in_h), bitrate: lowest * 1000 });
    }
    out
}

/// The one rendition of a pass-through event whose input is a capture device: the device's size
/// (even), at the bitrate of the Premium1080p rung of that height or the next taller one.
pub fn single(in_w: u16, in_h: u16) -> Rung {
    let even = |v: u16| v.max(2) / 2 * 2;
    let rungs = Preset::Default1080p.rungs();
    let kbps = rungs.iter().rev().find(|r| r.1 >= in_h).or(rungs.first()).map_or(5500, |r| r.2);
    Rung { width: even(in_w), height: even(in_h), bitrate: kbps * 1000 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(r: &[Rung]) -> Vec<(u16, u16, u32)> {
        r.iter().map(|r| (r.width, r.height, r.bitrate / 1000)).collect()
    }

    #[test]
    fn full_ladders_from_a_1080p_input() {
        assert_eq!(
            dims(&select(Preset::Default720p, 1920, 1080)),
            vec![(1280, 720, 3500), (960, 540, 2200), (704, 396, 1350), (512, 288, 850)]
        );
        assert_eq!(
            dims(&select(Preset::Default1080p, 1920, 1080)),
            vec![(1920, 1080, 5500), (1280, 720, 3500), (960, 540, 1600), (640, 360, 800), (480, 270, 400)]
        );
    }

    #[test]
    fn never_upscales() {
        // A 720p input into Premium1080p: the 1080p rung is dropped.
        assert_eq!(
            dims(&select(Preset::Default1080p, 1280, 720)),
            vec![(1280, 720, 3500), (960, 540, 1600), (640, 360, 800), (480, 270, 400)]
        );
        // 540p into Standard: 960x540 and below.
        assert_eq!(
            dims(&select(Preset::Default720p, 960, 540)),
            vec![(960, 540, 2200), (704, 396, 1350), (512, 288, 850)]
        );
        // Below the lowest rung: one rendition at the input size, the lowest bitrate.
        assert_eq!(dims(&select(Preset::Default720p, 320, 180)), vec![(320, 180, 850)]);
        assert_eq!(dims(&select(Preset::Default720p, 321, 181)), vec![(320, 180, 850)]);
    }

    #[test]
    fn other_aspect_ratios_keep_their_shape() {
        // 4:3 1440x1080 into Standard: heights from the table, widths 4:3 (even).
        assert_eq!(
            dims(&select(Preset::Default720p, 1440, 1080)),
            vec![(960, 720, 3500), (720, 540, 2200), (528, 396, 1350), (384, 288, 850)]
        );
        // A portrait 720x1280 input: rungs are limited by its width too.
        let r = select(Preset::Default720p, 720, 1280);
        assert!(r.iter().all(|r| r.width <= 720 && r.height <= 1280), "{r:?}");
        assert_eq!(r[0], Rung { width: 404, height: 720, bitrate: 3_500_000 });
    }

    #[test]
    fn single_rendition_for_captured_passthrough() {
        assert_eq!(single(1920, 1080), Rung { width: 1920, height: 1080, bitrate: 5_500_000 });
        assert_eq!(single(1280, 720), Rung { width: 1280, height: 720, bitrate: 3_500_000 });
        assert_eq!(single(641, 481), Rung { width: 640, height: 480, bitrate: 1_600_000 });
        assert_eq!(single(3840, 2160), Rung { width: 3840, height: 2160, bitrate: 5_500_000 });
        assert_eq!(single(320, 180), Rung { width: 320, height: 180, bitrate: 400_000 });
    }

    #[test]
    fn presets_from_encoding_types() {
        assert_eq!(Preset::for_encoding_type("standard"), Some(Preset::Default720p));
        assert_eq!(Preset::for_encoding_type("Premium1080p"), Some(Preset::Default1080p));
        assert_eq!(Preset::for_encoding_type("PassthroughStandard"), None);
        assert_eq!(Preset::for_encoding_type("None"), None);
    }
}
