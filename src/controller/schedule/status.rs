//! Pure: the conditions of a `RedisBackupSchedule` (`Ready`, `Synced`, `Stalled`), their reasons,
//! and the rule that decides whether a status write is needed.
//!
//! `Ready` says whether the schedule runs (True: `Scheduled` or `Suspended`; False:
//! `InvalidSchedule`, or `InstanceNotFound`, which is not an error: the backups it makes wait
//! for the instance, `Pending`); `Synced` whether the last reconcile did its work; `Stalled`
//! (present only while True) that only an edit of the spec can help.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::backup::RedisBackupScheduleStatus;
use crate::crd::conditions::{self, READY, STALLED, SYNCED, synced};

/// Reason: the schedule runs; the next slot is in `status.nextScheduleTime`.
pub const SCHEDULED: &str = "Scheduled";
/// Reason: `spec.suspend` is true; no backup is made, none is pruned.
pub const SUSPENDED: &str = "Suspended";
/// Reason: the expression, the time zone or the name cannot be used (terminal: `Stalled`).
pub const INVALID_SCHEDULE: &str = "InvalidSchedule";
/// Reason: the `RedisInstance` does not exist (retryable, not stalled).
pub const INSTANCE_NOT_FOUND: &str = synced::INSTANCE_NOT_FOUND;

/// What the schedule's state is, as the planner found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It runs; the message says what it does.
    Running(String),
    /// It runs, but its `RedisInstance` (named) does not exist.
    InstanceNotFound(String),
    /// `suspend` is true.
    Suspended,
    /// It cannot run; the message says why.
    Invalid(String),
}

/// Sets the three conditions and `observedGeneration` from `verdict`.
pub fn conclude(st: &mut RedisBackupScheduleStatus, verdict: &Verdict, generation: Option<i64>, now: Timestamp) {
    let (ready, reason, message) = match verdict {
        Verdict::Running(m) => (true, SCHEDULED, m.clone()),
        Verdict::Suspended => (
            true,
            SUSPENDED,
            "suspended: no new backups; the existing ones are kept".to_owned(),
        ),
        Verdict::InstanceNotFound(name) => (
            false,
            INSTANCE_NOT_FOUND,
            format!(
                "RedisInstance {name} does not exist in this namespace; backups are still made on schedule and wait for it (Pending)"
            ),
        ),
        Verdict::Invalid(m) => (false, INVALID_SCHEDULE, m.clone()),
    };
    let set = |st: &mut RedisBackupScheduleStatus, type_: &str, ok: bool, reason: &str, message: String| {
        conditions::set_condition(
            &mut st.conditions,
            conditions::condition(type_, ok, reason, message, generation, Time(now)),
        );
    };
    set(st, READY, ready, reason, message.clone());
    match verdict {
        Verdict::Invalid(_) => {
            set(st, SYNCED, false, INVALID_SCHEDULE, message.clone());
            set(st, STALLED, true, INVALID_SCHEDULE, message);
        }
        _ => {
            set(st, SYNCED, true, synced::RECONCILE_SUCCESS, String::new());
            st.conditions.retain(|c| c.type_ != STALLED);
        }
    }
    st.observed_generation = generation;
}

/// Reports a reconcile that failed (a Kubernetes API error): `Synced` False with the error's
/// reason and message; `Ready` stays as it was (a passing failure does not stop the schedule).
pub fn failed(
    st: &mut RedisBackupScheduleStatus,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) {
    conditions::set_condition(
        &mut st.conditions,
        conditions::condition(SYNCED, false, reason, message, generation, Time(now)),
    );
}

/// Whether `new` differs from `old` (the conditions keep their transition times unless they
/// flip, so an unchanged schedule writes nothing).
pub fn needs_write(old: Option<&RedisBackupScheduleStatus>, new: &RedisBackupScheduleStatus) -> bool {
    old != Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-05-04T10:00:00Z".parse().unwrap()
    }

    fn cond(st: &RedisBackupScheduleStatus, t: &str) -> Option<(String, String)> {
        conditions::find(&st.conditions, t).map(|c| (c.status.clone(), c.reason.clone()))
    }

    fn pair(s: &str, r: &str) -> Option<(String, String)> {
        Some((s.to_owned(), r.to_owned()))
    }

    #[test]
    fn each_verdict_sets_its_conditions() {
        let cases = [
            (
                Verdict::Running("m".into()),
                pair("True", SCHEDULED),
                pair("True", "ReconcileSuccess"),
                None,
            ),
            (
                Verdict::Suspended,
                pair("True", SUSPENDED),
                pair("True", "ReconcileSuccess"),
                None,
            ),
            (
                Verdict::InstanceNotFound("cache".into()),
                pair("False", INSTANCE_NOT_FOUND),
                pair("True", "ReconcileSuccess"),
                None,
            ),
            (
                Verdict::Invalid("bad".into()),
                pair("False", INVALID_SCHEDULE),
                pair("False", INVALID_SCHEDULE),
                pair("True", INVALID_SCHEDULE),
            ),
        ];
        for (verdict, ready, synced, stalled) in cases {
            // From a stalled status, so that a valid verdict must remove Stalled.
            let mut st = RedisBackupScheduleStatus::default();
            conclude(&mut st, &Verdict::Invalid("x".into()), Some(1), now());
            conclude(&mut st, &verdict, Some(2), now());
            assert_eq!(cond(&st, READY), ready, "{verdict:?}");
            assert_eq!(cond(&st, SYNCED), synced, "{verdict:?}");
            assert_eq!(cond(&st, STALLED), stalled, "{verdict:?}");
            assert_eq!(st.observed_generation, Some(2));
        }
    }

    #[test]
    fn an_unchanged_verdict_needs_no_write_and_a_failure_keeps_ready() {
        let mut st = RedisBackupScheduleStatus::default();
        conclude(&mut st, &Verdict::Running("m".into()), Some(1), now());
        let old = st.clone();
        let later = now().checked_add(jiff::SignedDuration::from_mins(5)).unwrap();
        conclude(&mut st, &Verdict::Running("m".into()), Some(1), later);
        assert!(!needs_write(Some(&old), &st), "transition times stay");
        failed(&mut st, "KubernetesAPIError", "boom".into(), Some(1), later);
        assert!(needs_write(Some(&old), &st));
        assert_eq!(cond(&st, READY), pair("True", SCHEDULED));
        assert_eq!(cond(&st, SYNCED), pair("False", "KubernetesAPIError"));
    }
}
