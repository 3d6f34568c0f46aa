//! Capture devices as GStreamer's `DeviceMonitor` sees them (class `Video/Source`, the `v4l2`
//! provider), turned into [`CaptureDevice`]s by the pure code in [`crate::capture`].

use std::path::Path;

use gst::prelude::*;
use gstreamer as gst;

use crate::capture::{self, CaptureDevice, RawDevice};

/// The V4L2 capture devices present now, by stable id. Empty when there are none (or when the
/// `video4linux2` plugin is not installed).
pub fn list() -> Result<Vec<CaptureDevice>, String> {
    crate::pipeline::init()?;
    let monitor = gst::DeviceMonitor::new();
    let caps = None::<&gst::Caps>;
    monitor.add_filter(Some("Video/Source"), caps);
    monitor.start().map_err(|e| format!("device monitor: {e}"))?;
    let raw: Vec<RawDevice> = monitor.devices().iter().filter_map(raw_device).collect();
    monitor.stop();
    Ok(capture::assemble(raw, &capture::by_id_names(Path::new(capture::BY_ID_DIR))))
}

fn raw_device(d: &gst::Device) -> Option<RawDevice> {
    let props = d.properties()?;
    let text = |keys: &[&str]| keys.iter().find_map(|k| props.get::<String>(*k).ok());
    // GStreamer ≥ 1.20 names them `api.v4l2.*`; older releases `device.path` and `v4l2.device.*`.
    let path = text(&["api.v4l2.path", "device.path"])?;
    if !path.starts_with("/dev/video") {
        return None; // e.g. a PipeWire or libcamera node: not a V4L2 device we open directly
    }
    Some(RawDevice {
        name: text(&["api.v4l2.cap.card", "v4l2.device.card"]).unwrap_or_else(|| d.display_name().to_string()),
        driver: text(&["api.v4l2.cap.driver", "v4l2.device.driver"]),
        bus: text(&["api.v4l2.cap.bus_info", "v4l2.device.bus_info"]),
        caps: d.caps().map(|c| c.to_string()).unwrap_or_default(),
        path,
    })
}

/// The modes of one device (by its node), for the capture worker.
pub fn modes_of(node: &Path) -> Result<Vec<capture::CaptureMode>, String> {
    let canonical = std::fs::canonicalize(node).map_err(|e| format!("{}: {e}", node.display()))?;
    let list = list()?;
    list.into_iter()
        .find(|d| std::fs::canonicalize(&d.path).is_ok_and(|p| p == canonical))
        .map(|d| d.capabilities)
        .ok_or_else(|| format!("{} is not a video capture device GStreamer can open", node.display()))
}
