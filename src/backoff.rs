//! One backoff rule for everything that retries: exponential growth with full jitter.

use std::time::Duration;

/// A random wait in `[cap/2, cap]` where `cap = base * 2^(attempt-1)`, at most `max`.
pub fn exponential(base: Duration, attempt: u32, max: Duration) -> Duration {
    let cap = base.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(max);
    cap.mul_f64(0.5 + 0.5 * rand::random::<f64>())
}
