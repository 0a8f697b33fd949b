//! The soak: rounds of creating objects, injecting cloud faults, killing the operator at a random
//! moment (SIGKILL) and restarting it, and deleting some objects; then the invariants.
//! Used by the short soak of the test suite and by `scripts/soak.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cds_redis_operator::crd::{RedisInstance, default_instance_name};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::control_plane::{self, unique_namespace};
use super::operator::{Operator, OperatorOptions};
use super::sim::{self, Admin, KEY_ID, KEY_SECRET};

/// How long and how hard to soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Rounds at most.
    pub rounds: usize,
    /// Stop starting rounds after this long.
    pub max_duration: Duration,
    /// Objects created per round.
    pub batch: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What happened.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Rounds completed.
    pub rounds: usize,
    /// SIGKILLs of the operator.
    pub kills: usize,
    /// Objects created and deleted.
    pub created: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Faults injected by the simulator, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Cloud calls by action.
    pub calls: BTreeMap<String, u64>,
    /// Invariant violations (empty when all held).
    pub violations: Vec<String>,
    /// Time to converge after the last round.
    pub converge: Duration,
    /// Live objects at the end, and how many were Ready.
    pub live: usize,
    /// Ready objects at the end.
    pub ready: usize,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak: {} rounds survived, {} operator kills (SIGKILL), {} objects created, {} deleted",
            self.rounds, self.kills, self.created, self.deleted
        )?;
        writeln!(f, "faults injected: {:?}", self.faults)?;
        writeln!(f, "cloud calls: {:?}", self.calls)?;
        writeln!(
            f,
            "converged in {:.1}s; {} live objects, {} Ready",
            self.converge.as_secs_f64(),
            self.live,
            self.ready
        )?;
        if self.violations.is_empty() {
            writeln!(f, "invariant violations: 0")
        } else {
            writeln!(f, "invariant violations: {}", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  - {v}")?;
            }
            Ok(())
        }
    }
}

fn random_faults(rng: &mut StdRng) -> Value {
    let actions = [
        "CreateDBInstance",
        "DeleteDBInstance",
        "DescribeDBInstances",
        "DescribeAvailableDBConfig",
    ];
    let mut errors = serde_json::Map::new();
    for a in actions {
        if rng.random_bool(0.5) {
            errors.insert(
                a.into(),
                json!({ "internalError": rng.random_range(0.0..0.3), "resourceInUse": rng.random_range(0.0..0.15), "throttling": rng.random_range(0.0..0.1) }),
            );
        }
    }
    let mode = if rng.random_bool(0.5) { "Drop" } else { "ServerError" };
    json!({
        "errors": errors,
        "latencyMs": rng.random_range(0..150),
        "lostResponses": {
            "CreateDBInstance": { "rate": rng.random_range(0.0..0.5), "mode": mode },
            "DeleteDBInstance": { "rate": rng.random_range(0.0..0.3), "mode": "ServerError" },
        },
        "visibilityLagMs": rng.random_range(0..1500),
    })
}

/// Runs the soak and checks the invariants.
pub async fn run(config: SoakConfig) -> SoakReport {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "soak").await;
    let s = sim::start(Duration::from_millis(700), Duration::from_millis(400)).await;
    let admin = Admin::of(&s);
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "soak-password" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    let start_operator = || {
        let mut opts = OperatorOptions::new(&ns, s.endpoint());
        opts.args = [
            "--leader-election=false",
            "--visibility-grace",
            "3s",
            "--busy-poll-interval",
            "300ms",
            "--steady-poll-interval",
            "5s",
            "--cds-qps",
            "200",
            "--cds-burst",
            "50",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        Operator::start(cp, opts)
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut report = SoakReport::default();
    let mut op = start_operator();
    let mut live: BTreeMap<String, bool> = BTreeMap::new(); // name -> retain
    let mut retained_names: BTreeSet<String> = BTreeSet::new();
    let started = Instant::now();
    let mut n = 0;
    for round in 0..config.rounds {
        if started.elapsed() > config.max_duration {
            break;
        }
        admin.set_faults(random_faults(&mut rng)).await;
        for _ in 0..config.batch {
            n += 1;
            let name = format!("s{n}");
            let retain = rng.random_bool(0.2);
            let mut spec = json!({ "regionId": "CN_Beijing_A", "vdcId": "v", "basePipeId": "p", "paasGoodsId": 12467, "passwordSecretRef": { "name": "pw" } });
            if retain {
                spec["deletionPolicy"] = json!("Retain");
            }
            let obj: RedisInstance = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance", "metadata": { "name": name }, "spec": spec })).unwrap();
            api.create(&PostParams::default(), &obj).await.unwrap();
            live.insert(name, retain);
            report.created += 1;
        }
        // Delete some live objects.
        let names: Vec<String> = live.keys().cloned().collect();
        for name in names {
            if rng.random_bool(0.25) {
                let retain = live.remove(&name).unwrap_or(false);
                if retain && let Ok(o) = api.get(&name).await {
                    retained_names.insert(default_instance_name(&ns, &name, &o.uid().unwrap_or_default()));
                }
                let _ = api.delete(&name, &DeleteParams::default()).await;
                report.deleted += 1;
            }
        }
        // Kill the operator at a random moment of its work, then restart it.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..2500))).await;
        op.kill();
        report.kills += 1;
        op = start_operator();
        report.rounds = round + 1;
    }
    // Faults off; let everything converge.
    admin.set_faults(json!({})).await;
    let converge_start = Instant::now();
    let deadline = converge_start + Duration::from_secs(240);
    loop {
        let objs = api.list(&Default::default()).await.unwrap().items;
        let deleting = objs.iter().filter(|o| o.metadata.deletion_timestamp.is_some()).count();
        let settled = objs
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .all(|o| {
                let conds = o.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
                let ready = conds.iter().any(|c| c.type_ == "Ready" && c.status == "True");
                let failed = conds.iter().any(|c| c.type_ == "Stalled" && c.status == "True");
                ready || failed
            });
        if deleting == 0 && settled {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.converge = converge_start.elapsed();
    // The invariants.
    let objs = api.list(&Default::default()).await.unwrap().items;
    let instances = admin.instances().await;
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in &instances {
        by_name
            .entry(i["listed"]["InstanceName"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(i["listed"]["InstanceUuid"].as_str().unwrap_or_default().to_owned());
    }
    let mut expected_names = BTreeSet::new();
    for o in &objs {
        let name = o.name_any();
        if o.metadata.deletion_timestamp.is_some() {
            report.violations.push(format!(
                "{name}: stuck finalizer (still deleting after {:.0}s)",
                report.converge.as_secs_f64()
            ));
            continue;
        }
        report.live += 1;
        let st = o.status.clone().unwrap_or_default();
        let conds = &st.conditions;
        let ready = conds.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            report.ready += 1;
        } else if !conds
            .iter()
            .any(|c| c.type_ == "Synced" && c.status == "False" && !c.reason.is_empty())
        {
            report
                .violations
                .push(format!("{name}: neither Ready nor failed with a reason: {conds:?}"));
        }
        let instance_name = default_instance_name(&ns, &name, &o.uid().unwrap_or_default());
        expected_names.insert(instance_name.clone());
        let found = by_name.get(&instance_name).cloned().unwrap_or_default();
        if found.len() != 1 {
            report.violations.push(format!(
                "{name}: {} cloud instances named {instance_name}: {found:?}",
                found.len()
            ));
        } else if st.instance_uuid.as_deref() != Some(found[0].as_str()) {
            report.violations.push(format!(
                "{name}: status UUID {:?} is not the instance {}",
                st.instance_uuid, found[0]
            ));
        }
    }
    for (name, uuids) in &by_name {
        if !expected_names.contains(name) && !retained_names.contains(name) {
            report.violations.push(format!(
                "orphaned cloud instance(s) {uuids:?} named {name} without an object"
            ));
        }
    }
    let calls = admin.calls_json().await;
    if let Some(m) = calls["faultsInjected"].as_object() {
        report.faults = m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
    }
    if let Some(m) = calls["calls"].as_object() {
        report.calls = m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum()),
                )
            })
            .collect();
    }
    let _ = (KEY_ID, KEY_SECRET);
    op.kill();
    s.shutdown().await;
    report
}
