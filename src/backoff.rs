//! Exponential backoff with jitter, one formula for the crate: the CDS client's read retries and
//! the controller's per-object requeues.
//!
//! The wait for attempt `n` (1-based) is random in `[c/2, c]`, where `c = base * 2^(n-1)` capped
//! at `max` ("equal jitter"): it grows exponentially, spreads callers that failed together, and
//! never drops to zero, so a failing call is never repeated at once.

use std::time::Duration;

/// The longest wait of attempt `attempt` (1-based): `base * 2^(attempt-1)`, at most `max`.
pub fn ceiling(base: Duration, attempt: u32, max: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).min(max)
}

/// A wait for attempt `attempt` (1-based): random in `[c/2, c]` with `c` its [`ceiling`].
pub fn exponential(base: Duration, attempt: u32, max: Duration) -> Duration {
    jittered(ceiling(base, attempt, max), rand::random::<f64>())
}

/// `ceiling` scaled into `[ceiling/2, ceiling]` by `unit`, a number in `[0, 1]`.
fn jittered(ceiling: Duration, unit: f64) -> Duration {
    ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let table = [(0, 100), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)];
        for (attempt, want) in table {
            assert_eq!(ceiling(100 * MS, attempt, 1000 * MS), want * MS, "attempt {attempt}");
        }
        assert_eq!(
            ceiling(Duration::from_secs(2), u32::MAX, Duration::from_secs(300)),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        assert_eq!(jittered(800 * MS, 0.0), 400 * MS);
        assert_eq!(jittered(800 * MS, 0.5), 600 * MS);
        assert_eq!(jittered(800 * MS, 1.0), 800 * MS);
        assert_eq!(jittered(800 * MS, 7.0), 800 * MS);
    }

    #[test]
    fn waits_stay_within_their_bounds() {
        for attempt in 1..40 {
            let c = ceiling(100 * MS, attempt, Duration::from_secs(10));
            for _ in 0..20 {
                let d = exponential(100 * MS, attempt, Duration::from_secs(10));
                assert!(
                    d >= c / 2 && d <= c,
                    "attempt {attempt}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
    }
}
