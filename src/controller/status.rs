//! Pure status computation: the cloud's view of an instance turned into status fields, phase and
//! conditions, and the rule that decides whether a status write is needed at all.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cds::wire::{self, InstanceSummary};
use crate::crd::conditions::{self, READY, SYNCED, ready, synced};
use crate::crd::{Endpoint, Phase, RedisInstanceStatus};
use crate::encoding::percent_encode;

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

/// Sets `Ready`.
pub fn set_ready(
    status: &mut RedisInstanceStatus,
    is_ready: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    conditions::set_condition(
        &mut status.conditions,
        conditions::condition(READY, is_ready, reason, message, generation, now.clone()),
    );
}

/// Sets `Synced` (and `observedGeneration`).
pub fn set_synced(
    status: &mut RedisInstanceStatus,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    status.observed_generation = generation;
    conditions::set_condition(
        &mut status.conditions,
        conditions::condition(SYNCED, ok, reason, message, generation, now.clone()),
    );
}

/// `Ready` from the phase: True only when running and the connection Secret (if asked for) is
/// written.
pub fn ready_from_phase(status: &mut RedisInstanceStatus, connection_ok: bool, generation: Option<i64>, now: &Time) {
    let (ok, reason, message) = match status.phase {
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
        _ => (false, ready::UNAVAILABLE, "no instance yet".to_owned()),
    };
    set_ready(status, ok, reason, message, generation, now);
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

/// Whether the status says the object has failed for good (for the Argo CD health check and
/// the `Failed` phase).
pub fn is_failed_reason(reason: &str) -> bool {
    [
        synced::SECRET_NOT_FOUND,
        synced::SECRET_KEY_MISSING,
        synced::INVALID_SPEC,
        synced::FLAVOR_NOT_AVAILABLE,
        synced::CLOUD_REJECTED,
        synced::AMBIGUOUS_INSTANCE,
        synced::EXTERNALLY_DELETED,
        synced::INSTANCE_NOT_FOUND,
        synced::CREDENTIALS_MISSING,
    ]
    .contains(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
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
        ready_from_phase(&mut s, false, Some(1), &t(1));
        assert_eq!(s.conditions[0].status, "False");
        ready_from_phase(&mut s, true, Some(1), &t(2));
        assert_eq!(
            (s.conditions[0].status.as_str(), s.conditions[0].reason.as_str()),
            ("True", "Available")
        );
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
        set_synced(&mut failing, false, "CloudUnavailable", "", Some(1), &t(104));
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
