//! `scripts/bench.sh`: scale and cost figures on the real control plane and the simulator.
//!
//! For each N: create N RedisInstances, wait until all are Ready, hold steady state, delete all,
//! wait until they are gone. Prints one table per N: time to all Ready / all deleted (with the
//! simulator's delays), cloud calls per object by action, cloud calls per minute in steady state,
//! Kubernetes writes per object (from the audit log, by the operator's own ServiceAccount), and
//! the operator's peak RSS and CPU seconds, each with its floor and the ratio to it.
//!
//! Two more measurements per N:
//! - **operator restart**: with the N objects Ready and steady state measured, the operator is
//!   killed (SIGKILL) and started again with the same options; until the new process has reconciled
//!   all N objects (its `cds_redis_objects{phase="Running"}` gauge reaches N) the benchmark counts
//!   cloud calls by action (floor: one listing), Kubernetes writes (floor: none), the time and the
//!   new process's peak RSS. The figures of the first table rows leave the restart window out
//!   (calls, writes, CPU, peak RSS), so they measure what they measured before.
//! - **apiserver floor**: after the run, a minimal kube-rs client in this process makes the same
//!   writes on N throw-away objects in a fresh namespace (the objects' creates as the benchmark
//!   makes them, then per object the status applies, finalizer patch, Events and Secrets the
//!   operator made on the way to Ready), 16 in flight like the operator, with the operator's two
//!   watches open, and no cloud in the way: the time the same control plane on the same cores needs
//!   to absorb those writes. Time to Ready over it is the operator's own overhead.
//!
//!   cargo bench --bench scale -- [--n 100,1000,5000] [--steady-secs 180] [--steady-poll-secs 30]

#[path = "scale/floor.rs"]
mod floor;
#[path = "scale/floor_writes.rs"]
mod floor_writes;
#[path = "scale/measure.rs"]
mod measure;
#[path = "scale/phases.rs"]
mod phases;
#[path = "scale/report.rs"]
mod report;
#[path = "scale/restart.rs"]
mod restart;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::simulator::RunningSimulator;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::control_plane::{self, ControlPlane, kubeconfig_yaml, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

use floor::*;
use floor_writes::*;
use measure::*;
use phases::*;
use report::*;
use restart::*;

/// The value after the command-line flag `name`, if given.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The simulator's time from CreateDBInstance to RUNNING (the floor of the time to Ready).
const CREATE_DELAY: Duration = Duration::from_secs(2);
/// The simulator's time from DeleteDBInstance to the instance gone (the floor of the time to deleted).
const DELETE_DELAY: Duration = Duration::from_secs(1);

/// Objects reconciled (and created by the benchmark, and written by the floor client) at the same
/// time: the operator's `--concurrency`.
const CONCURRENCY: usize = 16;

/// A ServiceAccount `name` in `ns` bound to `cluster-admin`, and a kubeconfig with its token, so
/// the audit log tells its requests apart. Returns the kubeconfig and the audit log's user name.
async fn service_account(
    cp: &ControlPlane,
    client: &kube::Client,
    ns: &str,
    name: &str,
    binding: &str,
) -> (PathBuf, String) {
    let sa: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": binding },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &crb)
        .await
        .unwrap();
    let token = cp.kubectl(&["create", "token", name, "-n", ns, "--duration=6h"]);
    let kubeconfig = cp.dir.join(format!("kubeconfig-{ns}-{name}"));
    std::fs::write(
        &kubeconfig,
        kubeconfig_yaml(
            &cp.server,
            &cp.ca_pem,
            &format!("    token: {}\n", String::from_utf8_lossy(&token.stdout).trim()),
        ),
    )
    .unwrap();
    (kubeconfig, format!("system:serviceaccount:{ns}:{name}"))
}

/// One run for `n` objects, phase after phase, and its table.
async fn run(n: usize, steady: Duration, steady_poll: Duration) {
    let (b, s) = setup(n, steady_poll).await;
    let op = Operator::start(b.cp, operator_options(&b));
    let pid = op_pid(&op);
    let before = prepare(&b).await;

    let t0 = Instant::now();
    create_all(&b).await;
    let applied = t0.elapsed();
    let ready = wait_ready(&b, pid, t0, applied, &before).await;
    let steady = steady_state(&b, pid, steady).await;

    // Restart: a crash with N Ready objects, and a new process with the same options.
    let (op, restart) = restart(&b, op).await;

    let end = delete_all(&b, op_pid(&op), &restart, &before).await;
    drop(op);
    s.shutdown().await;

    // The apiserver floor: the same writes from a minimal client, nothing else running.
    let floor = apiserver_floor(b.cp, &b.client, n, &ready.writes, &ready.status).await;

    print_report(&Figures {
        n,
        steady_poll,
        ready,
        steady,
        restart,
        end,
        floor,
    });
}

/// The name of the benchmark's `i`-th object.
fn object_name(i: usize) -> String {
    format!("r{i:05}")
}

/// The benchmark's `i`-th object, as it creates it.
fn object(i: usize) -> RedisInstance {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": object_name(i) },
        "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467, "passwordSecretRef": { "name": "pw" } },
    }))
    .unwrap()
}

/// Creates `obj`, retrying what a loaded apiserver drops now and then (a create that did land
/// answers AlreadyExists the second time); returns the object as stored, when it was read.
async fn create_retried<K>(api: &Api<K>, obj: &K) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    for attempt in 1.. {
        match api.create(&PostParams::default(), obj).await {
            Ok(o) => return Some(o),
            Err(kube::Error::Api(s)) if s.code == 409 => return None,
            Err(e) if attempt < 10 => {
                eprintln!(
                    "creating {} failed ({e}); retrying",
                    obj.meta().name.as_deref().unwrap_or("")
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("creating an object failed 10 times: {e}"),
        }
    }
    unreachable!()
}

/// The running operator's process id.
fn op_pid(op: &Operator) -> u32 {
    op.pid().expect("the operator runs")
}

/// Prints the heading, then one table per N (`--n`).
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
