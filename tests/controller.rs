//! The controller on the real control plane against the simulator: the whole lifecycle, crash
//! safety, faults, bad input, adoption, policies, rotation, failover and secret hygiene.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use serde_json::json;

use crate::support::env::*;
use crate::support::sim::{self, KEY_ID, KEY_SECRET};

#[tokio::test]
async fn happy_path_create_ready_connect_delete() {
    let redis = sim::have_redis_server();
    assert!(redis || std::env::var("CI").is_err(), "redis-server missing under CI");
    let mut cfg = fast_sim();
    cfg.redis_backend = redis;
    let e = env("happy", cfg).await;
    let _op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    let obj = e
        .create(
            "cache",
            spec(json!({
                "paasGoodsId": null,
                "flavor": { "version": "5.0", "architecture": "MasterReplica", "ramGb": 4 },
                "writeConnectionSecretToRef": { "name": "cache-conn" },
            })),
        )
        .await;
    let ready = e.wait_ready("cache").await;
    let st = status(&ready);
    let uuid = st.instance_uuid.clone().expect("uuid in status");
    assert!(st.task_id.as_deref().is_some_and(|t| !t.is_empty()), "{st:?}");
    assert_eq!(st.phase, Some(cds_redis_operator::crd::Phase::Running));
    assert_eq!(st.cloud_status.as_deref(), Some("RUNNING"));
    assert_eq!(st.ram_mb, Some(4096));
    assert_eq!(st.version.as_deref(), Some("5.0"));
    assert_eq!(st.observed_generation, Some(1));
    assert!(
        st.create_attempt.is_none(),
        "the intent marker is cleared once the instance is seen"
    );
    assert_eq!(
        st.instance_name.as_deref(),
        Some(cds_redis_operator::crd::default_instance_name(&e.ns, "cache", &obj.uid().unwrap()).as_str())
    );
    assert_eq!(reason_of(&ready, "Synced").as_deref(), Some("ReconcileSuccess"));
    let endpoint = st.endpoint.clone().expect("endpoint");
    // Exactly one instance, created once, with the resolved spec id.
    let instances = e.admin.instances().await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["listed"]["InstanceUuid"], uuid.as_str());
    assert!((12923..=12941).contains(&instances[0]["paas_goods_id"].as_i64().unwrap()));
    assert_eq!(e.admin.calls("CreateDBInstance", "success").await, 1);
    // The connection Secret.
    let conn = e.secrets.get("cache-conn").await.unwrap();
    let data: BTreeMap<String, String> = conn
        .data
        .clone()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    assert_eq!(data["host"], endpoint.host);
    assert_eq!(data["port"], endpoint.port.to_string());
    assert_eq!(data["password"], PASSWORD);
    assert_eq!(data["instanceUuid"], uuid);
    assert_eq!(
        data["uri"],
        format!("redis://:{PASSWORD}@{}:{}", endpoint.host, endpoint.port)
    );
    let owner = &conn.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("RedisInstance", obj.uid().unwrap().as_str(), Some(true))
    );
    if redis {
        let (auth, ping) = sim::redis_auth_ping(&data["host"], data["port"].parse().unwrap(), &data["password"]).await;
        assert_eq!(
            (auth.as_str(), ping.as_str()),
            ("+OK", "+PONG"),
            "AUTH + PING through the connection Secret"
        );
    }
    for reason in ["Creating", "Created", "Running"] {
        assert!(
            e.has_event("cache", reason).await,
            "event {reason} missing: {:?}",
            e.events("cache").await
        );
    }
    // kubectl wait works on the Ready condition.
    let out = e.cp.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        &e.ns,
        "redisinstance/cache",
        "--timeout=10s",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Delete: DeleteDBInstance once, the instance goes, then the finalizer.
    e.delete("cache").await;
    e.wait_gone("cache").await;
    assert_eq!(e.admin.calls("DeleteDBInstance", "success").await, 1);
    assert!(e.admin.instances().await.is_empty());
    assert!(e.has_event("cache", "Deleted").await);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_crash_at_each_step_of_create_and_delete_never_duplicates_or_orphans() {
    let e = env("crash", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    for point in ["after-intent", "after-create"] {
        let name = format!("crash-{point}");
        let mut op = e.operator_with(vec![], vec![("CDS_REDIS_CRASH_AT", point)]);
        e.create(&name, spec(json!({}))).await;
        let exit = op.wait_exit(TIMEOUT).await;
        assert!(
            exit.is_some_and(|s| !s.success()),
            "{point}: the operator did not crash:\n{}",
            op.logs()
        );
        let before = e.admin.calls_total("CreateDBInstance").await;
        let _op = e.operator();
        let ready = e.wait_ready(&name).await;
        let instance_name = status(&ready).instance_name.unwrap();
        assert_eq!(
            e.instances_named(&instance_name).await.len(),
            1,
            "{point}: exactly one instance"
        );
        let created_after_restart = e.admin.calls_total("CreateDBInstance").await - before;
        match point {
            // The create never happened: after the grace period, one create.
            "after-intent" => assert_eq!(created_after_restart, 1, "{point}"),
            // The create happened: found by name, never sent again.
            _ => {
                assert_eq!(created_after_restart, 0, "{point}");
                assert!(e.has_event(&name, "Created").await);
            }
        }
        drop(_op);
    }
    // Crash right after DeleteDBInstance was sent.
    let mut op = e.operator_with(vec![], vec![("CDS_REDIS_CRASH_AT", "after-delete")]);
    e.delete("crash-after-create").await;
    assert!(
        op.wait_exit(TIMEOUT).await.is_some(),
        "no crash at after-delete:\n{}",
        op.logs()
    );
    let _op = e.operator();
    e.wait_gone("crash-after-create").await;
    // And a SIGKILL during a delete in progress.
    let mut op = e.operator();
    e.delete("crash-after-intent").await;
    e.wait("crash-after-intent", "Deleting", |o| {
        status(o).phase == Some(cds_redis_operator::crd::Phase::Deleting)
    })
    .await;
    op.kill();
    drop(_op);
    let _op = e.operator();
    e.wait_gone("crash-after-intent").await;
    assert!(
        e.admin.instances().await.is_empty(),
        "no instance left: {:?}",
        e.admin.instances().await
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn lost_create_response_and_visibility_lag_recover_by_name_without_a_second_instance() {
    let e = env("lost", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    // The grace must exceed the create's own latency plus the 2 s lag, with room for a loaded CI.
    let _op = e.operator_with(vec!["--visibility-grace", "6s"], vec![]);
    for (name, mode, lag) in [
        ("lost-drop", "Drop", 0),
        ("lost-5xx", "ServerError", 0),
        ("lost-lagging", "Drop", 2000),
        // Unknown is not "no" (Ownership rule 6): an undocumented code after the create was
        // carried out keeps the intent; the name shows up 2 s later and is adopted.
        ("undocumented-lagging", "UndocumentedCode", 2000),
        ("lagging", "", 2000),
    ] {
        let mut faults = json!({ "visibilityLagMs": lag });
        if !mode.is_empty() {
            faults["lostResponses"] = json!({ "CreateDBInstance": { "rate": 1.0, "mode": mode } });
        }
        e.admin.set_faults(faults).await;
        let before = e.admin.calls_total("CreateDBInstance").await;
        e.create(name, spec(json!({}))).await;
        let ready = e.wait_ready(name).await;
        assert_eq!(
            e.admin.calls_total("CreateDBInstance").await - before,
            1,
            "{name}: one create call"
        );
        assert_eq!(
            e.instances_named(&status(&ready).instance_name.unwrap()).await.len(),
            1,
            "{name}"
        );
        e.admin.set_faults(json!({})).await;
    }
    e.sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_gives_its_reason_then_recovers_when_fixed() {
    let e = env("bad", fast_sim()).await;
    // A long steady period and terminal recheck: only the Secret watch can unblock in time.
    let _op = e.operator_with(vec!["--steady-poll-interval", "10m"], vec![]);

    // Secret created after the object.
    e.create("late-secret", spec(json!({ "passwordSecretRef": { "name": "late" } })))
        .await;
    let o = e.wait_reason("late-secret", "Synced", "SecretNotFound").await;
    assert_eq!(status(&o).phase, Some(cds_redis_operator::crd::Phase::Failed));
    assert!(e.has_event("late-secret", "SecretNotFound").await);
    let t = Instant::now();
    e.secret("late", &[("password", PASSWORD)]).await;
    e.wait_ready("late-secret").await;
    eprintln!("late Secret: Ready {:?} after the Secret appeared", t.elapsed());

    // Missing key, then empty password.
    e.secret("nokey", &[("other", "x")]).await;
    e.create("missing-key", spec(json!({ "passwordSecretRef": { "name": "nokey" } })))
        .await;
    let o = e.wait_reason("missing-key", "Synced", "SecretKeyMissing").await;
    assert!(conditions_message(&o, "Synced").contains("\"password\" is missing"));
    e.secret("nokey", &[("other", "x"), ("password", "")]).await;
    e.wait("missing-key", "empty password message", |o| {
        conditions_message(o, "Synced").contains("is empty")
    })
    .await;
    e.secret("nokey", &[("other", "x"), ("password", PASSWORD)]).await;
    e.wait_ready("missing-key").await;

    // Unknown flavor: no create at all, the message lists the offers.
    e.secret("pw", &[("password", PASSWORD)]).await;
    let creates = e.admin.calls_total("CreateDBInstance").await;
    e.create(
        "no-flavor",
        spec(json!({ "paasGoodsId": null, "flavor": { "version": "9.9", "architecture": "Cluster", "ramGb": 3 } })),
    )
    .await;
    let o = e.wait_reason("no-flavor", "Synced", "FlavorNotAvailable").await;
    assert!(
        conditions_message(&o, "Synced").contains("5.0 MasterReplica 4GB"),
        "{}",
        conditions_message(&o, "Synced")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, creates);
    assert!(
        e.admin.calls_total("DescribeAvailableDBConfig").await <= 1,
        "the catalogue is cached"
    );

    // Cloud 500s on create: CloudUnavailable, bounded retries, recovery, one instance.
    e.admin
        .set_faults(json!({ "errors": { "CreateDBInstance": { "internalError": 1.0 } } }))
        .await;
    e.create("cloud-500", spec(json!({}))).await;
    e.wait_reason("cloud-500", "Synced", "CloudUnavailable").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tries = e.admin.calls_total("CreateDBInstance").await - creates;
    // A 500 leaves the outcome unknown: the next create waits for the 3 s grace, then backs off.
    assert!((1..=4).contains(&tries), "{tries} create calls in ~5 s: not a hot loop");
    e.admin.set_faults(json!({})).await;
    let ready = e.wait_ready("cloud-500").await;
    assert_eq!(e.instances_named(&status(&ready).instance_name.unwrap()).await.len(), 1);

    // 409 on every call: CloudUnavailable, then recovery.
    e.admin
        .set_faults(json!({ "errors": { "*": { "resourceInUse": 1.0 } } }))
        .await;
    e.create("cloud-409", spec(json!({}))).await;
    e.wait_reason("cloud-409", "Synced", "CloudUnavailable").await;
    let listing_calls = e.admin.calls_total("DescribeDBInstances").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = e.admin.calls_total("DescribeDBInstances").await - listing_calls;
    assert!(
        during <= 30,
        "{during} listing calls in 4 s during an outage: backoff expected"
    );
    e.admin.set_faults(json!({})).await;
    e.wait_ready("cloud-409").await;

    // Credentials rejected (object credentials with a wrong secret), then fixed.
    e.secret(
        "creds",
        &[("accessKeyId", KEY_ID), ("accessKeySecret", "wrong-secret-DO-NOT-LEAK")],
    )
    .await;
    e.provider_config("creds", "creds").await;
    e.create(
        "bad-creds",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } })),
    )
    .await;
    let o = e.wait_reason("bad-creds", "Synced", "CloudRejected").await;
    assert!(conditions_message(&o, "Synced").contains("SignatureDoesNotMatch"));
    e.secret("creds", &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
        .await;
    e.provider_config("creds", "creds").await;
    e.wait_ready("bad-creds").await;
    e.sim.shutdown().await;
}

#[tokio::test]
async fn adoption_observe_only_retain_and_external_deletion() {
    let e = env("policies", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let _op = e.operator();

    // Adoption: no create, an Adopted event, deletion deletes it (policy Delete).
    let adopted = precreate(&e, "made-in-console").await;
    e.create("adopt", spec(json!({ "instanceUuid": adopted }))).await;
    let o = e.wait_ready("adopt").await;
    assert_eq!(status(&o).instance_uuid.as_deref(), Some(adopted.as_str()));
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        1,
        "only the test's own create"
    );
    assert!(e.has_event("adopt", "Adopted").await);
    // Adopting a UUID that does not exist.
    e.create(
        "adopt-missing",
        spec(json!({ "instanceUuid": "00000000-0000-0000-0000-000000000000" })),
    )
    .await;
    e.wait_reason("adopt-missing", "Synced", "InstanceNotFound").await;

    // ObserveOnly: reports, never creates or deletes, no finalizer.
    let observed = precreate(&e, "observed").await;
    e.create(
        "observe",
        spec(json!({ "instanceUuid": observed, "managementPolicy": "ObserveOnly" })),
    )
    .await;
    let o = e.wait_ready("observe").await;
    assert!(o.finalizers().is_empty());
    e.create("observe-none", spec(json!({ "managementPolicy": "ObserveOnly" })))
        .await;
    e.wait_reason("observe-none", "Synced", "InstanceNotFound").await;
    e.delete("observe").await;
    e.wait_gone("observe").await;

    // Retain: the instance stays.
    e.create("retain", spec(json!({ "deletionPolicy": "Retain" }))).await;
    let o = e.wait_ready("retain").await;
    let retained = status(&o).instance_uuid.unwrap();
    e.delete("retain").await;
    e.wait_gone("retain").await;
    assert!(e.has_event("retain", "Retained").await);
    assert_eq!(e.admin.calls_total("DeleteDBInstance").await, 0);
    let uuids: Vec<String> = e
        .admin
        .instances()
        .await
        .iter()
        .map(|i| i["listed"]["InstanceUuid"].as_str().unwrap().to_owned())
        .collect();
    assert!(uuids.contains(&observed) && uuids.contains(&retained), "{uuids:?}");

    // Externally deleted: reported, never re-created.
    e.create("external", spec(json!({}))).await;
    let o = e.wait_ready("external").await;
    let creates = e.admin.calls_total("CreateDBInstance").await;
    e.admin.vanish(&status(&o).instance_uuid.unwrap()).await;
    let o = e.wait_reason("external", "Ready", "ExternallyDeleted").await;
    assert_eq!(reason_of(&o, "Synced").as_deref(), Some("ExternallyDeleted"));
    assert_eq!(status(&o).phase, Some(cds_redis_operator::crd::Phase::Failed));
    assert!(e.has_event("external", "ExternallyDeleted").await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        creates,
        "no silent re-create"
    );
    // Its deletion releases at once (nothing left to delete).
    e.delete("external").await;
    e.wait_gone("external").await;
    // The adopted one, deleted with policy Delete.
    e.delete("adopt").await;
    e.wait_gone("adopt").await;
    assert!(
        !e.admin
            .instances()
            .await
            .iter()
            .any(|i| i["listed"]["InstanceUuid"] == adopted.as_str())
    );
    e.sim.shutdown().await;
}

#[tokio::test]
async fn password_change_is_reported_and_the_connection_secret_keeps_the_real_password_and_follows_a_move() {
    let e = env("pwsync", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let _op = e.operator();
    e.create("p", spec(json!({ "writeConnectionSecretToRef": { "name": "p-conn" } })))
        .await;
    e.wait_ready("p").await;
    e.secret("pw", &[("password", "a-new-password-DO-NOT-LEAK")]).await;
    let o = e.wait_reason("p", "Synced", "PasswordOutOfSync").await;
    assert_eq!(
        cond_status(&o, "Ready").as_deref(),
        Some("True"),
        "the instance still works"
    );
    assert!(e.has_event_of("p", Some("Warning"), "PasswordOutOfSync").await);
    let conn = e.secrets.get("p-conn").await.unwrap();
    assert_eq!(conn.data.unwrap()["password"].0, PASSWORD.as_bytes());
    // No password or hash in status.
    let text = serde_json::to_string(&o.status).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains("a-new-password"));
    // Put back: in sync again.
    e.secret("pw", &[("password", PASSWORD)]).await;
    let o = e.wait_reason("p", "Synced", "ReconcileSuccess").await;

    // The cloud moves the instance (a failover): status and the connection Secret follow.
    let uuid = status(&o).instance_uuid.unwrap();
    e.admin.move_to(&uuid, "10.9.8.7", 6390).await;
    let o = e
        .wait("p", "the new endpoint in status", |o| {
            status(o)
                .endpoint
                .is_some_and(|ep| ep.host == "10.9.8.7" && ep.port == 6390)
        })
        .await;
    assert_eq!(cond_status(&o, "Ready").as_deref(), Some("True"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let data = e.secrets.get("p-conn").await.unwrap().data.unwrap();
        let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        if text("host") == "10.9.8.7" {
            assert_eq!(text("port"), "6390");
            assert_eq!(text("uri"), format!("redis://:{PASSWORD}@10.9.8.7:6390"));
            assert_eq!(text("password"), PASSWORD);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connection Secret not rewritten: {}",
            text("host")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(e.has_event_of("p", Some("Normal"), "EndpointChanged").await);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn rotated_object_credentials_take_effect_without_a_restart() {
    let mut cfg = fast_sim();
    cfg.access_keys.push("AKIDrotated:rotated-secret-DO-NOT-LEAK".into());
    let e = env("rotate", cfg).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret("creds", &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
        .await;
    e.provider_config("creds", "creds").await;
    let _op = e.operator();
    e.create(
        "r",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } })),
    )
    .await;
    e.wait_ready("r").await;
    // Rotate to a revoked key: the next reconcile uses it and is refused.
    e.secret(
        "creds",
        &[("accessKeyId", "AKIDrevoked"), ("accessKeySecret", "whatever")],
    )
    .await;
    e.provider_config("creds", "creds").await;
    e.wait_reason("r", "Synced", "CloudRejected").await;
    // Rotate to the new valid key: back to normal, same instance.
    e.secret(
        "creds",
        &[
            ("accessKeyId", "AKIDrotated"),
            ("accessKeySecret", "rotated-secret-DO-NOT-LEAK"),
        ],
    )
    .await;
    e.provider_config("creds", "creds").await;
    e.wait_reason("r", "Synced", "ReconcileSuccess").await;
    assert_eq!(e.admin.instances().await.len(), 1);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn rotated_operator_credentials_in_a_mounted_directory_take_effect_without_a_restart() {
    let mut cfg = fast_sim();
    cfg.access_keys.push("AKIDrotated:rotated-secret-DO-NOT-LEAK".into());
    let e = env("rotdir", cfg).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    // A mounted Secret: the kubelet swaps the files atomically; so does this helper.
    let dir = tempfile::tempdir().unwrap();
    let put = |id: &str, secret: &str| {
        for (name, value) in [("accessKeyId", id), ("accessKeySecret", secret)] {
            let tmp = dir.path().join(format!(".{name}.tmp"));
            std::fs::write(&tmp, value).unwrap();
            std::fs::rename(&tmp, dir.path().join(name)).unwrap();
        }
    };
    put("AKIDrevoked", "whatever");
    let dir_arg = dir.path().display().to_string();
    let _op = e.operator_with(vec!["--credentials-dir", &dir_arg], vec![]);
    e.create("d", spec(json!({}))).await;
    e.wait_reason("d", "Synced", "CloudRejected").await;
    assert!(
        e.admin.instances().await.is_empty(),
        "nothing created with a refused key"
    );
    put("AKIDrotated", "rotated-secret-DO-NOT-LEAK");
    e.wait_ready("d").await;
    assert_eq!(
        e.instances_named(&status(&e.api.get("d").await.unwrap()).instance_name.unwrap())
            .await
            .len(),
        1
    );
    e.delete("d").await;
    e.wait_gone("d").await;
    assert!(e.admin.instances().await.is_empty());
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies_and_never_acts_before() {
    let e = env("leader", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let mut a = e.replica("replica-a");
    e.create("before", spec(json!({}))).await;
    e.wait_ready("before").await;
    let mut b = e.replica("replica-b");
    // b is a standby: ready, not leading, reconciling nothing.
    eventually("b serves metrics", || async { !b.metrics_text().await.is_empty() }).await;
    assert!(b.metrics_text().await.contains("cds_redis_leader 0"));
    assert!(a.metrics_text().await.contains("cds_redis_leader 1"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !b.logs().contains("starting the RedisInstance controller"),
        "the standby acted:\n{}",
        b.logs()
    );
    // The leader dies without releasing the lease; b takes over after it expires.
    a.kill();
    let t = Instant::now();
    e.create("after", spec(json!({}))).await;
    e.wait_ready("after").await;
    eprintln!(
        "failover: a new object became Ready {:?} after the leader was killed",
        t.elapsed()
    );
    assert!(b.logs().contains("became leader"));
    assert_eq!(e.admin.instances().await.len(), 2, "one instance per object");
    // A clean stop releases the lease at once.
    assert!(b.stop().await, "graceful shutdown on SIGTERM");
    let lease: k8s_openapi::api::coordination::v1::Lease =
        Api::namespaced(e.cp.client().await, &e.ns).get("lease").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn no_secret_appears_in_logs_events_status_or_metrics() {
    let e = env("leaks", fast_sim()).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret(
        "creds",
        &[("accessKeyId", KEY_ID), ("accessKeySecret", "wrong-secret-DO-NOT-LEAK")],
    )
    .await;
    e.provider_config("creds", "creds").await;
    let op = e.operator();
    e.create(
        "l1",
        spec(json!({ "writeConnectionSecretToRef": { "name": "l1-conn" } })),
    )
    .await;
    e.create(
        "l2",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } })),
    )
    .await;
    e.wait_ready("l1").await;
    e.wait_reason("l2", "Synced", "CloudRejected").await;
    e.admin
        .set_faults(json!({ "errors": { "*": { "internalError": 1.0 } } }))
        .await;
    e.create("l3", spec(json!({}))).await;
    e.wait_reason("l3", "Synced", "CloudUnavailable").await;
    let mut everything = op.logs();
    everything += &op.metrics_text().await;
    for name in ["l1", "l2", "l3"] {
        everything += &format!("{:?}", e.events(name).await);
        everything += &serde_json::to_string(&e.api.get(name).await.unwrap().status).unwrap();
    }
    assert!(
        everything.contains("cds_redis_cloud_calls_total"),
        "metrics were captured"
    );
    // And every operator log of this test run so far (the tests run in parallel, and use the
    // same test secrets).
    for entry in std::fs::read_dir(e.cp.dir.join("operators")).unwrap().flatten() {
        everything += &std::fs::read_to_string(entry.path()).unwrap_or_default();
    }
    for secret in [
        PASSWORD,
        KEY_SECRET,
        "wrong-secret-DO-NOT-LEAK",
        "a-new-password-DO-NOT-LEAK",
        "rotated-secret-DO-NOT-LEAK",
        "Signature=",
    ] {
        let at = everything.find(secret);
        assert!(
            at.is_none(),
            "{secret} leaked: ...{}...",
            &everything[at.unwrap().saturating_sub(200)..(at.unwrap() + 200).min(everything.len())]
        );
    }
    e.sim.shutdown().await;
}

/// The steps the operator log shows for `object`, with the number of the reconcile that took
/// each (its log span).
fn steps_of(logs: &str, object: &str) -> Vec<(u64, String)> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "acting" && v["fields"]["object"] == object)
        .map(|v| {
            let step = v["fields"]["step"].as_str().unwrap_or_default();
            let name = step.split(['(', ' ']).next().unwrap_or_default().to_owned();
            (v["span"]["id"].as_u64().unwrap_or(0), name)
        })
        .collect()
}

#[tokio::test]
async fn the_first_reconcile_adds_the_finalizer_and_reports_conditions() {
    let e = env("first-reconcile", fast_sim()).await;
    let op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("early", spec(json!({}))).await;
    e.wait_ready("early").await;
    let steps = steps_of(&op.logs(), &format!("{}/early", e.ns));
    let first = steps.first().cloned().unwrap_or_default();
    assert_eq!(first.1, "AddFinalizer", "{steps:?}");
    // The same reconcile went on to create (and so wrote Ready, Synced and the intent), rather
    // than waiting for the watch event of its own finalizer.
    assert!(
        steps.iter().any(|(id, s)| *id == first.0 && s == "Create"),
        "finalizer and create in one reconcile: {steps:?}"
    );
    assert!(first.0 > 0, "the reconcile span is logged: {steps:?}");
    e.sim.shutdown().await;
}
