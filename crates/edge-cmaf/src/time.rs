//! Media time: ticks in a timescale, compared and converted exactly (no floats), because
//! segment boundaries of tracks with different timescales must agree to the tick.

use std::cmp::Ordering;
use std::time::Duration;

/// A point on a media timeline: `ticks / timescale` seconds.
#[derive(Debug, Clone, Copy)]
pub struct MediaTime {
    pub ticks: u64,
    pub timescale: u32,
}

impl MediaTime {
    pub const ZERO: MediaTime = MediaTime { ticks: 0, timescale: 1 };

    pub fn new(ticks: u64, timescale: u32) -> Self {
        assert!(timescale > 0, "timescale must be positive");
        MediaTime { ticks, timescale }
    }

    /// The same instant in `timescale`, rounded up. The packager starts each period's tracks at
    /// the rounded-up period start (never before it) and the manifests use the same rule for
    /// `presentationTimeOffset`, so the two always agree.
    pub fn rescale_ceil(self, timescale: u32) -> u64 {
        (u128::from(self.ticks) * u128::from(timescale)).div_ceil(u128::from(self.timescale)) as u64
    }

    /// The same instant in `timescale`, rounded to the nearest tick.
    pub fn rescale_round(self, timescale: u32) -> u64 {
        let den = u128::from(self.timescale);
        ((u128::from(self.ticks) * u128::from(timescale) + den / 2) / den) as u64
    }

    pub fn as_duration(self) -> Duration {
        ticks_to_duration(self.ticks, self.timescale)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.ticks as f64 / f64::from(self.timescale)
    }

    /// The later of two instants (exact comparison across timescales).
    pub fn max(self, other: MediaTime) -> MediaTime {
        if self >= other { self } else { other }
    }
}

impl PartialEq for MediaTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MediaTime {}

impl PartialOrd for MediaTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MediaTime {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.ticks) * u128::from(other.timescale))
            .cmp(&(u128::from(other.ticks) * u128::from(self.timescale)))
    }
}

/// `ticks / timescale` as a Duration (nanoseconds, rounded to nearest).
pub fn ticks_to_duration(ticks: u64, timescale: u32) -> Duration {
    let ts = u128::from(timescale.max(1));
    let nanos = (u128::from(ticks) * 1_000_000_000 + ts / 2) / ts;
    Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
}

/// A Duration in `timescale` ticks, rounded to nearest.
pub fn duration_to_ticks(d: Duration, timescale: u32) -> u64 {
    ((d.as_nanos() * u128::from(timescale) + 500_000_000) / 1_000_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_rescales_exactly() {
        let a = MediaTime::new(90_000, 90_000);
        let b = MediaTime::new(48_000, 48_000);
        assert_eq!(a, b);
        assert!(MediaTime::new(94_208, 48_000) > MediaTime::new(176_580, 90_000));
        assert_eq!(MediaTime::new(1, 48_000).rescale_ceil(90_000), 2);
        assert_eq!(MediaTime::new(1, 48_000).rescale_round(90_000), 2);
        assert_eq!(MediaTime::new(1024, 48_000).rescale_ceil(90_000), 1920);
        assert_eq!(MediaTime::new(1000, 48_000).rescale_round(1000), 21);
        assert_eq!(ticks_to_duration(3003, 90_000), Duration::from_nanos(33_366_667));
        assert_eq!(duration_to_ticks(Duration::from_secs(2), 48_000), 96_000);
        assert_eq!(MediaTime::ZERO.max(b), b);
    }
}
