//! `scripts/bench-backups.sh`: what daily backups cost at scale, on the real control plane and the
//! simulator (issue 14, item 3).
//!
//! N RedisInstances are brought to Ready, then each gets a `RedisBackupSchedule` firing once a
//! day at a minute a little ahead (`M H * * *`, UTC). The benchmark prints: cloud calls for
//! backups while waiting for the slot (floor 0), the time from the slot until every backup is
//! Completed, `CreateBackup` and `DescribeBackups` calls per backup on the way (floors 1 and the
//! busy polls), backup calls per minute once all are completed (floor 0: completed backups are
//! checked hourly), and the operator's peak RSS.
//!
//!   cargo bench --bench backups -- [--n 1000] [--steady-secs 120]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::crd::backup::{BackupPhase, RedisBackup, RedisBackupSchedule};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use support::control_plane::{self, unique_namespace};
use support::operator::{Operator, OperatorOptions};
use support::sim::{self, Admin};

/// Objects created at the same time.
const IN_FLIGHT: usize = 16;
/// The simulator's time to make a backup.
const BACKUP_DELAY: Duration = Duration::from_secs(2);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Cloud calls by action so far.
async fn calls(admin: &Admin) -> BTreeMap<String, u64> {
    let v = admin.calls_json().await;
    v["calls"]
        .as_object()
        .map(|actions| {
            actions
                .iter()
                .map(|(a, outcomes)| {
                    let total = outcomes
                        .as_object()
                        .map(|o| o.values().filter_map(Value::as_u64).sum())
                        .unwrap_or(0);
                    (a.clone(), total)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, action: &str) -> u64 {
    after.get(action).copied().unwrap_or(0) - before.get(action).copied().unwrap_or(0)
}

/// The kernel's high-water mark of the process's RSS, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Creates `objects`, `IN_FLIGHT` at a time.
async fn create_all<K>(api: &Api<K>, objects: Vec<K>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    futures::stream::iter(objects)
        .for_each_concurrent(IN_FLIGHT, |o| async move {
            api.create(&PostParams::default(), &o).await.unwrap();
        })
        .await;
}

/// Waits until `done(list)` says every one of n is there; returns the time it took.
async fn wait_all<K, F>(api: &Api<K>, what: &str, limit: Duration, done: F) -> Duration
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&[K]) -> bool,
{
    let t0 = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        if done(&list.items) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < limit, "{what}: not done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn instance(i: usize) -> RedisInstance {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": format!("r{i:05}") },
        "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
                  "passwordSecretRef": { "name": "pw" } },
    }))
    .unwrap()
}

fn schedule(i: usize, cron: &str) -> RedisBackupSchedule {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
        "metadata": { "name": format!("daily-r{i:05}") },
        "spec": { "instanceRef": { "name": format!("r{i:05}") }, "schedule": cron, "keep": 7 },
    }))
    .unwrap()
}

/// The next whole minute at least `ahead` from now, as a daily cron expression (UTC).
fn daily_slot(ahead: Duration) -> String {
    let now = jiff::Timestamp::now();
    let at = (now + jiff::SignedDuration::try_from(ahead).unwrap() + jiff::SignedDuration::from_secs(60))
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Minute)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap();
    let utc = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} * * *", utc.minute(), utc.hour())
}

fn ready(o: &RedisInstance) -> bool {
    o.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn run(n: usize, steady: Duration) {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, &format!("bench-backups-{n}")).await;
    let mut config = cds_redis_operator::simulator::SimulatorConfig::for_tests(
        sim::KEY_ID,
        sim::KEY_SECRET,
        Duration::from_secs(2),
        Duration::from_secs(1),
    );
    config.backup_delay = BACKUP_DELAY;
    let s = sim::start_with(config).await;
    let admin = Admin::of(&s);
    let mut opts = OperatorOptions::new(&ns, s.endpoint());
    opts.args = [
        "--leader-election=false",
        "--busy-poll-interval",
        "2s",
        "--cds-qps",
        "100",
        "--cds-burst",
        "100",
        "--concurrency",
        "16",
    ]
    .map(str::to_owned)
    .to_vec();
    opts.name = format!("bench-backups-{n}");
    let op = Operator::start(cp, opts);
    let pid = op.pid().expect("the operator runs");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "bench-password" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    let instances: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    create_all(&instances, (0..n).map(instance).collect()).await;
    let to_ready = wait_all(
        &instances,
        "instances Ready",
        Duration::from_secs(1800),
        |l: &[RedisInstance]| l.iter().filter(|o| ready(o)).count() == n,
    )
    .await;

    // The schedules, each firing once a day at the same minute, a little ahead.
    let cron = daily_slot(Duration::from_secs(60 + n as u64 / 20));
    let schedules: Api<RedisBackupSchedule> = Api::namespaced(client.clone(), &ns);
    create_all(&schedules, (0..n).map(|i| schedule(i, &cron)).collect()).await;
    let before_slot = calls(&admin).await;
    let slot_wait = wait_for_cron_minute(&cron).await;
    let at_slot = calls(&admin).await;

    let backups: Api<RedisBackup> = Api::namespaced(client.clone(), &ns);
    let to_completed = wait_all(
        &backups,
        "backups Completed",
        Duration::from_secs(1800),
        |l: &[RedisBackup]| {
            l.len() == n
                && l.iter()
                    .all(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
        },
    )
    .await;
    let at_completed = calls(&admin).await;
    tokio::time::sleep(steady).await;
    let after_steady = calls(&admin).await;
    let rss = peak_rss_kib(pid);
    let backup_calls_waiting: u64 = ["CreateBackup", "DescribeBackups", "DownloadBackup", "DeleteBackup"]
        .iter()
        .map(|a| delta(&at_slot, &before_slot, a))
        .sum();
    let per = |a: &str| delta(&at_completed, &at_slot, a) as f64 / n as f64;
    let steady_per_min = ["CreateBackup", "DescribeBackups", "DownloadBackup", "DeleteBackup"]
        .iter()
        .map(|a| delta(&after_steady, &at_completed, a))
        .sum::<u64>() as f64
        / steady.as_secs_f64()
        * 60.0;
    println!();
    println!("## N = {n} instances, each with a daily RedisBackupSchedule (`{cron}`, UTC)");
    println!();
    println!("| figure | measured | floor |");
    println!("| --- | --- | --- |");
    println!("| instances to Ready (setup) | {:.1} s | |", to_ready.as_secs_f64());
    println!(
        "| backup cloud calls while waiting for the slot ({:.0} s, {n} schedules) | {backup_calls_waiting} | 0 |",
        slot_wait.as_secs_f64()
    );
    println!(
        "| time from the slot to all {n} backups Completed (simulator backup delay {}s) | {:.1} s | {}.0 s |",
        BACKUP_DELAY.as_secs(),
        to_completed.as_secs_f64(),
        BACKUP_DELAY.as_secs()
    );
    println!("| CreateBackup calls per backup | {:.3} | 1 |", per("CreateBackup"));
    println!(
        "| DescribeBackups calls per backup, slot to Completed (busy poll 2s) | {:.3} | |",
        per("DescribeBackups")
    );
    println!("| DownloadBackup calls per backup | {:.3} | 0 |", per("DownloadBackup"));
    println!(
        "| backup cloud calls per minute once all are Completed ({} s) | {steady_per_min:.2} | 0 |",
        steady.as_secs()
    );
    println!("| operator peak RSS (whole run) | {:.1} MiB | |", rss as f64 / 1024.0);
    drop(op);
    s.shutdown().await;
}

/// Sleeps until the minute `cron` (`M H * * *`, UTC) starts; returns how long it slept.
async fn wait_for_cron_minute(cron: &str) -> Duration {
    let fields: Vec<i8> = cron.split_whitespace().take(2).map(|f| f.parse().unwrap()).collect();
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC);
    let mut at = today
        .with()
        .hour(fields[1])
        .minute(fields[0])
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap();
    if at.timestamp() < now {
        at = at.checked_add(jiff::Span::new().days(1)).unwrap();
    }
    let wait = Duration::try_from(at.timestamp().duration_since(now)).unwrap_or_default();
    tokio::time::sleep(wait).await;
    wait
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("a benchmark: run it with cargo bench (see scripts/bench-backups.sh)");
        return;
    }
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let steady = Duration::from_secs(arg("--steady-secs").and_then(|v| v.parse().ok()).unwrap_or(120));
    println!("# cds-redis-operator: daily backups at scale");
    println!();
    println!(
        "Operator: release build, --concurrency 16, --cds-qps 100, --busy-poll-interval 2s; simulator in-process."
    );
    run(n, steady).await;
}
