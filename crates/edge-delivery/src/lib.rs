//! HLS and DASH delivery (in progress).
pub mod path;
