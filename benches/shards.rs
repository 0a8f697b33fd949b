//! `scripts/bench-shards.sh`: N objects brought to Ready and deleted by one operator process, and
//! by three (the default process and shards `a` and `b`, the objects split evenly by the shard
//! label), on the real control plane and the simulator. Prints per run: time to all Ready and to
//! all deleted, per process the time until its own part was Ready, its peak RSS and CPU seconds,
//! and the cloud creates and deletes per object (the floor is 1 each: no object created twice).
//!
//!   cargo bench --bench shards -- [--n 5000] [--processes 1,3]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::{RedisInstance, SHARD_LABEL};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::control_plane::{self, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

/// The simulator's time from CreateDBInstance to RUNNING, and from DeleteDBInstance to gone
/// (as `benches/scale.rs`).
const CREATE_DELAY: Duration = Duration::from_secs(2);
const DELETE_DELAY: Duration = Duration::from_secs(1);
/// Objects created by the benchmark at the same time, and each process's `--concurrency`.
const CONCURRENCY: usize = 16;

/// The value after the command-line flag `name`, if given.
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The shard of object `i` with `processes` processes (`None`: the default process's).
fn shard_of(i: usize, processes: usize) -> Option<&'static str> {
    match (processes, i % 3) {
        (1, _) | (_, 0) => None,
        (_, 1) => Some("a"),
        _ => Some("b"),
    }
}

fn object(i: usize, shard: Option<&str>) -> RedisInstance {
    let labels: BTreeMap<&str, &str> = shard.map(|s| (SHARD_LABEL, s)).into_iter().collect();
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": format!("r{i:05}"), "labels": labels },
        "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467, "passwordSecretRef": { "name": "pw" } },
    }))
    .unwrap()
}

/// `/proc/PID/status` field `name`, in KiB.
fn status_kb(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The objects, retrying what a loaded apiserver drops now and then.
async fn list(api: &Api<RedisInstance>) -> Vec<RedisInstance> {
    loop {
        match api.list(&ListParams::default()).await {
            Ok(l) => return l.items,
            Err(e) => {
                eprintln!("listing the objects failed ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One process of a run.
struct Process {
    /// `default`, `a` or `b`.
    shard: &'static str,
    op: Operator,
    pid: u32,
    /// How many objects it owns.
    owns: usize,
    /// When all its objects were Ready, from the first create.
    ready_after: Option<Duration>,
    /// Peak RSS (KiB) and CPU seconds when all objects were Ready.
    at_ready: (u64, f64),
}

/// One run: `processes` (1 or 3) processes on `n` objects; prints its table.
async fn run(n: usize, processes: usize) {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, &format!("shards-{n}-{processes}")).await;
    let s = sim::start(CREATE_DELAY, DELETE_DELAY).await;
    let admin = Admin::of(&s);
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "bench-password" } }))
            .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pw)
        .await
        .unwrap();

    let shards: &[(&'static str, &[&str])] = if processes == 1 {
        &[("default", &[])]
    } else {
        &[
            ("default", &["--known-shards", "a,b"]),
            ("a", &["--shard", "a"]),
            ("b", &["--shard", "b"]),
        ]
    };
    let concurrency = CONCURRENCY.to_string();
    let mut procs: Vec<Process> = shards
        .iter()
        .map(|(shard, flags)| {
            let mut opts = OperatorOptions::new(&ns, s.endpoint());
            opts.args = [
                "--identity",
                shard,
                "--leader-election-id",
                "bench",
                "--busy-poll-interval",
                "2s",
                "--steady-poll-interval",
                "30s",
                "--visibility-grace",
                "10s",
                "--cds-qps",
                "100",
                "--cds-burst",
                "100",
                "--concurrency",
                concurrency.as_str(),
            ]
            .iter()
            .chain(flags.iter())
            .map(|a| (*a).to_owned())
            .collect();
            opts.env = vec![("RUST_LOG".into(), "info".into())];
            opts.name = format!("bench-shards-{shard}");
            let op = Operator::start(cp, opts);
            let pid = op.pid().expect("the operator runs");
            let owns = (0..n)
                .filter(|i| shard_of(*i, processes).unwrap_or("default") == *shard)
                .count();
            Process {
                shard,
                op,
                pid,
                owns,
                ready_after: None,
                at_ready: (0, 0.0),
            }
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let t0 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let obj = object(i, shard_of(i, processes));
                for attempt in 1.. {
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(s)) if s.code == 409 => return,
                        Err(e) if attempt < 10 => {
                            eprintln!("creating r{i:05} failed ({e}); retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => panic!("creating an object failed 10 times: {e}"),
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let applied = t0.elapsed();

    // Every second: which process's part is all Ready.
    let all_ready = loop {
        let objects = list(&api).await;
        let mut ready: BTreeMap<&str, usize> = BTreeMap::new();
        for o in objects.iter().filter(|o| support::env::is_ready(o)) {
            let shard = match o.labels().get(SHARD_LABEL).map(String::as_str) {
                Some("a") if processes == 3 => "a",
                Some("b") if processes == 3 => "b",
                _ => "default",
            };
            *ready.entry(shard).or_default() += 1;
        }
        for p in procs.iter_mut().filter(|p| p.ready_after.is_none()) {
            if ready.get(p.shard).copied().unwrap_or(0) == p.owns {
                p.ready_after = Some(t0.elapsed());
            }
        }
        if procs.iter().all(|p| p.ready_after.is_some()) {
            break t0.elapsed();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for p in &mut procs {
        p.at_ready = (status_kb(p.pid, "VmHWM:"), cpu_seconds(p.pid));
    }
    let creates = admin.calls_total("CreateDBInstance").await;

    let t1 = Instant::now();
    while let Err(e) = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
    {
        eprintln!("deleting the objects failed ({e}); retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    while !list(&api).await.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let deleted = t1.elapsed();
    let deletes = admin.calls_total("DeleteDBInstance").await;
    let left = admin.instances().await.len();
    let end: Vec<(u64, f64)> = procs
        .iter()
        .map(|p| (status_kb(p.pid, "VmHWM:"), cpu_seconds(p.pid)))
        .collect();
    for p in &mut procs {
        p.op.stop().await;
    }
    s.shutdown().await;

    let mib = |kb: u64| kb as f64 / 1024.0;
    println!();
    println!(
        "### N = {n}, {processes} process{}",
        if processes == 1 { "" } else { "es" }
    );
    println!();
    println!("| figure | measured |");
    println!("| --- | --- |");
    println!(
        "| objects applied (API, {CONCURRENCY} in parallel) | {:.1} s |",
        applied.as_secs_f64()
    );
    println!(
        "| time to all Ready (simulator create delay {}s) | {:.1} s |",
        CREATE_DELAY.as_secs(),
        all_ready.as_secs_f64()
    );
    println!(
        "| time to all deleted (simulator delete delay {}s) | {:.1} s |",
        DELETE_DELAY.as_secs(),
        deleted.as_secs_f64()
    );
    println!(
        "| CreateDBInstance / DeleteDBInstance calls per object | {:.3} / {:.3} |",
        creates as f64 / n as f64,
        deletes as f64 / n as f64
    );
    println!("| cloud instances left after delete | {left} |");
    for (p, (hwm_end, cpu_end)) in procs.iter().zip(&end) {
        println!(
            "| process `{}` ({} objects): its part Ready after / peak RSS until Ready, whole run / CPU to Ready, whole run | {:.1} s / {:.1}, {:.1} MiB / {:.1}, {:.1} s |",
            p.shard,
            p.owns,
            p.ready_after.unwrap_or_default().as_secs_f64(),
            mib(p.at_ready.0),
            mib(*hwm_end),
            p.at_ready.1,
            cpu_end
        );
    }
    let total_hwm: u64 = end.iter().map(|(h, _)| h).sum();
    let total_cpu: f64 = end.iter().map(|(_, c)| c).sum();
    println!(
        "| all processes: peak RSS summed / CPU seconds, whole run | {:.1} MiB / {:.1} s |",
        mib(total_hwm),
        total_cpu
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; a test run skips the long benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("a benchmark: run it with cargo bench (see scripts/bench-shards.sh)");
        return;
    }
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(5000);
    let processes: Vec<usize> = arg("--processes")
        .unwrap_or_else(|| "1,3".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|p| matches!(p, 1 | 3))
        .collect();
    println!("# cds-redis-operator shards benchmark");
    println!();
    println!(
        "{} cores; operator release build, per process --concurrency {CONCURRENCY} --cds-qps 100 --busy-poll-interval 2s --steady-poll-interval 30s, leader election on (one Lease per process).",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    for p in processes {
        run(n, p).await;
    }
}
