//! Accounts as objects (`../shared/spec/accounts.md`) on the real control plane against the
//! simulator: `ProviderConfig`s and `ClusterProviderConfig`s check their credentials and say so,
//! objects use the account they name (or `default`, or the operator's), every bad reference is a
//! clear condition, and a config in use cannot go.
//!
//! The tests run one at a time: the all-namespaces operator of one would act on the objects of
//! another, and a `ClusterProviderConfig` named `default` serves every namespace.

mod support;

use std::collections::BTreeMap;

use cds_redis_operator::crd::account::{AccountConfig, ClusterProviderConfig, ProviderConfig, ProviderConfigStatus};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::control_plane::unique_namespace;
use crate::support::env::*;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::sim::{KEY_ID, KEY_SECRET};

/// One test at a time (see the module docs).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A second account the simulator accepts.
const TEAM: (&str, &str) = ("AKIDteam0002", "sk-team-secret-DO-NOT-LEAK");
/// A third one.
const DEFAULT: (&str, &str) = ("AKIDdefault03", "sk-default-secret-DO-NOT-LEAK");
const IN_USE: &str = "cds.capitalonline.net/in-use";

fn sim_with_accounts() -> cds_redis_operator::simulator::SimulatorConfig {
    let mut cfg = fast_sim();
    for (id, secret) in [TEAM, DEFAULT] {
        cfg.access_keys.push(format!("{id}:{secret}"));
    }
    cfg
}

fn condition(s: Option<&ProviderConfigStatus>, t: &str) -> Option<(String, String, String)> {
    s?.conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn apply<K>(api: &Api<K>, name: &str, body: Value)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply("tests").force(), &Patch::Apply(&body))
        .await
        .unwrap();
}

async fn secret(api: &Api<Secret>, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    apply(
        api,
        name,
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name }, "stringData": data }),
    )
    .await;
}

/// Waits until `get` returns a config status whose `Ready` condition has `ready_reason`.
async fn wait_config<F, Fut>(what: &str, get: F, ready_reason: &str) -> ProviderConfigStatus
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<ProviderConfigStatus>>,
{
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let status = get().await;
        if condition(status.as_ref(), "Ready").is_some_and(|(_, r, _)| r == ready_reason) {
            return status.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: timed out waiting for Ready reason {ready_reason}; status: {status:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The status of config `name`, if it exists.
async fn status_of<K: AccountConfig>(api: &Api<K>, name: &str) -> Option<ProviderConfigStatus> {
    api.get_opt(name)
        .await
        .unwrap()
        .and_then(|c| c.config_status().cloned())
}

fn pc(secret: &str, extra: Value) -> Value {
    let mut spec = json!({ "credentials": { "secretRef": { "name": secret } } });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

#[tokio::test]
async fn provider_configs_check_their_credentials_count_their_users_and_are_held_while_used() {
    let _one = ONE_AT_A_TIME.lock().await;
    let e = env("pc", sim_with_accounts()).await;
    let client = e.cp.client().await;
    let pcs: Api<ProviderConfig> = Api::namespaced(client.clone(), &e.ns);
    let op = e.operator();
    e.secret("pw", &[("password", PASSWORD)]).await;
    let put = |name: &str, spec: Value| {
        let body = json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig", "metadata": { "name": name }, "spec": spec });
        let (pcs, name) = (pcs.clone(), name.to_owned());
        async move { apply(&pcs, &name, body).await }
    };

    // Good credentials, with their own keys: Ready after one signed call.
    e.secret("team", &[("id", TEAM.0), ("secret", TEAM.1)]).await;
    put(
        "team",
        json!({ "credentials": { "secretRef": { "name": "team", "accessKeyIdKey": "id", "accessKeySecretKey": "secret" } }, "qps": 20, "burst": 5 }),
    )
    .await;
    let s = wait_config("team", || status_of(&pcs, "team"), "CredentialsVerified").await;
    assert_eq!((s.users, s.observed_generation), (Some(0), Some(1)));
    assert!(condition(Some(&s), "Stalled").is_none());

    // Every bad input is a condition of the config (Stalled: kstatus says Failed).
    put("nosecret", pc("absent", json!({}))).await;
    let s = wait_config("nosecret", || status_of(&pcs, "nosecret"), "SecretNotFound").await;
    assert_eq!(condition(Some(&s), "Stalled").unwrap().0, "True");
    e.secret("halfkey", &[("accessKeyId", TEAM.0)]).await;
    put("halfkey", pc("halfkey", json!({}))).await;
    let s = wait_config("halfkey", || status_of(&pcs, "halfkey"), "CredentialsMissing").await;
    assert!(
        condition(Some(&s), "Ready").unwrap().2.contains("accessKeySecret"),
        "{s:?}"
    );
    e.secret(
        "wrong",
        &[("accessKeyId", TEAM.0), ("accessKeySecret", "not-it-DO-NOT-LEAK")],
    )
    .await;
    put("wrong", pc("wrong", json!({}))).await;
    let s = wait_config("wrong", || status_of(&pcs, "wrong"), "InvalidCredentials").await;
    assert!(
        condition(Some(&s), "Ready").unwrap().2.contains("DescribeRegins"),
        "{s:?}"
    );
    // Rotating the Secret fixes it, without a restart.
    e.secret("wrong", &[("accessKeyId", TEAM.0), ("accessKeySecret", TEAM.1)])
        .await;
    wait_config("wrong (rotated)", || status_of(&pcs, "wrong"), "CredentialsVerified").await;

    // An object uses the account it names: its create is signed with the team's key.
    e.create(
        "r1",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "team" } })),
    )
    .await;
    e.wait_ready("r1").await;
    let creates: Vec<Value> = e
        .admin
        .writes()
        .await
        .into_iter()
        .filter(|w| w["action"] == "CreateDBInstance")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0]["accessKeyId"], TEAM.0, "{creates:?}");
    eventually("team counts its user and is held, with its Secret", || async {
        let c = pcs.get("team").await.unwrap();
        let s: Secret = e.secrets.get("team").await.unwrap();
        c.status.as_ref().and_then(|s| s.users) == Some(1)
            && c.finalizers().iter().any(|f| f == IN_USE)
            && s.finalizers().iter().any(|f| f == IN_USE)
    })
    .await;

    // Bad references are conditions of the object, never a crash.
    e.create(
        "r2",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "later" } })),
    )
    .await;
    let o = e.wait_reason("r2", "Synced", "ProviderConfigNotFound").await;
    assert!(
        conditions_message(&o, "Synced").contains("\"later\" not found"),
        "{o:?}"
    );
    e.create(
        "r3",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "halfkey" } })),
    )
    .await;
    let o = e.wait_reason("r3", "Synced", "CredentialsMissing").await;
    assert!(conditions_message(&o, "Synced").contains("ProviderConfig"), "{o:?}");
    e.create("r4", spec(json!({ "providerConfigRef": { "name": "team" } })))
        .await;
    let o = e.wait_reason("r4", "Synced", "ProviderConfigNotFound").await;
    assert!(
        conditions_message(&o, "Synced").contains("kind: ProviderConfig"),
        "a ClusterProviderConfig is the default kind; the message says what exists: {o:?}"
    );
    // Fixed by creating what was missing: no restart, no delete.
    put("later", pc("team-copy", json!({}))).await;
    e.secret("team-copy", &[("accessKeyId", TEAM.0), ("accessKeySecret", TEAM.1)])
        .await;
    e.wait_ready("r2").await;
    assert_eq!(e.admin.instances().await.len(), 2);

    // A config in use cannot go: deleting it waits, and says for whom.
    pcs.delete("team", &DeleteParams::default()).await.unwrap();
    let held = wait_config_in_use(&pcs, "team").await;
    assert!(held.contains(&format!("{}/r1", e.ns)), "{held}");
    assert!(pcs.get_opt("team").await.unwrap().is_some());
    e.delete("r1").await;
    e.delete("r4").await;
    e.wait_gone("r1").await;
    eventually("the config goes once unused, and its Secret is released", || async {
        let s: Secret = e.secrets.get("team").await.unwrap();
        pcs.get_opt("team").await.unwrap().is_none() && !s.finalizers().iter().any(|f| f == IN_USE)
    })
    .await;
    assert_eq!(e.admin.instances().await.len(), 1, "r1's instance deleted, r2's kept");
    let logs = op.logs();
    for leak in [TEAM.1, "not-it-DO-NOT-LEAK", PASSWORD] {
        assert!(!logs.contains(leak), "a secret in the logs");
    }
    e.sim.shutdown().await;
}

async fn wait_config_in_use(pcs: &Api<ProviderConfig>, name: &str) -> String {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let c = pcs.get(name).await.unwrap();
        if let Some((status, reason, message)) = condition(c.status.as_ref(), "InUse") {
            assert_eq!((status.as_str(), reason.as_str()), ("True", "DeletionBlocked"));
            return message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no InUse condition: {:#?}",
            c.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn cluster_configs_serve_every_namespace_and_default_serves_the_objects_naming_none() {
    let _one = ONE_AT_A_TIME.lock().await;
    let e = env("cpc", sim_with_accounts()).await;
    let client = e.cp.client().await;
    let other = unique_namespace(&client, "cpc-secrets").await;
    let other_secrets: Api<Secret> = Api::namespaced(client.clone(), &other);
    let cpcs: Api<ClusterProviderConfig> = Api::all(client.clone());
    let mut opts = OperatorOptions::new(&e.ns, e.sim.endpoint());
    opts.all_namespaces = true;
    let op = Operator::start(e.cp, opts);
    e.secret("pw", &[("password", PASSWORD)]).await;

    // A ClusterProviderConfig reads its Secret from any namespace and serves every namespace.
    secret(
        &other_secrets,
        "team",
        &[("accessKeyId", TEAM.0), ("accessKeySecret", TEAM.1)],
    )
    .await;
    let cpc = |name: &str, secret: &str| {
        json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ClusterProviderConfig", "metadata": { "name": name },
                "spec": { "credentials": { "secretRef": { "name": secret, "namespace": other } } } })
    };
    let team = format!("team-{}", e.ns);
    apply(&cpcs, &team, cpc(&team, "team")).await;
    wait_config("team", || status_of(&cpcs, &team), "CredentialsVerified").await;
    e.create("t1", spec(json!({ "providerConfigRef": { "name": team } })))
        .await;
    e.wait_ready("t1").await;

    // A ProviderConfig of another namespace cannot be used; the condition says so.
    let others: Api<ProviderConfig> = Api::namespaced(client.clone(), &other);
    apply(
        &others,
        "local",
        json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig", "metadata": { "name": "local" }, "spec": pc("team", json!({})) }),
    )
    .await;
    e.create(
        "x1",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "local" } })),
    )
    .await;
    let o = e.wait_reason("x1", "Synced", "ProviderConfigNotFound").await;
    let msg = conditions_message(&o, "Synced");
    assert!(
        msg.contains(&other) && msg.contains("only the objects of its own namespace"),
        "{msg}"
    );

    // Without a reference: the operator's own credentials, until a `default` exists.
    e.create("d0", spec(json!({}))).await;
    e.wait_ready("d0").await;
    secret(
        &other_secrets,
        "default",
        &[("accessKeyId", DEFAULT.0), ("accessKeySecret", DEFAULT.1)],
    )
    .await;
    apply(&cpcs, "default", cpc("default", "default")).await;
    wait_config("default", || status_of(&cpcs, "default"), "CredentialsVerified").await;
    e.create("d1", spec(json!({}))).await;
    e.wait_ready("d1").await;
    let signer = |name: &'static str| {
        let admin = &e.admin;
        async move {
            admin
                .writes()
                .await
                .into_iter()
                .filter(|w| {
                    w["action"] == "CreateDBInstance" && w["instanceName"].as_str().is_some_and(|n| n.contains(name))
                })
                .map(|w| w["accessKeyId"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(signer("-t1-").await, vec![TEAM.0.to_owned()]);
    assert_eq!(signer("-d0-").await, vec![KEY_ID.to_owned()]);
    assert_eq!(signer("-d1-").await, vec![DEFAULT.0.to_owned()]);

    // Deleting `default` while objects use it is held, with the users named.
    cpcs.delete("default", &DeleteParams::default()).await.unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let message = loop {
        let c = cpcs.get("default").await.unwrap();
        if let Some((_, _, m)) = condition(c.status.as_ref(), "InUse") {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "{:#?}", c.status);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(message.contains(&format!("{}/d1", e.ns)), "{message}");
    for name in ["t1", "x1", "d0", "d1"] {
        e.delete(name).await;
    }
    for name in ["t1", "x1", "d0", "d1"] {
        e.wait_gone(name).await;
    }
    eventually("default goes once unused", || async {
        cpcs.get_opt("default").await.unwrap().is_none()
    })
    .await;
    eventually("every instance deleted, with the account that made it", || async {
        e.admin.instances().await.is_empty()
    })
    .await;
    let deletes: Vec<(String, String)> = e
        .admin
        .writes()
        .await
        .into_iter()
        .filter(|w| w["action"] == "DeleteDBInstance" && w["outcome"] == "success")
        .map(|w| {
            (
                w["instanceName"].as_str().unwrap_or_default().to_owned(),
                w["accessKeyId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    cpcs.delete(&team, &DeleteParams::default()).await.unwrap();
    eventually("the unused team config goes at once", || async {
        cpcs.get_opt(&team).await.unwrap().is_none()
    })
    .await;
    assert!(!op.logs().contains(TEAM.1) && !op.logs().contains(DEFAULT.1));
    let _ = KEY_SECRET;
    e.sim.shutdown().await;
}
