//! The vocabulary of rms-edge: validated names and identifiers, the AMS enums (parsed
//! case-insensitively, echoed in AMS spelling), ISO 8601 durations and timestamps, and the
//! live event state machine. No IO lives here, so every rule is unit-tested in isolation.

pub mod duration;
pub mod enums;
pub mod names;
pub mod state;
pub mod timestamp;

pub use duration::IsoDuration;
pub use enums::*;
pub use names::*;
pub use state::{LiveEventAction, Transition};
pub use timestamp::Timestamp;
