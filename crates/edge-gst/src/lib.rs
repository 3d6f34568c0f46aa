//! Transcoding for `Standard` and `Premium1080p` live events. The only crate that links GStreamer.
//!
//! - [`ladder`]: the renditions of each preset for an input (never upscaled).
//! - [`capture`]: local V4L2 capture devices: stable ids, caps parsing, mode selection.
//! - [`encoders`]: the hardware/software encoder probe and the one table of encoder property
//!   differences.
//! - [`proto`]: the framed protocol between the appliance and its transcode worker process.
//! - `pipeline` and `worker` (feature `gst`): the GStreamer ladder and the worker's main loop
//!   (`rms-edge transcode-worker`).
//! - `thumbnail` (feature `gst`): JPEG thumbnails of keyframes and idle capture devices
//!   (`rms-edge thumbnail`).

pub mod capture;

/// Thumbnail widths accepted (`rms-edge thumbnail`, `GET …/thumbnail?width=`); the height follows the
/// picture's aspect ratio. Here, not in `thumbnail`, so the API can check a width without GStreamer.
pub const THUMBNAIL_WIDTHS: std::ops::RangeInclusive<u32> = 16..=1280;
pub mod encoders;
pub mod ladder;
pub mod proto;

#[cfg(feature = "gst")]
pub mod devices;
#[cfg(feature = "gst")]
pub mod pipeline;
#[cfg(feature = "gst")]
pub mod thumbnail;
#[cfg(feature = "gst")]
pub mod worker;
