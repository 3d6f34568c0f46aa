//! Timestamps on the wire: ISO 8601 UTC with seven fractional digits and `Z`, the way AMS
//! (.NET) writes them (`2018-03-03T02:25:06.0982751Z`).

use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }

    pub fn from_unix_nanos(n: i128) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(n).ok().map(Timestamp)
    }

    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// Parses RFC 3339 / ISO 8601 with an offset (any precision). A missing offset is read as
    /// UTC, as .NET does for `DateTime` values sent without one.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Some(Timestamp(t.to_offset(time::UtcOffset::UTC)));
        }
        let with_z = format!("{s}Z");
        OffsetDateTime::parse(&with_z, &Rfc3339).ok().map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.to_offset(time::UtcOffset::UTC);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond() / 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_ams_format() {
        let t = Timestamp::parse("2018-03-03T02:25:06.0982751Z").unwrap();
        assert_eq!(t.to_string(), "2018-03-03T02:25:06.0982751Z");
        let t = Timestamp::parse("2023-01-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_string(), "2023-01-01T08:00:00.0000000Z");
        let t = Timestamp::parse("2023-01-01T10:00:00").unwrap();
        assert_eq!(t.to_string(), "2023-01-01T10:00:00.0000000Z");
        assert!(Timestamp::parse("yesterday").is_none());
        let n = Timestamp::now();
        assert_eq!(Timestamp::from_unix_nanos(n.unix_nanos()).unwrap(), n);
    }
}
