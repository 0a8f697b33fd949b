//! The one next step for a `RedisBackup`, a pure function of what is known (contract:
//! `redisbackup.md`): the create-once protocol with its marker, waiting for the instance,
//! following the backup until finished, and the deletion.

use std::time::Duration;

/// How long a create the cloud accepted may stay unlisted before the backup counts as lost.
pub const ACCEPTED_UNLISTED_LIMIT: Duration = Duration::from_secs(600);

/// The `RedisInstance` the backup names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instance {
    /// No such object in the namespace.
    Missing,
    /// It exists but has no running cloud instance yet.
    NotRunning,
    /// It runs: its cloud instance's UUID.
    Running(String),
}

/// What the instance's backup listing shows of this backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not looked at in this reconcile.
    NotLooked,
    /// The cloud no longer knows the instance (and so its backups).
    InstanceGone,
    /// Not listed (by its id, or by its marker before the id is known).
    Absent,
    /// Listed; whether it is finished.
    Listed {
        /// The cloud reports it finished.
        finished: bool,
    },
}

/// Everything the planner decides on.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The object is being deleted.
    pub deleting: bool,
    /// It carries the cleanup finalizer.
    pub has_finalizer: bool,
    /// `deletionPolicy: Retain`.
    pub retain: bool,
    /// The cloud's backup id is recorded.
    pub has_backup_id: bool,
    /// A create was started (its intent is recorded): its age.
    pub attempt_age: Option<Duration>,
    /// The cloud accepted the create (a `taskId` is recorded).
    pub accepted: bool,
    /// The instance the backup was (or would be) made of is recorded.
    pub has_instance_uuid: bool,
    /// The `RedisInstance`.
    pub instance: Instance,
    /// What the listing shows.
    pub seen: Seen,
    /// How long a create's answer may take to show in the listing.
    pub visibility_grace: Duration,
}

/// Why a backup waits for its instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The `RedisInstance` does not exist (yet).
    InstanceNotFound,
    /// It exists, but is not running yet.
    InstanceNotReady,
}

/// The one next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do (deleted, and the finalizer is already gone).
    Nothing,
    /// Add the cleanup finalizer before anything reaches the cloud.
    AddFinalizer,
    /// Release the object: nothing (more) to delete in the cloud, or `Retain`.
    RemoveFinalizer,
    /// Look at the instance's backup listing first.
    Look,
    /// Record the intent, then call `CreateBackup` once.
    Create,
    /// Wait for the instance.
    WaitForInstance(WaitReason),
    /// The backup is being made: poll.
    WaitForBackup,
    /// A create was sent (or may have been): wait for the listing to show it.
    WaitForVisibility,
    /// The backup is finished: report it (and write the download Secret, if asked).
    Complete,
    /// The recorded backup is gone from the cloud: a terminal failure.
    Lost,
    /// Call `DeleteBackup`.
    Delete,
}

/// The next step for `f`.
pub fn plan(f: &Facts) -> Step {
    if f.deleting {
        return plan_deletion(f);
    }
    if !f.has_finalizer {
        return Step::AddFinalizer;
    }
    if !f.has_backup_id && f.attempt_age.is_none() {
        return match &f.instance {
            Instance::Missing => Step::WaitForInstance(WaitReason::InstanceNotFound),
            Instance::NotRunning => Step::WaitForInstance(WaitReason::InstanceNotReady),
            Instance::Running(_) => Step::Create,
        };
    }
    match f.seen {
        Seen::NotLooked => Step::Look,
        Seen::Listed { finished: true } => Step::Complete,
        Seen::Listed { finished: false } => Step::WaitForBackup,
        Seen::InstanceGone => Step::Lost,
        Seen::Absent if f.has_backup_id => Step::Lost,
        Seen::Absent => unlisted_create(f),
    }
}

/// A create whose backup the listing does not show (by its marker).
fn unlisted_create(f: &Facts) -> Step {
    let age = f.attempt_age.unwrap_or_default();
    if f.accepted {
        // The cloud said yes: the backup exists, however slow the listing is; never a second.
        return if age < ACCEPTED_UNLISTED_LIMIT {
            Step::WaitForVisibility
        } else {
            Step::Lost
        };
    }
    // The answer was lost or never came (a crash before or after the call): once the listing
    // has had its time to show it, the create did not happen, and is sent again.
    if age < f.visibility_grace {
        Step::WaitForVisibility
    } else if matches!(f.instance, Instance::Running(_)) {
        Step::Create
    } else {
        Step::WaitForInstance(WaitReason::InstanceNotReady)
    }
}

fn plan_deletion(f: &Facts) -> Step {
    if !f.has_finalizer {
        return Step::Nothing;
    }
    let never_sent = !f.has_backup_id && f.attempt_age.is_none();
    if f.retain || never_sent || !f.has_instance_uuid {
        return Step::RemoveFinalizer;
    }
    match f.seen {
        Seen::NotLooked => Step::Look,
        Seen::InstanceGone => Step::RemoveFinalizer,
        Seen::Listed { .. } => Step::Delete,
        Seen::Absent if !f.has_backup_id && f.attempt_age.is_some_and(|a| a < f.visibility_grace) => {
            Step::WaitForVisibility
        }
        Seen::Absent
            if !f.has_backup_id && f.accepted && f.attempt_age.is_some_and(|a| a < ACCEPTED_UNLISTED_LIMIT) =>
        {
            Step::WaitForVisibility
        }
        Seen::Absent => Step::RemoveFinalizer,
    }
}

#[cfg(test)]
mod tests;
