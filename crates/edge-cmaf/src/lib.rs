//! CMAF packaging and HLS/DASH manifests for the live path, sans-IO: no tasks, no files, no
//! clocks. Media time comes in with the access units; wall-clock time is an argument.
//!
//! # Packaging
//!
//! ```text
//! let mut packager = Packager::new(PackagerConfig::with_target(key_frame_interval));
//! for event in media_events {                 // edge_media::MediaEvent
//!     for out in packager.push(event) { ... } // Vec<Output>
//! }
//! packager.flush();                           // also done by MediaEvent::End
//! ```
//!
//! - [`Packager::push`] takes [`edge_media::MediaEvent`]s and returns [`Output`]s:
//!   - [`Output::Init`] ([`InitSegment`]): one per track per period, before its segments:
//!     ftyp + moov of one track (avcC / hvcC / esds), stored as `{rendition}/init-{period}.mp4`.
//!     Carries the [`Rendition`] (codec string, bandwidth, size, rate, timescale) and the
//!     period's start on the media timeline.
//!   - [`Output::Segment`] ([`MediaSegment`]): styp + moof + mdat, stored as
//!     `{rendition}/{seq}.m4s`. `seq` is per rendition, +1 per segment, continuing across
//!     periods; `start` (baseMediaDecodeTime) never goes backwards.
//!   - [`Output::Part`] ([`MediaPart`]): low latency only (`PackagerConfig::part_target`):
//!     the open segment's CMAF chunks (moof + mdat, the first with styp) as soon as their
//!     samples are complete, `{rendition}/{seq}.{index}.m4s`. The segment that follows them
//!     is exactly their concatenation.
//!   - [`Output::LongGop`]: a video GOP longer than the target segment (for a stream event).
//!   - [`Output::Rejected`]: a track that cannot be packaged (bad decoder configuration).
//! - Video is cut at the first keyframe once a segment reached `target_segment`; audio is cut at
//!   the audio frame boundary nearest to each video cut, so segments align across renditions.
//!   Audio-only and video-only streams cut on their own.
//! - `Tracks` (after the first) and `Discontinuity` start a new period (id + 1). Its timeline
//!   continues where the previous period ended (the latest end of any rendition), whatever
//!   timestamps the new publisher uses.
//! - After a restart, [`Packager::resume`] with a [`ResumeState`] (next period id, and per
//!   rendition the next seq and the end of its last segment) continues the numbering.
//!
//! # Manifests
//!
//! A [`Presentation`] holds periods (each with its renditions) and, per rendition, the list of
//! [`SegmentRef`]s. Either fold packager outputs in with [`Presentation::apply`] (`now` = the
//! wall clock; it anchors each period's live start and gives each segment its
//! program date time), or build it from stored records with [`Presentation::add_period`] /
//! [`Presentation::add_segment`] (a recorder must store each period's `media_start` and
//! `start`, and each segment's fields, to rebuild the same manifests after a restart).
//! Live presentations should be trimmed with [`Presentation::trim_to_window`]; to serve the
//! whole archive as VOD, set `live = false` on a presentation holding every segment.
//!
//! The manifest functions are pure:
//! - [`manifest::hls_multivariant`]`(&Presentation) -> String`
//! - [`manifest::hls_media`]`(&Presentation, rendition_id) -> Option<String>`
//! - [`manifest::dash_mpd`]`(&Presentation, now, &DashOptions) -> String`
//!
//! URLs are relative to the manifest's directory (`/{locatorId}/{name}.ism/`):
//! [`manifest::media_playlist_path`] `{rendition}/index.m3u8`, [`manifest::init_path`]
//! `{rendition}/init-{period}.mp4`, [`manifest::segment_path`] `{rendition}/{seq}.m4s`, and
//! [`manifest::parse_resource`] maps a request path back to what it names. Before
//! [`Presentation::is_ready`] a live manifest would list nothing playable.

mod boxes;
mod codec;
pub mod manifest;
mod packager;
mod presentation;
pub mod time;

pub use manifest::DashOptions;
pub use packager::{
    InitSegment, LongGop, MediaPart, MediaSegment, Output, Packager, PackagerConfig, RenditionResume, ResumeState,
};
pub use presentation::{FrameRate, PART_SEGMENTS, PartRef, Period, Presentation, Rendition, SegmentRef, TrackLog};
pub use time::MediaTime;
