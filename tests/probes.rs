//! The test a kubelet would have been: the chart's rendered Deployment run as its pods would run
//! (its container's command, args, env, ports and security context, as uid 65532), with its
//! readiness and liveness probes polled exactly as declared. No kubelet runs here, so this is the
//! only place that shows `helm install --wait` would see the operator's pods become Ready.
//!
//! Both tests share this binary's control plane and one of them freezes its kube-apiserver, so
//! they take turns (`SERIAL`).

#[path = "probes/pod.rs"]
mod pod;
#[path = "probes/probe.rs"]
mod probe;
#[path = "probes/release.rs"]
mod release;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use support::control_plane::{self, ControlPlane, kubeconfig_yaml, unique_namespace};
use support::sim::{self, Admin, KEY_ID, KEY_SECRET};

use pod::*;
use probe::*;
use release::*;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the issue asks of every replica, from its start: Ready within 10 s.
const READY_WITHIN: Duration = Duration::from_secs(10);

async fn create_objects(release: &Release, names: &[&str]) {
    let client = release.cp.client().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &release.ns);
    let pw: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "pw" }, "stringData": { "password": "probes-pw" } }))
            .unwrap();
    secrets.create(&PostParams::default(), &pw).await.unwrap();
    let api: Api<RedisInstance> = Api::namespaced(client, &release.ns);
    for name in names {
        let obj: RedisInstance = serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
            "metadata": { "name": name },
            "spec": { "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
                "passwordSecretRef": { "name": "pw" }, "writeConnectionSecretToRef": { "name": format!("{name}-conn") } },
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
}

/// Waits until every object of the release's namespace is Ready (the leader really acts).
async fn objects_ready(release: &Release, count: usize, within: Duration) {
    let api: Api<RedisInstance> = Api::namespaced(release.cp.client().await, &release.ns);
    let deadline = Instant::now() + within;
    loop {
        let ready = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|o| support::env::is_ready(o))
            .count();
        if ready == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {count} objects Ready after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks what the kubelet and the container runtime would enforce on the running process:
/// the image's user and group, no supplementary groups, no capabilities, no new privileges.
fn assert_runs_as_the_image_user(pod: &Pod) {
    let pid = pod.current(|c| c.pid).expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid"), "65532 65532 65532 65532", "{status}");
    assert_eq!(field("Gid"), "65532 65532 65532 65532", "{status}");
    assert_eq!(field("Groups"), "", "{status}");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(caps), "0000000000000000", "{caps}: {status}");
    }
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
}

/// How a replica fared, for the test's output.
fn summary(pod: &Pod) -> String {
    let c = lock(&pod.containers);
    let mut out = format!("{} ({} restarts):", pod.name, c.len().saturating_sub(1));
    for (i, container) in c.iter().enumerate() {
        out.push_str(&format!(
            "\n  container {i}: exit {:?}; readiness {:?}; liveness {:?}",
            container.exit, container.readiness.results, container.liveness.results
        ));
    }
    out
}

#[tokio::test]
async fn the_charts_pods_become_ready_within_10s_as_leader_standby_and_after_a_takeover_with_and_without_objects() {
    let _turn = SERIAL.lock().await;
    let cp = control_plane::shared();
    let s = sim::start(Duration::from_millis(500), Duration::from_millis(300)).await;
    let release = Release::install(cp, "probes", s.endpoint()).await;
    let all: Api<RedisInstance> = Api::all(cp.client().await);
    assert!(
        all.list(&Default::default()).await.unwrap().items.is_empty(),
        "no RedisInstance anywhere yet: the first leader starts in an empty cluster"
    );
    let mut figures = vec![];

    // A leader with no objects (the chart's default: all namespaces, leader election on).
    // Ready within 10 s as the kubelet sees it: the probe due at 10 s at the latest (probes
    // are due at 0 s, when the container starts, then every periodSeconds) answers `ok`.
    let a = release.pod("replica-a").await;
    let answered = a.answers_ready("ok", READY_WITHIN).await;
    let probed = a.kubelet_sees("ok", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&a));
    assert_eq!(release.leader().await.as_deref(), Some("replica-a"));
    assert_runs_as_the_image_user(&a);
    figures.push(format!(
        "leader, no objects: /readyz ok after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // A second replica stands by, Ready too.
    let b = release.pod("replica-b").await;
    let answered = b.answers_ready("standby", READY_WITHIN).await;
    let probed = b.kubelet_sees("standby", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&b));
    assert_runs_as_the_image_user(&b);
    figures.push(format!(
        "standby: /readyz standby after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // Objects, reconciled by the leader as the chart's ServiceAccount.
    create_objects(&release, &["one", "two", "three"]).await;
    objects_ready(&release, 3, Duration::from_secs(60)).await;

    // Takeover with objects: the leader's pod is deleted (SIGTERM; it gives the Lease up), the
    // standby leads and answers `ok` within 10 s; the kubelet sees that at its next probe, and
    // never counted it unready (a probe may land in the moment it syncs: the threshold is 3).
    let deleted = Instant::now();
    a.delete().await;
    let took_over = b.answers_ready_since(deleted, "ok", READY_WITHIN).await;
    assert_eq!(release.leader().await.as_deref(), Some("replica-b"));
    let b_started = b.current(|c| c.started).unwrap();
    let leading_since = (deleted - b_started) + took_over;
    let probed = b.kubelet_sees("ok", leading_since + b.readiness.period).await;
    assert!(probed <= leading_since + b.readiness.period, "{}", summary(&b));
    assert!(
        b.current(|c| c.readiness.worst_run) < b.readiness.failure_threshold,
        "{}",
        summary(&b)
    );
    figures.push(format!(
        "takeover with objects: the new leader answered ok {took_over:?} after the old one's deletion"
    ));

    // A fresh leader with objects from its first list.
    b.delete().await;
    let c = release.pod("replica-c").await;
    let answered = c.answers_ready("ok", READY_WITHIN).await;
    let probed = c.kubelet_sees("ok", READY_WITHIN).await;
    assert!(probed <= READY_WITHIN, "{}", summary(&c));
    assert_eq!(release.leader().await.as_deref(), Some("replica-c"));
    figures.push(format!(
        "leader with 3 objects: /readyz ok after {answered:?}; the kubelet's probe due at {probed:?} saw it"
    ));

    // It acts: deleting the objects deletes their cloud instances.
    let api: Api<RedisInstance> = Api::namespaced(cp.client().await, &release.ns);
    api.delete_collection(&DeleteParams::default(), &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !api.list(&Default::default()).await.unwrap().items.is_empty() {
        assert!(Instant::now() < deadline, "objects not deleted:\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(Admin::of(&s).instances().await.is_empty());
    for pod in [&a, &b, &c] {
        assert_eq!(pod.restarts(), 0, "{}", summary(pod));
        assert_eq!(pod.current(|c| c.liveness.worst_run), 0, "{}", summary(pod));
    }
    c.delete().await;
    eprintln!("{}", figures.join("\n"));
    s.shutdown().await;
}

/// SIGCONTs kube-apiserver when dropped, so a failing test never leaves it frozen.
struct Frozen(u32);

impl Frozen {
    fn apiserver(cp: &ControlPlane) -> Self {
        // SAFETY: signals the control plane's own child process.
        assert_eq!(unsafe { libc::kill(cp.apiserver_pid as i32, libc::SIGSTOP) }, 0);
        Self(cp.apiserver_pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

#[tokio::test]
async fn liveness_stays_green_while_the_apiserver_is_frozen_for_30s_and_readiness_recovers_after() {
    let _turn = SERIAL.lock().await;
    let cp = control_plane::shared();
    let s = sim::start(Duration::from_millis(500), Duration::from_millis(300)).await;
    let release = Release::install(cp, "freeze", s.endpoint()).await;
    let a = release.pod("replica-a").await;
    a.answers_ready("ok", READY_WITHIN).await;
    let b = release.pod("replica-b").await;
    b.answers_ready("standby", READY_WITHIN).await;
    for pod in [&a, &b] {
        pod.ready(READY_WITHIN + pod.readiness.period).await;
    }

    // Frozen for 30 s: the kubelet's probes go on, and /healthz is also asked every second
    // (with the probe's own timeout) to show it never fails, not only at the probes' ticks.
    let frozen = Frozen::apiserver(cp);
    let froze = Instant::now();
    let mut healthz_failures = vec![];
    while froze.elapsed() < Duration::from_secs(30) {
        for pod in [&a, &b] {
            if pod.current(|c| c.exit.is_none())
                && let Err(e) = http_get(pod.liveness.port, &pod.liveness.path, pod.liveness.timeout).await
            {
                healthz_failures.push(format!("{} at {:?}: {e}", pod.name, froze.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(frozen);
    let thawed = Instant::now();
    // The requests held during the freeze complete at once; a leader whose renewal loses to the
    // standby's takeover exits within a lease retry period (2 s). Let that happen first.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        healthz_failures.is_empty(),
        "/healthz failed while frozen: {healthz_failures:?}"
    );
    for pod in [&a, &b] {
        let worst = lock(&pod.containers).iter().map(|c| c.liveness.worst_run).max();
        assert_eq!(worst, Some(0), "a liveness probe failed: {}", summary(pod));
    }

    // After: each pod is Ready again, and exactly one replica leads and says so. The freeze
    // outlasts the 15 s lease, so the standby may take the Lease at the thaw; the old leader
    // then exits and the kubelet restarts it (a restart, not a liveness failure), after its
    // 10 s back-off, and it must be Ready 10 s later.
    let within = Duration::from_secs(10) + READY_WITHIN + a.readiness.period;
    for pod in [&a, &b] {
        pod.ready(within.saturating_sub(thawed.elapsed())).await;
    }
    let leader = release.leader().await.expect("a leader");
    let (leader_pod, standby_pod) = if leader == a.name { (&a, &b) } else { (&b, &a) };
    leader_pod.answers_ready_since(thawed, "ok", within).await;
    assert!(
        http_get(
            standby_pod.readiness.port,
            &standby_pod.readiness.path,
            standby_pod.readiness.timeout
        )
        .await
        .is_ok_and(|(_, body)| body == "standby"),
        "{}",
        summary(standby_pod)
    );
    eprintln!(
        "after a 30 s freeze: every pod Ready {:?} after the thaw; leader {leader}; restarts: a {}, b {}\n{}\n{}",
        thawed.elapsed(),
        a.restarts(),
        b.restarts(),
        summary(&a),
        summary(&b)
    );
    a.delete().await;
    b.delete().await;
    s.shutdown().await;
}
