//! The contract's Ownership rules on the real control plane against the simulator: the operator
//! never touches what is not its own, never repeats a write the cloud refused or accepted, and
//! never gets stuck on a deletion (`../shared/spec/redisinstance.md`, "Ownership").

mod support;

use std::time::{Duration, Instant};

use cds_redis_operator::crd::{DeletionPolicy, Phase};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::support::env::*;
use crate::support::sim::{KEY_ID, KEY_SECRET};

fn stalled(o: &cds_redis_operator::crd::RedisInstance) -> Option<String> {
    status(o)
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| c.reason.clone())
}

async fn creating_events(e: &Env, name: &str) -> usize {
    e.events(name).await.iter().filter(|(_, r, _)| r == "Creating").count()
}

#[tokio::test]
async fn a_create_the_cloud_rejects_is_sent_once_until_the_object_or_its_secret_changes() {
    let e = env("reject", fast_sim()).await;
    let op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    // The cloud refuses the order for a reason no preflight sees (quota, balance): a final
    // InvalidParameter.
    e.admin
        .set_faults(json!({ "errors": { "CreateDBInstance": { "invalidParameter": 1.0 } } }))
        .await;
    e.create("bad", spec(json!({}))).await;
    let o = e.wait_reason("bad", "Synced", "CloudRejected").await;
    assert_eq!(stalled(&o).as_deref(), Some("CloudRejected"));
    assert_eq!(status(&o).phase, Some(Phase::Failed));
    assert!(
        status(&o).create_attempt.is_none(),
        "a rejected create leaves no intent"
    );
    assert!(conditions_message(&o, "Synced").contains("InvalidParameter"));
    // Our own status writes must not trigger another create.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        1,
        "one create, not a loop"
    );
    assert_eq!(creating_events(&e, "bad").await, 1);
    // Nor does a fresh process, whose caches are still filling: a Secret it has not listed yet
    // is not a changed Secret (found by the soak: one more create per restart).
    drop(op);
    for _ in 0..3 {
        let restarted = e.operator();
        tokio::time::sleep(Duration::from_secs(4)).await;
        drop(restarted);
    }
    let _op = e.operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        1,
        "no create after a restart"
    );
    // A change of a referenced Secret is a new input: exactly one more attempt.
    e.secret("pw", &[("password", "another-password-DO-NOT-LEAK")]).await;
    eventually("a second create after the Secret changed", || async {
        e.admin.calls_total("CreateDBInstance").await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 2);
    assert!(e.admin.instances().await.is_empty());
    // Deleting it needs no cloud call.
    e.delete("bad").await;
    e.wait_gone("bad").await;
    assert_eq!(e.admin.calls_total("DeleteDBInstance").await, 0);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn one_cloud_instance_is_never_shared_by_two_objects() {
    let e = env("collide", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("first", spec(json!({ "instanceName": "shared-name" }))).await;
    let first = e.wait_ready("first").await;
    let uuid = status(&first).instance_uuid.unwrap();
    // The same instance name: not adopted, not created again.
    e.create("second", spec(json!({ "instanceName": "shared-name" }))).await;
    let second = e.wait_reason("second", "Synced", "InstanceInUse").await;
    assert_eq!(stalled(&second).as_deref(), Some("InstanceInUse"));
    assert!(conditions_message(&second, "Synced").contains(&format!("{}/first", e.ns)));
    assert_eq!(status(&second).instance_uuid, None);
    // The same UUID through spec.instanceUuid: refused too.
    e.create("third", spec(json!({ "instanceUuid": uuid }))).await;
    let third = e.wait_reason("third", "Synced", "InstanceInUse").await;
    assert_eq!(status(&third).instance_uuid, None);
    assert_eq!(e.admin.calls("CreateDBInstance", "success").await, 1);
    // Asking for the instance does not contest the owner's record (found by the soak: the
    // owner reported InstanceInUse too, and deleting both orphaned the instance).
    e.api
        .patch(
            "first",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "touched": "1" } } })),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = e.api.get("first").await.unwrap();
    assert_eq!(
        reason_of(&first, "Synced").as_deref(),
        Some("ReconcileSuccess"),
        "{:?}",
        status(&first).conditions
    );
    // Deleting an intruder leaves the instance to its owner.
    e.delete("second").await;
    e.wait_gone("second").await;
    assert_eq!(e.admin.calls_total("DeleteDBInstance").await, 0);
    assert_eq!(e.admin.instances().await.len(), 1);
    // The owner and the other intruder deleted together: the owner deletes it.
    e.delete("first").await;
    e.delete("third").await;
    e.wait_gone("first").await;
    e.wait_gone("third").await;
    eventually("the owner's instance is deleted", || async {
        e.admin.instances().await.is_empty()
    })
    .await;
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_secret_someone_else_made_is_never_written() {
    let e = env("foreign", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    // The user's own Secrets, one with the connection Secret's name, one with the name the
    // password record had in earlier versions.
    e.secret("conn", &[("mine", "keep-me")]).await;
    e.secret("cache-cdsredis-password", &[("password", "users-own")]).await;
    let before: Secret = e.secrets.get("conn").await.unwrap();
    e.create(
        "cache",
        spec(json!({ "writeConnectionSecretToRef": { "name": "conn" } })),
    )
    .await;
    let o = e.wait_reason("cache", "Synced", "SecretConflict").await;
    assert_eq!(stalled(&o).as_deref(), Some("SecretConflict"));
    assert_eq!(cond_status(&o, "Ready").as_deref(), Some("False"));
    for name in ["conn", "cache-cdsredis-password"] {
        let s: Secret = e.secrets.get(name).await.unwrap();
        assert!(
            s.owner_references().is_empty(),
            "{name} got an owner: {:?}",
            s.owner_references()
        );
    }
    let after: Secret = e.secrets.get("conn").await.unwrap();
    assert_eq!(
        before.resource_version(),
        after.resource_version(),
        "the user's Secret was written"
    );
    // The password record is the operator's own, named after the object's UID.
    let record: Secret = e
        .secrets
        .get(&format!("cdsredis-password-{}", o.uid().unwrap()))
        .await
        .unwrap();
    assert_eq!(record.owner_references()[0].uid, o.uid().unwrap());
    // Once the user's Secret is gone, the operator writes its own.
    e.secrets.delete("conn", &DeleteParams::default()).await.unwrap();
    e.wait_ready("cache").await;
    let conn: Secret = e.secrets.get("conn").await.unwrap();
    assert_eq!(conn.owner_references()[0].uid, o.uid().unwrap());
    e.sim.shutdown().await;
}

#[tokio::test]
async fn deleting_the_account_secret_first_still_deletes_the_instance() {
    let e = env("creds-first", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret("creds", &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
        .await;
    e.provider_config("creds", "creds").await;
    e.create(
        "acct",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } })),
    )
    .await;
    e.wait_ready("acct").await;
    let creds: Secret = e.secrets.get("creds").await.unwrap();
    assert!(
        creds.finalizers().iter().any(|f| f == "cds.capitalonline.net/in-use"),
        "{:?}",
        creds.finalizers()
    );
    // As a namespace or Argo CD app deletion may do: the Secret goes first.
    e.secrets.delete("creds", &DeleteParams::default()).await.unwrap();
    let held: Secret = e.secrets.get("creds").await.unwrap();
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "held by the in-use finalizer"
    );
    e.delete("acct").await;
    e.wait_gone("acct").await;
    assert!(e.admin.instances().await.is_empty(), "the instance was deleted");
    eventually("the account Secret goes once unused", || async {
        e.secrets.get_opt("creds").await.unwrap().is_none()
    })
    .await;
    e.sim.shutdown().await;
}

#[tokio::test]
async fn objects_sharing_an_account_secret_and_deleted_together_release_it() {
    let e = env("creds-shared", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret("creds", &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
        .await;
    e.provider_config("creds", "creds").await;
    let names = ["s1", "s2", "s3", "s4"];
    for n in names {
        e.create(
            n,
            spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } })),
        )
        .await;
    }
    for n in names {
        e.wait_ready(n).await;
    }
    // Released milliseconds apart, each still sees the others' finalizers in its cache (found
    // by the soak: the in-use finalizer stayed, and the Secret could never be deleted).
    for n in names {
        e.delete(n).await;
    }
    for n in names {
        e.wait_gone(n).await;
    }
    eventually("the account Secret is released", || async {
        let s: Secret = e.secrets.get("creds").await.unwrap();
        !s.finalizers().iter().any(|f| f == "cds.capitalonline.net/in-use")
    })
    .await;
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_delete_refused_as_busy_is_retried_not_taken_for_accepted() {
    let e = env("busy-delete", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("busy", spec(json!({}))).await;
    e.wait_ready("busy").await;
    // The instance is busy with another task: every delete is refused with a 409.
    e.admin
        .set_faults(json!({ "errors": { "DeleteDBInstance": { "resourceInUse": 1.0 } } }))
        .await;
    e.delete("busy").await;
    eventually("a refused delete", || async {
        e.admin.calls("DeleteDBInstance", "ResourceInUse").await >= 1
    })
    .await;
    let o = e.api.get("busy").await.unwrap();
    assert_eq!(
        status(&o).delete_requested_at,
        None,
        "a 409 with no delete of ours known is not an accepted delete (it would wait 300 s)"
    );
    // The task ends: the next retry deletes it, well within the 300 s resend interval.
    e.admin.set_faults(json!({})).await;
    e.wait_gone("busy").await;
    assert!(e.admin.instances().await.is_empty());
    assert_eq!(e.admin.calls("DeleteDBInstance", "success").await, 1);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_delete_is_sent_once_although_the_cloud_shows_no_deleting_status() {
    let mut cfg = fast_sim();
    cfg.delete_delay = Duration::from_secs(6);
    let e = env("no-deleting", cfg).await;
    let _op = e.operator();
    e.admin.set_faults(json!({ "hideDeletingStatus": true })).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("cache", spec(json!({}))).await;
    e.wait_ready("cache").await;
    e.delete("cache").await;
    // While the cloud deletes, the listing still says RUNNING.
    let listed = e.admin.instances().await;
    assert_eq!(listed[0]["listed"]["Status"], "RUNNING");
    e.wait_gone("cache").await;
    assert_eq!(e.admin.calls_total("DeleteDBInstance").await, 1);
    let warnings: Vec<_> = e
        .events("cache")
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "Warning")
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    e.sim.shutdown().await;
}

#[tokio::test]
async fn an_instance_uuid_set_later_is_refused_and_the_recorded_instance_stays_ours() {
    let e = env("uuid-later", fast_sim()).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("cache", spec(json!({}))).await;
    let ready = e.wait_ready("cache").await;
    let ours = status(&ready).instance_uuid.unwrap();
    let other = precreate(&e, "someone-elses").await;
    e.api
        .patch(
            "cache",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "instanceUuid": other } })),
        )
        .await
        .unwrap();
    let o = e.wait_reason("cache", "Synced", "InvalidSpec").await;
    assert_eq!(status(&o).instance_uuid.as_deref(), Some(ours.as_str()));
    assert!(conditions_message(&o, "Synced").contains(&other));
    e.delete("cache").await;
    e.wait_gone("cache").await;
    let left: Vec<String> = e
        .admin
        .instances()
        .await
        .iter()
        .map(|i| i["listed"]["InstanceUuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec![other], "only the recorded instance was deleted");
    e.sim.shutdown().await;
}

#[tokio::test]
async fn the_deletion_policy_in_force_at_creation_survives_a_new_operator_default() {
    let e = env("policy", fast_sim()).await;
    let mut op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("cache", spec(json!({}))).await;
    let ready = e.wait_ready("cache").await;
    assert_eq!(status(&ready).deletion_policy, Some(DeletionPolicy::Delete));
    op.kill();
    let _op = e.operator_with(vec!["--default-deletion-policy", "Retain"], vec![]);
    e.delete("cache").await;
    e.wait_gone("cache").await;
    assert!(e.admin.instances().await.is_empty(), "deleted as recorded at creation");
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_leader_frozen_past_its_lease_stops_before_acting_again() {
    let e = env("frozen", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let mut a = e.replica("replica-a");
    e.create("before", spec(json!({}))).await;
    e.wait_ready("before").await;
    let mut b = e.replica("replica-b");
    let pid = a.pid().unwrap().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    // Frozen past the 15 s lease: b takes over and acts.
    signal("-STOP");
    let frozen = Instant::now();
    e.create("during", spec(json!({}))).await;
    e.wait_ready("during").await;
    assert!(b.logs().contains("became leader"));
    eprintln!(
        "takeover: an object became Ready {:?} after the leader froze",
        frozen.elapsed()
    );
    let creates = e.admin.calls_total("CreateDBInstance").await;
    // Woken up, a finds its lease lapsed on its own clock and stops without a write.
    signal("-CONT");
    let exit = a.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.is_some(), "the old leader did not stop:\n{}", a.logs());
    assert!(a.logs().contains("no longer acting"), "{}", a.logs());
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, creates);
    assert_eq!(e.admin.instances().await.len(), 2, "one instance per object");
    let _ = b.stop().await;
    e.sim.shutdown().await;
}
