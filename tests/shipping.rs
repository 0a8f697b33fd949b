//! Shipping: the chart and the plain manifests are fresh, lint-clean and accepted by a real
//! apiserver; the chart's RBAC is enough for a full cycle, accounts included (and the test
//! notices a missing verb); a reconcile never touches the spec. (The Argo CD health check:
//! tests/gitops_status.rs.)

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cds_redis_operator::crd::RedisInstance;
use cds_redis_operator::crd::account::{ClusterProviderConfig, IN_USE_FINALIZER, ProviderConfig, ProviderConfigStatus};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::support::control_plane::{self, ControlPlane, kubeconfig_yaml, unique_namespace};
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::sim::{self, Admin, KEY_ID, KEY_SECRET};
use crate::support::{repo_root as root, stdout_ok as ok};

fn helm(cp: &ControlPlane, args: &[&str]) -> std::process::Output {
    Command::new(cp.assets.join("helm"))
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("HELM_CACHE_HOME", cp.dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", cp.dir.join("helm-config"))
        .env("HELM_DATA_HOME", cp.dir.join("helm-data"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run helm")
}

#[test]
fn chart_crds_are_the_top_level_crds() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("crds"), names("charts/cds-redis-operator/crds"));
    for name in names("crds") {
        let a = std::fs::read_to_string(root().join("crds").join(&name)).unwrap();
        let b = std::fs::read_to_string(root().join("charts/cds-redis-operator/crds").join(&name)).unwrap();
        assert!(
            a == b,
            "charts/cds-redis-operator/crds/{name} is stale: run scripts/generate.sh"
        );
    }
}

#[test]
fn plain_manifests_are_fresh_and_the_chart_lints_strictly() {
    let cp = control_plane::shared();
    let rendered = Command::new("bash")
        .arg(root().join("scripts/render-manifests.sh"))
        .arg(cp.assets.join("helm"))
        .output()
        .unwrap();
    let rendered = ok(&rendered, "render-manifests.sh");
    let committed = std::fs::read_to_string(root().join("deploy/cds-redis-operator.yaml")).unwrap();
    assert!(
        rendered == committed,
        "deploy/cds-redis-operator.yaml is stale: run scripts/generate.sh"
    );
    for values in [
        vec![],
        vec!["--set", "simulator.enabled=true"],
        vec!["--set", "shards={a,b}"],
        vec![
            "--set",
            "watchNamespace=apps",
            "--set",
            "credentials.create=true",
            "--set",
            "credentials.accessKeyId=a",
            "--set",
            "credentials.accessKeySecret=b",
        ],
    ] {
        let mut args = vec![
            "lint",
            "--strict",
            "charts/cds-redis-operator",
            "--kube-version",
            "1.37.2",
        ];
        args.extend(values.iter().copied());
        ok(&helm(cp, &args), "helm lint --strict");
    }
    // The schema refuses a bad value.
    let out = helm(
        cp,
        &[
            "lint",
            "--strict",
            "charts/cds-redis-operator",
            "--set",
            "defaultDeletionPolicy=Orphan",
        ],
    );
    assert!(
        !out.status.success(),
        "the values schema must refuse defaultDeletionPolicy=Orphan"
    );
    // Nor a shard name that is no label value.
    let out = helm(
        cp,
        &["lint", "--strict", "charts/cds-redis-operator", "--set", "shards={a b}"],
    );
    assert!(
        !out.status.success(),
        "the values schema must refuse a shard named 'a b'"
    );
}

/// The YAML documents of a multi-document text, parsed, without empty ones.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_norway::from_str::<serde_json::Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The value of the environment variable `name` of a Deployment's first container.
fn env_of<'a>(deployment: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn the_chart_runs_one_deployment_per_shard_next_to_the_default_one() {
    let cp = control_plane::shared();
    let manifest = ok(
        &helm(
            cp,
            &[
                "template",
                "rel",
                "charts/cds-redis-operator",
                "--namespace",
                "ops",
                "--kube-version",
                "1.37.2",
                "--set",
                "shards={a,b}",
            ],
        ),
        "helm template",
    );
    let deployments: Vec<serde_json::Value> = documents(&manifest)
        .into_iter()
        .filter(|d| d["kind"] == "Deployment")
        .collect();
    let names: Vec<&str> = deployments
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rel-cds-redis-operator",
            "rel-cds-redis-operator-shard-a",
            "rel-cds-redis-operator-shard-b"
        ]
    );
    // The default one leaves the shards' objects alone; each shard owns its own.
    let (default, a, b) = (&deployments[0], &deployments[1], &deployments[2]);
    assert_eq!(env_of(default, "CDS_KNOWN_SHARDS"), Some("a,b"));
    assert_eq!(env_of(default, "CDS_SHARD"), None);
    assert_eq!(
        (env_of(a, "CDS_SHARD"), env_of(a, "CDS_KNOWN_SHARDS")),
        (Some("a"), None)
    );
    assert_eq!(env_of(b, "CDS_SHARD"), Some("b"));
    for d in &deployments {
        // The same Lease base name (each process adds its shard), ServiceAccount and settings.
        assert_eq!(env_of(d, "LEADER_ELECTION_ID"), Some("rel-cds-redis-operator"));
        assert_eq!(
            d["spec"]["template"]["spec"]["serviceAccountName"],
            "rel-cds-redis-operator"
        );
        assert_eq!(env_of(d, "CDS_QPS"), env_of(default, "CDS_QPS"));
    }
    // No Deployment's selector matches another's pods (the default one's selector is unchanged).
    for d in &deployments {
        let selector = d["spec"]["selector"]["matchLabels"].as_object().unwrap();
        for other in &deployments {
            let labels = &other["spec"]["template"]["metadata"]["labels"];
            let matches = selector.iter().all(|(k, v)| &labels[k] == v);
            assert_eq!(
                matches,
                d["metadata"]["name"] == other["metadata"]["name"],
                "{} selects the pods of {}",
                d["metadata"]["name"],
                other["metadata"]["name"]
            );
        }
    }
    assert_eq!(
        default["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "operator"
    );
    // Without shards: one Deployment, no shard settings (what the plain manifests hold).
    let plain = ok(
        &helm(
            cp,
            &[
                "template",
                "rel",
                "charts/cds-redis-operator",
                "--kube-version",
                "1.37.2",
            ],
        ),
        "helm template",
    );
    let plain: Vec<serde_json::Value> = documents(&plain)
        .into_iter()
        .filter(|d| d["kind"] == "Deployment")
        .collect();
    assert_eq!(plain.len(), 1);
    assert_eq!(env_of(&plain[0], "CDS_KNOWN_SHARDS"), None);
}

#[tokio::test]
async fn rendered_chart_passes_server_side_strict_validation() {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, "dryrun").await;
    let apps = unique_namespace(&client, "apps").await;
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["--set".into(), "simulator.enabled=true".into()],
        vec![
            "--set".into(),
            format!("watchNamespace={apps}"),
            "--set".into(),
            "credentials.create=true".into(),
            "--set".into(),
            "credentials.accessKeyId=a".into(),
            "--set".into(),
            "credentials.accessKeySecret=b".into(),
        ],
        vec!["--set".into(), "shards={a,b}".into()],
        vec![
            "--set".into(),
            "leaderElection.enabled=false".into(),
            "--set".into(),
            "replicaCount=1".into(),
        ],
    ];
    for values in cases {
        let mut args = vec![
            "template".to_owned(),
            "dry".to_owned(),
            "charts/cds-redis-operator".to_owned(),
            "--namespace".to_owned(),
            ns.clone(),
            "--kube-version".to_owned(),
            "1.37.2".to_owned(),
        ];
        args.extend(values.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let manifest = ok(&helm(cp, &args), "helm template");
        let out = cp.kubectl_stdin(
            &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
            &manifest,
        );
        ok(
            &out,
            &format!("kubectl apply --dry-run=server --validate=strict ({values:?})"),
        );
    }
    // The plain manifests too; a dry run does not create their namespace, so it must exist.
    let _ = cp.kubectl(&["create", "namespace", "cds-system"]);
    let out = cp.kubectl(&[
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "--server-side",
        "-f",
        root().join("deploy/cds-redis-operator.yaml").to_str().unwrap(),
    ]);
    ok(&out, "kubectl apply --dry-run=server deploy/cds-redis-operator.yaml");
}

/// A kubeconfig authenticating as the chart's ServiceAccount with a TokenRequest token.
fn service_account_kubeconfig(cp: &ControlPlane, ns: &str, sa: &str) -> PathBuf {
    let token = ok(
        &cp.kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]),
        "kubectl create token",
    );
    let path = cp.dir.join(format!("kubeconfig-{ns}-{sa}"));
    std::fs::write(
        &path,
        kubeconfig_yaml(&cp.server, &cp.ca_pem, &format!("    token: {}\n", token.trim())),
    )
    .unwrap();
    path
}

struct Installed {
    release: String,
    ns: String,
    kubeconfig: PathBuf,
}

async fn install_chart(cp: &ControlPlane, prefix: &str) -> Installed {
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, prefix).await;
    let release = format!("{prefix}-{}", &ns[ns.len() - 8..]);
    ok(
        &helm(
            cp,
            &[
                "install",
                &release,
                "charts/cds-redis-operator",
                "--namespace",
                &ns,
                "--wait=false",
                "--set",
                "replicaCount=1",
            ],
        ),
        "helm install",
    );
    let sa = format!("{release}-cds-redis-operator");
    let kubeconfig = service_account_kubeconfig(cp, &ns, &sa);
    Installed {
        release,
        ns,
        kubeconfig,
    }
}

/// Polls `ok` until it holds or `deadline` passes; says on stderr what it waited for in vain.
async fn wait_until<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(
    deadline: Instant,
    what: &str,
    ok: F,
) -> bool {
    while !ok().await {
        if Instant::now() > deadline {
            eprintln!("timed out waiting for {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    true
}

/// Whether `status` has the condition `type_` with status True.
fn is_true(status: Option<&ProviderConfigStatus>, type_: &str) -> bool {
    status.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Runs the operator as the chart's ServiceAccount and drives one object through
/// create → Ready → delete; returns whether it got through within `within`. With `accounts`,
/// the operator watches every namespace (the chart's default) and the object uses a
/// `ProviderConfig` (checked, counted, held with its Secret while used, released after), while
/// a `ClusterProviderConfig` is checked too.
async fn full_cycle(
    cp: &ControlPlane,
    installed: &Installed,
    within: Duration,
    accounts: bool,
) -> (bool, String, Option<RedisInstance>) {
    let client = cp.client().await;
    let work = unique_namespace(&client, "rbac-work").await;
    let s = sim::start(Duration::from_millis(500), Duration::from_millis(300)).await;
    // The operator runs with nothing but the chart ServiceAccount's token.
    let mut opts = OperatorOptions::new(&work, s.endpoint());
    opts.all_namespaces = accounts;
    opts.args = vec![
        "--leader-election-namespace".into(),
        installed.ns.clone(),
        "--leader-election-id".into(),
        format!("{}-cds-redis-operator", installed.release),
    ];
    opts.env = vec![("KUBECONFIG".into(), installed.kubeconfig.display().to_string())];
    let op = Operator::start(cp, opts);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &work);
    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "pw" }, "stringData": { "password": "rbac-test-password" } }),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let api: Api<RedisInstance> = Api::namespaced(client.clone(), &work);
    let pcs: Api<ProviderConfig> = Api::namespaced(client.clone(), &work);
    let cpcs: Api<ClusterProviderConfig> = Api::all(client.clone());
    let cluster_config = format!("rbac-{}", &work[work.len() - 8..]);
    let mut spec = json!({ "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1", "paasGoodsId": 12467,
        "passwordSecretRef": { "name": "pw" }, "writeConnectionSecretToRef": { "name": "conn" } });
    if accounts {
        let account: Secret = serde_json::from_value(json!({ "metadata": { "name": "cds-account" },
            "stringData": { "accessKeyId": KEY_ID, "accessKeySecret": KEY_SECRET } }))
        .unwrap();
        secrets.create(&PostParams::default(), &account).await.unwrap();
        let pc: ProviderConfig = serde_json::from_value(
            json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig",
            "metadata": { "name": "team" }, "spec": { "credentials": { "secretRef": { "name": "cds-account" } } } }),
        )
        .unwrap();
        pcs.create(&PostParams::default(), &pc).await.unwrap();
        let cpc: ClusterProviderConfig = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ClusterProviderConfig",
            "metadata": { "name": cluster_config }, "spec": { "credentials": { "secretRef": { "name": "cds-account", "namespace": work } } } }))
        .unwrap();
        cpcs.create(&PostParams::default(), &cpc).await.unwrap();
        spec["providerConfigRef"] = json!({ "kind": "ProviderConfig", "name": "team" });
    }
    let obj: RedisInstance = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance", "metadata": { "name": "r" }, "spec": spec })).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let deadline = Instant::now() + within;
    let mut ready = None;
    while Instant::now() < deadline {
        let o = api.get("r").await.unwrap();
        if o.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        {
            ready = Some(o);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some(ready_obj) = ready else {
        return (false, op.logs(), None);
    };
    // The connection Secret was written with the ServiceAccount's rights.
    assert!(secrets.get_opt("conn").await.unwrap().is_some());
    let held = |finalizers: &[String]| finalizers.iter().any(|f| f == IN_USE_FINALIZER);
    if accounts {
        // The config the instance uses: checked, its user counted, held with its Secret.
        let used = wait_until(
            deadline,
            "ProviderConfig team Ready, 1 user, held with its Secret",
            || async {
                let pc = pcs.get("team").await.unwrap();
                let secret = secrets.get("cds-account").await.unwrap();
                is_true(pc.status.as_ref(), "Ready")
                    && pc.status.as_ref().and_then(|s| s.users) == Some(1)
                    && held(pc.finalizers())
                    && held(secret.finalizers())
            },
        )
        .await;
        // The cluster-scoped one: its status written through the chart's ClusterRole.
        let checked = wait_until(deadline, "ClusterProviderConfig Ready", || async {
            let cpc = cpcs.get(&cluster_config).await.unwrap();
            is_true(cpc.status.as_ref(), "Ready") && cpc.status.as_ref().and_then(|s| s.users) == Some(0)
        })
        .await;
        if !(used && checked) {
            return (false, op.logs(), None);
        }
    }
    // A backup of it: made, finished (its download Secret written) and deleted, with the same rights.
    if !backup_cycle(&client, &work, deadline).await {
        return (false, op.logs(), None);
    }
    api.delete("r", &Default::default()).await.unwrap();
    if !wait_until(deadline, "the instance gone", || async {
        api.get_opt("r").await.unwrap().is_none()
    })
    .await
    {
        return (false, op.logs(), Some(ready_obj));
    }
    let left = Admin::of(&s).instances().await.len();
    if accounts {
        // Its config and the config's Secret are released; both configs can then go.
        let released = wait_until(deadline, "ProviderConfig team and its Secret released", || async {
            let pc = pcs.get("team").await.unwrap();
            let secret = secrets.get("cds-account").await.unwrap();
            pc.status.as_ref().and_then(|s| s.users) == Some(0) && !held(pc.finalizers()) && !held(secret.finalizers())
        })
        .await;
        pcs.delete("team", &Default::default()).await.unwrap();
        cpcs.delete(&cluster_config, &Default::default()).await.unwrap();
        let gone = wait_until(deadline, "both configs gone", || async {
            pcs.get_opt("team").await.unwrap().is_none() && cpcs.get_opt(&cluster_config).await.unwrap().is_none()
        })
        .await;
        if !(released && gone) {
            return (false, op.logs(), Some(ready_obj));
        }
    }
    s.shutdown().await;
    (left == 0, op.logs(), Some(ready_obj))
}

/// A `RedisBackup` of the instance `r` in `ns`: Completed, its download Secret written, then
/// deleted; whether all of it happened before `deadline`.
async fn backup_cycle(client: &kube::Client, ns: &str, deadline: Instant) -> bool {
    use cds_redis_operator::crd::backup::{BackupPhase, RedisBackup};
    let api: Api<RedisBackup> = Api::namespaced(client.clone(), ns);
    let b: RedisBackup = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
        "metadata": { "name": "b" }, "spec": { "instanceRef": { "name": "r" }, "writeDownloadSecretToRef": { "name": "b-dl" } } }))
    .unwrap();
    api.create(&PostParams::default(), &b).await.unwrap();
    let completed = |b: &RedisBackup| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed);
    while !api.get("b").await.is_ok_and(|b| completed(&b)) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    assert!(secrets.get_opt("b-dl").await.unwrap().is_some());
    api.delete("b", &Default::default()).await.unwrap();
    while api.get_opt("b").await.unwrap().is_some() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    schedule_cycle(client, ns, deadline).await
}

/// A `RedisBackupSchedule` of the instance `r` every minute: its first backup is created (by the
/// schedule controller, with the ServiceAccount's rights) and completes; whether before `deadline`.
async fn schedule_cycle(client: &kube::Client, ns: &str, deadline: Instant) -> bool {
    use cds_redis_operator::crd::backup::{BackupPhase, RedisBackup, RedisBackupSchedule};
    let schedules: Api<RedisBackupSchedule> = Api::namespaced(client.clone(), ns);
    let s: RedisBackupSchedule = serde_json::from_value(json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackupSchedule",
        "metadata": { "name": "every-minute" }, "spec": { "instanceRef": { "name": "r" }, "schedule": "* * * * *", "keep": 1 } }))
    .unwrap();
    schedules.create(&PostParams::default(), &s).await.unwrap();
    let backups: Api<RedisBackup> = Api::namespaced(client.clone(), ns);
    let made = ListParams::default().labels("cds.capitalonline.net/schedule=every-minute");
    loop {
        let list = backups.list(&made).await.unwrap().items;
        if list
            .iter()
            .any(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
        {
            break;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its backups go with it (garbage collection); the instance's deletion waits for none of them.
    schedules.delete("every-minute", &Default::default()).await.unwrap();
    true
}

#[tokio::test]
async fn the_chart_rbac_suffices_for_a_full_cycle_and_a_missing_verb_is_noticed() {
    let cp = control_plane::shared();
    let installed = install_chart(cp, "rbac").await;
    let (passed, logs, ready) = full_cycle(cp, &installed, Duration::from_secs(150), true).await;
    assert!(
        passed,
        "create → Ready → delete as the chart's ServiceAccount failed:\n{logs}"
    );
    // Not one request of the cycle was refused: none in the operator's logs, none in the audit
    // log (a refused watch is retried quietly, so the logs alone could miss one).
    assert!(
        !logs.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{logs}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let audit = std::fs::read_to_string(cp.audit_log()).unwrap_or_default();
    let refused: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains(&format!("system:serviceaccount:{}:", installed.ns)) && l.contains("\"code\":403"))
        .collect();
    assert!(
        !audit.is_empty() && refused.is_empty(),
        "the audit log records refusals of the ServiceAccount: {refused:#?}"
    );
    // A full reconcile leaves generation and spec alone (no GitOps drift).
    let ready = ready.unwrap();
    assert_eq!(ready.metadata.generation, Some(1));
    let managers: Vec<(String, String)> = ready
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.manager.unwrap_or_default(), m.subresource.unwrap_or_default()))
        .collect();
    assert!(
        managers
            .iter()
            .filter(|(m, _)| m == "cds-redis-operator")
            .all(|(_, sub)| sub == "status"),
        "the operator owns only status fields (and the finalizer via a plain patch): {managers:?}"
    );
    assert!(!logs.contains(KEY_SECRET));

    // Take one verb away (status patch) and the same cycle fails, with 403s in the audit log.
    let broken = install_chart(cp, "rbac-broken").await;
    let role = format!("{}-cds-redis-operator", broken.release);
    let patch = json!([{ "op": "replace", "path": "/rules/1/verbs", "value": ["get"] }]);
    ok(
        &cp.kubectl(&["patch", "clusterrole", &role, "--type=json", "-p", &patch.to_string()]),
        "kubectl patch clusterrole",
    );
    let (passed, logs, _) = full_cycle(cp, &broken, Duration::from_secs(15), false).await;
    assert!(!passed, "the cycle passed without the status patch verb:\n{logs}");
    assert!(
        logs.contains("forbidden") || logs.contains("403"),
        "the operator's logs show the refusal:\n{logs}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let audit = std::fs::read_to_string(cp.audit_log()).unwrap_or_default();
    let denied = audit
        .lines()
        .filter(|l| l.contains(&format!("system:serviceaccount:{}:", broken.ns)) && l.contains("\"code\":403"))
        .count();
    assert!(denied > 0, "the audit log records the 403s of the ServiceAccount");
}

#[test]
fn dockerfile_is_multi_stage_locked_and_non_root() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
    assert!(
        froms[1].contains("distroless") && froms[1].contains("nonroot"),
        "{}",
        froms[1]
    );
    assert!(text.contains("RUN cargo build --release --locked --bin cds-redis-operator"));
    assert!(text.contains("USER 65532:65532"));
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/cds-redis-operator"]"#));
    for label in ["title", "description", "version", "licenses", "source"] {
        assert!(
            text.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label}"
        );
    }
    // The build stage copies what cargo needs to load the manifest and build the binary: the
    // [[test]] and [[bench]] targets must exist even when only the binary is built.
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "rustfmt.toml",
        "src",
        "tests",
        "benches",
        "examples",
    ] {
        assert!(root().join(path).exists(), "{path}");
        let copied = text
            .lines()
            .any(|l| l.starts_with("COPY ") && l.split_whitespace().any(|w| w == path));
        assert!(copied, "the build stage does not copy {path}");
    }
}

#[test]
fn the_binary_runs_as_the_image_user() {
    let is_root = unsafe { libc::geteuid() } == 0;
    let have_setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root || !have_setpriv {
        eprintln!("needs root and setpriv to switch to uid 65532: skipping");
        return;
    }
    // A copy in a world-readable directory: the checkout may sit under a 0700 home directory.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("cds-redis-operator-uid-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("cds-redis-operator");
    std::fs::copy(env!("CARGO_BIN_EXE_cds-redis-operator"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = copy.to_str().unwrap().to_owned();
    let bin = bin.as_str();
    let run = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65532",
                "--regid=65532",
                "--clear-groups",
                "--inh-caps=-all",
                bin,
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--version"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["crd"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("RedisInstance"));
    // The simulator serves as uid 65532 on an unprivileged port.
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
            "--inh-caps=-all",
            bin,
            "simulator",
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            "a:b",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let _ = child.kill();
    assert!(line.contains("CDS simulator listening"), "{line}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.wait();
    assert!(status.is_empty() || status.contains("65532"), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
