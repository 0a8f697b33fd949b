//! The call budget of one account: a token bucket every client of the account waits on, and a
//! pause while the cloud throttles the account (its calls then fail at once, unsent).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::backoff;

/// The call budget of one account, shared by every client of that account, so all reconciles
/// together stay under its quota: a token bucket, and a pause while the cloud throttles the
/// account.
pub type SharedRateLimiter = Arc<CallBudget>;

/// A token bucket refilled at `qps` per second holding at most `burst` tokens, with no pause.
pub fn rate_limiter(qps: f64, burst: u32) -> SharedRateLimiter {
    let burst = NonZeroU32::new(burst.max(1)).expect("burst is at least 1");
    let period = Duration::from_secs_f64(1.0 / qps.max(0.001));
    let quota = Quota::with_period(period)
        .expect("period is positive")
        .allow_burst(burst);
    Arc::new(CallBudget {
        bucket: RateLimiter::direct(quota),
        paused_until: std::sync::Mutex::new(None),
        throttled: std::sync::atomic::AtomicU32::new(0),
    })
}

/// The longest pause of an account the cloud keeps throttling.
pub(crate) const PAUSE_CAP: Duration = Duration::from_secs(30);

/// One account's budget of cloud calls.
pub struct CallBudget {
    bucket: DefaultDirectRateLimiter,
    /// While the cloud throttles the account, no call is sent before this: calls fail at once
    /// (retryable), so that reconciles of a throttled account neither wait in the workers every
    /// account shares nor add to the throttling.
    paused_until: std::sync::Mutex<Option<Instant>>,
    /// Throttling answers in a row.
    throttled: std::sync::atomic::AtomicU32,
}

impl CallBudget {
    /// Waits for a token of the bucket.
    pub async fn until_ready(&self) {
        self.bucket.until_ready().await;
    }

    /// How long calls are still paused, if they are.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().expect("not poisoned"))?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// The cloud throttled a call: pause the account, longer each time in a row.
    pub(crate) fn throttled(&self, suggested: Duration) {
        let n = self.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let pause = backoff::exponential(Duration::from_secs(1), n, PAUSE_CAP).max(suggested);
        *self.paused_until.lock().expect("not poisoned") = Some(Instant::now() + pause);
    }

    /// A call got through: the throttling is over.
    pub(crate) fn answered(&self) {
        if self.throttled.swap(0, std::sync::atomic::Ordering::Relaxed) > 0 {
            *self.paused_until.lock().expect("not poisoned") = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_account_pauses_longer_each_time_and_resumes_on_an_answer() {
        let budget = rate_limiter(10.0, 10);
        assert_eq!(budget.paused_for(), None);
        budget.throttled(Duration::ZERO);
        let first = budget.paused_for().expect("paused after a throttling answer");
        assert!(first <= Duration::from_secs(1), "{first:?}");
        budget.throttled(Duration::ZERO);
        budget.throttled(Duration::ZERO);
        let third = budget.paused_for().expect("still paused");
        assert!(
            third > Duration::from_secs(2) && third <= Duration::from_secs(4),
            "{third:?}"
        );
        // The cloud's suggestion wins when longer.
        budget.throttled(Duration::from_secs(20));
        assert!(budget.paused_for().unwrap() > Duration::from_secs(15));
        budget.answered();
        assert_eq!(budget.paused_for(), None, "an answer ends the pause");
        for _ in 0..20 {
            budget.throttled(Duration::ZERO);
        }
        assert!(budget.paused_for().unwrap() <= PAUSE_CAP);
    }
}
