//! Camera and encoder quirks, each handled by a named policy (documented in
//! docs/design/rtsp.md). They apply to push and pull alike unless said otherwise.
//!
//! - [`IGNORE_BAD_RTCP`]: malformed RTCP (wrong lengths, vendor packets, garbage on the RTCP
//!   port or channel) is skipped; it never ends a session. Pull: retina is told to ignore RTCP
//!   from unknown SSRCs (`UnknownRtcpSsrcPolicy::DropPackets`) instead of aborting.
//! - [`MISSING_PARAMETER_SETS`]: an SDP without `sprop-parameter-sets` / `sprop-sps` (or with
//!   unparsable ones) is accepted; the track starts when SPS/PPS arrive in band with the first
//!   keyframe. A stream that never says them is left out after `builder::TRACK_WAIT`.
//! - [`STALE_SESSIONS`]: (pull) cameras that keep a dead session until it times out refuse a
//!   reconnect or send old session data: retina's `SessionIdPolicy::UseFirst` accepts the
//!   first session id seen on the interleaved channel, and TEARDOWN is always sent on stop
//!   (`TeardownPolicy::Always`), so the next start does not meet a stale session. With
//!   `rtsp_http` TEARDOWN is sent once, through the tunnel (`TeardownPolicy::Auto`): a retry on a
//!   fresh connection would go to the tunnel's loopback port, which leads nowhere once it closed.
//! - [`UNTRUSTED_SENDER_REPORTS`]: sender reports that contradict arrival time by more than
//!   `builder::MAX_SR_SKEW` (a camera with a wrong clock per stream) are not used to line up
//!   tracks; arrival time is.
//! - [`LOSS_TO_KEYFRAME`]: after packet loss, video is skipped to the next keyframe instead of
//!   sending undecodable frames.

pub const IGNORE_BAD_RTCP: &str = "IgnoreBadRtcp";
pub const MISSING_PARAMETER_SETS: &str = "ToleratesMissingParameterSets";
pub const STALE_SESSIONS: &str = "StaleSessions";
pub const UNTRUSTED_SENDER_REPORTS: &str = "UntrustedSenderReports";
pub const LOSS_TO_KEYFRAME: &str = "LossSkipsToKeyframe";
