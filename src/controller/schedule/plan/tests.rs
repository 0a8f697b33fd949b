use super::*;
use crate::crd::backup::InstanceRef;
use crate::crd::conditions::{self, READY, STALLED};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec(schedule: &str, keep: u32) -> RedisBackupScheduleSpec {
    RedisBackupScheduleSpec {
        instance_ref: InstanceRef { name: "cache".into() },
        schedule: schedule.into(),
        keep,
        ..Default::default()
    }
}

fn backup(name: &str, phase: Option<BackupPhase>, created: &str) -> Owned {
    Owned {
        name: name.into(),
        uid: format!("uid-{name}"),
        phase,
        created: Some(ts(created)),
        deleting: false,
    }
}

struct Case {
    spec: RedisBackupScheduleSpec,
    created: &'static str,
    last: Option<&'static str>,
    backups: Vec<Owned>,
    instance_found: bool,
    now: &'static str,
}

impl Case {
    fn every_minute(now: &'static str) -> Self {
        Self {
            spec: spec("* * * * *", 2),
            created: "2026-05-04T10:00:30Z",
            last: None,
            backups: vec![],
            instance_found: true,
            now,
        }
    }

    fn plan(&self) -> Plan {
        let status = RedisBackupScheduleStatus {
            last_schedule_time: self.last.map(|t| Time(ts(t))),
            ..Default::default()
        };
        plan(&Facts {
            name: "nightly",
            spec: &self.spec,
            created: ts(self.created),
            generation: Some(3),
            status: &status,
            backups: &self.backups,
            instance_found: self.instance_found,
            now: ts(self.now),
        })
    }
}

fn ready_reason(p: &Plan) -> String {
    conditions::find(&p.status.conditions, READY).unwrap().reason.clone()
}

fn created(p: &Plan) -> Option<&str> {
    p.create.as_ref().map(|d| d.name.as_str())
}

#[test]
fn the_first_slot_after_creation_is_made_and_named_by_its_utc_minute() {
    let p = Case::every_minute("2026-05-04T10:01:05Z").plan();
    assert_eq!(created(&p), Some("nightly-202605041001"));
    assert_eq!(p.create.as_ref().unwrap().slot, ts("2026-05-04T10:01:00Z"));
    assert_eq!(p.status.last_schedule_time, None, "recorded once made");
    let mut st = p.status.clone();
    made(&mut st, p.create.as_ref().unwrap());
    assert_eq!(st.last_schedule_time, Some(Time(ts("2026-05-04T10:01:00Z"))));
    assert_eq!(p.status.next_schedule_time, Some(Time(ts("2026-05-04T10:02:00Z"))));
    assert_eq!(p.next, Some(ts("2026-05-04T10:02:00Z")));
    assert_eq!(ready_reason(&p), "Scheduled");
    assert_eq!(p.status.observed_generation, Some(3));
}

#[test]
fn which_slot_is_made() {
    let cases: Vec<(&str, Case, Option<&str>)> = vec![
        (
            "a slot before the schedule's creation is not made",
            Case::every_minute("2026-05-04T10:00:50Z"),
            None,
        ),
        (
            "a slot whose backup exists is done (a restart, a second replica)",
            Case {
                backups: vec![backup("nightly-202605041001", None, "2026-05-04T10:01:00Z")],
                ..Case::every_minute("2026-05-04T10:01:40Z")
            },
            None,
        ),
        (
            "a slot the status records is done, even if its backup was deleted",
            Case {
                last: Some("2026-05-04T10:01:00Z"),
                ..Case::every_minute("2026-05-04T10:01:40Z")
            },
            None,
        ),
        (
            "after downtime only the latest missed slot is made",
            Case {
                last: Some("2026-05-04T10:01:00Z"),
                ..Case::every_minute("2026-05-04T10:07:30Z")
            },
            Some("nightly-202605041007"),
        ),
        (
            "a daily slot missed for hours is made once the operator is back",
            Case {
                spec: spec("0 3 * * *", 7),
                created: "2026-04-01T00:00:00Z",
                last: Some("2026-05-03T03:00:00Z"),
                now: "2026-05-04T09:12:00Z",
                ..Case::every_minute("")
            },
            Some("nightly-202605040300"),
        ),
        (
            "a missing instance does not stop the schedule",
            Case {
                instance_found: false,
                ..Case::every_minute("2026-05-04T10:02:00Z")
            },
            Some("nightly-202605041002"),
        ),
    ];
    for (what, case, want) in cases {
        assert_eq!(created(&case.plan()), want, "{what}");
    }
}

#[test]
fn the_slot_name_is_utc_whatever_the_zone() {
    let case = Case {
        spec: RedisBackupScheduleSpec {
            time_zone: Some("Asia/Shanghai".into()),
            ..spec("0 3 * * *", 7)
        },
        created: "2026-05-01T00:00:00Z",
        ..Case::every_minute("2026-06-01T19:00:20Z")
    };
    let p = case.plan();
    assert_eq!(created(&p), Some("nightly-202606011900"));
    assert_eq!(p.next, Some(ts("2026-06-02T19:00:00Z")));
}

#[test]
fn the_last_schedule_time_follows_the_newest_owned_backup() {
    // A backup created just before a crash, its status write lost: the name tells the slot.
    let case = Case {
        last: Some("2026-05-04T10:01:00Z"),
        backups: vec![backup("nightly-202605041002", None, "2026-05-04T10:02:00Z")],
        ..Case::every_minute("2026-05-04T10:02:30Z")
    };
    let p = case.plan();
    assert_eq!(p.create, None);
    assert_eq!(p.status.last_schedule_time, Some(Time(ts("2026-05-04T10:02:00Z"))));
}

#[test]
fn suspended_makes_nothing_prunes_nothing_and_has_no_next_slot() {
    let case = Case {
        spec: RedisBackupScheduleSpec {
            suspend: Some(true),
            ..spec("* * * * *", 1)
        },
        backups: (1..=3)
            .map(|m| {
                backup(
                    &format!("nightly-20260504100{m}"),
                    Some(BackupPhase::Completed),
                    "2026-05-04T10:00:00Z",
                )
            })
            .collect(),
        ..Case::every_minute("2026-05-04T10:05:00Z")
    };
    let p = case.plan();
    assert_eq!((p.create.clone(), p.prune.clone(), p.next), (None, vec![], None));
    assert_eq!(p.status.next_schedule_time, None);
    assert_eq!(ready_reason(&p), "Suspended");
    assert_eq!(p.status.last_successful_backup.as_deref(), Some("nightly-202605041003"));
}

#[test]
fn an_invalid_schedule_stalls_with_the_parsers_message() {
    let long = "n".repeat(64);
    for (schedule, tz, name, says) in [
        (
            "0 25 * * *",
            None,
            "nightly",
            "hour field \"25\": 25 is out of range 0-23",
        ),
        (
            "0 3 * * *",
            Some("Europe/Atlantis"),
            "nightly",
            "timeZone \"Europe/Atlantis\" is not a known IANA time zone",
        ),
        (
            "0 3 * * *",
            None,
            long.as_str(),
            "the schedule's name is 64 characters long; at most 63 fit",
        ),
    ] {
        let s = RedisBackupScheduleSpec {
            time_zone: tz.map(str::to_owned),
            ..spec(schedule, 1)
        };
        let status = RedisBackupScheduleStatus::default();
        let p = plan(&Facts {
            name,
            spec: &s,
            created: ts("2026-05-04T00:00:00Z"),
            generation: Some(1),
            status: &status,
            backups: &[],
            instance_found: true,
            now: ts("2026-05-04T10:00:00Z"),
        });
        assert_eq!((p.create.clone(), p.next), (None, None), "{schedule}");
        let stalled = conditions::find(&p.status.conditions, STALLED).unwrap();
        assert_eq!(stalled.reason, "InvalidSchedule");
        assert!(stalled.message.contains(says), "{}", stalled.message);
        assert_eq!(ready_reason(&p), "InvalidSchedule");
    }
}

#[test]
fn a_missing_instance_is_said_but_not_stalled() {
    let p = Case {
        instance_found: false,
        ..Case::every_minute("2026-05-04T10:02:00Z")
    }
    .plan();
    assert_eq!(ready_reason(&p), "InstanceNotFound");
    assert!(conditions::find(&p.status.conditions, STALLED).is_none());
    assert!(p.next.is_some());
}

#[test]
fn pruning_keeps_the_newest_completed_and_as_many_failed_and_never_touches_work_in_progress() {
    use BackupPhase::*;
    let at = |m: u32| format!("2026-05-04T10:{m:02}:00Z");
    let mut backups = vec![];
    for (m, phase) in [
        (1, Some(Completed)),
        (2, Some(Failed)),
        (3, Some(Completed)),
        (4, Some(Failed)),
        (5, Some(Completed)),
        (6, Some(Failed)),
        (7, Some(Completed)),
        (8, Some(Creating)),
        (9, None),
        (10, Some(Pending)),
    ] {
        let name = format!("nightly-2026050410{m:02}");
        backups.push(Owned {
            created: Some(ts(&at(m))),
            ..backup(&name, phase, "2026-01-01T00:00:00Z")
        });
    }
    // Being deleted: neither counted nor deleted again.
    backups.push(Owned {
        deleting: true,
        ..backup("nightly-202605040959", Some(Completed), "2026-05-04T09:59:00Z")
    });
    let p = Case {
        backups,
        last: Some("2026-05-04T10:10:00Z"),
        ..Case::every_minute("2026-05-04T10:10:30Z")
    }
    .plan();
    let pruned: Vec<&str> = p.prune.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        pruned,
        ["nightly-202605041001", "nightly-202605041003", "nightly-202605041002"],
        "the two oldest completed, oldest first, then the oldest failed"
    );
    assert_eq!(p.prune[0].uid, "uid-nightly-202605041001");
    assert!(p.prune[0].why.contains("keep is 2"), "{}", p.prune[0].why);
    assert_eq!(p.status.last_successful_backup.as_deref(), Some("nightly-202605041007"));
}

#[test]
fn backup_names_and_slots_round_trip() {
    let slot = ts("2026-11-01T06:30:00Z");
    assert_eq!(backup_name("db", slot), "db-202611010630");
    assert_eq!(slot_of("db", "db-202611010630"), Some(slot));
    for not_ours in [
        "db-2026110106",
        "db-x02611010630",
        "other-202611010630",
        "db-202613010630",
        "db202611010630",
    ] {
        assert_eq!(slot_of("db", not_ours), None, "{not_ours}");
    }
}

#[test]
fn a_slots_backup_is_labelled_owned_and_made_from_the_template() {
    use crate::crd::DeletionPolicy;
    let mut schedule = RedisBackupSchedule::new(
        "nightly",
        RedisBackupScheduleSpec {
            backup_template: crate::crd::backup::BackupTemplate {
                deletion_policy: Some(DeletionPolicy::Retain),
                write_download_secret: Some(true),
            },
            ..spec("0 3 * * *", 3)
        },
    );
    schedule.metadata.namespace = Some("team-a".into());
    schedule.metadata.uid = Some("sched-uid".into());
    let due = Due {
        name: "nightly-202605040300".into(),
        slot: ts("2026-05-04T03:00:00Z"),
    };
    let b = backup_for(&schedule, &due);
    assert_eq!(b.metadata.name.as_deref(), Some("nightly-202605040300"));
    assert_eq!(b.metadata.namespace.as_deref(), Some("team-a"));
    assert_eq!(b.metadata.labels.clone().unwrap()[SCHEDULE_LABEL], "nightly");
    assert!(
        !b.metadata.labels.clone().unwrap().contains_key(crate::crd::SHARD_LABEL),
        "an unsharded schedule makes unsharded backups"
    );
    // A schedule in a shard makes its backups in that shard: its process watches them.
    let mut sharded = schedule.clone();
    sharded.metadata.labels = Some([(crate::crd::SHARD_LABEL.to_owned(), "a".to_owned())].into());
    assert_eq!(
        backup_for(&sharded, &due).metadata.labels.unwrap()[crate::crd::SHARD_LABEL],
        "a"
    );
    let owner = &b.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("RedisBackupSchedule", "nightly", "sched-uid", Some(true))
    );
    assert_eq!(b.spec.instance_ref.name, "cache");
    assert_eq!(b.spec.deletion_policy, Some(DeletionPolicy::Retain));
    assert_eq!(
        b.spec.write_download_secret_to_ref.unwrap().name,
        "nightly-202605040300"
    );
    // Without writeDownloadSecret, no Secret; without a policy, the backup's default.
    schedule.spec.backup_template = Default::default();
    let b = backup_for(&schedule, &due);
    assert_eq!(
        (b.spec.write_download_secret_to_ref, b.spec.deletion_policy),
        (None, None)
    );
}
