//! `RedisBackupSchedule` on the real control plane with the operator binary
//! (`../shared/spec/redisbackup.md`): one `RedisBackup` per cron slot, named for the slot,
//! labelled and owned by the schedule; never a second one for a slot across a restart; the oldest
//! completed pruned beyond `keep`; nothing new while suspended; a bad expression or time zone
//! stalls with the parser's message; a missing instance is said, not fatal; deleting the
//! schedule garbage-collects its backups (kube-controller-manager runs in the harness).
//!
//! The schedules run every minute, so each test waits for real minute boundaries (about two
//! minutes; the two tests run side by side).

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::backup::{RedisBackup, RedisBackupSchedule, SCHEDULE_LABEL};
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::env::*;
use crate::support::operator::Operator;

/// Bound of a wait that spans a minute boundary.
const SLOT_WAIT: Duration = Duration::from_secs(75);

struct Apis {
    schedules: Api<RedisBackupSchedule>,
    backups: Api<RedisBackup>,
}

async fn apis(e: &Env) -> Apis {
    let client = e.cp.client().await;
    Apis {
        schedules: Api::namespaced(client.clone(), &e.ns),
        backups: Api::namespaced(client, &e.ns),
    }
}

/// Polls `f` every 200 ms until it gives a value; panics with `what` after `within`.
async fn wait_for<T, F: Fn() -> Fut, Fut: Future<Output = Option<T>>>(what: &str, within: Duration, f: F) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_schedule(a: &Apis, name: &str, spec: Value) -> RedisBackupSchedule {
    let obj: RedisBackupSchedule = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
        "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap();
    a.schedules.create(&PostParams::default(), &obj).await.unwrap()
}

/// The backups carrying the schedule label of `schedule`, oldest slot first.
async fn backups_of(a: &Apis, schedule: &str) -> Vec<RedisBackup> {
    let lp = ListParams::default().labels(&format!("{SCHEDULE_LABEL}={schedule}"));
    let mut list = a.backups.list(&lp).await.unwrap().items;
    list.sort_by_key(|b| b.name_any());
    list
}

fn names(backups: &[RedisBackup]) -> Vec<String> {
    backups.iter().map(|b| b.name_any()).collect()
}

/// The backup name of `schedule` for `slot`, as the contract spells it.
fn slot_name(schedule: &str, slot: Timestamp) -> String {
    format!("{schedule}-{}", slot.strftime("%Y%m%d%H%M"))
}

fn minute_of(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(60)).unwrap()
}

/// The first every-minute slot a schedule created at `created` makes: its own minute when it was
/// created on the minute (the creation time has whole seconds; a slot is never before it), else
/// the next one (found by CI: a schedule created at hh:mm:00 makes the hh:mm slot).
fn first_slot_from(created: Timestamp) -> Timestamp {
    let minute = minute_of(created);
    if minute == created { minute } else { minute + 1.minute() }
}

fn condition(s: &RedisBackupSchedule, type_: &str) -> Option<(String, String, String)> {
    let st = s.status.as_ref()?;
    st.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Marks a backup Completed and Ready through the status subresource, as the RedisBackup
/// controller does once the cloud reports it finished: this test is about the schedule, and
/// does not rely on that controller (or on the cloud's timing). That controller runs in the same
/// binary and, `cache` running in the simulator, completes these backups too: either way they
/// end Completed.
async fn complete(a: &Apis, name: &str) {
    let status = json!({ "status": {
        "phase": "Completed",
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Completed", "message": "set by the test",
            "lastTransitionTime": Timestamp::now().to_string(),
        }],
    }});
    a.backups
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Creates an owned, labelled backup of an earlier slot, as the schedule would have made it,
/// so the test need not wait a third minute to have more than `keep` completed backups.
async fn earlier_backup(a: &Apis, schedule: &RedisBackupSchedule, slot: Timestamp) -> String {
    let name = slot_name(&schedule.name_any(), slot);
    let obj: RedisBackup = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
        "metadata": {
            "name": name,
            "labels": { SCHEDULE_LABEL: schedule.name_any() },
            "ownerReferences": [{
                "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
                "name": schedule.name_any(), "uid": schedule.uid().unwrap(), "controller": true,
            }],
        },
        "spec": { "instanceRef": { "name": "cache" }, "deletionPolicy": "Retain" },
    }))
    .unwrap();
    a.backups.create(&PostParams::default(), &obj).await.unwrap();
    complete(a, &name).await;
    name
}

/// Waits until the schedule has a backup named for `slot`, and returns it.
async fn backup_at(a: &Apis, schedule: &str, slot: Timestamp) -> RedisBackup {
    let name = slot_name(schedule, slot);
    wait_for(&format!("backup {name}"), SLOT_WAIT, || async {
        a.backups.get_opt(&name).await.unwrap()
    })
    .await
}

async fn wait_gone(a: &Apis, schedule: &str) {
    wait_for(
        &format!("the backups of {schedule} to be collected"),
        TIMEOUT,
        || async { backups_of(a, schedule).await.is_empty().then_some(()) },
    )
    .await;
}

/// Checks the backup of a schedule's first slot: named, labelled, owned, from the template.
async fn check_first_backup(a: &Apis, sched: &RedisBackupSchedule, s1: Timestamp) -> RedisBackup {
    let b1 = backup_at(a, "minutely", s1).await;
    assert_eq!(b1.labels()[SCHEDULE_LABEL], "minutely");
    let owner = &b1.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.clone(), owner.controller),
        ("RedisBackupSchedule", sched.uid().unwrap(), Some(true))
    );
    assert_eq!(b1.spec.instance_ref.name, "cache");
    assert_eq!(
        b1.spec.deletion_policy,
        Some(cds_redis_operator::crd::DeletionPolicy::Retain)
    );
    assert_eq!(
        b1.spec.write_download_secret_to_ref.as_ref().unwrap().name,
        b1.name_any()
    );
    let made_at = b1.creation_timestamp().unwrap().0;
    assert!(
        made_at >= s1 && made_at < s1 + 5.seconds(),
        "made at {made_at}, slot {s1}"
    );
    b1
}

/// Kills the operator, wipes the schedule's slot times, starts another: it must find the slot
/// done by the backup's name alone, within the slot's minute.
async fn restart_mid_minute(e: &Env, a: &Apis, op: &mut Operator, s1: Timestamp) -> Operator {
    op.kill();
    let wipe = json!({ "status": { "lastScheduleTime": null, "nextScheduleTime": null } });
    a.schedules
        .patch_status("minutely", &PatchParams::default(), &Patch::Merge(&wipe))
        .await
        .unwrap();
    let restarted = no_election(e);
    let s = wait_for("the restarted operator to report the slot", TIMEOUT, || async {
        let s = a.schedules.get("minutely").await.unwrap();
        let st = s.status.clone()?;
        (st.last_schedule_time.map(|t| t.0) == Some(s1) && st.next_schedule_time.is_some()).then_some(s)
    })
    .await;
    assert!(
        Timestamp::now() < s1 + 1.minute(),
        "the restart was not within the slot's minute"
    );
    let st = s.status.clone().unwrap();
    assert_eq!(st.next_schedule_time.unwrap().0, s1 + 1.minute());
    let ready = condition(&s, "Ready").unwrap();
    assert_eq!((ready.0.as_str(), ready.1.as_str()), ("True", "Scheduled"), "{ready:?}");
    restarted
}

/// An operator without leader election: a restarted one acts at once instead of waiting out
/// the lease of the killed one.
fn no_election(e: &Env) -> Operator {
    e.operator_with(vec!["--leader-election", "false"], vec![])
}

#[tokio::test]
async fn every_minute_makes_one_owned_backup_per_slot_across_a_restart_and_prunes_beyond_keep() {
    let e = env("sched", fast_sim()).await;
    let a = apis(&e).await;
    let mut op = no_election(&e);
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("cache", spec(json!({}))).await;
    e.wait_ready("cache").await;

    let spec = json!({
        "instanceRef": { "name": "cache" }, "schedule": "* * * * *", "keep": 2,
        "backupTemplate": { "deletionPolicy": "Retain", "writeDownloadSecret": true },
    });
    let sched = create_schedule(&a, "minutely", spec).await;
    let created = sched.creation_timestamp().unwrap().0;
    let earlier = earlier_backup(&a, &sched, minute_of(created) - 1.minute()).await;
    // The first slot not before the schedule's creation.
    let s1 = first_slot_from(created);
    let b1 = check_first_backup(&a, &sched, s1).await;
    let _op = restart_mid_minute(&e, &a, &mut op, s1).await;
    assert_eq!(
        names(&backups_of(&a, "minutely").await),
        [earlier.clone(), b1.name_any()],
        "no second backup for the slot"
    );
    assert!(e.has_event("minutely", "BackupScheduled").await);

    // Two completed backups: as many as keep, nothing pruned. The next slot makes a third.
    complete(&a, &b1.name_any()).await;
    let b2 = backup_at(&a, "minutely", s1 + 1.minute()).await;
    complete(&a, &b2.name_any()).await;
    wait_for("the oldest completed backup to be pruned", TIMEOUT, || async {
        (names(&backups_of(&a, "minutely").await) == [b1.name_any(), b2.name_any()]).then_some(())
    })
    .await;
    assert!(e.has_event("minutely", "BackupPruned").await);
    wait_for("lastSuccessfulBackup to name the newest", TIMEOUT, || async {
        let s = a.schedules.get("minutely").await.unwrap();
        (s.status?.last_successful_backup? == b2.name_any()).then_some(())
    })
    .await;

    // Deleting the schedule: the garbage collector deletes what it owns.
    a.schedules.delete("minutely", &DeleteParams::default()).await.unwrap();
    wait_gone(&a, "minutely").await;
    e.sim.shutdown().await;
}

/// Creates the two invalid schedules and checks each stalls with the parser's message.
async fn check_invalid_schedules(e: &Env, a: &Apis) {
    let bad = [
        (
            "bad-cron",
            json!({ "schedule": "0 25 * * *" }),
            "hour field \"25\": 25 is out of range 0-23",
        ),
        (
            "bad-zone",
            json!({ "schedule": "0 3 * * *", "timeZone": "Mars/Olympus" }),
            "timeZone \"Mars/Olympus\" is not a known IANA time zone",
        ),
    ];
    for (name, extra, _) in &bad {
        let mut spec = json!({ "instanceRef": { "name": "ghost" }, "keep": 1 });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        create_schedule(a, name, spec).await;
    }
    for (name, _, says) in &bad {
        let s = wait_for(&format!("{name} to stall"), TIMEOUT, || async {
            let s = a.schedules.get(name).await.unwrap();
            condition(&s, "Stalled").is_some().then_some(s)
        })
        .await;
        for type_ in ["Stalled", "Synced", "Ready"] {
            let (status, reason, message) = condition(&s, type_).unwrap();
            let want = if type_ == "Stalled" { "True" } else { "False" };
            assert_eq!(
                (status.as_str(), reason.as_str()),
                (want, "InvalidSchedule"),
                "{name} {type_}"
            );
            assert!(message.contains(says), "{name}: {message}");
        }
        assert_eq!(s.status.unwrap().next_schedule_time, None);
        assert!(e.has_event_of(name, Some("Warning"), "InvalidSchedule").await);
    }
}

/// Suspends `name` and checks that no backup is made past the next minute boundary.
async fn check_suspend(a: &Apis, name: &str) {
    let before = names(&backups_of(a, name).await);
    let suspend = json!({ "spec": { "suspend": true } });
    a.schedules
        .patch(name, &PatchParams::default(), &Patch::Merge(&suspend))
        .await
        .unwrap();
    wait_for("the schedule to be suspended", TIMEOUT, || async {
        let s = a.schedules.get(name).await.unwrap();
        let ready = condition(&s, "Ready")?;
        (ready.1 == "Suspended" && s.status?.next_schedule_time.is_none()).then_some(())
    })
    .await;
    let past_next = minute_of(Timestamp::now()) + 1.minute() + 5.seconds();
    let wait = Timestamp::now().duration_until(past_next);
    tokio::time::sleep(Duration::try_from(wait.max(SignedDuration::ZERO)).unwrap()).await;
    assert_eq!(names(&backups_of(a, name).await), before, "nothing new, nothing pruned");
}

#[tokio::test]
async fn suspend_stops_new_backups_a_bad_schedule_stalls_and_a_missing_instance_is_not_fatal() {
    let e = env("sched-rules", fast_sim()).await;
    let a = apis(&e).await;
    let _op = no_election(&e);
    let sched = create_schedule(
        &a,
        "orphan",
        json!({ "instanceRef": { "name": "ghost" }, "schedule": "* * * * *", "keep": 1 }),
    )
    .await;
    check_invalid_schedules(&e, &a).await;

    // The instance does not exist: said in Ready, not stalled, and backups are still made
    // (they wait for the instance).
    let s = wait_for("orphan to report", TIMEOUT, || async {
        let s = a.schedules.get("orphan").await.unwrap();
        condition(&s, "Ready").is_some().then_some(s)
    })
    .await;
    let (status, reason, message) = condition(&s, "Ready").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InstanceNotFound"),
        "{message}"
    );
    assert!(message.contains("RedisInstance ghost does not exist"), "{message}");
    assert_eq!(condition(&s, "Stalled"), None);
    let s1 = first_slot_from(sched.creation_timestamp().unwrap().0);
    let o1 = backup_at(&a, "orphan", s1).await;
    assert_eq!(o1.spec.instance_ref.name, "ghost");

    // Suspended: no next slot, no new backup past the next minute boundary, the old one kept.
    check_suspend(&a, "orphan").await;
    assert_eq!(names(&backups_of(&a, "orphan").await), [o1.name_any()]);

    for name in ["orphan", "bad-cron", "bad-zone"] {
        a.schedules.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_gone(&a, "orphan").await;
    e.sim.shutdown().await;
}
