//! Pure status of a `RedisBackup`: what the listing says of the backup becomes status fields, and
//! how a reconcile ended becomes the phase and the four conditions (as for `RedisInstance`:
//! `Ready`, `Synced`, and `Reconciling`/`Stalled` present only while True).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::{Step, WaitReason};
use crate::cds::wire::Backup;
use crate::crd::backup::{BackupPhase, RedisBackupStatus};
use crate::crd::conditions::{self, READY, RECONCILING, STALLED, SYNCED, backup, ready, reconciling, synced};
use crate::error::Error;

/// The cloud's status of a finished backup (the only one documented).
pub const FINISHED: &str = "finished";

/// Copies what the cloud lists of the backup into `status`.
pub fn apply_backup(status: &mut RedisBackupStatus, b: &Backup) {
    let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    status.backup_id = text(&b.backup_id);
    status.cloud_status = text(&b.status);
    status.size_bytes = b.backup_size;
    status.start_time = text(&b.start_time);
    status.end_time = text(&b.end_time);
    status.mode = text(&b.backup_mode);
    status.r#type = text(&b.backup_type);
}

/// How a reconcile ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'e> {
    /// The step was carried out (or is being waited on).
    Step(Step),
    /// It failed.
    Failed(&'e Error),
}

/// Sets the phase, the conditions and `observedGeneration` from how the reconcile ended.
pub fn conclude(
    status: &mut RedisBackupStatus,
    deleting: bool,
    outcome: Outcome<'_>,
    generation: Option<i64>,
    now: &Time,
) {
    let phase = phase_after(status, deleting, outcome);
    status.phase = Some(phase);
    status.observed_generation = generation;
    let (ready_ok, ready_reason, ready_message) = match phase {
        BackupPhase::Completed => (true, backup::COMPLETED, "the cloud reports the backup finished"),
        BackupPhase::Creating => (false, ready::CREATING, "the cloud is making the backup"),
        BackupPhase::Deleting => (false, ready::DELETING, "the backup is being deleted"),
        BackupPhase::Pending => (false, backup::PENDING, "waiting for the instance to run"),
        BackupPhase::Failed => (false, ready::UNAVAILABLE, "the object needs attention (see Synced)"),
    };
    set(
        status,
        READY,
        Some((ready_ok, ready_reason, ready_message.to_owned())),
        generation,
        now,
    );
    let (synced_ok, synced_reason, synced_message) = match outcome {
        Outcome::Failed(e) => (false, e.reason(), e.to_string()),
        Outcome::Step(Step::WaitForInstance(why)) => {
            let reason = match why {
                WaitReason::InstanceNotFound => backup::INSTANCE_NOT_FOUND,
                WaitReason::InstanceNotReady => backup::INSTANCE_NOT_READY,
            };
            (false, reason, waiting_message(why))
        }
        Outcome::Step(_) => (true, synced::RECONCILE_SUCCESS, String::new()),
    };
    set(
        status,
        SYNCED,
        Some((synced_ok, synced_reason, synced_message)),
        generation,
        now,
    );
    let working = match (phase, outcome) {
        (_, Outcome::Failed(e)) if e.is_terminal() => None,
        (BackupPhase::Deleting, _) => Some((reconciling::DELETING, "deleting the cloud backup".to_owned())),
        (_, Outcome::Failed(e)) => Some((reconciling::RETRYING, e.to_string())),
        (BackupPhase::Pending, Outcome::Step(Step::WaitForInstance(why))) => {
            Some((backup::PENDING, waiting_message(why)))
        }
        (BackupPhase::Creating, _) => Some((reconciling::CREATING, "the cloud is making the backup".to_owned())),
        _ => None,
    };
    set(status, RECONCILING, working.map(|(r, m)| (true, r, m)), generation, now);
    let stalled = match outcome {
        Outcome::Failed(e) if e.is_terminal() => Some((true, e.reason(), e.to_string())),
        _ => None,
    };
    set(status, STALLED, stalled, generation, now);
}

fn waiting_message(why: WaitReason) -> String {
    match why {
        WaitReason::InstanceNotFound => "the RedisInstance does not exist; the backup is made once it runs".into(),
        WaitReason::InstanceNotReady => "the RedisInstance is not running yet; the backup is made once it runs".into(),
    }
}

/// Sets (`Some`) or removes (`None`) a condition.
fn set(
    status: &mut RedisBackupStatus,
    type_: &str,
    verdict: Option<(bool, &str, String)>,
    generation: Option<i64>,
    now: &Time,
) {
    match verdict {
        Some((ok, reason, message)) => {
            conditions::set_condition(
                &mut status.conditions,
                conditions::condition(type_, ok, reason, message, generation, now.clone()),
            );
        }
        None => status.conditions.retain(|c| c.type_ != type_),
    }
}

fn phase_after(status: &RedisBackupStatus, deleting: bool, outcome: Outcome<'_>) -> BackupPhase {
    if deleting {
        return BackupPhase::Deleting;
    }
    match outcome {
        Outcome::Failed(e) if e.is_terminal() => BackupPhase::Failed,
        Outcome::Failed(_) => status.phase.unwrap_or(BackupPhase::Pending),
        Outcome::Step(Step::Complete) => BackupPhase::Completed,
        Outcome::Step(Step::WaitForInstance(_)) => BackupPhase::Pending,
        Outcome::Step(Step::Create | Step::WaitForBackup | Step::WaitForVisibility) => BackupPhase::Creating,
        Outcome::Step(_) => status.phase.unwrap_or(BackupPhase::Pending),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap())
    }

    /// (type, status, reason) of each condition present.
    fn shape(s: &RedisBackupStatus) -> Vec<(String, String, String)> {
        let mut c: Vec<_> = s
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect();
        c.sort();
        c
    }

    fn row(t: &str, s: &str, r: &str) -> (String, String, String) {
        (t.into(), s.into(), r.into())
    }

    #[test]
    fn each_outcome_gives_its_phase_and_conditions() {
        let lost = Error::BackupNotFound("b-1".into());
        let down = Error::Cds(crate::cds::CdsError::api(
            "CreateBackup",
            500,
            Some("InternalError".into()),
            "m",
            None,
        ));
        type Case<'e> = (
            &'static str,
            bool,
            Outcome<'e>,
            BackupPhase,
            Vec<(String, String, String)>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "waiting for a missing instance",
                false,
                Outcome::Step(Step::WaitForInstance(WaitReason::InstanceNotFound)),
                BackupPhase::Pending,
                vec![
                    row("Ready", "False", "Pending"),
                    row("Reconciling", "True", "Pending"),
                    row("Synced", "False", "InstanceNotFound"),
                ],
            ),
            (
                "creating",
                false,
                Outcome::Step(Step::WaitForBackup),
                BackupPhase::Creating,
                vec![
                    row("Ready", "False", "Creating"),
                    row("Reconciling", "True", "Creating"),
                    row("Synced", "True", "ReconcileSuccess"),
                ],
            ),
            (
                "completed",
                false,
                Outcome::Step(Step::Complete),
                BackupPhase::Completed,
                vec![
                    row("Ready", "True", "Completed"),
                    row("Synced", "True", "ReconcileSuccess"),
                ],
            ),
            (
                "lost: terminal",
                false,
                Outcome::Failed(&lost),
                BackupPhase::Failed,
                vec![
                    row("Ready", "False", "Unavailable"),
                    row("Stalled", "True", "BackupNotFound"),
                    row("Synced", "False", "BackupNotFound"),
                ],
            ),
            (
                "cloud down: retried, phase kept",
                false,
                Outcome::Failed(&down),
                BackupPhase::Pending,
                vec![
                    row("Ready", "False", "Pending"),
                    row("Reconciling", "True", "Retrying"),
                    row("Synced", "False", "CloudUnavailable"),
                ],
            ),
            (
                "deleting",
                true,
                Outcome::Step(Step::Delete),
                BackupPhase::Deleting,
                vec![
                    row("Ready", "False", "Deleting"),
                    row("Reconciling", "True", "Deleting"),
                    row("Synced", "True", "ReconcileSuccess"),
                ],
            ),
        ];
        for (case, deleting, outcome, phase, conditions) in cases {
            let mut s = RedisBackupStatus::default();
            conclude(&mut s, deleting, outcome, Some(1), &now());
            assert_eq!((s.phase, shape(&s)), (Some(phase), conditions), "{case}");
            assert!(s.conditions.iter().all(|c| c.observed_generation == Some(1)), "{case}");
        }
    }

    #[test]
    fn a_completed_backup_stays_completed_through_a_passing_failure() {
        let mut s = RedisBackupStatus::default();
        conclude(&mut s, false, Outcome::Step(Step::Complete), Some(1), &now());
        let down = Error::Conflict;
        conclude(&mut s, false, Outcome::Failed(&down), Some(1), &now());
        assert_eq!(s.phase, Some(BackupPhase::Completed));
        assert_eq!(conditions::find(&s.conditions, READY).unwrap().status, "True");
    }
}
