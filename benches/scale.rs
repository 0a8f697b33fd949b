//! `scripts/bench.sh`: scale and cost figures on the real control plane and the simulator.
//!
//! For each N: create N RedisInstances, wait until all are Ready, hold steady state, delete all,
//! wait until they are gone. Prints one table per N: time to all Ready / all deleted (with the
//! simulator's delays), cloud calls per object by action, cloud calls per minute in steady state,
//! Kubernetes writes per object (from the audit log, by the operator's own ServiceAccount), and
//! the operator's peak RSS and CPU seconds, each with its floor and the ratio to it.
//!
//!   cargo bench --bench scale -- [--n 100,1000,5000] [--steady-secs 180] [--steady-poll-secs 30]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::control_plane::{self, kubeconfig_yaml, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

const CREATE_DELAY: Duration = Duration::from_secs(2);
const DELETE_DELAY: Duration = Duration::from_secs(1);

/// Kubernetes writes by the operator, from the audit log.
#[derive(Default, Debug, Clone)]
struct Writes {
    status: u64,
    finalizer: u64,
    events: u64,
    secrets: u64,
    other: u64,
}

impl Writes {
    fn total(&self) -> u64 {
        self.status + self.finalizer + self.events + self.secrets + self.other
    }
    fn minus(&self, o: &Writes) -> Writes {
        Writes {
            status: self.status - o.status,
            finalizer: self.finalizer - o.finalizer,
            events: self.events - o.events,
            secrets: self.secrets - o.secrets,
            other: self.other - o.other,
        }
    }
}

fn writes(audit: &std::path::Path, user: &str) -> Writes {
    let text = std::fs::read_to_string(audit).unwrap_or_default();
    let mut w = Writes::default();
    for line in text.lines() {
        if !line.contains(user) || !line.contains("\"stage\":\"ResponseComplete\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["user"]["username"] != user
            || !matches!(v["verb"].as_str(), Some("create" | "update" | "patch" | "delete"))
        {
            continue;
        }
        let res = v["objectRef"]["resource"].as_str().unwrap_or_default();
        let sub = v["objectRef"]["subresource"].as_str().unwrap_or_default();
        match (res, sub) {
            ("redisinstances", "status") => w.status += 1,
            ("redisinstances", _) => w.finalizer += 1,
            ("events", _) => w.events += 1,
            ("secrets", _) => w.secrets += 1,
            _ => w.other += 1,
        }
    }
    w
}

fn calls(v: &Value) -> BTreeMap<String, u64> {
    v["calls"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmHWM:`), 0 when absent.
fn status_kb(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The operator's resident set now, in KiB: (anonymous, file-backed such as its own code).
fn rss_now(pid: u32) -> (u64, u64) {
    (status_kb(pid, "RssAnon:"), status_kb(pid, "RssFile:"))
}

/// Peak RSS in KiB and CPU seconds so far.
fn proc_stats(pid: u32) -> (u64, f64) {
    let hwm_kb = status_kb(pid, "VmHWM:");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hwm_kb, ticks / hz)
}

async fn count_ready(api: &Api<RedisInstance>) -> (usize, usize) {
    // A loaded apiserver may drop a large list now and then: retry rather than lose the run.
    let list = loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => break list,
            Err(e) => {
                eprintln!("listing the objects failed ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let ready = list
        .items
        .iter()
        .filter(|o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    (list.items.len(), ready)
}

async fn run(n: usize, steady: Duration, steady_poll: Duration) {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, &format!("bench-{n}")).await;
    // The operator gets its own identity, so the audit log tells its writes apart.
    let sa: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": "bench-operator" } })).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("{ns}-operator") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "ServiceAccount", "name": "bench-operator", "namespace": ns }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &crb)
        .await
        .unwrap();
    let token = cp.kubectl(&["create", "token", "bench-operator", "-n", &ns, "--duration=6h"]);
    let kubeconfig = cp.dir.join(format!("kubeconfig-{ns}"));
    std::fs::write(
        &kubeconfig,
        kubeconfig_yaml(
            &cp.server,
            &cp.ca_pem,
            &format!("    token: {}\n", String::from_utf8_lossy(&token.stdout).trim()),
        ),
    )
    .unwrap();
    let user = format!("system:serviceaccount:{ns}:bench-operator");

    let s = sim::start(CREATE_DELAY, DELETE_DELAY).await;
    let admin = Admin::of(&s);
    let mut opts = OperatorOptions::new(&ns, s.endpoint());
    let steady_poll_s = format!("{}s", steady_poll.as_secs());
    opts.args = [
        "--leader-election=false",
        "--busy-poll-interval",
        "2s",
        "--steady-poll-interval",
        steady_poll_s.as_str(),
        "--visibility-grace",
        "10s",
        "--cds-qps",
        "100",
        "--cds-burst",
        "100",
        "--concurrency",
        "16",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    opts.env = vec![
        ("KUBECONFIG".into(), kubeconfig.display().to_string()),
        ("RUST_LOG".into(), "info".into()),
    ];
    opts.name = format!("bench-{n}");
    let op = Operator::start(cp, opts);
    let pid = op_pid(&op);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "bench-password" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes_before = writes(&cp.audit_log(), &user);

    // Create N.
    let t0 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let obj: RedisInstance = serde_json::from_value(json!({
                    "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
                    "metadata": { "name": format!("r{i:05}") },
                    "spec": { "regionId": "CN_Beijing_A", "vdcId": "v", "basePipeId": "p", "paasGoodsId": 12467, "passwordSecretRef": { "name": "pw" } },
                }))
                .unwrap();
                // A loaded apiserver may drop a request now and then: retry (a create that did
                // land answers AlreadyExists the second time).
                for attempt in 1.. {
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => break,
                        Err(e) if attempt < 10 => {
                            eprintln!("creating {} failed ({e}); retrying", obj.metadata.name.as_deref().unwrap_or(""));
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => panic!("creating an object failed 10 times: {e}"),
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let applied = t0.elapsed();
    loop {
        let (_, ready) = count_ready(&api).await;
        if ready == n {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let t_ready = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes_ready = writes(&cp.audit_log(), &user).minus(&writes_before);
    let calls_ready = calls(&admin.calls_json().await);
    let (hwm_ready, cpu_ready) = proc_stats(pid);
    let (anon_ready, file_ready) = rss_now(pid);

    // Steady state.
    let calls_a = calls(&admin.calls_json().await);
    let writes_a = writes(&cp.audit_log(), &user);
    let (_, cpu_a) = proc_stats(pid);
    tokio::time::sleep(steady).await;
    let calls_b = calls(&admin.calls_json().await);
    let writes_b = writes(&cp.audit_log(), &user);
    let (hwm_steady, cpu_b) = proc_stats(pid);
    let minutes = steady.as_secs_f64() / 60.0;

    // Delete all.
    let t1 = Instant::now();
    while let Err(e) = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
    {
        eprintln!("deleting the objects failed ({e}); retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    loop {
        let (left, _) = count_ready(&api).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let t_deleted = t1.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls_end = calls(&admin.calls_json().await);
    let writes_total = writes(&cp.audit_log(), &user).minus(&writes_before);
    let (rss_kb, cpu_total) = proc_stats(pid);
    let left_in_cloud = admin.instances().await.len();

    let nf = n as f64;
    let per = |m: &BTreeMap<String, u64>, a: &str| *m.get(a).unwrap_or(&0) as f64 / nf;
    let steady_rate = |a: &str| (*calls_b.get(a).unwrap_or(&0) - *calls_a.get(a).unwrap_or(&0)) as f64 / minutes;
    let listing_floor = 60.0 / steady_poll.as_secs_f64();
    println!();
    println!("## N = {n}");
    println!();
    println!("| figure | measured | floor | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| objects applied (API, 16 in parallel) | {:.1} s | | |",
        applied.as_secs_f64()
    );
    println!(
        "| time to all Ready (simulator create delay {}s) | {:.1} s | {:.1} s | {:.1} |",
        CREATE_DELAY.as_secs(),
        t_ready.as_secs_f64(),
        CREATE_DELAY.as_secs_f64(),
        t_ready.as_secs_f64() / CREATE_DELAY.as_secs_f64()
    );
    println!(
        "| time to all deleted (simulator delete delay {}s) | {:.1} s | {:.1} s | {:.1} |",
        DELETE_DELAY.as_secs(),
        t_deleted.as_secs_f64(),
        DELETE_DELAY.as_secs_f64(),
        t_deleted.as_secs_f64() / DELETE_DELAY.as_secs_f64()
    );
    for action in ["CreateDBInstance", "DeleteDBInstance"] {
        println!(
            "| {action} calls per object | {:.3} | 1 | {:.3} |",
            per(&calls_end, action),
            per(&calls_end, action)
        );
    }
    for action in ["DescribeDBInstances", "DescribeAvailableDBConfig"] {
        println!(
            "| {action} calls per object (whole run) | {:.3} | | |",
            per(&calls_end, action)
        );
    }
    println!(
        "| listings until all Ready | {} | | |",
        calls_ready.get("DescribeDBInstances").unwrap_or(&0)
    );
    let steady_total: f64 = calls_b.keys().map(|a| steady_rate(a)).sum();
    println!(
        "| cloud calls per minute, steady ({:.0} min, poll {}s) | {:.2} | {:.2} | {:.2} |",
        minutes,
        steady_poll.as_secs(),
        steady_total,
        listing_floor,
        steady_total / listing_floor
    );
    let writes_row = |label: &str, w: &Writes| {
        println!(
            "| Kubernetes writes per object, {label} | {:.2} (status {:.2}, finalizer {:.2}, events {:.2}, secrets {:.2}) | | |",
            w.total() as f64 / nf,
            w.status as f64 / nf,
            w.finalizer as f64 / nf,
            w.events as f64 / nf,
            w.secrets as f64 / nf
        )
    };
    writes_row("apply → Ready", &writes_ready);
    let ws = writes_b.minus(&writes_a);
    println!(
        "| Kubernetes writes in steady state | {} in {:.0} min | 0 | |",
        ws.total(),
        minutes
    );
    writes_row("whole life", &writes_total);
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "| operator peak RSS: until Ready / until end of steady state / whole run | {:.1} / {:.1} / {:.1} MiB | | |",
        mib(hwm_ready),
        mib(hwm_steady),
        mib(rss_kb)
    );
    println!(
        "| operator RSS once all are Ready: heap and other anonymous memory / file-backed (its code) | {:.1} / {:.1} MiB | | |",
        mib(anon_ready),
        mib(file_ready)
    );
    println!(
        "| operator CPU seconds: to Ready / steady / total | {:.1} / {:.1} / {:.1} | | |",
        cpu_ready,
        cpu_b - cpu_a,
        cpu_total
    );
    println!("| cloud instances left after delete | {left_in_cloud} | 0 | |");
    drop(op);
    s.shutdown().await;
}

fn op_pid(op: &Operator) -> u32 {
    op.pid().expect("the operator runs")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: a test run skips the
    // long benchmark instead of running it.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("a benchmark: run it with cargo bench (see scripts/bench.sh, scripts/soak.sh)");
        return;
    }
    let ns: Vec<usize> = arg("--n")
        .unwrap_or_else(|| "100,1000,5000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let steady = Duration::from_secs(arg("--steady-secs").and_then(|v| v.parse().ok()).unwrap_or(180));
    let steady_poll = Duration::from_secs(arg("--steady-poll-secs").and_then(|v| v.parse().ok()).unwrap_or(30));
    println!("# cds-redis-operator benchmark");
    println!();
    println!(
        "Machine: {} cores, {} ; kube-apiserver and etcd from the test harness; simulator in-process.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m
                .lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned()))
            .map(|kb| format!("{} GiB RAM", kb.parse::<u64>().unwrap_or(0) / 1024 / 1024))
            .unwrap_or_default()
    );
    println!(
        "Operator: release build, --concurrency 16, --cds-qps 100, --busy-poll-interval 2s, --steady-poll-interval {}s.",
        steady_poll.as_secs()
    );
    for n in ns {
        run(n, steady, steady_poll).await;
    }
}
