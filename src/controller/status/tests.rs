//! Unit tests of `status`.

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
