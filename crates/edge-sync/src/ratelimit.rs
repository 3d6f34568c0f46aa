//! The upload bandwidth cap: a token bucket, sans-IO. Time is an argument (a monotonic
//! duration since any origin), so tests drive it with a fake clock.
//!
//! Hand-written rather than a crate (e.g. `governor`): the cap is in bytes per second with
//! requests of up to a part (megabytes), which cell-based limiters model poorly, and the
//! whole algorithm is a few lines.

use std::time::Duration;

use edge_config::DailyWindow;

/// A token bucket in bytes. Tokens refill at `rate` bytes/s up to `burst`; a request for `n`
/// bytes takes them at once and may drive the balance negative (a debt): the caller waits
/// until the debt is repaid. So a large part is paid for after it is admitted, and the
/// long-run rate is exactly `rate` whatever the request sizes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// `rate` in bytes/s (> 0), `burst` in bytes.
    pub fn new(rate: f64, burst: f64, now: Duration) -> Self {
        TokenBucket { rate, burst, tokens: burst, last: now }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Changes the rate, keeping the balance (a schedule change).
    pub fn set_rate(&mut self, rate: f64, now: Duration) {
        self.refill(now);
        self.rate = rate;
    }

    fn refill(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes `n` bytes' worth of tokens at `now` and returns how long to wait before
    /// sending them (zero if the balance covers them).
    pub fn take(&mut self, n: u64, now: Duration) -> Duration {
        self.refill(now);
        // Wait until the balance before this request is non-negative (earlier debt repaid),
        // then send; the request's own cost becomes the next caller's debt.
        let wait = if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) };
        self.tokens -= n as f64;
        wait
    }
}

/// The configured cap: `mbps` (0 = none) except inside the daily unlimited window (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub mbps: f64,
    pub unlimited: Option<DailyWindow>,
}

impl Schedule {
    /// The cap in bytes/s at minute-of-day `utc_minute`, or None for unlimited.
    pub fn bytes_per_sec(&self, utc_minute: u32) -> Option<f64> {
        if self.mbps <= 0.0 || self.unlimited.is_some_and(|w| w.contains(utc_minute)) {
            return None;
        }
        Some(self.mbps * 1_000_000.0 / 8.0)
    }
}

/// A limiter that follows a schedule: no bucket while unlimited, a fresh bucket when a cap
/// starts, the rate adjusted when it changes.
#[derive(Debug, Clone)]
pub struct Limiter {
    schedule: Schedule,
    bucket: Option<TokenBucket>,
}

/// Burst allowance: a quarter second at the cap, so the measured rate over a few seconds is
/// the cap, not the cap plus a large initial burst.
const BURST_SECS: f64 = 0.25;

impl Limiter {
    pub fn new(schedule: Schedule) -> Self {
        Limiter { schedule, bucket: None }
    }

    /// A new schedule (the cap changed at run time); it applies from the next request.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.schedule = schedule;
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// How long to wait before sending `n` bytes at `now` (monotonic) and `utc_minute`.
    pub fn take(&mut self, n: u64, now: Duration, utc_minute: u32) -> Duration {
        match self.schedule.bytes_per_sec(utc_minute) {
            None => {
                self.bucket = None;
                Duration::ZERO
            }
            Some(rate) => {
                let b = self.bucket.get_or_insert_with(|| TokenBucket::new(rate, rate * BURST_SECS, now));
                if b.rate() != rate {
                    b.set_rate(rate, now);
                }
                b.take(n, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a limiter with a fake clock: sends `total` bytes in `chunk`-sized requests,
    /// advancing the clock by each wait, and returns the elapsed fake time.
    fn send(l: &mut Limiter, total: u64, chunk: u64, minute: u32) -> Duration {
        let mut now = Duration::from_secs(1000);
        let start = now;
        let mut sent = 0;
        while sent < total {
            now += l.take(chunk, now, minute);
            sent += chunk;
        }
        // The last request's debt is paid before the next one: count it.
        now += l.take(0, now, minute);
        now - start
    }

    #[test]
    fn long_run_rate_is_the_cap_for_any_request_size() {
        for chunk in [1_000u64, 64 * 1024, 5 * 1024 * 1024] {
            let mut l = Limiter::new(Schedule { mbps: 8.0, unlimited: None }); // 1 MB/s
            let total = 50 * chunk.max(1_000_000);
            let t = send(&mut l, total, chunk, 600).as_secs_f64();
            let rate = total as f64 / t;
            assert!((rate - 1_000_000.0).abs() / 1_000_000.0 < 0.02, "chunk {chunk}: {rate} B/s over {t} s");
        }
    }

    #[test]
    fn burst_is_bounded_and_idle_time_does_not_accumulate() {
        let mut b = TokenBucket::new(1000.0, 250.0, Duration::ZERO);
        assert_eq!(b.take(200, Duration::ZERO), Duration::ZERO);
        // A long idle period refills only up to the burst.
        assert_eq!(b.take(250, Duration::from_secs(3600)), Duration::ZERO);
        let w = b.take(1000, Duration::from_secs(3600));
        assert_eq!(w, Duration::ZERO, "balance was exactly 0, not negative");
        let w = b.take(1, Duration::from_secs(3600));
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-9, "{w:?}: the 1000-byte debt takes 1 s to repay");
    }

    #[test]
    fn a_new_schedule_applies_from_the_next_request() {
        let mut l = Limiter::new(Schedule { mbps: 0.0, unlimited: None });
        assert_eq!(send(&mut l, 4_000_000, 100_000, 600), Duration::ZERO);
        l.set_schedule(Schedule { mbps: 8.0, unlimited: None }); // 1 MB/s
        let t = send(&mut l, 4_000_000, 100_000, 600).as_secs_f64();
        assert!((3.7..=4.1).contains(&t), "{t}");
        l.set_schedule(Schedule { mbps: 0.0, unlimited: None });
        assert_eq!(send(&mut l, 4_000_000, 100_000, 600), Duration::ZERO);
    }

    #[test]
    fn unlimited_window_lifts_the_cap_and_wraps_midnight() {
        let s = Schedule { mbps: 10.0, unlimited: Some(DailyWindow::parse("18:00-09:00").unwrap()) };
        assert_eq!(s.bytes_per_sec(12 * 60), Some(1_250_000.0));
        assert_eq!(s.bytes_per_sec(20 * 60), None);
        assert_eq!(s.bytes_per_sec(3 * 60), None);
        assert_eq!(s.bytes_per_sec(9 * 60), Some(1_250_000.0));
        let mut l = Limiter::new(s);
        assert_eq!(send(&mut l, 100_000_000, 1_000_000, 20 * 60), Duration::ZERO);
        assert!(send(&mut l, 10_000_000, 1_000_000, 12 * 60) > Duration::from_secs(7));
        assert_eq!(Schedule { mbps: 0.0, unlimited: None }.bytes_per_sec(0), None);
    }
}
