//! Which H.264 encoder the appliance uses, and how each one is told bitrate, GOP and rate control.
//!
//! The probe is pure: it reads a [`Platform`] (GStreamer's registry and the device nodes), so its
//! order and reasons are unit-tested with a fake one. The real platform lives in `gst_platform`.

use serde::Serialize;

/// The H.264 encoders rms-edge knows, in the order they are preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EncoderKind {
    /// GStreamer's `va` plugin (Intel/AMD through VA-API), full encoder.
    VaH264,
    /// `va` low-power (fixed-function) encoder: preferred on Intel where it exists.
    VaH264Lp,
    /// The older `gstreamer-vaapi` plugin.
    Vaapi,
    /// V4L2 memory-to-memory encoder (Arm SoCs: Raspberry Pi, Rockchip, i.MX).
    V4l2M2m,
    /// libx264, on the CPU.
    X264,
}

/// How an encoder takes its settings (the one table of property differences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncoderProps {
    pub element: &'static str,
    /// Property that takes the bitrate, and its unit.
    pub bitrate: BitrateProp,
    /// Property that takes the GOP length in frames (None: set through `extra-controls`).
    pub gop_frames: Option<&'static str>,
    /// Constant-bitrate rate control: (property, value) pairs set from strings.
    pub rate_control: &'static [(&'static str, &'static str)],
    /// Extra settings that keep keyframes only where forced/at the GOP (no scene-cut IDRs) and the
    /// decode order simple (no B-frames), so every rendition cuts at the same instants.
    pub alignment: &'static [(&'static str, &'static str)],
    /// Whether the element runs on a hardware device (a hang there is a driver problem).
    pub hardware: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BitrateProp {
    /// `prop` in kbit/s.
    Kbps(&'static str),
    /// V4L2 `extra-controls` structure field in bit/s.
    V4l2ControlBps(&'static str),
}

impl EncoderKind {
    pub const ALL: [EncoderKind; 5] =
        [EncoderKind::VaH264Lp, EncoderKind::VaH264, EncoderKind::Vaapi, EncoderKind::V4l2M2m, EncoderKind::X264];

    pub fn props(self) -> EncoderProps {
        match self {
            EncoderKind::VaH264 | EncoderKind::VaH264Lp => EncoderProps {
                element: if self == EncoderKind::VaH264 { "vah264enc" } else { "vah264lpenc" },
                bitrate: BitrateProp::Kbps("bitrate"),
                gop_frames: Some("key-int-max"),
                rate_control: &[("rate-control", "cbr")],
                alignment: &[("b-frames", "0")],
                hardware: true,
            },
            EncoderKind::Vaapi => EncoderProps {
                element: "vaapih264enc",
                bitrate: BitrateProp::Kbps("bitrate"),
                gop_frames: Some("keyframe-period"),
                rate_control: &[("rate-control", "cbr")],
                alignment: &[("max-bframes", "0")],
                hardware: true,
            },
            EncoderKind::V4l2M2m => EncoderProps {
                element: "v4l2h264enc",
                bitrate: BitrateProp::V4l2ControlBps("video_bitrate"),
                // h264_i_frame_period in extra-controls.
                gop_frames: None,
                rate_control: &[],
                alignment: &[],
                hardware: true,
            },
            EncoderKind::X264 => EncoderProps {
                element: "x264enc",
                bitrate: BitrateProp::Kbps("bitrate"),
                gop_frames: Some("key-int-max"),
                rate_control: &[("pass", "cbr")],
                // No B-frames; scene cuts never insert an IDR (x264 options).
                // CABAC and 8x8 transforms: High profile even at `ultrafast` (which turns them off).
                // nal-hrd=cbr: HRD signalling and filler data, so every rendition holds its bitrate (the
                // ladder's bandwidths) whatever the picture.
                alignment: &[
                    ("bframes", "0"),
                    ("option-string", "scenecut=0:nal-hrd=cbr"),
                    ("cabac", "true"),
                    ("dct8x8", "true"),
                ],
                hardware: false,
            },
        }
    }

    pub fn name(self) -> &'static str {
        self.props().element
    }
}

/// What the probe can see of the machine.
pub trait Platform {
    /// Whether the GStreamer registry has this element factory (a `va`/`vaapi` plugin without a
    /// device registers none).
    fn has_element(&self, name: &str) -> bool;
    /// `/dev/dri/renderD*` nodes.
    fn render_nodes(&self) -> Vec<String>;
    /// `/dev/video*` nodes that are V4L2 memory-to-memory H.264 encoders.
    fn m2m_encoders(&self) -> Vec<String>;
}

/// The probe's decision, logged at start and shown in the appliance info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncoderChoice {
    pub encoder: EncoderKind,
    pub element: &'static str,
    pub hardware: bool,
    /// Why this one (and why not the ones before it).
    pub reason: String,
    /// The decoder used in front of the ladder.
    pub decoder: &'static str,
}

/// Picks the encoder: `va` (low-power first) or `vaapi` on a render node, V4L2 M2M where an encoder
/// device exists, else x264. `None` when not even x264 is installed.
pub fn probe(p: &dyn Platform) -> Option<EncoderChoice> {
    let nodes = p.render_nodes();
    let m2m = p.m2m_encoders();
    let mut skipped = Vec::new();
    for kind in EncoderKind::ALL {
        let props = kind.props();
        let device_ok = match kind {
            EncoderKind::VaH264 | EncoderKind::VaH264Lp | EncoderKind::Vaapi => !nodes.is_empty(),
            EncoderKind::V4l2M2m => !m2m.is_empty(),
            EncoderKind::X264 => true,
        };
        let element_ok = p.has_element(props.element);
        if device_ok && element_ok {
            let decoder = match kind {
                EncoderKind::VaH264 | EncoderKind::VaH264Lp if p.has_element("vah264dec") => "vah264dec",
                EncoderKind::Vaapi if p.has_element("vaapih264dec") => "vaapih264dec",
                EncoderKind::V4l2M2m if p.has_element("v4l2h264dec") => "v4l2h264dec",
                _ => "avdec_h264",
            };
            let device = match kind {
                EncoderKind::V4l2M2m => format!(" on {}", m2m[0]),
                EncoderKind::X264 => String::new(),
                _ => format!(" on {}", nodes[0]),
            };
            let mut reason = format!("{}{device} is available", props.element);
            if !skipped.is_empty() {
                reason = format!("{reason}; not used: {}", skipped.join(", "));
            }
            return Some(EncoderChoice {
                encoder: kind,
                element: props.element,
                hardware: props.hardware,
                reason,
                decoder,
            });
        }
        let why = match (device_ok, element_ok) {
            (false, _) if kind == EncoderKind::V4l2M2m => "no V4L2 M2M encoder device",
            (false, _) => "no /dev/dri render node",
            (true, false) => "element not in the GStreamer registry",
            (true, true) => unreachable!(),
        };
        skipped.push(format!("{} ({why})", props.element));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        elements: Vec<&'static str>,
        nodes: Vec<String>,
        m2m: Vec<String>,
    }

    impl Platform for Fake {
        fn has_element(&self, name: &str) -> bool {
            self.elements.contains(&name)
        }
        fn render_nodes(&self) -> Vec<String> {
            self.nodes.clone()
        }
        fn m2m_encoders(&self) -> Vec<String> {
            self.m2m.clone()
        }
    }

    #[test]
    fn software_fallback_says_why() {
        // This machine: va and vaapi plugins load but register nothing without /dev/dri.
        let c = probe(&Fake { elements: vec!["x264enc", "avdec_h264"], nodes: vec![], m2m: vec![] }).unwrap();
        assert_eq!(c.encoder, EncoderKind::X264);
        assert!(!c.hardware);
        assert_eq!(c.decoder, "avdec_h264");
        assert!(c.reason.contains("vah264lpenc (no /dev/dri render node)"), "{}", c.reason);
        assert!(c.reason.contains("v4l2h264enc (no V4L2 M2M encoder device)"), "{}", c.reason);
    }

    #[test]
    fn va_low_power_first_then_full_then_vaapi() {
        let node = vec!["/dev/dri/renderD128".to_owned()];
        let all = vec!["vah264lpenc", "vah264enc", "vah264dec", "vaapih264enc", "x264enc"];
        let c = probe(&Fake { elements: all, nodes: node.clone(), m2m: vec![] }).unwrap();
        assert_eq!((c.encoder, c.decoder), (EncoderKind::VaH264Lp, "vah264dec"));
        assert!(c.reason.contains("/dev/dri/renderD128"));
        let c = probe(&Fake { elements: vec!["vah264enc", "x264enc"], nodes: node.clone(), m2m: vec![] }).unwrap();
        assert_eq!((c.encoder, c.decoder), (EncoderKind::VaH264, "avdec_h264"));
        assert!(c.reason.contains("vah264lpenc (element not in the GStreamer registry)"), "{}", c.reason);
        let c = probe(&Fake { elements: vec!["vaapih264enc", "x264enc"], nodes: node, m2m: vec![] }).unwrap();
        assert_eq!(c.encoder, EncoderKind::Vaapi);
    }

    #[test]
    fn a_registered_element_without_its_device_is_not_used() {
        let c =
            probe(&Fake { elements: vec!["vah264enc", "v4l2h264enc", "x264enc"], nodes: vec![], m2m: vec![] }).unwrap();
        assert_eq!(c.encoder, EncoderKind::X264);
        let c = probe(&Fake {
            elements: vec!["v4l2h264enc", "v4l2h264dec", "x264enc"],
            nodes: vec![],
            m2m: vec!["/dev/video11".into()],
        })
        .unwrap();
        assert_eq!((c.encoder, c.decoder), (EncoderKind::V4l2M2m, "v4l2h264dec"));
        assert!(c.reason.starts_with("v4l2h264enc on /dev/video11"));
        assert_eq!(probe(&Fake { elements: vec![], nodes: vec![], m2m: vec![] }), None);
    }

    #[test]
    fn property_table() {
        for k in EncoderKind::ALL {
            let p = k.props();
            assert_eq!(p.hardware, k != EncoderKind::X264, "{k:?}");
            // Every encoder that has a GOP property also has CBR rate control set.
            if p.gop_frames.is_some() {
                assert!(!p.rate_control.is_empty(), "{k:?}");
            }
        }
        assert_eq!(EncoderKind::X264.props().bitrate, BitrateProp::Kbps("bitrate"));
        assert_eq!(EncoderKind::Vaapi.props().gop_frames, Some("keyframe-period"));
        assert_eq!(EncoderKind::V4l2M2m.props().bitrate, BitrateProp::V4l2ControlBps("video_bitrate"));
        assert!(EncoderKind::X264.props().alignment.contains(&("option-string", "scenecut=0:nal-hrd=cbr")));
    }
}
