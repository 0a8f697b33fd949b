//! Shards (`../shared/spec/accounts.md`, "Shards") on the real control plane against the
//! simulator, with each process a separate operator binary (its own identity and Lease):
//! - the default process and shards `a` and `b` on 300 objects: each object is reconciled by
//!   exactly one process, the one its label names (its Events' reporting instance says which),
//!   with exactly one create; each process caches only its part;
//! - moving objects between shards by relabelling, in the middle of their create and once Ready,
//!   then deleting them: one create and one delete each, nothing stuck;
//! - backups and schedules follow their own shard label: a schedule's backups carry its shard.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cds_redis_operator::crd::{Phase, RedisInstance, SHARD_LABEL};
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::env::*;
use crate::support::operator::Operator;

/// How long all objects of a test may take to be Ready, or gone (300 objects from 3 processes
/// share 2 cores with the apiserver).
const ALL_TIMEOUT: Duration = Duration::from_secs(150);

/// The test processes' common flags: a cloud budget that does not queue creates, its own Lease
/// name (with `-S` per shard).
fn flags<'a>(identity: &'a str, shard: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--identity",
        identity,
        "--leader-election-id",
        "shards",
        "--cds-qps",
        "200",
        "--cds-burst",
        "200",
        "--concurrency",
        "16",
    ];
    args.extend_from_slice(shard);
    args
}

/// The object `name` in shard `shard` (no label: `None`).
fn object(name: &str, shard: Option<&str>) -> RedisInstance {
    let labels: BTreeMap<&str, &str> = shard.map(|s| (SHARD_LABEL, s)).into_iter().collect();
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": name, "labels": labels },
        "spec": spec(json!({})),
    }))
    .unwrap()
}

/// Creates `objects`, 16 at a time.
async fn create_all(e: &Env, objects: Vec<RedisInstance>) {
    futures::stream::iter(objects)
        .map(|o| {
            let api = e.api.clone();
            async move {
                api.create(&PostParams::default(), &o).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Waits until `done` holds for the list of the namespace's objects, looking every second.
async fn wait_all(e: &Env, what: &str, done: impl Fn(&[RedisInstance]) -> bool) -> Vec<RedisInstance> {
    let deadline = Instant::now() + ALL_TIMEOUT;
    loop {
        let list = e.api.list(&ListParams::default()).await.unwrap().items;
        if done(&list) {
            return list;
        }
        if Instant::now() > deadline {
            let not: Vec<String> = list
                .iter()
                .filter(|o| !is_ready(o))
                .take(5)
                .map(|o| format!("{}: {:?}", o.name_any(), o.status))
                .collect();
            panic!("timed out waiting for {what}; e.g. not Ready: {not:#?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The reporting instances of the Events about each object, by object name.
async fn reporters(e: &Env) -> BTreeMap<String, BTreeSet<String>> {
    let client = e.cp.client().await;
    let api: Api<Event> = Api::namespaced(client, &e.ns);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ev in api.list(&ListParams::default()).await.unwrap().items {
        let Some(name) = ev.regarding.as_ref().and_then(|r| r.name.clone()) else {
            continue;
        };
        out.entry(name)
            .or_default()
            .insert(ev.reporting_instance.unwrap_or_default());
    }
    out
}

/// The reasons of the Events about `name` reported by `instance`.
async fn reasons_from(e: &Env, name: &str, instance: &str) -> Vec<String> {
    let client = e.cp.client().await;
    let api: Api<Event> = Api::namespaced(client, &e.ns);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|ev| ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|ev| ev.reporting_instance.as_deref() == Some(instance))
        .filter_map(|ev| ev.reason)
        .collect()
}

/// The simulator's successful writes of `action`, counted by instance name.
async fn writes_by_name(e: &Env, action: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in e.admin.writes().await {
        if w["action"] == action && w["executed"] == Value::Bool(true) {
            *out.entry(w["instanceName"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
    }
    out
}

/// The `cds_redis_objects{phase="Running"}` gauge of `op`.
async fn running_gauge(op: &Operator) -> Option<u64> {
    op.metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(r#"cds_redis_objects{phase="Running"} "#))
        .and_then(|v| v.trim().parse().ok())
}

/// The holder of the Lease `name` in the test namespace.
async fn lease_holder(e: &Env, name: &str) -> Option<String> {
    let client = e.cp.client().await;
    Api::<Lease>::namespaced(client, &e.ns)
        .get_opt(name)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Sets (`Some`) or removes (`None`) the shard label of `name`.
async fn relabel(e: &Env, name: &str, shard: Option<&str>) {
    e.api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { SHARD_LABEL: shard } } })),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn each_object_is_reconciled_by_the_one_process_of_its_shard() {
    let e = env("shards", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let default = e.operator_with(flags("op-default", &["--known-shards", "a,b"]), vec![]);
    let a = e.operator_with(flags("op-a", &["--shard", "a"]), vec![]);
    let b = e.operator_with(flags("op-b", &["--shard", "b"]), vec![]);
    // 100 objects per process: the default one gets 70 without the label and 30 labelled with
    // a shard no process runs (`c`), which must not be orphaned.
    let shard_of = |i: usize| match i % 3 {
        0 => Some("a"),
        1 => Some("b"),
        _ if i % 10 < 3 => Some("c"),
        _ => None,
    };
    let objects: Vec<RedisInstance> = (0..300).map(|i| object(&format!("r{i:03}"), shard_of(i))).collect();
    let expected: BTreeMap<String, &str> = (0..300)
        .map(|i| {
            let reporter = match shard_of(i) {
                Some("a") => "op-a/shard-a",
                Some("b") => "op-b/shard-b",
                _ => "op-default",
            };
            (format!("r{i:03}"), reporter)
        })
        .collect();
    assert_eq!(
        expected.values().filter(|r| **r == "op-default").count(),
        100,
        "the test's own split"
    );
    let t0 = Instant::now();
    create_all(&e, objects).await;
    let list = wait_all(&e, "300 objects Ready", |l| l.len() == 300 && l.iter().all(is_ready)).await;
    eprintln!("300 objects Ready in {:?}", t0.elapsed());

    // One Lease per process, each held by its process.
    assert_eq!(lease_holder(&e, "shards").await.as_deref(), Some("op-default"));
    assert_eq!(lease_holder(&e, "shards-a").await.as_deref(), Some("op-a"));
    assert_eq!(lease_holder(&e, "shards-b").await.as_deref(), Some("op-b"));

    // Exactly one create per object, of the instance its status records.
    let creates = writes_by_name(&e, "CreateDBInstance").await;
    assert_eq!(creates.values().sum::<usize>(), 300, "{creates:?}");
    for o in &list {
        let name = status(o).instance_name.expect("an instance name");
        assert_eq!(creates.get(&name), Some(&1), "{}: creates of {name}", o.name_any());
    }

    // Each object's Events come from exactly one process: the one of its shard. (Events are
    // published right after the status writes a test may have just seen: wait for all.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = reporters(&e).await;
        if expected.keys().all(|k| seen.contains_key(k)) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for (name, want) in &expected {
        let got: Vec<&str> = seen
            .get(name)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(got, vec![*want], "{name}: the processes that reported it");
    }

    // Each process holds only its part: its gauge of Running objects counts 100.
    for (op, who) in [(&default, "default"), (&a, "a"), (&b, "b")] {
        assert_eq!(running_gauge(op).await, Some(100), "process {who}");
    }
    for op in [&default, &a, &b] {
        assert!(!op.logs().contains(PASSWORD), "no password in the logs");
    }
    e.sim.shutdown().await;
}

#[tokio::test]
async fn relabelling_hands_objects_over_without_a_second_create_or_a_lost_delete() {
    // A create that takes 3 s, so that objects can be moved while it runs.
    let mut sim = fast_sim();
    sim.create_delay = Duration::from_secs(3);
    let e = env("handover", sim).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let default = e.operator_with(flags("op-default", &["--known-shards", "a"]), vec![]);
    let a = e.operator_with(flags("op-a", &["--shard", "a"]), vec![]);
    let t0 = Instant::now();

    // Ready in shard `a`, then moved to the default process.
    let ready: Vec<String> = (0..10).map(|i| format!("ready{i}")).collect();
    create_all(&e, ready.iter().map(|n| object(n, Some("a"))).collect()).await;
    // Moved from the default process to `a` as soon as they exist (the default process may
    // or may not have started on them), or once their create intent is recorded (the create is
    // under way in the default process).
    let early: Vec<String> = (0..10).map(|i| format!("early{i}")).collect();
    let creating: Vec<String> = (0..10).map(|i| format!("creating{i}")).collect();
    create_all(&e, early.iter().chain(&creating).map(|n| object(n, None)).collect()).await;
    for n in &early {
        relabel(&e, n, Some("a")).await;
    }
    // Each `creating` object is moved as soon as the test sees its create under way (the intent
    // recorded, or the instance being created), never later than that.
    let mut moved = BTreeSet::new();
    let deadline = Instant::now() + ALL_TIMEOUT;
    while moved.len() < creating.len() {
        assert!(Instant::now() < deadline, "creates never seen under way");
        for o in e.api.list(&ListParams::default()).await.unwrap().items {
            let n = o.name_any();
            if !creating.contains(&n) || moved.contains(&n) {
                continue;
            }
            assert!(!is_ready(&o), "{n} was Ready before the test saw its create under way");
            let st = status(&o);
            if st.create_attempt.is_some() || st.phase == Some(Phase::Creating) {
                relabel(&e, &n, Some("a")).await;
                moved.insert(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in &ready {
        e.wait_ready(n).await;
        relabel(&e, n, None).await;
    }
    wait_all(&e, "30 objects Ready", |l| l.len() == 30 && l.iter().all(is_ready)).await;
    eprintln!("30 moved objects Ready in {:?}", t0.elapsed());
    // The old processes forgot what they no longer own: each counts only its own Running objects.
    for (op, who, want) in [(&default, "default", 10), (&a, "a", 20)] {
        eventually(&format!("process {who} counting {want} Running objects"), || async {
            running_gauge(op).await == Some(want)
        })
        .await;
    }

    // Delete them: each by its new process.
    e.api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    wait_all(&e, "every object gone (no finalizer stuck)", |l| l.is_empty()).await;
    eprintln!("30 moved objects gone after {:?}", t0.elapsed());

    let creates = writes_by_name(&e, "CreateDBInstance").await;
    let deletes = writes_by_name(&e, "DeleteDBInstance").await;
    assert_eq!(creates.len(), 30, "one instance per object: {creates:?}");
    assert!(creates.values().all(|c| *c == 1), "one create each: {creates:?}");
    assert_eq!(deletes, creates, "one delete of each created instance, none lost");
    assert!(e.admin.instances().await.is_empty(), "no cloud instance left");
    // The creates of the objects moved mid-create were sent by the default process, and
    // shard `a` took them over from their status: it reported them Running, and sent none.
    for n in &creating {
        let from_default = reasons_from(&e, n, "op-default").await;
        let from_a = reasons_from(&e, n, "op-a/shard-a").await;
        assert!(
            from_default.iter().any(|r| r == "Creating"),
            "{n}: created by the default process: {from_default:?}"
        );
        assert!(
            from_a.iter().any(|r| r == "Running") && !from_a.iter().any(|r| r == "Creating"),
            "{n}: taken over by shard a: {from_a:?}"
        );
    }
    // The process an object was moved to deleted it.
    for (names, to) in [
        (&ready, "op-default"),
        (&creating, "op-a/shard-a"),
        (&early, "op-a/shard-a"),
    ] {
        for n in names {
            let reasons = reasons_from(&e, n, to).await;
            assert!(
                reasons.iter().any(|r| r == "Deleted"),
                "{n}: no Deleted event from {to}: {reasons:?}"
            );
        }
    }
    e.sim.shutdown().await;
}

#[tokio::test]
async fn backups_and_schedules_belong_to_the_shard_their_label_names() {
    use cds_redis_operator::crd::backup::{BackupPhase, RedisBackup, RedisBackupSchedule, SCHEDULE_LABEL};
    let e = env("shard-backups", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let _default = e.operator_with(flags("op-default", &["--known-shards", "a"]), vec![]);
    let _a = e.operator_with(flags("op-a", &["--shard", "a"]), vec![]);
    e.api
        .create(&PostParams::default(), &object("cache", Some("a")))
        .await
        .unwrap();
    e.wait_ready("cache").await;

    let client = e.cp.client().await;
    let backups: Api<RedisBackup> = Api::namespaced(client.clone(), &e.ns);
    let backup = |name: &str, shard: Option<&str>| -> RedisBackup {
        let labels: BTreeMap<&str, &str> = shard.map(|s| (SHARD_LABEL, s)).into_iter().collect();
        serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
            "metadata": { "name": name, "labels": labels },
            "spec": { "instanceRef": { "name": "cache" } },
        }))
        .unwrap()
    };
    // A schedule in shard `a` (the first slot is at most a minute away).
    let schedules: Api<RedisBackupSchedule> = Api::namespaced(client, &e.ns);
    let schedule: RedisBackupSchedule = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
        "metadata": { "name": "minutely", "labels": { SHARD_LABEL: "a" } },
        "spec": { "instanceRef": { "name": "cache" }, "schedule": "* * * * *", "keep": 3 },
    }))
    .unwrap();
    schedules.create(&PostParams::default(), &schedule).await.unwrap();
    // A backup with its instance's shard label is made by that shard.
    backups
        .create(&PostParams::default(), &backup("with-label", Some("a")))
        .await
        .unwrap();
    // One without it belongs to the default process, which does not see the instance: it waits.
    backups
        .create(&PostParams::default(), &backup("without-label", None))
        .await
        .unwrap();

    let phase = |b: &RedisBackup| b.status.as_ref().and_then(|s| s.phase);
    let synced_reason = |b: &RedisBackup| {
        b.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
            .map(|c| c.reason.clone())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let made = ListParams::default().labels(&format!("{SCHEDULE_LABEL}=minutely"));
    let scheduled = loop {
        let list = backups.list(&made).await.unwrap().items;
        let done = list.iter().find(|b| phase(b) == Some(BackupPhase::Completed)).cloned();
        if let Some(b) = done
            && backups
                .get("with-label")
                .await
                .is_ok_and(|b| phase(&b) == Some(BackupPhase::Completed))
        {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no completed backup of the schedule, or of with-label: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The schedule's backup carries its shard, so the shard's process made and followed it.
    assert_eq!(scheduled.labels().get(SHARD_LABEL).map(String::as_str), Some("a"));
    for name in ["with-label".to_owned(), scheduled.name_any()] {
        let reasons = reasons_from(&e, &name, "op-a/shard-a").await;
        assert!(
            reasons.iter().any(|r| r == "Completed"),
            "{name}: completed by shard a: {reasons:?}"
        );
        assert!(
            reasons_from(&e, &name, "op-default").await.is_empty(),
            "{name}: nothing from the default process"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let without = loop {
        let b = backups.get("without-label").await.unwrap();
        if synced_reason(&b).is_some() || Instant::now() > deadline {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (phase(&without), synced_reason(&without).as_deref()),
        (Some(BackupPhase::Pending), Some("InstanceNotFound")),
        "the default process does not see shard a's instance"
    );
    let message = without
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains(&format!("give this object its {SHARD_LABEL} label")),
        "the condition says the instance may be in another shard: {message}"
    );
    // One backup of with-label and one per slot of the schedule (a second slot may have come);
    // none of without-label.
    let slots = backups.list(&made).await.unwrap().items.len() as u64;
    assert_eq!(e.admin.calls("CreateBackup", "success").await, 1 + slots);
    e.sim.shutdown().await;
}

/// A `ProviderConfig` used by objects of two shards: each shard takes the holds (config and
/// Secret) for its objects, but only the default process, which sees every object, releases
/// them: deleting shard `a`'s user leaves the config and its Secret held for the default
/// process's user; they are released once no object of any shard uses them.
#[tokio::test]
async fn a_config_used_by_two_shards_is_held_until_its_last_user_in_any_shard_goes() {
    const IN_USE: &str = "cds.capitalonline.net/in-use";
    let e = env("shard-configs", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.account("team").await;
    let _default = e.operator_with(flags("op-default", &["--known-shards", "a"]), vec![]);
    let _a = e.operator_with(flags("op-a", &["--shard", "a"]), vec![]);
    let team = json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "team" } });
    let with_config = |name: &str, shard: Option<&str>| {
        let mut o = object(name, shard);
        o.spec.provider_config_ref = serde_json::from_value(team["providerConfigRef"].clone()).unwrap();
        o
    };
    create_all(
        &e,
        vec![with_config("in-a", Some("a")), with_config("in-default", None)],
    )
    .await;
    e.wait_ready("in-a").await;
    e.wait_ready("in-default").await;
    let client = e.cp.client().await;
    let configs: Api<cds_redis_operator::crd::account::ProviderConfig> = Api::namespaced(client, &e.ns);
    let held = || async {
        let c = configs.get("team").await.unwrap();
        let s = e.secrets.get("team").await.unwrap();
        (
            c.finalizers().iter().any(|f| f == IN_USE),
            s.finalizers().iter().any(|f| f == IN_USE),
            c.status.and_then(|s| s.users),
        )
    };
    eventually("the config counts both users, across shards", || async {
        held().await == (true, true, Some(2))
    })
    .await;
    // Shard `a`'s user goes: the holds stay for the other user (a shard never releases).
    e.delete("in-a").await;
    e.wait_gone("in-a").await;
    eventually("one user left", || async { held().await.2 == Some(1) }).await;
    let (config_held, secret_held, _) = held().await;
    assert!(
        config_held && secret_held,
        "released while the default process's object uses them"
    );
    // The last user goes: both released by the default process.
    e.delete("in-default").await;
    e.wait_gone("in-default").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if held().await == (false, false, Some(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "not released: {:?}", held().await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(e.admin.instances().await.is_empty());
    e.sim.shutdown().await;
}
