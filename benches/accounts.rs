//! `scripts/bench-accounts.sh`: one account's trouble must not slow another (issue 15, item 2),
//! on the real control plane and the simulator.
//!
//! Account B's N objects are brought to Ready four times, each time by a fresh operator and
//! simulator: alone; next to N objects of a healthy account A (the same load on the apiserver,
//! the reference for the next two); next to N objects of an account A whose every call the
//! simulator answers with 429 `RequestLimitExceeded`; next to N objects of an account A whose
//! every call takes `--slow-ms` (default 3000 ms). Objects of both accounts are created
//! interleaved. The benchmark prints B's time to Ready in each case, with its ratios, and each
//! account's calls (a throttled account is paused, not hammered).
//!
//!   cargo bench --bench accounts -- [--n 200] [--slow-ms 3000]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::crd::account::ProviderConfig;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use support::control_plane::{self, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

/// Objects created at the same time.
const IN_FLIGHT: usize = 16;
/// Account A: the one in trouble.
const A: (&str, &str) = ("AKIDbenchA0001", "sk-bench-a-DO-NOT-LEAK");
/// Account B: the one that must not notice.
const B: (&str, &str) = ("AKIDbenchB0002", "sk-bench-b-DO-NOT-LEAK");

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// What happens to account A's calls.
#[derive(Clone, Copy, Debug)]
enum Trouble {
    /// A has no objects.
    None,
    /// A is as healthy as B: the same load on the apiserver and the operator, no trouble.
    Healthy,
    /// Every call of A is answered 429.
    Throttled,
    /// Every call of A takes this long.
    Slow(u64),
}

impl Trouble {
    fn label(self) -> String {
        match self {
            Self::None => "B alone".into(),
            Self::Healthy => "B next to A, A healthy".into(),
            Self::Throttled => "B next to A, A throttled (429 on every call)".into(),
            Self::Slow(ms) => format!("B next to A, A slow ({ms} ms per call)"),
        }
    }

    fn faults(self) -> Value {
        match self {
            Self::None | Self::Healthy => json!({}),
            Self::Throttled => json!({ "byAccessKey": { A.0: { "errors": { "*": { "throttling": 1.0 } } } } }),
            Self::Slow(ms) => json!({ "byAccessKey": { A.0: { "latencyMs": ms } } }),
        }
    }
}

fn instance(name: &str, account: &str) -> RedisInstance {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": name },
        "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
                  "passwordSecretRef": { "name": "pw" },
                  "providerConfigRef": { "kind": "ProviderConfig", "name": account } },
    }))
    .unwrap()
}

fn ready(o: &RedisInstance) -> bool {
    o.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One run: B's time to Ready, and A's calls over the run.
struct Outcome {
    b_ready: Duration,
    a_calls: u64,
    b_calls: u64,
}

async fn run_once(n: usize, trouble: Trouble) -> Outcome {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "bench-accounts").await;
    let mut config = cds_redis_operator::simulator::SimulatorConfig::for_tests(
        sim::KEY_ID,
        sim::KEY_SECRET,
        Duration::from_secs(2),
        Duration::from_secs(1),
    );
    for (id, secret) in [A, B] {
        config.access_keys.push(format!("{id}:{secret}"));
    }
    let s = sim::start_with(config).await;
    let admin = Admin::of(&s);
    admin.set_faults(trouble.faults()).await;
    let mut opts = OperatorOptions::new(&ns, s.endpoint());
    opts.args = [
        "--leader-election=false",
        "--busy-poll-interval",
        "2s",
        "--cds-qps",
        "100",
        "--cds-burst",
        "100",
    ]
    .map(str::to_owned)
    .to_vec();
    opts.name = "bench-accounts".into();
    let op = Operator::start(cp, opts);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let configs: Api<ProviderConfig> = Api::namespaced(client.clone(), &ns);
    let secret = |name: &str, data: Value| -> Secret {
        serde_json::from_value(json!({ "metadata": { "name": name }, "stringData": data })).unwrap()
    };
    secrets
        .create(
            &PostParams::default(),
            &secret("pw", json!({ "password": "bench-password" })),
        )
        .await
        .unwrap();
    for (name, (id, key)) in [("a", A), ("b", B)] {
        secrets
            .create(
                &PostParams::default(),
                &secret(name, json!({ "accessKeyId": id, "accessKeySecret": key })),
            )
            .await
            .unwrap();
        let pc: ProviderConfig = serde_json::from_value(json!({
            "metadata": { "name": name }, "spec": { "credentials": { "secretRef": { "name": name } } },
        }))
        .unwrap();
        configs.create(&PostParams::default(), &pc).await.unwrap();
    }
    let instances: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let with_a = !matches!(trouble, Trouble::None);
    let objects: Vec<RedisInstance> = (0..n)
        .flat_map(|i| {
            let b = instance(&format!("b{i:05}"), "b");
            let a = with_a.then(|| instance(&format!("a{i:05}"), "a"));
            std::iter::once(b).chain(a)
        })
        .collect();
    let t0 = Instant::now();
    futures::stream::iter(objects)
        .for_each_concurrent(IN_FLIGHT, |o| {
            let instances = instances.clone();
            async move {
                instances.create(&PostParams::default(), &o).await.unwrap();
            }
        })
        .await;
    let b_ready = loop {
        let list = instances.list(&ListParams::default()).await.unwrap();
        let done = list
            .items
            .iter()
            .filter(|o| o.metadata.name.as_deref().is_some_and(|n| n.starts_with('b')) && ready(o))
            .count();
        if done == n {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(1800), "B not Ready within 30 min");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let outcome = Outcome {
        b_ready,
        a_calls: admin.calls_by_key(A.0).await,
        b_calls: admin.calls_by_key(B.0).await,
    };
    drop(op);
    s.shutdown().await;
    outcome
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(200);
    let slow: u64 = arg("--slow-ms").and_then(|v| v.parse().ok()).unwrap_or(3000);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("accounts benchmark: N = {n} objects of account B (and N of account A), commit {commit}");
    println!("operator: --cds-qps 100 --cds-burst 100 per account, --concurrency 8; simulator: creates take 2 s");
    let (mut alone, mut healthy) = (None, None);
    for trouble in [Trouble::None, Trouble::Healthy, Trouble::Throttled, Trouble::Slow(slow)] {
        let o = run_once(n, trouble).await;
        let secs = o.b_ready.as_secs_f64();
        let alone = *alone.get_or_insert(secs);
        if matches!(trouble, Trouble::Healthy) {
            healthy = Some(secs);
        }
        let vs_healthy = healthy.map_or(String::new(), |h| format!(", x{:.2} of A healthy", secs / h));
        println!(
            "{:<48} B Ready in {:>7.1} s (x{:.2} of alone{vs_healthy})   calls: A {:>6}, B {:>6}",
            trouble.label(),
            secs,
            secs / alone,
            o.a_calls,
            o.b_calls,
        );
    }
}
