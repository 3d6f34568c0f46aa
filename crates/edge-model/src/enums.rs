//! AMS enums. AMS models them as extensible strings and clients compare them
//! case-insensitively, and RMS material spells some differently (`Premium1080P`), so they are
//! parsed case-insensitively and always echoed in the canonical AMS spelling.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value '{value}' for {field}: expected one of {expected}")]
pub struct EnumError {
    pub field: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! ams_enum {
    ($(#[$doc:meta])* $ty:ident, $field:literal { $($variant:ident => $spelling:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty { $($variant),+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn parse(s: &str) -> Result<Self, EnumError> {
                $(
                    if s.eq_ignore_ascii_case($spelling) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Ok($ty::$variant);
                    }
                )+
                Err(EnumError {
                    field: $field,
                    value: s.to_owned(),
                    expected: [$($spelling),+].join(", "),
                })
            }

            /// The canonical AMS spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $spelling),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

ams_enum!(
    /// `input.streamingProtocol`. `FragmentedMP4` (Smooth ingest) parses, so that the API can
    /// answer it with a precise "not supported" instead of "unknown value". `RTSPPull` and
    /// `LocalCapture` (a V4L2 device on the appliance, `input.captureDevice`) are rms-edge
    /// extensions: AMS has neither.
    StreamingProtocol, "properties.input.streamingProtocol" {
        Rtmp => "RTMP",
        Srt => "SRT",
        RtspPush => "RTSPPush",
        RtspPull => "RTSPPull",
        LocalCapture => "LocalCapture",
        FragmentedMp4 => "FragmentedMP4",
    }
);

ams_enum!(
    /// `encoding.encodingType`. `None` is the deprecated alias of `PassthroughStandard`.
    EncodingType, "properties.encoding.encodingType" {
        None => "None",
        PassthroughBasic => "PassthroughBasic",
        PassthroughStandard => "PassthroughStandard",
        Standard => "Standard",
        Premium1080p => "Premium1080p",
    }
);

impl EncodingType {
    pub fn is_passthrough(self) -> bool {
        matches!(self, EncodingType::None | EncodingType::PassthroughBasic | EncodingType::PassthroughStandard)
    }
    /// Concurrent live outputs allowed per event (AMS: 1 for PassthroughBasic, 3 otherwise).
    pub fn max_live_outputs(self) -> usize {
        if self == EncodingType::PassthroughBasic { 1 } else { 3 }
    }
    /// The default preset of an encoding event.
    pub fn default_preset(self) -> Option<&'static str> {
        match self {
            EncodingType::Standard => Some("Default720p"),
            EncodingType::Premium1080p => Some("Default1080p"),
            _ => None,
        }
    }
}

ams_enum!(
    /// `streamOptions[]`.
    StreamOption, "properties.streamOptions" {
        Default => "Default",
        LowLatency => "LowLatency",
        LowLatencyV2 => "LowLatencyV2",
    }
);

ams_enum!(
    /// `encoding.stretchMode`.
    StretchMode, "properties.encoding.stretchMode" {
        None => "None",
        AutoSize => "AutoSize",
        AutoFit => "AutoFit",
    }
);

ams_enum!(
    /// `LiveEventResourceState`.
    LiveEventState, "resourceState" {
        Stopped => "Stopped",
        Allocating => "Allocating",
        StandBy => "StandBy",
        Starting => "Starting",
        Running => "Running",
        Stopping => "Stopping",
        Deleting => "Deleting",
    }
);

ams_enum!(
    /// `LiveOutputResourceState`.
    LiveOutputState, "resourceState" {
        Creating => "Creating",
        Running => "Running",
        Deleting => "Deleting",
    }
);

ams_enum!(
    /// `StreamingEndpointResourceState`.
    StreamingEndpointState, "resourceState" {
        Stopped => "Stopped",
        Starting => "Starting",
        Running => "Running",
        Stopping => "Stopping",
        Deleting => "Deleting",
        Scaling => "Scaling",
    }
);

ams_enum!(
    /// `provisioningState` of tracked resources.
    ProvisioningState, "provisioningState" {
        InProgress => "InProgress",
        Succeeded => "Succeeded",
        Failed => "Failed",
    }
);

ams_enum!(
    /// Status of a long-running operation (`AsyncOperationResult.status`).
    OperationStatus, "status" {
        InProgress => "InProgress",
        Succeeded => "Succeeded",
        Failed => "Failed",
    }
);

ams_enum!(
    /// RTSP pull transport (`input.rtspPullMode` / `IngestOptions.RtspPullMode`).
    RtspPullMode, "properties.input.rtspPullMode" {
        TcpUdp => "tcp_udp",
        Tcp => "tcp",
        Udp => "udp",
        RtspHttp => "rtsp_http",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_echo_is_canonical() {
        assert_eq!(EncodingType::parse("premium1080P").unwrap().as_str(), "Premium1080p");
        assert_eq!(StreamingProtocol::parse("rtmp").unwrap().as_str(), "RTMP");
        assert_eq!(StreamingProtocol::parse("rtsppush").unwrap(), StreamingProtocol::RtspPush);
        assert_eq!(StreamingProtocol::parse("localcapture").unwrap().as_str(), "LocalCapture");
        assert_eq!(StreamOption::parse("lowlatencyv2").unwrap(), StreamOption::LowLatencyV2);
        assert_eq!(RtspPullMode::parse("TCP_UDP").unwrap().as_str(), "tcp_udp");
    }

    #[test]
    fn unknown_values_name_the_field_and_the_choices() {
        let e = StreamingProtocol::parse("WebRTC").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("properties.input.streamingProtocol"), "{msg}");
        assert!(msg.contains("RTMP, SRT"), "{msg}");
        assert!(msg.contains("LocalCapture"), "{msg}");
    }

    #[test]
    fn encoding_limits() {
        assert_eq!(EncodingType::PassthroughBasic.max_live_outputs(), 1);
        assert_eq!(EncodingType::PassthroughStandard.max_live_outputs(), 3);
        assert!(EncodingType::None.is_passthrough());
        assert!(!EncodingType::Standard.is_passthrough());
        assert_eq!(EncodingType::Premium1080p.default_preset(), Some("Default1080p"));
    }
}
