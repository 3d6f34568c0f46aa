//! Retry delays: exponential backoff with jitter, sans-IO (the random draw is an argument).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(2), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` + 1, after `attempt` (>= 1) consecutive failures:
    /// `base * 2^(attempt-1)` capped at `max`, with "equal jitter" (half fixed, half drawn
    /// from `random`, a uniform u64), so retries of many appliances or objects spread out but
    /// never come sooner than half the nominal delay.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let nominal = self.base.saturating_mul(1u32 << exp).min(self.max);
        let half = nominal / 2;
        let jitter_ns = if half.is_zero() { 0 } else { random % (half.as_nanos() as u64 + 1) };
        half + Duration::from_nanos(jitter_ns)
    }
}

/// A uniform random u64 for the jitter (the OS generator; no seeding to get wrong).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("OS random source");
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_caps_and_jitters_within_bounds() {
        let b = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60) };
        assert_eq!(b.delay(1, 0), Duration::from_millis(500));
        assert_eq!(b.delay(1, u64::MAX), Duration::from_millis(500) + Duration::from_nanos(u64::MAX % 500_000_001));
        assert_eq!(b.delay(4, 0), Duration::from_secs(4));
        for attempt in 1..40 {
            for r in [0, 1, 12345, random_u64(), u64::MAX] {
                let d = b.delay(attempt, r);
                let nominal = Duration::from_secs(1u64 << (attempt - 1).min(6)).min(b.max);
                assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?} vs {nominal:?}");
            }
        }
        assert_eq!(b.delay(100, 0), Duration::from_secs(30));
        // Two draws differ (jitter spreads retries).
        let ds: std::collections::HashSet<_> = (0..20).map(|_| b.delay(6, random_u64())).collect();
        assert!(ds.len() > 1);
    }
}
