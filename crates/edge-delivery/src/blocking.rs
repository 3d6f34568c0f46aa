//! LL-HLS blocking playlist reload (RFC 8216bis §6.2.5.2) and blocking part requests: a pure
//! decision over where the live edge stands, and a thin waiter driven by the event's version
//! notifications (no polling) with a deadline.

use std::time::Duration;

use edge_live::pipeline::LivePosition;
use tokio::sync::watch;

/// The delivery directives of a media playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`: answer once the playlist holds this segment (or, with `part`, this part).
    pub msn: Option<u64>,
    /// `_HLS_part`: the part index within `msn`.
    pub part: Option<u32>,
    /// `_HLS_skip=YES` (or `v2`): a delta update.
    pub skip: bool,
}

/// Parses the query string of a media playlist request. Other parameters are ignored; a
/// directive that does not parse, or `_HLS_part` without `_HLS_msn`, is an error (400).
pub fn parse_directives(query: Option<&str>) -> Result<Directives, String> {
    let mut d = Directives::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |what: &str| -> Result<u64, String> {
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{what} must be a non-negative integer, not '{v}'."));
            }
            v.parse().map_err(|_| format!("{what} is out of range."))
        };
        match k {
            "_HLS_msn" => d.msn = Some(number("_HLS_msn")?),
            "_HLS_part" => {
                d.part = Some(u32::try_from(number("_HLS_part")?).map_err(|_| "_HLS_part is out of range.".to_owned())?)
            }
            "_HLS_skip" => match v {
                "YES" | "v2" => d.skip = true,
                "NO" => {}
                _ => return Err(format!("_HLS_skip must be YES or v2, not '{v}'.")),
            },
            _ => {}
        }
    }
    if d.part.is_some() && d.msn.is_none() {
        return Err("_HLS_part needs _HLS_msn.".into());
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The playlist already holds what was asked for: answer now.
    Ready,
    /// Hold the request until the live edge moves.
    Wait,
    /// Too far ahead of the live edge (400).
    TooFar,
}

/// Whether a blocking reload can be answered. `parts_per_segment` estimates how many parts a
/// segment has (target duration / part target) to measure how far ahead a part is;
/// `advance_parts` is the Advance Part Limit (3 / part target in seconds, at least 3).
pub fn decide(pos: LivePosition, d: &Directives, parts_per_segment: u64, advance_parts: u64) -> Decision {
    let Some(msn) = d.msn else { return Decision::Ready };
    // The newest segment the playlist shows, including the one being written (by its parts).
    let newest = pos.last_part.map(|(s, _)| s).max(pos.last_seq).unwrap_or(0);
    if msn > newest + 2 {
        return Decision::TooFar;
    }
    match d.part {
        None => {
            if pos.last_seq.is_some_and(|l| l >= msn) {
                Decision::Ready
            } else {
                Decision::Wait
            }
        }
        Some(part) => {
            let have = match pos.last_part {
                Some(p) => p >= (msn, part),
                None => pos.last_seq.is_some_and(|l| l > msn),
            };
            if have {
                return Decision::Ready;
            }
            let (cur_seq, cur_part) = pos.last_part.unwrap_or((newest, 0));
            let ahead = msn.saturating_sub(cur_seq) * parts_per_segment + u64::from(part);
            if ahead.saturating_sub(u64::from(cur_part)) > advance_parts { Decision::TooFar } else { Decision::Wait }
        }
    }
}

/// The Advance Part Limit of RFC 8216bis: three divided by the part target in seconds if that
/// is under one second, otherwise three.
pub fn advance_parts(part_target: Duration) -> u64 {
    let secs = part_target.as_secs_f64();
    if secs > 0.0 && secs < 1.0 { (3.0 / secs).floor() as u64 } else { 3 }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited<T> {
    Done(T),
    /// The deadline passed first (503 for a playlist).
    TimedOut,
    /// The event stopped.
    Gone,
}

/// Evaluates `check` now and after every notification on `rx` until it returns `Some`, the
/// deadline passes or the sender goes away. Subscribe (`rx`) before the first evaluation so
/// that no change in between is missed.
pub async fn wait_until<T>(
    rx: &mut watch::Receiver<u64>,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Waited<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        rx.borrow_and_update();
        if let Some(v) = check() {
            return Waited::Done(v);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Waited::Gone,
            Err(_) => return Waited::TimedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn pos(last_seq: Option<u64>, last_part: Option<(u64, u32)>) -> LivePosition {
        LivePosition { last_seq, last_part }
    }

    fn d(msn: Option<u64>, part: Option<u32>) -> Directives {
        Directives { msn, part, skip: false }
    }

    #[test]
    fn directives_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_directives(None), Ok(Directives::default()));
        assert_eq!(
            parse_directives(Some("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&other=1")),
            Ok(Directives { msn: Some(12), part: Some(3), skip: true })
        );
        assert!(parse_directives(Some("_HLS_skip=v2")).unwrap().skip);
        for bad in [
            "_HLS_msn=abc",
            "_HLS_msn=",
            "_HLS_msn=-1",
            "_HLS_msn=+1",
            "_HLS_part=1",
            "_HLS_msn=1&_HLS_part=x",
            "_HLS_msn=1&_HLS_part=99999999999",
            "_HLS_msn=99999999999999999999999",
            "_HLS_skip=maybe",
        ] {
            assert!(parse_directives(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocking_decisions() {
        let now = pos(Some(10), Some((11, 2)));
        // Already there.
        assert_eq!(decide(now, &d(None, None), 6, 8), Decision::Ready);
        assert_eq!(decide(now, &d(Some(10), None), 6, 8), Decision::Ready);
        assert_eq!(decide(now, &d(Some(11), Some(2)), 6, 8), Decision::Ready);
        assert_eq!(decide(now, &d(Some(10), Some(9)), 6, 8), Decision::Ready, "a later part exists");
        // Held: the next part, the segment being written, the next segment.
        assert_eq!(decide(now, &d(Some(11), Some(3)), 6, 8), Decision::Wait);
        assert_eq!(decide(now, &d(Some(11), None), 6, 8), Decision::Wait);
        assert_eq!(decide(now, &d(Some(12), Some(0)), 6, 8), Decision::Wait);
        assert_eq!(decide(now, &d(Some(13), None), 6, 8), Decision::Wait);
        // Too far: more than two segments ahead, or beyond the advance part limit.
        assert_eq!(decide(now, &d(Some(14), None), 6, 8), Decision::TooFar);
        assert_eq!(decide(now, &d(Some(13), Some(5)), 6, 8), Decision::TooFar);
        assert_eq!(decide(now, &d(Some(11), Some(11)), 6, 8), Decision::TooFar);
        assert_eq!(decide(now, &d(Some(11), Some(10)), 6, 8), Decision::Wait);
        // Nothing yet.
        assert_eq!(decide(LivePosition::default(), &d(Some(1), Some(0)), 6, 8), Decision::Wait);
        assert_eq!(decide(LivePosition::default(), &d(Some(3), None), 6, 8), Decision::TooFar);
        assert_eq!(advance_parts(Duration::from_millis(334)), 8);
        assert_eq!(advance_parts(Duration::from_secs(1)), 3);
    }

    /// A fake live edge: the position behind a mutex and the notifier a pipeline would bump.
    fn fake() -> (Arc<Mutex<LivePosition>>, watch::Sender<u64>) {
        (Arc::new(Mutex::new(pos(Some(10), Some((11, 2))))), watch::channel(0).0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_reload_is_answered_when_the_part_appears() {
        let (edge, tx) = fake();
        let mut rx = tx.subscribe();
        let want = d(Some(11), Some(3));
        let e2 = edge.clone();
        let waiter = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let r = wait_until(&mut rx, Duration::from_secs(6), || {
                (decide(*e2.lock().unwrap(), &want, 6, 8) == Decision::Ready).then_some(())
            })
            .await;
            (r, started.elapsed())
        });
        // Unrelated changes (another rendition's part) do not answer it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send_modify(|v| *v += 1);
        tokio::time::sleep(Duration::from_millis(233)).await;
        edge.lock().unwrap().last_part = Some((11, 3));
        tx.send_modify(|v| *v += 1);
        let (r, after) = waiter.await.unwrap();
        assert_eq!(r, Waited::Done(()));
        assert_eq!(after, Duration::from_millis(333), "answered at the notification, not later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_reload_times_out_and_a_stopped_event_ends_it() {
        let (edge, tx) = fake();
        let mut rx = tx.subscribe();
        let want = d(Some(12), Some(0));
        let e2 = edge.clone();
        let check = move || (decide(*e2.lock().unwrap(), &want, 6, 8) == Decision::Ready).then_some(());
        let started = tokio::time::Instant::now();
        assert_eq!(wait_until(&mut rx, Duration::from_secs(6), check.clone()).await, Waited::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        drop(tx);
        assert_eq!(wait_until(&mut rx, Duration::from_secs(6), check).await, Waited::Gone);
    }
}
