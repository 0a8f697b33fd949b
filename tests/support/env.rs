//! A namespace on the shared control plane, a simulator and the operator binary: what every
//! controller-level test starts from, with helpers to create objects and wait for conditions.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::account::ProviderConfig;
use cds_redis_operator::crd::{RedisInstance, RedisInstanceStatus};
use cds_redis_operator::simulator::{RunningSimulator, SimulatorConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::control_plane::{self, ControlPlane, unique_namespace};
use super::operator::{Operator, OperatorOptions};
use super::sim::{self, Admin, KEY_ID, KEY_SECRET};

pub const PASSWORD: &str = "Tenant-Redis-Pw-DO-NOT-LEAK";
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Env {
    pub cp: &'static ControlPlane,
    pub ns: String,
    pub api: Api<RedisInstance>,
    pub secrets: Api<Secret>,
    pub sim: RunningSimulator,
    pub admin: Admin,
}

pub async fn env(prefix: &str, sim_config: SimulatorConfig) -> Env {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, prefix).await;
    let sim = sim::start_with(sim_config).await;
    let admin = Admin::of(&sim);
    Env {
        cp,
        api: Api::namespaced(client.clone(), &ns),
        secrets: Api::namespaced(client, &ns),
        ns,
        sim,
        admin,
    }
}

pub fn fast_sim() -> SimulatorConfig {
    SimulatorConfig::for_tests(
        KEY_ID,
        KEY_SECRET,
        Duration::from_millis(800),
        Duration::from_millis(500),
    )
}

impl Env {
    pub fn operator(&self) -> Operator {
        self.operator_with(vec![], vec![])
    }

    /// A replica with leader election on the Lease `lease`, as `identity`.
    pub fn replica(&self, identity: &str) -> Operator {
        self.operator_with(vec!["--identity", identity, "--leader-election-id", "lease"], vec![])
    }

    pub fn operator_with(&self, args: Vec<&str>, env: Vec<(&str, &str)>) -> Operator {
        let mut opts = OperatorOptions::new(&self.ns, self.sim.endpoint());
        opts.args = args.into_iter().map(str::to_owned).collect();
        opts.env = env.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Operator::start(self.cp, opts)
    }

    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<String, String> = data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let s: Secret = serde_json::from_value(json!({ "metadata": { "name": name }, "stringData": data })).unwrap();
        self.secrets
            .patch(name, &PatchParams::apply("tests").force(), &Patch::Apply(&s))
            .await
            .unwrap();
    }

    /// A `ProviderConfig` `name` in the namespace reading the Secret `secret`.
    pub async fn provider_config(&self, name: &str, secret: &str) {
        let api: Api<ProviderConfig> = Api::namespaced(self.api.clone().into_client(), &self.ns);
        let pc: ProviderConfig = serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig",
            "metadata": { "name": name }, "spec": { "credentials": { "secretRef": { "name": secret } } },
        }))
        .unwrap();
        api.patch(name, &PatchParams::apply("tests").force(), &Patch::Apply(&pc))
            .await
            .unwrap();
    }

    /// A Secret `name` with the simulator's account and a `ProviderConfig` of the same name
    /// reading it (`{"providerConfigRef": {"kind": "ProviderConfig", "name": name}}` uses it).
    pub async fn account(&self, name: &str) {
        self.secret(name, &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
            .await;
        self.provider_config(name, name).await;
    }

    pub async fn create(&self, name: &str, spec: Value) -> RedisInstance {
        let obj: RedisInstance = serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
            "metadata": { "name": name }, "spec": spec,
        }))
        .unwrap();
        self.api.create(&PostParams::default(), &obj).await.unwrap()
    }

    pub async fn wait<F: Fn(&RedisInstance) -> bool>(&self, name: &str, what: &str, ok: F) -> RedisInstance {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let got = self.api.get_opt(name).await.unwrap();
            if let Some(o) = &got
                && ok(o)
            {
                return o.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{name}: timed out waiting for {what}; last status: {:#?}",
                    got.and_then(|o| o.status)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_reason(&self, name: &str, cond: &str, reason: &str) -> RedisInstance {
        self.wait(name, &format!("{cond} reason {reason}"), |o| {
            reason_of(o, cond).as_deref() == Some(reason)
        })
        .await
    }

    pub async fn wait_ready(&self, name: &str) -> RedisInstance {
        self.wait(name, "Ready=True", |o| {
            cond_status(o, "Ready").as_deref() == Some("True")
        })
        .await
    }

    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while self.api.get_opt(name).await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "{name} still exists (finalizer stuck?)");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn delete(&self, name: &str) {
        self.api.delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// Cloud instances named `name` (from the simulator's full state).
    pub async fn instances_named(&self, name: &str) -> Vec<Value> {
        self.admin
            .instances()
            .await
            .into_iter()
            .filter(|i| i["listed"]["InstanceName"] == name)
            .collect()
    }

    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let client = self.cp.client().await;
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, &self.ns);
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Whether an Event with this reason exists for `name`, waiting up to 15 s for it (the
    /// operator publishes Events right after the status write a test may have just seen).
    pub async fn has_event(&self, name: &str, reason: &str) -> bool {
        self.has_event_of(name, None, reason).await
    }

    pub async fn has_event_of(&self, name: &str, type_: Option<&str>, reason: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self
                .events(name)
                .await
                .iter()
                .any(|(t, r, _)| r == reason && type_.is_none_or(|want| want == t))
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub fn status(o: &RedisInstance) -> RedisInstanceStatus {
    o.status.clone().unwrap_or_default()
}

pub fn cond_status(o: &RedisInstance, t: &str) -> Option<String> {
    status(o)
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

/// Whether `o` is `Ready=True`.
pub fn is_ready(o: &RedisInstance) -> bool {
    cond_status(o, "Ready").as_deref() == Some("True")
}

pub fn reason_of(o: &RedisInstance, t: &str) -> Option<String> {
    status(o)
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.reason.clone())
}

pub fn spec(extra: Value) -> Value {
    let mut s = json!({
        "regionId": "CN_Beijing_A",
        "vdcId": "vdc-1",
        "basePipeId": "pipe-1",
        "paasGoodsId": 12467,
        "passwordSecretRef": { "name": "pw" },
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            s.as_object_mut().unwrap().remove(k);
        } else {
            s[k] = v.clone();
        }
    }
    s
}

pub async fn eventually<F: Fn() -> Fut, Fut: Future<Output = bool>>(what: &str, f: F) {
    let deadline = Instant::now() + TIMEOUT;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn conditions_message(o: &RedisInstance, t: &str) -> String {
    status(o)
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

pub async fn precreate(e: &Env, name: &str) -> String {
    let c = sim::client(&e.sim);
    let req = sim::create_request(name, PASSWORD);
    c.create_instance(&req).await.unwrap().instance_uuid
}
