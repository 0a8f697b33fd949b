//! What GitOps tools make of a `RedisInstance`, computed by their own code: kstatus
//! (`sigs.k8s.io/cli-utils/pkg/kstatus/status`, which Flux, kpt and cli-utils' appliers use) on
//! real objects at every phase on the real apiserver; Argo CD's health check evaluated by Argo
//! CD's `util/lua` (its own `health_test.yaml`, and live objects); and the README's
//! `kubectl wait` commands, run as written. The Go programs are built by
//! `scripts/conformance-tools.sh` (or found through `CDS_CONFORMANCE_TOOLS`).

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::crd::conditions::synced::TERMINAL;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::support::control_plane::{self, ControlPlane, unique_namespace};
use crate::support::env::{Env, PASSWORD, TIMEOUT, spec};
use crate::support::repo_root as root;
use crate::support::sim::{self, Admin, KEY_ID, KEY_SECRET};

const CHECK_DIR: &str = "deploy/argocd/resource_customizations/cds.capitalonline.net/RedisInstance";
/// Where the checks of every kind are, each in `<Kind>/`.
const CHECKS: &str = "deploy/argocd/resource_customizations/cds.capitalonline.net";
/// The kinds with a health check.
const CHECKED_KINDS: [&str; 5] = [
    "RedisInstance",
    "RedisBackup",
    "RedisBackupSchedule",
    "ProviderConfig",
    "ClusterProviderConfig",
];
/// The account kinds: one health check each, with the same rules.
const CONFIG_KINDS: [&str; 2] = ["ProviderConfig", "ClusterProviderConfig"];

/// The check directory of `obj`'s kind.
fn check_dir(obj: &Value) -> std::path::PathBuf {
    root()
        .join(CHECKS)
        .join(obj["kind"].as_str().unwrap_or("RedisInstance"))
}

// ---------------------------------------------------------------------------------------------
// The tools
// ---------------------------------------------------------------------------------------------

/// The directory of `kstatus` and `argocd-health`: `CDS_CONFORMANCE_TOOLS`, or what
/// `scripts/conformance-tools.sh` builds (cached per machine). Panics when they cannot be had:
/// there is no switch that turns these tests into a pass.
fn tools() -> &'static Path {
    static TOOLS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = TOOLS.get_or_init(|| {
        let has = |d: &Path| d.join("kstatus").is_file() && d.join("argocd-health").is_file();
        if let Some(dir) = std::env::var_os("CDS_CONFORMANCE_TOOLS").map(PathBuf::from) {
            return if has(&dir) {
                Ok(dir)
            } else {
                Err(format!(
                    "CDS_CONFORMANCE_TOOLS={} lacks kstatus or argocd-health",
                    dir.display()
                ))
            };
        }
        let out = Command::new(root().join("scripts/conformance-tools.sh"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/conformance-tools.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("scripts/conformance-tools.sh failed ({})", out.status));
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "scripts/conformance-tools.sh printed {}, which lacks the tools",
                dir.display()
            ))
        }
    });
    match found {
        Ok(dir) => dir,
        Err(e) => panic!("the conformance tools: {e}"),
    }
}

/// Runs a tool with `input` on stdin; returns its stdout, panicking (with stderr) on failure.
fn run_tool(tool: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(tools().join(tool))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What kstatus computes for `obj`: (status, message).
fn kstatus(obj: &Value) -> (String, String) {
    let out: Value = serde_json::from_str(&run_tool("kstatus", &[], &obj.to_string())).unwrap();
    (
        out["status"].as_str().unwrap().to_owned(),
        out["message"].as_str().unwrap().to_owned(),
    )
}

/// What Argo CD's application controller shows for `obj` with our health check configured:
/// (status, message).
fn argocd(obj: &Value) -> (String, String) {
    let script = check_dir(obj).join("health.lua");
    let out: Value = serde_json::from_str(&run_tool(
        "argocd-health",
        &["eval", script.to_str().unwrap()],
        &obj.to_string(),
    ))
    .unwrap();
    (
        out["status"].as_str().unwrap().to_owned(),
        out["message"].as_str().unwrap().to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// The CRD, with the status default the apiserver serves before the operator's first write
// ---------------------------------------------------------------------------------------------

/// The proposed default of `status` in the CRD schema: what a `RedisInstance` reads as until the
/// operator first writes its status. kstatus reads an object without status as `Current` (its
/// rule for kinds it does not know); an `observedGeneration` below `metadata.generation` is
/// `InProgress`. (See the README, "kstatus"; the test below proves the apiserver serves such a
/// default on a scratch CRD.)
fn status_default() -> Value {
    json!({ "observedGeneration": 0, "phase": "Pending" })
}

/// The CRD of `crds/` with [`status_default`] on `status` (a no-op once the generated CRD
/// carries it; a different default there fails the test).
fn crd_with_status_default() -> CustomResourceDefinition {
    let text = std::fs::read_to_string(root().join("crds/redisinstances.cds.capitalonline.net.yaml")).unwrap();
    let mut crd: Value = serde_norway::from_str(text.trim_start_matches("---\n")).unwrap();
    for version in crd["spec"]["versions"].as_array_mut().unwrap() {
        let status = version
            .pointer_mut("/schema/openAPIV3Schema/properties/status")
            .expect("the CRD has a status schema");
        assert_eq!(
            status.get("default"),
            Some(&status_default()),
            "the generated CRD carries the status default"
        );
    }
    serde_json::from_value(crd).unwrap()
}

async fn apply_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("gitops-status-tests").force(),
        &Patch::Apply(crd),
    )
    .await
    .expect("apply the CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        kube::runtime::wait::await_condition(api, &name, kube::runtime::conditions::is_crd_established()),
    )
    .await
    .expect("the CRD becomes Established within 30s")
    .expect("watch the CRD");
}

/// An [`Env`] whose CRD carries the status default (every test of this binary uses it, so the
/// CRD is the same for all of them).
async fn env(prefix: &str, create: Duration, delete: Duration) -> Env {
    let cp = control_plane::shared();
    let client = cp.client().await;
    apply_crd(&client, &crd_with_status_default()).await;
    let ns = unique_namespace(&client, prefix).await;
    let sim = sim::start_with(cds_redis_operator::simulator::SimulatorConfig::for_tests(
        KEY_ID, KEY_SECRET, create, delete,
    ))
    .await;
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

// ---------------------------------------------------------------------------------------------
// Objects as the tools see them: the apiserver's JSON, untyped
// ---------------------------------------------------------------------------------------------

async fn objects(e: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(e.cp.client().await, &e.ns, &ApiResource::erase::<RedisInstance>(&()))
}

fn condition<'a>(o: &'a Value, type_: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn reason(o: &Value, type_: &str) -> Option<String> {
    condition(o, type_).map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
}

fn message(o: &Value, type_: &str) -> String {
    condition(o, type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Polls `name` until `ok` holds for one read, and returns that very read (the tools are given
/// the object that matched, not a later one).
async fn observe(api: &Api<DynamicObject>, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = api
            .get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap());
        if let Some(o) = &got
            && ok(o)
        {
            return o.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}; last seen: {:#}",
            got.map(|o| o["status"].clone()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts what kstatus and Argo CD make of `obj`, printing the object when either differs.
fn assert_tools(phase: &str, obj: &Value, want_kstatus: (&str, &str), want_argocd: (&str, &str)) {
    let got = (kstatus(obj), argocd(obj));
    let show = |(s, m): &(String, String)| format!("{s} {m:?}");
    eprintln!("{phase}: kstatus {}, Argo CD {}", show(&got.0), show(&got.1));
    let matches = |(s, m): &(String, String), (ws, wm): (&str, &str)| s == ws && m.contains(wm);
    assert!(
        matches(&got.0, want_kstatus) && matches(&got.1, want_argocd),
        "{phase}: kstatus {} (want {want_kstatus:?}), Argo CD {} (want {want_argocd:?}); object:\n{:#}",
        show(&got.0),
        show(&got.1),
        obj
    );
}

/// The shape Argo CD's check reads (phase, deletion, and each condition's type, status and
/// reason) of `obj`.
fn shape(obj: &Value) -> (Value, bool, std::collections::BTreeSet<(String, String, String)>) {
    let conditions = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let f = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (f("type"), f("status"), f("reason"))
        })
        .collect();
    (
        obj["status"]["phase"].clone(),
        obj["metadata"]["deletionTimestamp"].is_string(),
        conditions,
    )
}

/// Asserts that the Argo CD check's `testdata/<file>` has the shape of the live `obj` at this
/// phase: the upstream test cases are what the operator really writes.
fn assert_testdata_like(phase: &str, obj: &Value, file: &str) {
    let text = std::fs::read_to_string(check_dir(obj).join("testdata").join(file)).unwrap();
    let case: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        shape(&case),
        shape(obj),
        "{phase}: testdata/{file} differs from the live object:\n{:#}",
        obj["status"]
    );
}

// ---------------------------------------------------------------------------------------------
// kstatus and Argo CD on real objects
// ---------------------------------------------------------------------------------------------

/// One object's life: just applied (nothing written by the operator), creating, ready, a spec
/// change the operator has not observed yet, observed again, deleting.
#[tokio::test]
async fn kstatus_and_argo_cd_follow_a_redis_instance_through_its_life() {
    let e = env("gitops-life", Duration::from_secs(4), Duration::from_secs(4)).await;
    let api = objects(&e).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("life", spec(json!({}))).await;

    // Just applied: no operator yet. The apiserver serves the schema's status default.
    let o = observe(&api, "life", "the object", |_| true).await;
    assert_eq!(o["status"], status_default(), "the served status before any write");
    assert_tools(
        "just applied",
        &o,
        ("InProgress", "generation is 1, but latest observed generation is 0"),
        ("Progressing", "Waiting for the operator to observe the object"),
    );
    assert_testdata_like("just applied", &o, "progressing_status_default.yaml");

    let mut op = e.operator();
    let o = observe(&api, "life", "Reconciling=Creating", |o| {
        reason(o, "Reconciling").as_deref() == Some("Creating")
    })
    .await;
    let creating = message(&o, "Reconciling");
    assert_tools(
        "creating",
        &o,
        ("InProgress", &creating),
        ("Progressing", &format!("Creating: {creating}")),
    );
    assert_testdata_like("creating", &o, "progressing_creating.yaml");

    let o = observe(&api, "life", "Ready=True", |o| {
        condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let endpoint = format!("Running at {}:", o["status"]["endpoint"]["host"].as_str().unwrap());
    assert_tools("ready", &o, ("Current", "Resource is Ready"), ("Healthy", &endpoint));
    assert_testdata_like("ready", &o, "healthy.yaml");

    // A spec change the operator has not observed (it is stopped): generation 2, observed 1.
    assert!(op.stop().await, "the operator stops on SIGTERM");
    api.patch(
        "life",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "deletionPolicy": "Delete" } })),
    )
    .await
    .unwrap();
    let o = observe(&api, "life", "generation 2", |o| o["metadata"]["generation"] == 2).await;
    assert_tools(
        "spec change not yet observed",
        &o,
        ("InProgress", "generation is 2, but latest observed generation is 1"),
        (
            "Progressing",
            "Waiting for the operator to observe generation 2 (observed: 1)",
        ),
    );
    assert_testdata_like("spec change not yet observed", &o, "progressing_stale_generation.yaml");

    let _op = e.operator();
    let o = observe(&api, "life", "generation 2 observed, Ready", |o| {
        o["status"]["observedGeneration"] == 2 && condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert!(
        o["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["observedGeneration"] == 2),
        "every condition carries the observed generation: {:#}",
        o["status"]
    );
    assert_tools(
        "observed again",
        &o,
        ("Current", "Resource is Ready"),
        ("Healthy", &endpoint),
    );

    e.delete("life").await;
    let o = observe(&api, "life", "deleting", |o| {
        o["metadata"]["deletionTimestamp"].is_string() && reason(o, "Reconciling").as_deref() == Some("Deleting")
    })
    .await;
    // kstatus's rule for any object with a deletionTimestamp; Argo CD takes the check's
    // deletionMessage.
    assert_tools(
        "deleting",
        &o,
        ("Terminating", "Resource scheduled for deletion"),
        ("Progressing", "Deleting the cloud instance"),
    );
    assert_testdata_like("deleting", &o, "progressing_deleting.yaml");
    e.wait_gone("life").await;
}

/// Terminal failures are `Failed` / Degraded with their reason; a retryable one is
/// `InProgress` / Progressing and becomes `Current` / Healthy once the cloud recovers.
/// A `RedisBackupSchedule` as kstatus and Argo CD see it: waiting for its instance, scheduled,
/// suspended, and an invalid cron expression.
#[tokio::test]
async fn kstatus_and_argo_cd_read_a_backup_schedule() {
    let e = env(
        "gitops-schedule",
        Duration::from_millis(500),
        Duration::from_millis(500),
    )
    .await;
    let client = e.cp.client().await;
    let schedules: Api<DynamicObject> = Api::namespaced_with(
        client,
        &e.ns,
        &ApiResource::erase::<cds_redis_operator::crd::backup::RedisBackupSchedule>(&()),
    );
    let _op = e.operator();
    let make = |name: &str, cron: &str, suspend: bool| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
            "metadata": { "name": name },
            "spec": { "instanceRef": { "name": "cache" }, "schedule": cron, "keep": 3, "suspend": suspend },
        }))
        .unwrap()
    };
    for (name, cron, suspend) in [
        ("waiting", "0 3 * * *", false),
        ("paused", "0 3 * * *", true),
        ("broken", "61 3 * * *", false),
    ] {
        schedules
            .create(&Default::default(), &make(name, cron, suspend))
            .await
            .unwrap();
    }
    let observed = |o: &Value| o["status"]["observedGeneration"] == 1 && condition(o, "Ready").is_some();
    let o = observe(&schedules, "waiting", "observed", observed).await;
    assert_eq!(reason(&o, "Ready").as_deref(), Some("InstanceNotFound"));
    assert_tools(
        "schedule without its instance",
        &o,
        ("InProgress", "does not exist"),
        ("Progressing", "InstanceNotFound: "),
    );
    assert_testdata_like(
        "schedule without its instance",
        &o,
        "progressing_instance_not_found.yaml",
    );
    let o = observe(&schedules, "paused", "observed", observed).await;
    assert_tools("suspended schedule", &o, ("Current", ""), ("Suspended", "Suspended: "));
    assert_testdata_like("suspended schedule", &o, "suspended.yaml");
    let o = observe(&schedules, "broken", "observed", observed).await;
    let why = message(&o, "Stalled");
    assert_tools(
        "invalid schedule",
        &o,
        ("Failed", &why),
        ("Degraded", &format!("InvalidSchedule: {why}")),
    );
    assert_testdata_like("invalid schedule", &o, "degraded_invalid_schedule.yaml");
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.create("cache", spec(json!({}))).await;
    let o = observe(&schedules, "waiting", "Scheduled", |o| {
        reason(o, "Ready").as_deref() == Some("Scheduled")
    })
    .await;
    assert_tools("schedule running", &o, ("Current", ""), ("Healthy", "Scheduled: "));
    assert_testdata_like("schedule running", &o, "healthy.yaml");
    e.sim.shutdown().await;
}

/// `ProviderConfig`s as kstatus and Argo CD see them, at every state the config controller
/// writes: just applied (the status default), verified, a missing Secret, a missing key, wrong
/// credentials, the cloud unavailable, a spec change not yet observed, and a deletion held by
/// the instance that uses the config (`InUse`); an instance naming an absent config is Degraded
/// with `ProviderConfigNotFound`. Each state is checked against its testdata in Argo CD's layout.
#[tokio::test]
async fn kstatus_and_argo_cd_read_provider_configs() {
    use cds_redis_operator::controller::providerconfig::reason as config_reason;
    use cds_redis_operator::crd::account::ProviderConfig;

    let e = env("gitops-pc", Duration::from_millis(500), Duration::from_millis(500)).await;
    let configs: Api<DynamicObject> =
        Api::namespaced_with(e.cp.client().await, &e.ns, &ApiResource::erase::<ProviderConfig>(&()));
    let put = |name: &str, secret: &str| {
        let body = json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig",
            "metadata": { "name": name }, "spec": { "credentials": { "secretRef": { "name": secret } } },
        });
        let (configs, name) = (configs.clone(), name.to_owned());
        async move {
            configs
                .patch(&name, &PatchParams::apply("tests").force(), &Patch::Apply(&body))
                .await
                .unwrap();
        }
    };
    e.secret("pw", &[("password", PASSWORD)]).await;
    e.secret("team", &[("accessKeyId", KEY_ID), ("accessKeySecret", KEY_SECRET)])
        .await;
    e.secret("halfkey", &[("accessKeyId", KEY_ID)]).await;
    e.secret(
        "wrong",
        &[("accessKeyId", KEY_ID), ("accessKeySecret", "not-it-DO-NOT-LEAK")],
    )
    .await;
    for (name, secret) in [
        ("team", "team"),
        ("nosecret", "absent"),
        ("halfkey", "halfkey"),
        ("wrong", "wrong"),
    ] {
        put(name, secret).await;
    }

    // Just applied, no operator yet: the apiserver serves the CRD's status default.
    let o = observe(&configs, "team", "the status default", |_| true).await;
    assert_eq!(o["status"], json!({ "observedGeneration": 0 }), "the served status");
    assert_tools(
        "config just applied",
        &o,
        ("InProgress", "generation is 1, but latest observed generation is 0"),
        ("Progressing", "Waiting for the operator to observe the object"),
    );
    assert_testdata_like("config just applied", &o, "progressing_just_applied.yaml");

    let mut op = e.operator();
    let o = observe(&configs, "team", "Ready=True", |o| {
        condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert_eq!(reason(&o, "Ready").as_deref(), Some(config_reason::VERIFIED));
    assert_tools(
        "config verified",
        &o,
        ("Current", "Resource is Ready"),
        ("Healthy", "CredentialsVerified: DescribeRegins succeeded"),
    );
    assert_testdata_like("config verified", &o, "healthy.yaml");

    for (name, why, file) in [
        (
            "nosecret",
            config_reason::SECRET_NOT_FOUND,
            "degraded_secret_not_found.yaml",
        ),
        (
            "halfkey",
            config_reason::CREDENTIALS_MISSING,
            "degraded_credentials_missing.yaml",
        ),
        (
            "wrong",
            config_reason::INVALID_CREDENTIALS,
            "degraded_invalid_credentials.yaml",
        ),
    ] {
        let o = observe(&configs, name, why, |o| reason(o, "Stalled").is_some()).await;
        assert_eq!(reason(&o, "Stalled").as_deref(), Some(why), "{name}");
        let said = message(&o, "Stalled");
        assert!(!said.contains("not-it-DO-NOT-LEAK"), "{name}: {said}");
        assert_tools(name, &o, ("Failed", &said), ("Degraded", &format!("{why}: {said}")));
        assert_testdata_like(name, &o, file);
    }

    // The cloud cannot answer the check: retried, in progress, not Stalled.
    e.admin
        .set_faults(json!({ "errors": { "DescribeRegins": { "internalError": 1.0 } } }))
        .await;
    put("flaky", "team").await;
    let o = observe(&configs, "flaky", "Reconciling", |o| {
        condition(o, "Reconciling").is_some()
    })
    .await;
    assert_eq!(reason(&o, "Ready").as_deref(), Some(config_reason::CLOUD_UNAVAILABLE));
    let why = message(&o, "Reconciling");
    assert_tools(
        "cloud unavailable",
        &o,
        ("InProgress", &why),
        ("Progressing", &format!("CloudUnavailable: {why}")),
    );
    assert_testdata_like("cloud unavailable", &o, "progressing_cloud_unavailable.yaml");
    e.admin.set_faults(json!({})).await;
    let o = observe(&configs, "flaky", "Ready=True once the cloud answers", |o| {
        condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert!(condition(&o, "Reconciling").is_none(), "{:#}", o["status"]);
    assert_eq!(kstatus(&o).0, "Current");

    // A spec change the operator has not observed (it is stopped): generation 2, observed 1.
    assert!(op.stop().await, "the operator stops on SIGTERM");
    configs
        .patch(
            "team",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "qps": 5.0 } })),
        )
        .await
        .unwrap();
    let o = observe(&configs, "team", "generation 2", |o| o["metadata"]["generation"] == 2).await;
    assert_tools(
        "config change not yet observed",
        &o,
        ("InProgress", "generation is 2, but latest observed generation is 1"),
        (
            "Progressing",
            "Waiting for the operator to observe generation 2 (observed: 1)",
        ),
    );
    assert_testdata_like(
        "config change not yet observed",
        &o,
        "progressing_stale_generation.yaml",
    );
    let _op = e.operator();

    // An instance naming a config that does not exist: Degraded with the terminal reason.
    let instances = objects(&e).await;
    e.create(
        "orphan",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "absent" } })),
    )
    .await;
    let o = observe(&instances, "orphan", "Stalled", |o| condition(o, "Stalled").is_some()).await;
    assert_eq!(reason(&o, "Stalled").as_deref(), Some("ProviderConfigNotFound"));
    let why = message(&o, "Stalled");
    assert_eq!(
        why,
        format!("ProviderConfig \"absent\" not found in namespace {}", e.ns)
    );
    assert_tools(
        "instance without its config",
        &o,
        ("Failed", &why),
        ("Degraded", &format!("ProviderConfigNotFound: {why}")),
    );
    assert_testdata_like(
        "instance without its config",
        &o,
        "degraded_provider_config_not_found.yaml",
    );

    // A config deleted while an instance uses it: held (Terminating / Progressing, naming the
    // instance) until the instance goes; then it goes too.
    e.create(
        "cache",
        spec(json!({ "providerConfigRef": { "kind": "ProviderConfig", "name": "team" } })),
    )
    .await;
    observe(&configs, "team", "users 1, generation 2 observed", |o| {
        o["status"]["users"] == 1
            && o["status"]["observedGeneration"] == 2
            && o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "cds.capitalonline.net/in-use"))
    })
    .await;
    configs.delete("team", &Default::default()).await.unwrap();
    let o = observe(&configs, "team", "InUse", |o| {
        o["metadata"]["deletionTimestamp"].is_string() && condition(o, "InUse").is_some()
    })
    .await;
    assert_eq!(reason(&o, "InUse").as_deref(), Some(config_reason::DELETION_BLOCKED));
    let why = message(&o, "InUse");
    assert!(why.contains(&format!("{}/cache", e.ns)), "{why}");
    assert_tools(
        "config deleted while used",
        &o,
        ("Terminating", "Resource scheduled for deletion"),
        ("Progressing", &format!("DeletionBlocked: {why}")),
    );
    assert_testdata_like("config deleted while used", &o, "progressing_deleting_in_use.yaml");
    e.delete("cache").await;
    e.wait_gone("cache").await;
    let deadline = Instant::now() + TIMEOUT;
    while configs.get_opt("team").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the config outlived its last user");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    e.sim.shutdown().await;
}

/// A `RedisBackup` through its life as kstatus and Argo CD see it: just applied, waiting for its
/// instance, completed, deleting.
#[tokio::test]
async fn kstatus_and_argo_cd_follow_a_redis_backup() {
    let e = env("gitops-backup", Duration::from_millis(500), Duration::from_millis(500)).await;
    let client = e.cp.client().await;
    let backups: Api<DynamicObject> = Api::namespaced_with(
        client,
        &e.ns,
        &ApiResource::erase::<cds_redis_operator::crd::backup::RedisBackup>(&()),
    );
    e.secret("pw", &[("password", PASSWORD)]).await;
    let backup: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
        "metadata": { "name": "nightly" }, "spec": { "instanceRef": { "name": "cache" } },
    }))
    .unwrap();
    backups.create(&Default::default(), &backup).await.unwrap();
    // Before the operator runs: the status default says "not observed yet".
    let o = observe(&backups, "nightly", "the status default", |o| {
        o["status"]["observedGeneration"] == 0
    })
    .await;
    assert_tools(
        "backup just applied",
        &o,
        ("InProgress", ""),
        ("Progressing", "Waiting for the operator to observe the object"),
    );
    assert_testdata_like("backup just applied", &o, "progressing_just_applied.yaml");
    let _op = e.operator();
    let o = observe(&backups, "nightly", "Pending", |o| {
        reason(o, "Reconciling").as_deref() == Some("Pending")
    })
    .await;
    let why = message(&o, "Reconciling");
    assert_tools(
        "backup waiting for its instance",
        &o,
        ("InProgress", &why),
        ("Progressing", &format!("Pending: {why}")),
    );
    e.create("cache", spec(json!({}))).await;
    let o = observe(&backups, "nightly", "Completed", |o| {
        condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let size = o["status"]["sizeBytes"].as_i64().unwrap();
    assert_tools(
        "backup completed",
        &o,
        ("Current", ""),
        ("Healthy", &format!("Completed: {size} bytes")),
    );
    assert_testdata_like("backup completed", &o, "healthy.yaml");
    e.sim.shutdown().await;
}

#[tokio::test]
async fn kstatus_reads_terminal_failures_as_failed_and_retryable_ones_as_in_progress() {
    let e = env("gitops-fail", Duration::from_millis(800), Duration::from_millis(500)).await;
    let api = objects(&e).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    let _op = e.operator();

    // The password Secret does not exist: SecretNotFound, terminal.
    e.create("no-secret", spec(json!({ "passwordSecretRef": { "name": "absent" } })))
        .await;
    let o = observe(&api, "no-secret", "Stalled", |o| condition(o, "Stalled").is_some()).await;
    assert_eq!(reason(&o, "Stalled").as_deref(), Some("SecretNotFound"));
    let why = message(&o, "Stalled");
    assert_tools(
        "missing password Secret",
        &o,
        ("Failed", &why),
        ("Degraded", &format!("SecretNotFound: {why}")),
    );
    assert_testdata_like("missing password Secret", &o, "degraded_secret_not_found.yaml");

    // The cloud refuses the order (for a reason no preflight sees): CloudRejected, terminal.
    e.admin
        .set_faults(json!({ "errors": { "CreateDBInstance": { "invalidParameter": 1.0 } } }))
        .await;
    e.create("rejected", spec(json!({}))).await;
    let o = observe(&api, "rejected", "Stalled", |o| condition(o, "Stalled").is_some()).await;
    assert_eq!(reason(&o, "Stalled").as_deref(), Some("CloudRejected"));
    let why = message(&o, "Stalled");
    assert_tools(
        "cloud rejected",
        &o,
        ("Failed", &why),
        ("Degraded", &format!("CloudRejected: {why}")),
    );
    assert_testdata_like("cloud rejected", &o, "degraded_cloud_rejected.yaml");

    // The cloud answers 500 to every call: retried with backoff, in progress. (A 500 to the
    // create alone leaves its outcome unknown: the object then shows Reconciling=Creating while
    // the operator looks for the instance, also InProgress.)
    e.admin
        .set_faults(json!({ "errors": { "*": { "internalError": 1.0 } } }))
        .await;
    e.create("retried", spec(json!({}))).await;
    let o = observe(&api, "retried", "Reconciling=Retrying", |o| {
        reason(o, "Reconciling").as_deref() == Some("Retrying")
    })
    .await;
    assert!(condition(&o, "Stalled").is_none(), "a retryable failure is not Stalled");
    let why = message(&o, "Reconciling");
    assert_tools(
        "cloud 500s",
        &o,
        ("InProgress", &why),
        ("Progressing", &format!("Retrying: {why}")),
    );
    // No testdata comparison here: whether the first 500 answers the listing (phase Pending) or
    // the create (phase Creating, its outcome unknown) depends on the shared listing's age.
    e.admin.set_faults(json!({})).await;
    let o = observe(&api, "retried", "Ready=True", |o| {
        condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert_tools(
        "recovered",
        &o,
        ("Current", "Resource is Ready"),
        ("Healthy", "Running at "),
    );
}

// ---------------------------------------------------------------------------------------------
// The status default, on the real apiserver
// ---------------------------------------------------------------------------------------------

fn scratch_crd(plural: &str, kind: &str, status_default: Option<Value>) -> CustomResourceDefinition {
    let mut status = json!({
        "type": "object",
        "properties": {
            "observedGeneration": { "type": "integer", "format": "int64" },
            "phase": { "type": "string", "enum": ["Pending", "Running"] },
            "conditions": { "type": "array", "items": {
                "type": "object",
                "required": ["type", "status"],
                "properties": {
                    "type": { "type": "string" }, "status": { "type": "string" },
                    "reason": { "type": "string" }, "message": { "type": "string" },
                },
            }, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
        },
    });
    if let Some(d) = status_default {
        status["default"] = d;
    }
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.scratch.cds.test") },
        "spec": {
            "group": "scratch.cds.test",
            "scope": "Namespaced",
            "names": { "plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                    "spec": { "type": "object", "properties": { "size": { "type": "integer" } } },
                    "status": status,
                } } },
            }],
        },
    }))
    .unwrap()
}

fn scratch_resource(plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: "scratch.cds.test".into(),
        version: "v1".into(),
        api_version: "scratch.cds.test/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Whether the apiserver can give an object a status before anything writes one. Creating an
/// object never stores a status (the status subresource drops it), but structural schema
/// defaults are applied whenever an object is read from etcd: a default on `status` is served
/// by GET, LIST and WATCH from the first read on, until a real status write replaces it. Without
/// it, kstatus reads a just-applied object as `Current`.
#[tokio::test]
async fn the_apiserver_serves_a_status_default_before_anything_writes_status() {
    let cp: &ControlPlane = control_plane::shared();
    let client = cp.client().await;
    let ns = unique_namespace(&client, "gitops-default").await;
    let default = status_default();
    for (plural, kind, with_default) in [("plains", "Plain", false), ("defaulteds", "Defaulted", true)] {
        apply_crd(
            &client,
            &scratch_crd(plural, kind, with_default.then(|| default.clone())),
        )
        .await;
        let ar = scratch_resource(plural, kind);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        // As a user applies it, with a status in the manifest that the apiserver must drop.
        let mut obj = DynamicObject::new("one", &ar);
        obj.data = json!({ "spec": { "size": 1 }, "status": { "phase": "Running", "observedGeneration": 1 } });
        let created = serde_json::to_value(api.create(&PostParams::default(), &obj).await.unwrap()).unwrap();
        let got = serde_json::to_value(api.get("one").await.unwrap()).unwrap();
        let listed = serde_json::to_value(api.list(&Default::default()).await.unwrap().items.remove(0)).unwrap();
        let watched = {
            let mut events = api
                .watch(&WatchParams::default().fields("metadata.name=one"), "0")
                .await
                .unwrap()
                .boxed();
            match events.try_next().await.unwrap() {
                Some(WatchEvent::Added(o)) => serde_json::to_value(o).unwrap(),
                other => panic!("first watch event: {other:?}"),
            }
        };
        let want = if with_default { default.clone() } else { Value::Null };
        for (how, o) in [
            ("create", &created),
            ("get", &got),
            ("list", &listed),
            ("watch", &watched),
        ] {
            assert_eq!(o["status"], want, "{kind}: status served by {how}");
        }
        let (status, message) = kstatus(&got);
        if with_default {
            assert_eq!(
                (status.as_str(), message.as_str()),
                (
                    "InProgress",
                    "Defaulted generation is 1, but latest observed generation is 0"
                )
            );
        } else {
            // The gap the default closes: no status at all reads as Current.
            assert_eq!((status.as_str(), message.as_str()), ("Current", "Resource is current"));
        }

        // A spec update keeps serving the default; a status write replaces it whole.
        api.patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 2 } })),
        )
        .await
        .unwrap();
        let o = serde_json::to_value(api.get("one").await.unwrap()).unwrap();
        assert_eq!(o["status"], want, "{kind}: after a spec update");
        let written = json!({ "observedGeneration": 2, "conditions": [
            { "type": "Ready", "status": "True", "reason": "Available", "message": "up" },
        ] });
        api.patch_status(
            "one",
            &PatchParams::apply("scratch-operator").force(),
            &Patch::Apply(json!({ "apiVersion": ar.api_version, "kind": kind, "status": written })),
        )
        .await
        .unwrap();
        let o = serde_json::to_value(api.get("one").await.unwrap()).unwrap();
        let mut want_written = written.clone();
        if with_default {
            // Applied over the served default: fields the write does not set stay as served.
            want_written["phase"] = json!("Pending");
        }
        assert_eq!(o["status"], want_written, "{kind}: after a status write");
        assert_eq!(kstatus(&o).0, "Current", "{kind}: after a status write");
    }
}

// ---------------------------------------------------------------------------------------------
// Argo CD's health check, in Argo CD's layout
// ---------------------------------------------------------------------------------------------

/// Every case of `health_test.yaml`, evaluated by Argo CD's own code twice: as a built-in check
/// (as Argo CD's TestLuaHealthScript does) and as configured through `argocd-cm.yaml` (as the
/// application controller does, deletion rule included).
#[test]
fn argocd_health_check_passes_its_tests_in_argo_cds_own_code() {
    let cm = root().join("deploy/argocd/argocd-cm.yaml");
    for kind in CHECKED_KINDS {
        let dir = root().join(CHECKS).join(kind);
        let out = Command::new(tools().join("argocd-health"))
            .args(["test", dir.to_str().unwrap(), cm.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "Argo CD's evaluation of {kind}'s health_test.yaml:\n{text}"
        );
        assert!(text.contains(", 0 mismatches"), "{kind}: {text}");
    }
}

/// `health_test.yaml` has a case for every phase, and a Degraded case for every terminal reason
/// of the operator (with the reason in its message); every file of testdata/ is used.
#[test]
fn argocd_health_tests_cover_every_phase_and_terminal_reason() {
    let dir = root().join(CHECK_DIR);
    let tests: Value = serde_norway::from_str(&std::fs::read_to_string(dir.join("health_test.yaml")).unwrap()).unwrap();
    let cases: Vec<(Value, Value)> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let input = dir.join(t["inputPath"].as_str().unwrap());
            let obj: Value = serde_norway::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
            (obj, t["healthStatus"].clone())
        })
        .collect();
    let mut used: Vec<String> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["inputPath"]
                .as_str()
                .unwrap()
                .trim_start_matches("testdata/")
                .to_owned()
        })
        .collect();
    used.sort();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("testdata"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(used, files, "every testdata file is a case, once");

    // BackupNotFound is a RedisBackup's only: its check has its own cases.
    for terminal in TERMINAL.into_iter().filter(|r| *r != "BackupNotFound") {
        assert!(
            cases.iter().any(|(o, h)| {
                o["metadata"]["deletionTimestamp"].is_null()
                    && reason(o, "Stalled").as_deref() == Some(terminal)
                    && h["status"] == "Degraded"
                    && h["message"].as_str().is_some_and(|m| m.starts_with(terminal))
            }),
            "no Degraded case for the terminal reason {terminal}"
        );
    }
    let has = |what: &str, f: &dyn Fn(&Value, &Value) -> bool| {
        assert!(cases.iter().any(|(o, h)| f(o, h)), "no case for {what}");
    };
    has("healthy", &|o, h| {
        h["status"] == "Healthy" && condition(o, "Ready").is_some_and(|c| c["status"] == "True")
    });
    has("just applied (no status)", &|o, h| {
        o.get("status").is_none() && h["status"] == "Progressing"
    });
    has("the status default", &|o, h| {
        o["status"] == status_default() && h["status"] == "Progressing"
    });
    for r in ["Creating", "Retrying", "Deleting"] {
        has(r, &|o, h| {
            reason(o, "Reconciling").as_deref() == Some(r) && h["status"] == "Progressing"
        });
    }
    has("a generation not yet observed", &|o, h| {
        o["status"]["observedGeneration"].as_i64().is_some_and(|g| g > 0)
            && o["status"]["observedGeneration"] != o["metadata"]["generation"]
            && h["status"] == "Progressing"
    });
    has("an unknown cloud status", &|o, h| {
        o["status"]["phase"] == "Unknown" && h["status"] == "Degraded"
    });
}

/// The cases of a check: each testdata object with the health its `health_test.yaml` expects;
/// asserts that every file of testdata/ is used once.
fn health_cases(kind: &str) -> Vec<(Value, Value)> {
    let dir = root().join(CHECKS).join(kind);
    let tests: Value = serde_norway::from_str(&std::fs::read_to_string(dir.join("health_test.yaml")).unwrap()).unwrap();
    let mut used = vec![];
    let cases: Vec<(Value, Value)> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let path = t["inputPath"].as_str().unwrap();
            used.push(path.trim_start_matches("testdata/").to_owned());
            let obj: Value = serde_norway::from_str(&std::fs::read_to_string(dir.join(path)).unwrap()).unwrap();
            assert_eq!(obj["kind"], kind, "{kind}/{path}");
            (obj, t["healthStatus"].clone())
        })
        .collect();
    used.sort();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("testdata"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(used, files, "{kind}: every testdata file is a case, once");
    cases
}

/// The checks of `ProviderConfig` and `ClusterProviderConfig` have a case for every reason the
/// config controller writes: Degraded (with the reason) for each `Stalled` one, Progressing for
/// `CloudUnavailable`, for the status default, for a generation not yet observed and for a
/// deletion held by users (`InUse`, as the deletion message too); Healthy when verified. And
/// kstatus agrees with Argo CD on every case that has a status.
#[test]
fn argocd_health_tests_of_the_config_kinds_cover_every_reason() {
    use cds_redis_operator::controller::providerconfig::{IN_USE, reason as r};
    for kind in CONFIG_KINDS {
        let cases = health_cases(kind);
        let has = |what: &str, f: &dyn Fn(&Value, &Value) -> bool| {
            assert!(cases.iter().any(|(o, h)| f(o, h)), "{kind}: no case for {what}");
        };
        for stalled in [r::SECRET_NOT_FOUND, r::CREDENTIALS_MISSING, r::INVALID_CREDENTIALS] {
            has(stalled, &|o, h| {
                reason(o, "Stalled").as_deref() == Some(stalled)
                    && reason(o, "Ready").as_deref() == Some(stalled)
                    && h["status"] == "Degraded"
                    && h["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(&format!("{stalled}: ")))
            });
        }
        has(r::CLOUD_UNAVAILABLE, &|o, h| {
            reason(o, "Reconciling").as_deref() == Some(r::CLOUD_UNAVAILABLE)
                && condition(o, "Stalled").is_none()
                && h["status"] == "Progressing"
                && h["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(r::CLOUD_UNAVAILABLE))
        });
        has(r::VERIFIED, &|o, h| {
            reason(o, "Ready").as_deref() == Some(r::VERIFIED)
                && o["metadata"]["deletionTimestamp"].is_null()
                && o["status"]["observedGeneration"] == o["metadata"]["generation"]
                && h["status"] == "Healthy"
        });
        has("the status default", &|o, h| {
            o["status"] == json!({ "observedGeneration": 0 }) && h["status"] == "Progressing"
        });
        has("a generation not yet observed", &|o, h| {
            o["status"]["observedGeneration"].as_i64().is_some_and(|g| g > 0)
                && o["status"]["observedGeneration"] != o["metadata"]["generation"]
                && h["status"] == "Progressing"
        });
        has("a deletion held by users", &|o, h| {
            o["metadata"]["deletionTimestamp"].is_string()
                && reason(o, IN_USE).as_deref() == Some(r::DELETION_BLOCKED)
                && h["status"] == "Progressing"
                && h["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(r::DELETION_BLOCKED))
                && h["deletionMessage"] == h["message"]
        });
        for (o, h) in &cases {
            if o.get("status").is_none() {
                // kstatus reads an object without status as Current: the gap the CRD's status
                // default closes (the status default case is checked).
                continue;
            }
            let want = match h["status"].as_str().unwrap() {
                "Healthy" => "Current",
                "Degraded" => "Failed",
                _ if o["metadata"]["deletionTimestamp"].is_string() => "Terminating",
                _ => "InProgress",
            };
            let (got, message) = kstatus(o);
            assert_eq!(
                got, want,
                "{kind} {}: kstatus {got} {message:?}, Argo CD {h}",
                o["metadata"]["name"]
            );
        }
    }
}

/// `deploy/argocd/argocd-cm.yaml` embeds the check verbatim (`scripts/generate.sh` writes it).
#[test]
fn argocd_configmap_embeds_the_health_check() {
    let cm: Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("deploy/argocd/argocd-cm.yaml")).unwrap()).unwrap();
    for kind in CHECKED_KINDS {
        let lua = std::fs::read_to_string(root().join(CHECKS).join(kind).join("health.lua")).unwrap();
        assert_eq!(
            cm["data"][format!("resource.customizations.health.cds.capitalonline.net_{kind}")]
                .as_str()
                .unwrap()
                .trim_end(),
            lua.trim_end(),
            "deploy/argocd/argocd-cm.yaml is stale: run scripts/generate.sh"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The README's kubectl wait commands
// ---------------------------------------------------------------------------------------------

/// The lines of the README's shell block that shows `kubectl wait`.
fn readme_wait_block() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = vec![];
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```sh") => current = Some(vec![]),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), l) => b.push(l.to_owned()),
            (None, _) => {}
        }
    }
    let block = blocks
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("kubectl wait ")))
        .expect("README.md has a sh block with kubectl wait");
    block
        .into_iter()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The README's `kubectl apply` and `kubectl wait` commands, as written, against the real
/// apiserver and the operator (in a kubeconfig whose context namespace is the test's).
#[tokio::test]
async fn the_readme_kubectl_wait_commands_work_on_a_real_object() {
    let commands = readme_wait_block();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("kubectl wait --for=condition=Ready ")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.starts_with("kubectl wait --for=jsonpath=")),
        "{commands:?}"
    );
    let e = env("gitops-wait", Duration::from_secs(2), Duration::from_millis(500)).await;
    let _op = e.operator();
    let kubeconfig = e.cp.dir.join(format!("kubeconfig-{}", e.ns));
    std::fs::copy(&e.cp.kubeconfig, &kubeconfig).unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let out = e.cp.kubectl(&[
        "--kubeconfig",
        kc,
        "config",
        "set-context",
        "--current",
        "--namespace",
        &e.ns,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = format!(
        "{}:{}",
        e.cp.assets.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in &commands {
        let started = Instant::now();
        let run = tokio::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(root())
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", &path)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| panic!("`{command}` did not finish within 120s"))
            .unwrap();
        eprintln!(
            "$ {command}  ({:.1}s)\n{}{}",
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`{command}` failed");
    }
}
