//! `RedisBackup` on the real control plane against the simulator: a backup is made exactly once
//! (also across crashes around `CreateBackup` and `DeleteBackup`), followed until finished, its
//! download URLs only in the Secret asked for, and deleted (or kept) with its object; a backup
//! of an instance that does not run yet waits for it.

mod support;

use std::time::Duration;

use cds_redis_operator::crd::backup::{BackupPhase, RedisBackup};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::env::*;

const PASSWORD: &str = "backup-Pa55word-DO-NOT-LEAK";

async fn backups(e: &Env) -> Api<RedisBackup> {
    Api::namespaced(e.cp.client().await, &e.ns)
}

async fn create_backup(e: &Env, name: &str, spec: Value) -> RedisBackup {
    let b: RedisBackup = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
        "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap();
    backups(e).await.create(&PostParams::default(), &b).await.unwrap()
}

/// Waits until `ok` holds for the backup `name`.
async fn wait_backup(e: &Env, name: &str, what: &str, ok: impl Fn(&RedisBackup) -> bool) -> RedisBackup {
    let api = backups(e).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b = api.get(name).await.unwrap();
        if ok(&b) {
            return b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: timed out waiting for {what}; status {:#?}",
            b.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn phase(b: &RedisBackup) -> Option<BackupPhase> {
    b.status.as_ref().and_then(|s| s.phase)
}

fn reason(b: &RedisBackup, type_: &str) -> Option<String> {
    let s = b.status.as_ref()?;
    s.conditions.iter().find(|c| c.type_ == type_).map(|c| c.reason.clone())
}

async fn wait_backup_gone(e: &Env, name: &str) {
    let api = backups(e).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "{name} was not deleted in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn cloud_backups(e: &Env, uuid: &str) -> Vec<Value> {
    let sim = crate::support::sim::client(&e.sim);
    sim.describe_backups(uuid)
        .await
        .unwrap()
        .into_iter()
        .map(|b| serde_json::to_value(b).unwrap())
        .collect()
}

async fn running_instance(e: &Env, name: &str) -> String {
    e.create(name, spec(json!({}))).await;
    let o = e.wait_ready(name).await;
    status(&o).instance_uuid.unwrap()
}

#[tokio::test]
async fn a_backup_is_made_once_finished_its_urls_kept_secret_and_deleted_with_its_object() {
    let e = env("backup", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    let uuid = running_instance(&e, "cache").await;
    create_backup(
        &e,
        "nightly",
        json!({ "instanceRef": { "name": "cache" }, "description": "before the upgrade",
                "writeDownloadSecretToRef": { "name": "nightly-download" } }),
    )
    .await;
    let b = wait_backup(&e, "nightly", "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
    let st = b.status.clone().unwrap();
    assert_eq!(st.instance_uuid.as_deref(), Some(uuid.as_str()));
    assert!(st.backup_id.is_some() && st.size_bytes.is_some_and(|s| s > 0), "{st:?}");
    assert_eq!(reason(&b, "Ready").as_deref(), Some("Completed"));
    assert_eq!(e.admin.calls_total("CreateBackup").await, 1);
    // The cloud's backup carries the description and the marker.
    let listed = cloud_backups(&e, &uuid).await;
    assert_eq!(listed.len(), 1);
    let desc = listed[0]["Desc"].as_str().unwrap();
    assert!(
        desc.starts_with("before the upgrade [k8s ") && desc.contains(&b.uid().unwrap()),
        "{desc}"
    );
    // The URLs are in the Secret the object asked for, owned by it, and nowhere else.
    let secret = e.secrets.get("nightly-download").await.unwrap();
    let data = secret.data.clone().unwrap();
    let url = String::from_utf8(data["url"].0.clone()).unwrap();
    assert!(url.starts_with("http") && data.contains_key("intranetUrl"));
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("RedisBackup", b.uid().unwrap().as_str())
    );
    let status_text = serde_json::to_string(&b.status).unwrap();
    assert!(!status_text.contains(&url), "no URL in status");
    assert!(
        e.events("nightly")
            .await
            .iter()
            .all(|(_, _, note)| !note.contains(&url))
    );
    assert!(e.has_event("nightly", "Completed").await);
    // Steady: no more CreateBackup, the listing is not polled every few seconds.
    let listings = e.admin.calls_total("DescribeBackups").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.admin.calls_total("CreateBackup").await, 1);
    assert_eq!(
        e.admin.calls_total("DescribeBackups").await,
        listings,
        "no polling once completed"
    );
    // Deleted with the object; its download Secret is collected with it.
    backups(&e).await.delete("nightly", &Default::default()).await.unwrap();
    wait_backup_gone(&e, "nightly").await;
    assert!(cloud_backups(&e, &uuid).await.is_empty());
    assert_eq!(e.admin.calls_total("DeleteBackup").await, 1);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_backup_waits_for_its_instance_and_a_retained_one_outlives_its_object() {
    let e = env("backup-wait", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    create_backup(
        &e,
        "early",
        json!({ "instanceRef": { "name": "later" }, "deletionPolicy": "Retain" }),
    )
    .await;
    let b = wait_backup(&e, "early", "InstanceNotFound", |b| {
        reason(b, "Synced").as_deref() == Some("InstanceNotFound")
    })
    .await;
    assert_eq!(phase(&b), Some(BackupPhase::Pending));
    assert_eq!(reason(&b, "Reconciling").as_deref(), Some("Pending"));
    assert_eq!(e.admin.calls_total("CreateBackup").await, 0);
    let uuid = running_instance(&e, "later").await;
    wait_backup(&e, "early", "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
    backups(&e).await.delete("early", &Default::default()).await.unwrap();
    wait_backup_gone(&e, "early").await;
    assert_eq!(cloud_backups(&e, &uuid).await.len(), 1, "Retain keeps the cloud backup");
    assert_eq!(e.admin.calls_total("DeleteBackup").await, 0);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_crash_around_create_backup_or_delete_backup_leaves_exactly_one_backup_then_none() {
    let e = env("backup-crash", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let op = e.operator();
    let uuid = running_instance(&e, "cache").await;
    drop(op);
    for point in ["backup-after-intent", "backup-after-create"] {
        let mut op = e.operator_with(vec![], vec![("CDS_REDIS_CRASH_AT", point)]);
        create_backup(&e, point, json!({ "instanceRef": { "name": "cache" } })).await;
        let exit = op.wait_exit(TIMEOUT).await;
        assert!(exit.is_some_and(|s| !s.success()), "{point}: no crash:\n{}", op.logs());
        let _op = e.operator();
        let b = wait_backup(&e, point, "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
        let marker = format!("{}]", b.uid().unwrap());
        let ours: Vec<Value> = cloud_backups(&e, &uuid)
            .await
            .into_iter()
            .filter(|c| c["Desc"].as_str().is_some_and(|d| d.ends_with(&marker)))
            .collect();
        assert_eq!(ours.len(), 1, "{point}: exactly one cloud backup: {ours:?}");
    }
    // 2 objects, 2 backups: the create after the intent was sent once, the one after the create
    // never again.
    assert_eq!(e.admin.calls_total("CreateBackup").await, 2);
    let mut op = e.operator_with(vec![], vec![("CDS_REDIS_CRASH_AT", "backup-after-delete")]);
    backups(&e)
        .await
        .delete("backup-after-create", &Default::default())
        .await
        .unwrap();
    assert!(op.wait_exit(TIMEOUT).await.is_some(), "no crash at backup-after-delete");
    let _op = e.operator();
    wait_backup_gone(&e, "backup-after-create").await;
    backups(&e)
        .await
        .delete("backup-after-intent", &Default::default())
        .await
        .unwrap();
    wait_backup_gone(&e, "backup-after-intent").await;
    let left = cloud_backups(&e, &uuid).await;
    assert!(left.is_empty(), "none left behind: {left:?}");
    e.sim.shutdown().await;
}

/// Issue 14's end-to-end proof: keys written through the connection Secret come back from the
/// backup downloaded through the download Secret and loaded into a fresh `redis-server`.
#[tokio::test]
async fn keys_written_through_the_connection_secret_come_back_from_the_downloaded_backup() {
    use crate::support::redis::{self, Resp};
    if !redis::available() {
        return;
    }
    let mut cfg = fast_sim();
    cfg.redis_backend = true;
    let e = env("backup-e2e", cfg).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create(
        "cache",
        spec(json!({ "writeConnectionSecretToRef": { "name": "cache-conn" } })),
    )
    .await;
    e.wait_ready("cache").await;
    let text = |s: &k8s_openapi::api::core::v1::Secret, k: &str| {
        String::from_utf8(s.data.as_ref().unwrap()[k].0.clone()).unwrap()
    };
    let conn = e.secrets.get("cache-conn").await.unwrap();
    let port: u16 = text(&conn, "port").parse().unwrap();
    assert_eq!(text(&conn, "host"), "127.0.0.1");
    let mut app = Resp::connect_with_password(port, &text(&conn, "password")).await;
    app.set("order:1", "paid").await;
    app.set("greeting", "你好").await;

    create_backup(
        &e,
        "snap",
        json!({ "instanceRef": { "name": "cache" }, "writeDownloadSecretToRef": { "name": "snap-dl" } }),
    )
    .await;
    let b = wait_backup(&e, "snap", "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
    let download = e.secrets.get("snap-dl").await.unwrap();
    let bytes = reqwest::get(text(&download, "url"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        Some(bytes.len() as i64),
        b.status.unwrap().size_bytes,
        "the size the status reports"
    );
    let dir = tempfile::tempdir().unwrap();
    let rdb = dir.path().join("dump.rdb");
    std::fs::write(&rdb, &bytes).unwrap();
    let fresh = redis::load_rdb(&rdb).await;
    let mut restored = Resp::connect(fresh.port).await;
    assert_eq!(restored.get("order:1").await.as_deref(), Some("paid"));
    assert_eq!(restored.get("greeting").await.as_deref(), Some("你好"));
    e.sim.shutdown().await;
}

/// Faults around `CreateBackup`: a busy instance (409) is retried until it is free; a create
/// whose answer is lost (500 or a dropped connection) is resolved by the marker: one backup each.
#[tokio::test]
async fn a_busy_instance_is_waited_for_and_a_lost_answer_resolved_by_the_marker() {
    let e = env("backup-faults", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    let uuid = running_instance(&e, "cache").await;
    e.admin
        .set_faults(json!({ "errors": { "CreateBackup": { "resourceInUse": 1.0 } } }))
        .await;
    create_backup(&e, "busy", json!({ "instanceRef": { "name": "cache" } })).await;
    let b = wait_backup(&e, "busy", "Retrying", |b| {
        reason(b, "Reconciling").as_deref() == Some("Retrying")
    })
    .await;
    assert_eq!(reason(&b, "Synced").as_deref(), Some("CloudUnavailable"));
    assert!(
        b.status.unwrap().create_attempt.is_none(),
        "a refused create leaves no intent"
    );
    e.admin.set_faults(json!({})).await;
    wait_backup(&e, "busy", "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
    for (name, mode) in [("lost-500", "ServerError"), ("lost-drop", "Drop")] {
        e.admin
            .set_faults(json!({ "lostResponses": { "CreateBackup": { "rate": 1.0, "mode": mode } } }))
            .await;
        create_backup(&e, name, json!({ "instanceRef": { "name": "cache" } })).await;
        // Lost at most once: the faults go once the create was carried out.
        eventually("the create carried out", || async {
            e.admin
                .calls(
                    "CreateBackup",
                    &format!("lost_{}", if mode == "Drop" { "drop" } else { "5xx" }),
                )
                .await
                >= 1
        })
        .await;
        e.admin.set_faults(json!({})).await;
        let b = wait_backup(&e, name, "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
        let marker = format!("{}]", b.uid().unwrap());
        let ours = cloud_backups(&e, &uuid)
            .await
            .into_iter()
            .filter(|c| c["Desc"].as_str().is_some_and(|d| d.ends_with(&marker)))
            .count();
        assert_eq!(ours, 1, "{name}: one cloud backup");
    }
    e.sim.shutdown().await;
}

/// A backup made with a `ProviderConfig`'s account records it, holds the config and its Secret
/// while it may still delete its cloud backup, and deletes it with that account once its
/// `RedisInstance` object is gone (the instance retained in the cloud).
#[tokio::test]
async fn a_backup_deletes_with_the_account_it_was_made_with_after_its_instance_object_is_gone() {
    const TEAM: (&str, &str) = ("AKIDbackupteam1", "sk-backup-team-DO-NOT-LEAK");
    const IN_USE: &str = "cds.capitalonline.net/in-use";
    let mut cfg = fast_sim();
    cfg.access_keys.push(format!("{}:{}", TEAM.0, TEAM.1));
    let e = env("backup-account", cfg).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret("team", &[("accessKeyId", TEAM.0), ("accessKeySecret", TEAM.1)])
        .await;
    e.provider_config("team", "team").await;
    e.create(
        "cache",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "team" }, "deletionPolicy": "Retain" })),
    )
    .await;
    let uuid = status(&e.wait_ready("cache").await).instance_uuid.unwrap();
    create_backup(&e, "b", json!({ "instanceRef": { "name": "cache" } })).await;
    let b = wait_backup(&e, "b", "Completed", |b| phase(b) == Some(BackupPhase::Completed)).await;
    let recorded = b
        .status
        .as_ref()
        .and_then(|s| s.provider_config_ref.clone())
        .expect("recorded");
    assert_eq!(recorded.name, "team");
    // The instance object goes (its cloud instance stays): the backup now holds the account.
    e.delete("cache").await;
    e.wait_gone("cache").await;
    let configs: Api<cds_redis_operator::crd::account::ProviderConfig> = Api::namespaced(e.cp.client().await, &e.ns);
    eventually(
        "the backup is the config's user, and holds it and its Secret",
        || async {
            let c = configs.get("team").await.unwrap();
            let s = e.secrets.get("team").await.unwrap();
            c.status.as_ref().and_then(|s| s.users) == Some(1)
                && c.finalizers().iter().any(|f| f == IN_USE)
                && s.finalizers().iter().any(|f| f == IN_USE)
        },
    )
    .await;
    // Deleting the config and its Secret first (a namespace deletion may): both wait.
    configs.delete("team", &Default::default()).await.unwrap();
    e.secrets.delete("team", &Default::default()).await.unwrap();
    let before = e.admin.calls_by_key(TEAM.0).await;
    backups(&e).await.delete("b", &Default::default()).await.unwrap();
    wait_backup_gone(&e, "b").await;
    assert!(cloud_backups(&e, &uuid).await.is_empty(), "the cloud backup is deleted");
    assert!(e.admin.calls_by_key(TEAM.0).await > before, "with the team's key");
    eventually("the config and its Secret go once nothing needs them", || async {
        configs.get_opt("team").await.unwrap().is_none() && e.secrets.get_opt("team").await.unwrap().is_none()
    })
    .await;
    e.sim.shutdown().await;
}
