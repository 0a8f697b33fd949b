//! Pure status computation: the cloud's view of an instance turned into status fields; how a
//! reconcile ended (an error included) turned into the phase and the conditions; and the rule
//! that decides whether a status write is needed at all.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cds::wire::{self, InstanceSummary};
use crate::crd::conditions::{self, READY, RECONCILING, STALLED, SYNCED, ready, reconciling, synced};
use crate::crd::{Endpoint, Phase, RedisInstanceStatus};
use crate::encoding::percent_encode;
use crate::error::Error;

/// The phase a cloud status maps to.
pub fn phase_of(cloud_status: &str) -> Phase {
    match cloud_status {
        wire::STATUS_RUNNING => Phase::Running,
        wire::STATUS_CREATING => Phase::Creating,
        wire::STATUS_DELETING => Phase::Deleting,
        _ => Phase::Unknown,
    }
}

/// Copies what the cloud says about `inst` into `status`.
pub fn apply_instance(status: &mut RedisInstanceStatus, inst: &InstanceSummary, now: &Time) {
    status.instance_uuid = Some(inst.instance_uuid.clone());
    status.instance_name = Some(inst.instance_name.clone());
    status.cloud_status = Some(inst.status.clone()).filter(|s| !s.is_empty());
    status.cloud_status_text = Some(inst.status_str.clone()).filter(|s| !s.is_empty());
    status.endpoint = (!inst.ip.is_empty()).then(|| Endpoint {
        host: inst.ip.clone(),
        port: inst.port.unwrap_or(0) as i32,
    });
    status.ram_mb = inst.ram;
    status.version = Some(inst.version.clone()).filter(|s| !s.is_empty());
    status.created_time = Some(inst.created_time.clone()).filter(|s| !s.is_empty());
    status.last_sync_time = Some(now.clone());
    status.phase = Some(phase_of(&inst.status));
}

/// How a reconcile ended, as far as the status is concerned.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'e> {
    /// The step succeeded.
    Done {
        /// The connection Secret is written, or not asked for.
        connection_ok: bool,
        /// The password Secret no longer holds the password the instance was created with.
        password_out_of_sync: bool,
    },
    /// Waiting for the cloud to show the effect of a create or delete: `Synced` keeps the last
    /// real outcome (a create whose answer was lost stays visible as such).
    Waiting,
    /// The step failed.
    Failed(&'e Error),
}

/// Sets the phase and the four conditions (`Ready`, `Synced`, `Reconciling`, `Stalled`) and
/// `observedGeneration` from how the reconcile of `generation` ended. The one place where an
/// outcome, or an error, becomes a phase and conditions.
pub fn conclude(
    status: &mut RedisInstanceStatus,
    deleting: bool,
    outcome: Outcome<'_>,
    generation: Option<i64>,
    now: &Time,
) {
    status.phase = Some(phase_after(status, deleting, &outcome));
    status.observed_generation = generation;
    let verdicts = [
        (READY, ready(status, deleting, outcome)),
        (SYNCED, synced(status, outcome)),
        (RECONCILING, reconciling(status, deleting, outcome)),
        (STALLED, stalled(outcome)),
    ];
    for (type_, verdict) in verdicts {
        match verdict {
            Verdict::Set(ok, reason, message) => {
                conditions::set_condition(
                    &mut status.conditions,
                    conditions::condition(type_, ok, reason, message, generation, now.clone()),
                );
            }
            Verdict::Keep => {
                if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == type_) {
                    c.observed_generation = generation;
                }
            }
            Verdict::Absent => status.conditions.retain(|c| c.type_ != type_),
        }
    }
}

/// What one condition becomes after a reconcile.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Status, reason, message.
    Set(bool, &'static str, String),
    /// As it is, stamped with the generation it now speaks for.
    Keep,
    /// Removed (`Reconciling` and `Stalled` are present only while True).
    Absent,
}

fn ready(status: &RedisInstanceStatus, deleting: bool, outcome: Outcome<'_>) -> Verdict {
    let has_ready = conditions::find(&status.conditions, READY).is_some();
    let (ok, reason, message) = match outcome {
        Outcome::Failed(Error::ExternallyDeleted(_)) => (
            false,
            ready::EXTERNALLY_DELETED,
            "the cloud instance no longer exists".to_owned(),
        ),
        // A passing failure (the cloud or the apiserver unreachable) does not make a running
        // instance unready; it is reported by Synced and Reconciling.
        Outcome::Failed(e) if e.is_retryable() && has_ready && !deleting => return Verdict::Keep,
        Outcome::Done { connection_ok, .. } => ready_from_phase(status, connection_ok),
        Outcome::Waiting | Outcome::Failed(_) => ready_from_phase(status, false),
    };
    Verdict::Set(ok, reason, message)
}

fn synced(status: &RedisInstanceStatus, outcome: Outcome<'_>) -> Verdict {
    match outcome {
        Outcome::Done {
            password_out_of_sync: true,
            ..
        } => Verdict::Set(false, synced::PASSWORD_OUT_OF_SYNC, PASSWORD_OUT_OF_SYNC.into()),
        Outcome::Waiting if conditions::find(&status.conditions, SYNCED).is_some() => Verdict::Keep,
        Outcome::Done { .. } | Outcome::Waiting => Verdict::Set(true, synced::RECONCILE_SUCCESS, String::new()),
        Outcome::Failed(e) => Verdict::Set(false, e.reason(), e.to_string()),
    }
}

fn reconciling(status: &RedisInstanceStatus, deleting: bool, outcome: Outcome<'_>) -> Verdict {
    let settled = matches!(
        outcome,
        Outcome::Done {
            connection_ok: true,
            ..
        }
    ) && status.phase == Some(Phase::Running);
    match outcome {
        _ if deleting => Verdict::Set(true, reconciling::DELETING, "deleting the cloud instance".into()),
        Outcome::Failed(e) if e.is_retryable() => Verdict::Set(true, reconciling::RETRYING, e.to_string()),
        Outcome::Failed(_) => Verdict::Absent,
        _ if settled => Verdict::Absent,
        _ if status.phase == Some(Phase::Creating) => {
            Verdict::Set(true, reconciling::CREATING, "the cloud is creating the instance".into())
        }
        _ => Verdict::Set(true, reconciling::PROGRESSING, "waiting for the cloud".into()),
    }
}

fn stalled(outcome: Outcome<'_>) -> Verdict {
    match outcome {
        Outcome::Failed(e) if e.is_terminal() => Verdict::Set(true, e.reason(), e.to_string()),
        _ => Verdict::Absent,
    }
}

const PASSWORD_OUT_OF_SYNC: &str = "the password Secret changed after the instance was created; the cloud cannot change a password, so the instance and the connection Secret keep the original one";

/// The phase after a reconcile: what the cloud said (already in `status`), unless the object is
/// being deleted or the failure leaves nothing to work on.
fn phase_after(status: &RedisInstanceStatus, deleting: bool, outcome: &Outcome<'_>) -> Phase {
    if deleting {
        return Phase::Deleting;
    }
    let nothing_yet = status.instance_uuid.is_none() && status.create_attempt.is_none();
    match outcome {
        Outcome::Failed(
            Error::ExternallyDeleted(_)
            | Error::InstanceNotFound(_)
            | Error::AmbiguousInstance { .. }
            | Error::InstanceInUse { .. },
        ) => Phase::Failed,
        Outcome::Failed(e) if nothing_yet && e.is_terminal() => Phase::Failed,
        _ => status.phase.unwrap_or(Phase::Pending),
    }
}

/// `Ready` from the phase: True only when running and the connection Secret (if asked for) is
/// written.
fn ready_from_phase(status: &RedisInstanceStatus, connection_ok: bool) -> (bool, &'static str, String) {
    match status.phase {
        Some(Phase::Running) if connection_ok => (true, ready::AVAILABLE, "the instance is running".to_owned()),
        Some(Phase::Running) => (
            false,
            ready::UNAVAILABLE,
            "the instance is running; the connection Secret is not written yet".to_owned(),
        ),
        Some(Phase::Creating) => (false, ready::CREATING, "the cloud is creating the instance".to_owned()),
        Some(Phase::Deleting) => (false, ready::DELETING, "the instance is being deleted".to_owned()),
        Some(Phase::Unknown) => (
            false,
            ready::UNAVAILABLE,
            format!(
                "the cloud reports status {:?}",
                status.cloud_status.clone().unwrap_or_default()
            ),
        ),
        Some(Phase::Failed) => (
            false,
            ready::UNAVAILABLE,
            "the object needs attention (see Synced)".to_owned(),
        ),
        _ => (false, ready::UNAVAILABLE, "no instance yet".to_owned()),
    }
}

/// How long the cloud's details of an instance being created may wait for the write that
/// reports it running: a create that completes within this time costs no status write between
/// the one recording its UUID and the one saying it is Ready.
pub const DETAIL_HOLD: Duration = Duration::from_secs(30);

/// The status without the cloud's details of the instance (status text, endpoint, sizes, creation
/// time), the create marker and the sync time: what says what is going on.
fn essentials(s: &RedisInstanceStatus) -> RedisInstanceStatus {
    RedisInstanceStatus {
        cloud_status: None,
        cloud_status_text: None,
        endpoint: None,
        ram_mb: None,
        version: None,
        created_time: None,
        create_attempt: None,
        last_sync_time: None,
        ..s.clone()
    }
}

/// What [`essentials`] leaves out, but the sync time.
fn details(s: &RedisInstanceStatus) -> impl PartialEq + '_ {
    (
        &s.cloud_status,
        &s.cloud_status_text,
        &s.endpoint,
        s.ram_mb,
        &s.version,
        &s.created_time,
        &s.create_attempt,
    )
}

/// Whether `new` must be written over `old`.
///
/// - A change of phase, UUID, TaskId, conditions or generation: always, at once.
/// - A sync time older than `refresh`: always (so steady objects show they are watched).
/// - Other changes (the cloud's details, the create marker cleared, a first sync time): at once,
///   except while the instance is being deleted (`Deleting` is already reported) or created
///   (for [`DETAIL_HOLD`] after the create started). The next essential change writes them.
pub fn needs_write(old: &RedisInstanceStatus, new: &RedisInstanceStatus, refresh: Duration, now: &Time) -> bool {
    if essentials(old) != essentials(new) {
        return true;
    }
    let age = |t: &Time| now.0.duration_since(t.0).unsigned_abs();
    if let (Some(t), Some(_)) = (&old.last_sync_time, &new.last_sync_time)
        && age(t) >= refresh
    {
        return true;
    }
    let first_sync = old.last_sync_time.is_none() && new.last_sync_time.is_some();
    if details(old) == details(new) && !first_sync {
        return false;
    }
    let held = match new.phase {
        Some(Phase::Deleting) => old.phase == Some(Phase::Deleting),
        Some(Phase::Creating) => old
            .create_attempt
            .as_ref()
            .is_some_and(|a| age(&a.started_at) < DETAIL_HOLD),
        _ => false,
    };
    !held
}

/// The data of the connection Secret: `host`, `port`, `password`, `uri`, `instanceUuid`.
pub fn connection_data(endpoint: &Endpoint, password: &str, uuid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("host".to_owned(), endpoint.host.clone()),
        ("port".to_owned(), endpoint.port.to_string()),
        ("password".to_owned(), password.to_owned()),
        (
            "uri".to_owned(),
            format!(
                "redis://:{}@{}:{}",
                percent_encode(password),
                endpoint.host,
                endpoint.port
            ),
        ),
        ("instanceUuid".to_owned(), uuid.to_owned()),
    ])
}

#[cfg(test)]
mod tests;
