//! RTMP timestamps (32-bit milliseconds) onto a 64-bit timeline.
//!
//! One clock per publish session, shared by audio and video, because RTMP stamps both from the
//! same clock: unwrapping them separately could put the tracks 2^32 ms apart if one starts just
//! before a wrap and the other just after.

/// Unwraps 32-bit millisecond timestamps and absorbs jumps.
///
/// Consecutive messages (of any track) differ by a signed 32-bit step, so a wrap from
/// `0xFFFF_FFF0` to `0x10` is a step of +32 ms. A step larger than `max_jump` either way (an
/// encoder restarting its clock, a splice) is not followed: the timeline continues 1 ms after
/// the last value and the caller is told, so it can signal a discontinuity instead of
/// stretching a segment over the gap.
#[derive(Debug, Clone)]
pub struct Timeline {
    max_jump_ms: i64,
    last_raw: Option<u32>,
    last: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ms: i64,
    /// The raw step was larger than the bound and was replaced by +1 ms.
    pub jumped: bool,
}

impl Timeline {
    pub fn new(max_jump_ms: u32) -> Self {
        Self { max_jump_ms: i64::from(max_jump_ms), last_raw: None, last: 0 }
    }

    pub fn stamp(&mut self, raw: u32) -> Stamp {
        let Some(prev) = self.last_raw.replace(raw) else {
            self.last = i64::from(raw);
            return Stamp { ms: self.last, jumped: false };
        };
        let step = i64::from(raw.wrapping_sub(prev) as i32);
        let jumped = step.abs() > self.max_jump_ms;
        self.last += if jumped { 1 } else { step };
        Stamp { ms: self.last, jumped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raws: &[u32]) -> Vec<(i64, bool)> {
        let mut t = Timeline::new(10_000);
        raws.iter()
            .map(|&r| {
                let s = t.stamp(r);
                (s.ms, s.jumped)
            })
            .collect()
    }

    #[test]
    fn starts_at_the_first_raw_value() {
        assert_eq!(run(&[5000, 5033, 5066]), vec![(5000, false), (5033, false), (5066, false)]);
    }

    #[test]
    fn wraps_forward() {
        let near = u32::MAX - 20;
        let got = run(&[near, near + 20, 12, 45]);
        let base = i64::from(near);
        assert_eq!(got, vec![(base, false), (base + 20, false), (base + 33, false), (base + 66, false)]);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn small_steps_back_are_kept() {
        // Audio stamped slightly before the last video message.
        assert_eq!(run(&[1000, 1033, 1010, 1066]), vec![(1000, false), (1033, false), (1010, false), (1066, false)]);
    }

    #[test]
    fn jumps_either_way_are_absorbed_and_reported() {
        assert_eq!(
            run(&[1000, 1033, 900_000, 900_033]),
            vec![(1000, false), (1033, false), (1034, true), (1067, false)]
        );
        // The encoder restarted its clock at 0.
        assert_eq!(
            run(&[600_000, 600_033, 0, 33]),
            vec![(600_000, false), (600_033, false), (600_034, true), (600_067, false)]
        );
    }
}
