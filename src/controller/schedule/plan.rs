//! Pure: what one reconcile of a `RedisBackupSchedule` does, from the schedule, the time and
//! the `RedisBackup`s it owns: the backup to create (if a slot is due), the backups to prune,
//! and the status to report.
//!
//! **Which slot is made.** Only the latest slot at or before now, and only if it is not before
//! the schedule's creation and is after `status.lastScheduleTime`. So a slot missed while the
//! operator was down (or could not write) is made late, once, for as long as it is the latest
//! slot: its deadline is the next slot, when it is given up for that one. Older missed slots are
//! never made. The same holds after `suspend` is set back to false: the latest slot that passed
//! while suspended is made at once (a `CronJob` without `startingDeadlineSeconds` does the same).
//!
//! **At most one backup per slot.** A slot's backup has a name derived from the slot alone
//! (`<schedule>-<yyyymmddhhmm, UTC>`): an owned backup of that name, or a create refused with
//! `AlreadyExists`, is that slot done, whatever the status says, across restarts and replicas.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use kube::{Resource as _, ResourceExt as _};

use super::cron::{CronError, Schedule};
use super::status::{self, Verdict};
use crate::crd::backup::{
    BackupPhase, RedisBackup, RedisBackupSchedule, RedisBackupScheduleSpec, RedisBackupScheduleStatus, RedisBackupSpec,
    SCHEDULE_LABEL,
};
use crate::crd::{SHARD_LABEL, SecretRef};

/// The longest schedule name: it is the value of the schedule label on its backups.
pub const MAX_NAME: usize = 63;

/// Why a schedule cannot be used: shown in its conditions with reason `InvalidSchedule`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The expression or the time zone is refused.
    #[error(transparent)]
    Cron(#[from] CronError),
    /// The name does not fit the label value its backups carry.
    #[error("the schedule's name is {length} characters long; at most {MAX_NAME} fit the label its backups carry")]
    NameTooLong {
        /// The name's length.
        length: usize,
    },
}

/// A `RedisBackup` the schedule owns, as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Owned {
    /// Its name.
    pub name: String,
    /// Its UID (deletes are conditional on it).
    pub uid: String,
    /// Its phase, if its controller reported one.
    pub phase: Option<BackupPhase>,
    /// Its creation time.
    pub created: Option<Timestamp>,
    /// Whether it is being deleted already.
    pub deleting: bool,
}

/// What the planner is given.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// The schedule's name.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a RedisBackupScheduleSpec,
    /// Its creation time.
    pub created: Timestamp,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// Its status as read.
    pub status: &'a RedisBackupScheduleStatus,
    /// The `RedisBackup`s it owns.
    pub backups: &'a [Owned],
    /// Whether `spec.instanceRef` names an existing `RedisInstance`.
    pub instance_found: bool,
    /// The time of the reconcile.
    pub now: Timestamp,
}

/// A backup to create for a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The backup's name.
    pub name: String,
    /// The slot.
    pub slot: Timestamp,
}

/// A backup to delete, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prune {
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: String,
    /// Why, for the Event.
    pub why: String,
}

/// What one reconcile does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The backup to create, if a slot is due and has none.
    pub create: Option<Due>,
    /// The backups to delete.
    pub prune: Vec<Prune>,
    /// The status to report; [`made`] records the created slot in it.
    pub status: RedisBackupScheduleStatus,
    /// When to look again: the next slot (none while suspended or invalid).
    pub next: Option<Timestamp>,
}

/// The name of the backup of `schedule` for `slot`: `<schedule>-<yyyymmddhhmm of the slot, UTC>`.
pub fn backup_name(schedule: &str, slot: Timestamp) -> String {
    format!("{schedule}-{}", slot.strftime("%Y%m%d%H%M"))
}

/// The slot of a backup named by [`backup_name`] for `schedule`, if the name is one.
pub fn slot_of(schedule: &str, backup: &str) -> Option<Timestamp> {
    let stamp = backup.strip_prefix(schedule)?.strip_prefix('-')?;
    if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y%m%d%H%M", stamp).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Plans one reconcile.
pub fn plan(facts: &Facts<'_>) -> Plan {
    let mut st = facts.status.clone();
    st.last_successful_backup = newest(facts.backups, BackupPhase::Completed).or(st.last_successful_backup);
    st.last_schedule_time = latest_made(facts, st.last_schedule_time.as_ref().map(|t| t.0)).map(Time);
    let schedule = match parse(facts) {
        Err(e) => return idle(facts, st, Verdict::Invalid(e.to_string())),
        Ok(_) if facts.spec.suspend == Some(true) => return idle(facts, st, Verdict::Suspended),
        Ok(s) => s,
    };
    let create = due(facts, &schedule, st.last_schedule_time.as_ref().map(|t| t.0));
    let next = schedule.next_after(facts.now);
    st.next_schedule_time = next.map(Time);
    let verdict = if facts.instance_found {
        Verdict::Running(format!(
            "backups of RedisInstance {} at {:?} ({})",
            facts.spec.instance_ref.name,
            schedule.expression(),
            schedule.time_zone()
        ))
    } else {
        Verdict::InstanceNotFound(facts.spec.instance_ref.name.clone())
    };
    status::conclude(&mut st, &verdict, facts.generation, facts.now);
    Plan {
        create,
        prune: prune(facts.backups, facts.spec.keep as usize),
        status: st,
        next,
    }
}

/// Records in `st` that the backup of `due` exists (created, or found to exist).
pub fn made(st: &mut RedisBackupScheduleStatus, due: &Due) {
    if st.last_schedule_time.as_ref().is_none_or(|t| t.0 < due.slot) {
        st.last_schedule_time = Some(Time(due.slot));
    }
}

/// The `RedisBackup` of a slot: named for it, labelled with the schedule's name, controlled by
/// the schedule (so the garbage collector deletes it with the schedule), its spec from
/// `instanceRef` and `backupTemplate`.
pub fn backup_for(schedule: &RedisBackupSchedule, due: &Due) -> RedisBackup {
    let template = &schedule.spec.backup_template;
    let mut backup = RedisBackup::new(
        &due.name,
        RedisBackupSpec {
            instance_ref: schedule.spec.instance_ref.clone(),
            description: None,
            deletion_policy: template.deletion_policy,
            write_download_secret_to_ref: (template.write_download_secret == Some(true))
                .then(|| SecretRef { name: due.name.clone() }),
        },
    );
    backup.metadata.namespace = schedule.namespace();
    let mut labels: std::collections::BTreeMap<String, String> =
        [(SCHEDULE_LABEL.to_owned(), schedule.name_any())].into();
    // The backup belongs to the schedule's shard, whose process watches it to count the slot done.
    if let Some(shard) = schedule.labels().get(SHARD_LABEL) {
        labels.insert(SHARD_LABEL.to_owned(), shard.clone());
    }
    backup.metadata.labels = Some(labels);
    backup.metadata.owner_references = schedule.controller_owner_ref(&()).map(|o| vec![o]);
    backup
}

/// The schedule, or why it cannot be used (a bad expression or zone, a name too long to label).
fn parse(facts: &Facts<'_>) -> Result<Schedule, Invalid> {
    if facts.name.len() > MAX_NAME {
        return Err(Invalid::NameTooLong {
            length: facts.name.len(),
        });
    }
    Ok(Schedule::new(&facts.spec.schedule, facts.spec.time_zone.as_deref())?)
}

/// Suspended or invalid: nothing made, nothing pruned, no next slot.
fn idle(facts: &Facts<'_>, mut st: RedisBackupScheduleStatus, verdict: Verdict) -> Plan {
    st.next_schedule_time = None;
    status::conclude(&mut st, &verdict, facts.generation, facts.now);
    Plan {
        create: None,
        prune: vec![],
        status: st,
        next: None,
    }
}

/// The latest slot at or before now, if it is to be made: not before the schedule's creation,
/// after the last slot made, and without a backup of its name.
fn due(facts: &Facts<'_>, schedule: &Schedule, last: Option<Timestamp>) -> Option<Due> {
    let slot = schedule.latest_at_or_before(facts.now)?;
    if slot < facts.created || last.is_some_and(|l| slot <= l) {
        return None;
    }
    let name = backup_name(facts.name, slot);
    let exists = facts.backups.iter().any(|b| b.name == name);
    (!exists).then_some(Due { name, slot })
}

/// The latest slot made: the status's, or a later one an owned backup's name shows (a backup
/// created just before a crash or a lost status write).
fn latest_made(facts: &Facts<'_>, recorded: Option<Timestamp>) -> Option<Timestamp> {
    facts
        .backups
        .iter()
        .filter_map(|b| slot_of(facts.name, &b.name))
        .chain(recorded)
        .max()
}

/// Owned backups in `phase` not being deleted, newest first (creation time, then name).
fn by_age(backups: &[Owned], phase: BackupPhase) -> Vec<&Owned> {
    let mut of: Vec<&Owned> = backups
        .iter()
        .filter(|b| !b.deleting && b.phase == Some(phase))
        .collect();
    of.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
    of
}

/// The newest backup in `phase`.
fn newest(backups: &[Owned], phase: BackupPhase) -> Option<String> {
    by_age(backups, phase).first().map(|b| b.name.clone())
}

/// Beyond `keep` completed backups the oldest go; failed ones do not count towards `keep` and
/// are kept for inspection up to the same number. Backups in progress are never pruned.
fn prune(backups: &[Owned], keep: usize) -> Vec<Prune> {
    let mut out = vec![];
    for (phase, what) in [
        (BackupPhase::Completed, "completed backups are kept"),
        (BackupPhase::Failed, "failed backups are kept for inspection"),
    ] {
        out.extend(by_age(backups, phase).into_iter().skip(keep).rev().map(|b| Prune {
            name: b.name.clone(),
            uid: b.uid.clone(),
            why: format!("keep is {keep}: the {keep} newest {what}"),
        }));
    }
    out
}

#[cfg(test)]
mod tests;
