//! Real cascades on a control plane with kube-controller-manager (`testing.md` §6): what an
//! object owns is garbage-collected with it, and deleting a namespace full of objects and their
//! Secrets finishes, with every cloud instance deleted first.

mod support;

use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::crd::account::ProviderConfig;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use support::control_plane::{self, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

const PASSWORD: &str = "Gc-Test-Pw-DO-NOT-LEAK";
/// Bound of each wait: create → Ready takes about 2 s here (a 0.8 s cloud create, 0.3 s polls).
const TIMEOUT: Duration = Duration::from_secs(60);

fn spec(connection_secret: &str) -> serde_json::Value {
    json!({
        "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
        "passwordSecretRef": { "name": "pw" },
        "writeConnectionSecretToRef": { "name": connection_secret },
    })
}

async fn create_password(secrets: &Api<Secret>) {
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": PASSWORD } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
}

async fn create(api: &Api<RedisInstance>, name: &str, connection_secret: &str) -> RedisInstance {
    let obj: RedisInstance = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": name }, "spec": spec(connection_secret),
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

/// Polls `check` every 200 ms until it holds; panics with `what` after `TIMEOUT`.
async fn until<F: Fn() -> Fut, Fut: Future<Output = bool>>(what: &str, check: F) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < TIMEOUT,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

async fn ready(api: &Api<RedisInstance>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_some_and(|o| {
        o.status
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
}

/// The names of `names` that still exist.
async fn existing(secrets: &Api<Secret>, names: &[String]) -> Vec<String> {
    let mut left = vec![];
    for n in names {
        if secrets.get_opt(n).await.unwrap().is_some() {
            left.push(n.clone());
        }
    }
    left
}

#[tokio::test]
async fn a_deleted_object_takes_its_connection_secret_and_password_record_with_it() {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "gc").await;
    let s = sim::start(Duration::from_millis(800), Duration::from_millis(500)).await;
    let admin = Admin::of(&s);
    let op = Operator::start(cp, OperatorOptions::new(&ns, s.endpoint()));
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    create_password(&secrets).await;
    let obj = create(&api, "cache", "cache-conn").await;
    until("cache to be Ready", || ready(&api, "cache")).await;
    let owned = vec![
        "cache-conn".to_owned(),
        format!("cdsredis-password-{}", obj.uid().unwrap()),
    ];
    for name in &owned {
        let secret = secrets.get(name).await.unwrap();
        let owner = &secret.owner_references()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            (obj.uid().unwrap().as_str(), Some(true)),
            "{name} is owned by the object"
        );
    }
    assert_eq!(admin.instances().await.len(), 1);

    // A plain delete (background propagation, what `kubectl delete` does): the operator's
    // finalizer deletes the cloud instance first, then the object goes, then the garbage
    // collector deletes what it owned.
    let deleted = Instant::now();
    api.delete("cache", &DeleteParams::default()).await.unwrap();
    until("the object to be gone", || async {
        api.get_opt("cache").await.unwrap().is_none()
    })
    .await;
    let object_gone = deleted.elapsed();
    assert!(
        admin.instances().await.is_empty(),
        "the cloud instance is deleted before the object goes"
    );
    assert_eq!(admin.calls("DeleteDBInstance", "success").await, 1);
    until("the garbage collector to delete the owned Secrets", || async {
        existing(&secrets, &owned).await.is_empty()
    })
    .await;
    eprintln!(
        "the object was gone {object_gone:?} after its deletion, its Secrets {:?} after",
        deleted.elapsed()
    );
    // The user's password Secret is not the object's: it stays.
    assert!(secrets.get_opt("pw").await.unwrap().is_some());
    assert!(!op.logs().contains(PASSWORD));
    s.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_with_objects_and_their_secrets_finishes_after_deleting_every_cloud_instance() {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "gc-ns").await;
    // The operator's Lease lives in a namespace of its own, as with the chart: a Lease inside
    // the deleted namespace would go with it and the leader would stop.
    let operator_ns = unique_namespace(&client, "gc-operator").await;
    let s = sim::start(Duration::from_millis(800), Duration::from_millis(500)).await;
    let admin = Admin::of(&s);
    let mut opts = OperatorOptions::new(&ns, s.endpoint());
    opts.args = vec!["--leader-election-namespace".into(), operator_ns];
    let mut op = Operator::start(cp, opts);
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    create_password(&secrets).await;
    // b uses an account Secret of its own (Ownership rule 4): the namespace controller deletes
    // it with everything else, and b still needs it to delete its instance.
    let creds: Secret = serde_json::from_value(json!({
        "metadata": { "name": "creds" },
        "stringData": { "accessKeyId": sim::KEY_ID, "accessKeySecret": sim::KEY_SECRET },
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &creds).await.unwrap();
    // ... through a ProviderConfig of the namespace, deleted with everything else too.
    let configs: Api<ProviderConfig> = Api::namespaced(client.clone(), &ns);
    let config: ProviderConfig = serde_json::from_value(json!({
        "metadata": { "name": "creds" },
        "spec": { "credentials": { "secretRef": { "name": "creds" } } },
    }))
    .unwrap();
    configs.create(&PostParams::default(), &config).await.unwrap();
    let mut uids = vec![];
    for name in ["a", "b"] {
        uids.push(create(&api, name, &format!("{name}-conn")).await.uid().unwrap());
    }
    api.patch(
        "b",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({ "spec": { "providerConfigRef": { "kind": "ProviderConfig", "name": "creds" } } }),
        ),
    )
    .await
    .unwrap();
    for name in ["a", "b"] {
        until(&format!("{name} to be Ready"), || ready(&api, name)).await;
    }
    let secret_names: Vec<String> = secrets
        .list(&Default::default())
        .await
        .unwrap()
        .iter()
        .map(|s| s.name_any())
        .collect();
    let records = uids.iter().map(|u| format!("cdsredis-password-{u}"));
    for name in ["pw", "creds", "a-conn", "b-conn"]
        .map(str::to_owned)
        .into_iter()
        .chain(records)
    {
        assert!(secret_names.contains(&name), "{name} in {secret_names:?}");
    }
    assert_eq!(admin.instances().await.len(), 2);
    // The config and its Secret are held while b may still delete its instance with them.
    const IN_USE: &str = "cds.capitalonline.net/in-use";
    until("the config and its Secret to be held", || async {
        let c = configs.get("creds").await.unwrap();
        let s = secrets.get("creds").await.unwrap();
        c.finalizers().iter().any(|f| f == IN_USE) && s.finalizers().iter().any(|f| f == IN_USE)
    })
    .await;

    // The namespace controller deletes everything in it; the Secrets and the config are marked
    // deleted at once, the objects wait for the operator's finalizer, and b's account (config
    // and Secret) stays readable until b's instance is deleted.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deleted = Instant::now();
    namespaces.delete(&ns, &DeleteParams::default()).await.unwrap();
    until("every cloud instance to be deleted", || async {
        admin.instances().await.is_empty()
    })
    .await;
    let instances_gone = deleted.elapsed();
    until("the namespace to finish deleting", || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
    eprintln!(
        "namespace deletion: cloud instances gone after {instances_gone:?}, the namespace after {:?}",
        deleted.elapsed()
    );
    // Each instance deleted once; no object was left behind with a stuck finalizer (the
    // namespace could not have finished otherwise), and the operator is still running.
    assert_eq!(admin.calls("DeleteDBInstance", "success").await, 2);
    assert!(
        op.running(),
        "the operator survives the namespace deletion:\n{}",
        op.logs()
    );
    assert!(!op.logs().contains(PASSWORD));
    s.shutdown().await;
}
