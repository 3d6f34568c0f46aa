//! 33-bit MPEG timestamps onto one monotonic 64-bit timeline per session.
//!
//! One clock for every stream of the program, because they share the program clock: unwrapped
//! separately, two tracks could end up 2^33 ticks apart when one starts just before a wrap and
//! the other just after. Consecutive stamps (of any stream) differ by a signed 33-bit step, so
//! the wrap every 26.5 hours is a small step. A step larger than `max_jump` either way (an
//! encoder restarting, a splice), or any step after [`Clock::rebase`] (a PCR discontinuity), is
//! not followed: the timeline continues one tick after the largest value handed out, in a new
//! epoch, and the caller signals a discontinuity.

pub(crate) const MASK33: u64 = (1 << 33) - 1;

/// A raw 33-bit difference as a signed step.
pub(crate) fn signed33(diff: u64) -> i64 {
    (((diff & MASK33) << 31) as i64) >> 31
}

#[derive(Debug, Clone)]
pub(crate) struct Clock {
    max_jump: i64,
    last_raw: Option<u64>,
    last: i64,
    max: i64,
    epoch: u32,
    rebase: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub ticks: i64,
    pub epoch: u32,
    pub jumped: bool,
}

impl Clock {
    pub(crate) fn new(max_jump_ticks: i64) -> Self {
        Self { max_jump: max_jump_ticks, last_raw: None, last: 0, max: 0, epoch: 0, rebase: false }
    }

    /// The time base changed: the next stamp starts a new epoch whatever its step.
    pub(crate) fn rebase(&mut self) {
        if self.last_raw.is_some() {
            self.rebase = true;
        }
    }

    pub(crate) fn stamp(&mut self, raw: u64) -> Stamp {
        let raw = raw & MASK33;
        let Some(prev) = self.last_raw.replace(raw) else {
            self.last = raw as i64;
            self.max = self.last;
            return Stamp { ticks: self.last, epoch: self.epoch, jumped: false };
        };
        let step = signed33(raw.wrapping_sub(prev));
        let jumped = std::mem::take(&mut self.rebase) || step.abs() > self.max_jump;
        if jumped {
            self.epoch += 1;
            self.last = self.max + 1;
        } else {
            self.last += step;
        }
        self.observe(self.last);
        Stamp { ticks: self.last, epoch: self.epoch, jumped }
    }

    /// Raises the high-water mark (for presentation times past the last decode time).
    pub(crate) fn observe(&mut self, ticks: i64) {
        self.max = self.max.max(ticks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut Clock, raws: &[u64]) -> Vec<(i64, u32)> {
        raws.iter()
            .map(|&r| {
                let s = c.stamp(r);
                (s.ticks, s.epoch)
            })
            .collect()
    }

    #[test]
    fn wraps_at_33_bits_forward_and_keeps_small_steps_back() {
        let mut c = Clock::new(900_000);
        let near = MASK33 - 3000;
        let got = run(&mut c, &[near, near + 3000, 2000, 1000, 6000]);
        let b = near as i64;
        assert_eq!(got, vec![(b, 0), (b + 3000, 0), (b + 5001, 0), (b + 4001, 0), (b + 9001, 0)]);
        assert!(b + 9001 > MASK33 as i64, "past the wrap, still growing");
    }

    #[test]
    fn jumps_and_rebases_start_a_new_epoch_after_the_largest_value() {
        let mut c = Clock::new(900_000);
        assert_eq!(run(&mut c, &[90_000, 93_000]), vec![(90_000, 0), (93_000, 0)]);
        c.observe(99_000); // a PTS ahead of the DTS
        // The encoder restarted with a clock far away.
        assert_eq!(run(&mut c, &[5_000_000, 5_003_000]), vec![(99_001, 1), (102_001, 1)]);
        // A PCR discontinuity with a small step back.
        c.rebase();
        assert_eq!(run(&mut c, &[1000, 4000]), vec![(102_002, 2), (105_002, 2)]);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(signed33(1), 1);
        assert_eq!(signed33(MASK33), -1);
        assert_eq!(signed33(1 << 32), -(1 << 32));
    }
}
