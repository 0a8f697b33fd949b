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
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn done(connection_ok: bool) -> Outcome<'static> {
        Outcome::Done {
            connection_ok,
            password_out_of_sync: false,
        }
    }

    fn cond<'a>(s: &'a RedisInstanceStatus, type_: &str) -> Option<(&'a str, &'a str)> {
        conditions::find(&s.conditions, type_).map(|c| (c.status.as_str(), c.reason.as_str()))
    }

    /// A status as the operator leaves it in `phase`, with a UUID recorded.
    fn in_phase(phase: Phase) -> RedisInstanceStatus {
        RedisInstanceStatus {
            instance_uuid: Some("u".into()),
            phase: Some(phase),
            ..Default::default()
        }
    }

    /// What kstatus and Argo CD read: (phase, Ready, Synced, Reconciling, Stalled).
    type Seen<'a> = (
        Option<Phase>,
        Option<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
    );

    fn seen(s: &RedisInstanceStatus) -> Seen<'_> {
        (
            s.phase,
            cond(s, READY),
            cond(s, SYNCED),
            cond(s, RECONCILING),
            cond(s, STALLED),
        )
    }

    #[test]
    fn every_outcome_has_one_phase_and_set_of_conditions() {
        use crate::cds::CdsError;
        let rejected = Error::Cds(CdsError::api(
            "CreateDBInstance",
            400,
            Some("InvalidParameter".into()),
            "bad",
            None,
        ));
        let unavailable = Error::Cds(CdsError::api("DescribeDBInstances", 503, None, "", None));
        let no_secret = Error::SecretNotFound {
            namespace: "n".into(),
            name: "pw".into(),
        };
        let gone = Error::ExternallyDeleted("u".into());
        let in_use = Error::InstanceInUse {
            instance: "instance u".into(),
            by: "n/other".into(),
        };
        let f = |s| Some(("False", s));
        let tr = |s| Some(("True", s));
        #[rustfmt::skip]
        let cases: Vec<(&str, RedisInstanceStatus, bool, Outcome<'_>, Seen<'_>)> = vec![
            ("nothing yet, the Secret is missing: failed, stalled",
                RedisInstanceStatus::default(), false, Outcome::Failed(&no_secret),
                (Some(Phase::Failed), f("Unavailable"), f("SecretNotFound"), None, tr("SecretNotFound"))),
            ("nothing yet, the cloud rejected the create: failed, stalled",
                RedisInstanceStatus::default(), false, Outcome::Failed(&rejected),
                (Some(Phase::Failed), f("Unavailable"), f("CloudRejected"), None, tr("CloudRejected"))),
            ("nothing yet, the cloud is down: pending, retrying",
                RedisInstanceStatus::default(), false, Outcome::Failed(&unavailable),
                (Some(Phase::Pending), f("Unavailable"), f("CloudUnavailable"), tr("Retrying"), None)),
            ("creating: in progress",
                in_phase(Phase::Creating), false, done(false),
                (Some(Phase::Creating), f("Creating"), tr("ReconcileSuccess"), tr("Creating"), None)),
            ("a create's answer awaited: in progress",
                in_phase(Phase::Creating), false, Outcome::Waiting,
                (Some(Phase::Creating), f("Creating"), tr("ReconcileSuccess"), tr("Creating"), None)),
            ("running, connection Secret written: current",
                in_phase(Phase::Running), false, done(true),
                (Some(Phase::Running), tr("Available"), tr("ReconcileSuccess"), None, None)),
            ("running, connection Secret not yet written: progressing",
                in_phase(Phase::Running), false, done(false),
                (Some(Phase::Running), f("Unavailable"), tr("ReconcileSuccess"), tr("Progressing"), None)),
            ("running, the password Secret changed: still ready, not synced",
                in_phase(Phase::Running), false, Outcome::Done { connection_ok: true, password_out_of_sync: true },
                (Some(Phase::Running), tr("Available"), f("PasswordOutOfSync"), None, None)),
            ("recorded instance vanished: failed, stalled",
                in_phase(Phase::Running), false, Outcome::Failed(&gone),
                (Some(Phase::Failed), f("ExternallyDeleted"), f("ExternallyDeleted"), None, tr("ExternallyDeleted"))),
            ("instance recorded by another object: failed, stalled",
                in_phase(Phase::Running), false, Outcome::Failed(&in_use),
                (Some(Phase::Failed), f("Unavailable"), f("InstanceInUse"), None, tr("InstanceInUse"))),
            ("deleting: in progress",
                in_phase(Phase::Running), true, done(false),
                (Some(Phase::Deleting), f("Deleting"), tr("ReconcileSuccess"), tr("Deleting"), None)),
            ("deleting, the cloud is down: still deleting, retrying shows in Synced",
                in_phase(Phase::Running), true, Outcome::Failed(&unavailable),
                (Some(Phase::Deleting), f("Deleting"), f("CloudUnavailable"), tr("Deleting"), None)),
        ];
        for (name, mut status, deleting, outcome, want) in cases {
            conclude(&mut status, deleting, outcome, Some(3), &t(10));
            assert_eq!(seen(&status), want, "{name}");
            assert!(
                status.conditions.iter().all(|c| c.observed_generation == Some(3)),
                "{name}: every condition carries the generation"
            );
            assert_eq!(status.observed_generation, Some(3), "{name}");
        }
    }

    #[test]
    fn a_passing_failure_does_not_make_a_running_instance_unready() {
        let mut s = in_phase(Phase::Running);
        conclude(&mut s, false, done(true), Some(1), &t(1));
        let down = Error::Cds(crate::cds::CdsError::api("DescribeDBInstances", 502, None, "", None));
        conclude(&mut s, false, Outcome::Failed(&down), Some(2), &t(2));
        assert_eq!(cond(&s, READY), Some(("True", "Available")));
        assert_eq!(cond(&s, RECONCILING), Some(("True", "Retrying")));
        conclude(&mut s, false, done(true), Some(2), &t(3));
        assert_eq!((cond(&s, RECONCILING), cond(&s, STALLED)), (None, None));
        assert_eq!(cond(&s, SYNCED), Some(("True", "ReconcileSuccess")));
    }

    #[test]
    fn instance_fields_are_copied() {
        let inst = InstanceSummary {
            instance_uuid: "u".into(),
            instance_name: "n".into(),
            status: "RUNNING".into(),
            status_str: "运行中".into(),
            ip: "10.0.0.5".into(),
            port: Some(9736),
            ram: Some(4096),
            version: "5.0".into(),
            created_time: "2026-01-01 00:00:00".into(),
        };
        let mut s = RedisInstanceStatus::default();
        apply_instance(&mut s, &inst, &t(1));
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(
            s.endpoint,
            Some(Endpoint {
                host: "10.0.0.5".into(),
                port: 9736
            })
        );
        assert_eq!(
            (s.ram_mb, s.version.as_deref(), s.cloud_status_text.as_deref()),
            (Some(4096), Some("5.0"), Some("运行中"))
        );
        conclude(&mut s, false, done(false), Some(1), &t(1));
        assert_eq!(cond(&s, READY), Some(("False", "Unavailable")));
        conclude(&mut s, false, done(true), Some(1), &t(2));
        assert_eq!(cond(&s, READY), Some(("True", "Available")));
    }

    #[test]
    fn writes_only_on_change_or_stale_sync_time() {
        let mut old = RedisInstanceStatus {
            last_sync_time: Some(t(100)),
            phase: Some(Phase::Running),
            ..Default::default()
        };
        let mut new = RedisInstanceStatus {
            last_sync_time: Some(t(160)),
            ..old.clone()
        };
        let refresh = Duration::from_secs(300);
        assert!(!needs_write(&old, &new, refresh, &t(160)));
        assert!(needs_write(&old, &new, refresh, &t(400)));
        new.phase = Some(Phase::Unknown);
        assert!(needs_write(&old, &new, refresh, &t(160)));
        old.last_sync_time = None;
        new.phase = old.phase;
        assert!(needs_write(&old, &new, refresh, &t(160)));
    }

    #[test]
    fn details_of_a_transition_wait_for_its_end() {
        use crate::crd::CreateAttempt;
        let refresh = Duration::from_secs(3600);
        // Just created: UUID recorded, create marker present, no sync yet.
        let recorded = RedisInstanceStatus {
            instance_uuid: Some("u".into()),
            instance_name: Some("n".into()),
            phase: Some(Phase::Creating),
            create_attempt: Some(CreateAttempt {
                instance_name: "n".into(),
                started_at: t(100),
            }),
            ..Default::default()
        };
        let creating = InstanceSummary {
            instance_uuid: "u".into(),
            instance_name: "n".into(),
            status: "CREATING".into(),
            ip: "10.0.0.5".into(),
            ..Default::default()
        };
        let mut seen = recorded.clone();
        apply_instance(&mut seen, &creating, &t(104));
        seen.create_attempt = None;
        assert!(!needs_write(&recorded, &seen, refresh, &t(104)), "details held");
        assert!(
            needs_write(&recorded, &seen, refresh, &t(131)),
            "not held past DETAIL_HOLD"
        );
        let mut running = recorded.clone();
        apply_instance(
            &mut running,
            &InstanceSummary {
                status: "RUNNING".into(),
                ..creating.clone()
            },
            &t(104),
        );
        assert!(needs_write(&recorded, &running, refresh, &t(104)), "phase change");
        let mut failing = seen.clone();
        let unavailable = Error::Cds(crate::cds::CdsError::api("DescribeDBInstances", 503, None, "", None));
        conclude(&mut failing, false, Outcome::Failed(&unavailable), Some(1), &t(104));
        assert!(needs_write(&recorded, &failing, refresh, &t(104)), "conditions");

        // Deleting: the phase change is written, the cloud's DELETING detail waits.
        let steady = RedisInstanceStatus {
            phase: Some(Phase::Running),
            last_sync_time: Some(t(100)),
            ..running.clone()
        };
        let deleting = RedisInstanceStatus {
            phase: Some(Phase::Deleting),
            ..steady.clone()
        };
        assert!(needs_write(&steady, &deleting, refresh, &t(110)));
        let mut gone_soon = deleting.clone();
        apply_instance(
            &mut gone_soon,
            &InstanceSummary {
                status: "DELETING".into(),
                ..creating.clone()
            },
            &t(112),
        );
        assert!(!needs_write(&deleting, &gone_soon, refresh, &t(112)));
        // Running details are written at once.
        let mut moved = steady.clone();
        moved.endpoint = Some(Endpoint {
            host: "10.0.0.9".into(),
            port: 9736,
        });
        assert!(needs_write(&steady, &moved, refresh, &t(110)));
    }

    #[test]
    fn connection_uri_escapes_the_password() {
        let d = connection_data(
            &Endpoint {
                host: "10.0.0.5".into(),
                port: 9736,
            },
            "p@ss:w/rd",
            "u",
        );
        assert_eq!(d["uri"], "redis://:p%40ss%3Aw%2Frd@10.0.0.5:9736");
        assert_eq!(d["password"], "p@ss:w/rd");
        assert_eq!(d["port"], "9736");
    }
}
