//! `cds-redis-operator cds import` end to end: instances made directly in the simulator are
//! imported by the real binary, the YAML (its Secret stubs filled in) is applied with kubectl to
//! the real control plane, and the operator adopts every instance without a create; imports of
//! instances a `RedisInstance` records are refused; each selector picks exactly its instances.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cds_redis_operator::cds::wire::CreateInstanceRequest;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::support::control_plane::unique_namespace;
use crate::support::env::*;
use crate::support::sim::{self, KEY_ID, KEY_SECRET};

/// The placeholder the Secret stubs hold.
const PLACEHOLDER: &str = "REPLACE-WITH-THE-INSTANCE-PASSWORD";

/// What one run of the binary gave.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cds-redis-operator cds import ARGS` with the simulator's endpoint and the test key in
/// the environment (as the CLI reads them), and `KUBECONFIG=kubeconfig` if given; otherwise with
/// no Kubernetes configuration at all (an empty HOME, no KUBECONFIG).
async fn import_with(e: &Env, args: &[&str], kubeconfig: Option<&Path>) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cds-redis-operator"));
    cmd.args(["cds", "import"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("CDS_ENDPOINT", e.sim.endpoint())
        .env("CDS_ACCESS_KEY_ID", KEY_ID)
        .env("CDS_ACCESS_KEY_SECRET", KEY_SECRET);
    if let Some(kubeconfig) = kubeconfig {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    let out = cmd.output().await.unwrap();
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stdout.contains(KEY_SECRET) && !run.stderr.contains(KEY_SECRET));
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    run
}

/// [`import_with`] the control plane's kubeconfig if `cluster`, else none.
async fn import(e: &Env, args: &[&str], cluster: bool) -> Run {
    import_with(e, args, cluster.then_some(e.cp.kubeconfig.as_path())).await
}

/// The YAML documents of a stream (comments and empty documents left out).
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The `RedisInstance` objects of an import: `spec.instanceUuid` by object name.
fn imported(run: &Run) -> BTreeMap<String, String> {
    assert!(run.ok, "the import failed:\n{}\n{}", run.stdout, run.stderr);
    documents(&run.stdout)
        .into_iter()
        .filter(|d| d["kind"] == "RedisInstance")
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap().to_owned();
            (name, d["spec"]["instanceUuid"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Creates an instance directly in the simulator (no operator involved); returns its UUID.
async fn precreate_with(e: &Env, request: CreateInstanceRequest) -> String {
    sim::client(&e.sim)
        .create_instance(&request)
        .await
        .unwrap()
        .instance_uuid
}

fn request(name: &str, password: &str, goods: i64, tag: Option<&str>) -> CreateInstanceRequest {
    CreateInstanceRequest {
        paas_goods_id: Some(goods),
        tag_name: tag.map(str::to_owned),
        ..sim::create_request(name, password)
    }
}

/// Replaces each Secret stub's placeholder with the password of the instance its
/// `RedisInstance` adopts (the stub's comment names that instance too).
fn fill_in(yaml: &str, passwords: &BTreeMap<String, String>) -> String {
    let docs = documents(yaml);
    let mut filled = yaml.to_owned();
    for doc in docs.iter().filter(|d| d["kind"] == "RedisInstance") {
        let uuid = doc["spec"]["instanceUuid"].as_str().unwrap();
        let secret = doc["spec"]["passwordSecretRef"]["name"].as_str().unwrap();
        let stub = format!("  name: {secret}\n");
        let at = filled
            .find(&stub)
            .unwrap_or_else(|| panic!("no stub {secret} in\n{yaml}"));
        let placeholder = at + filled[at..].find(PLACEHOLDER).unwrap();
        filled.replace_range(placeholder..placeholder + PLACEHOLDER.len(), &passwords[uuid]);
    }
    assert!(!filled.contains(PLACEHOLDER), "{filled}");
    filled
}

#[tokio::test]
async fn imported_instances_are_adopted_by_the_operator_without_a_create() {
    let e = env("import", fast_sim()).await;
    // Three instances someone made by hand: names that are no Kubernetes names, three products.
    let mut passwords = BTreeMap::new();
    for (name, password, goods) in [
        ("shop_cache", "Shop-Cache-Pw-1", 12467),
        ("Sessions Store", "Sessions-Pw-2", 12929),
        ("缓存", "Cluster-Pw-3", 20675),
    ] {
        let uuid = precreate_with(&e, request(name, password, goods, None)).await;
        passwords.insert(uuid, password.to_owned());
    }
    let creates = e.admin.calls_total("CreateDBInstance").await;
    assert_eq!(creates, 3);

    let run = import(&e, &["--all", "--namespace", &e.ns], true).await;
    let objects = imported(&run);
    assert!(
        !run.stderr.contains("warning"),
        "the cluster was checked: {}",
        run.stderr
    );
    let uuids: BTreeSet<&String> = objects.values().collect();
    assert_eq!(uuids, passwords.keys().collect(), "{}", run.stdout);
    assert!(objects.contains_key("shop-cache") && objects.contains_key("sessions-store"));
    for doc in documents(&run.stdout) {
        assert_eq!(doc["metadata"]["namespace"], e.ns.as_str());
        if doc["kind"] == "RedisInstance" {
            assert_eq!(doc["spec"]["managementPolicy"], "Full");
            assert_eq!(doc["spec"]["deletionPolicy"], "Retain");
            assert_eq!(doc["spec"]["basePipeId"], "pipe-1");
        }
    }

    let applied =
        e.cp.kubectl_stdin(&["apply", "-f", "-"], &fill_in(&run.stdout, &passwords));
    let applied_text = crate::support::stdout_ok(&applied, "kubectl apply");
    assert_eq!(applied_text.lines().count(), 6, "{applied_text}");
    let _op = e.operator();
    for (name, uuid) in &objects {
        let o = e.wait_ready(name).await;
        assert_eq!(status(&o).instance_uuid.as_ref(), Some(uuid), "{name}");
        assert!(e.has_event(name, "Adopted").await, "{name}");
        let secret = e.secrets.get(&format!("{name}-password")).await.unwrap();
        let stored = secret.data.unwrap()["password"].0.clone();
        assert_eq!(String::from_utf8(stored).unwrap(), passwords[uuid]);
    }
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        creates,
        "no CreateDBInstance after the import"
    );
    assert_eq!(e.admin.instances().await.len(), 3);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn selectors_pick_exactly_their_instances_and_recorded_ones_are_refused() {
    let e = env("import-select", fast_sim()).await;
    let mut uuid = BTreeMap::new();
    for (key, name, tag) in [
        ("alpha", "alpha", Some("team-a")),
        ("alpha-2", "alpha-2", Some("team-ab")),
        ("beta", "beta", Some("team-a")),
        ("alpha-untagged", "alpha", None),
    ] {
        let request = request(name, PASSWORD, 12467, tag);
        uuid.insert(key, precreate_with(&e, request).await);
    }
    let picked = |run: &Run| imported(run).into_values().collect::<BTreeSet<_>>();
    let want = |keys: &[&str]| keys.iter().map(|k| uuid[k].clone()).collect::<BTreeSet<_>>();
    let ns = e.ns.clone();

    // Exact names and tags, although the cloud's filters match substrings.
    let by_name = import(&e, &["--name", "alpha", "-n", &ns], false).await;
    assert_eq!(picked(&by_name), want(&["alpha", "alpha-untagged"]));
    let names: BTreeSet<String> = imported(&by_name).into_keys().collect();
    assert!(names.contains("alpha") && names.len() == 2, "unique names: {names:?}");
    let by_tag = import(&e, &["--tag", "team-a", "-n", &ns], false).await;
    assert_eq!(picked(&by_tag), want(&["alpha", "beta"]));
    let by_uuid = import(
        &e,
        &["--uuid", &uuid["alpha-2"], "--uuid", &uuid["beta"], "-n", &ns],
        false,
    )
    .await;
    assert_eq!(picked(&by_uuid), want(&["alpha-2", "beta"]));
    assert_eq!(picked(&import(&e, &["--all", "-n", &ns], false).await).len(), 4);
    // Without a cluster, or with one that does not answer, the check is skipped, and said so.
    assert!(
        by_name.stderr.contains("no Kubernetes cluster is configured"),
        "{}",
        by_name.stderr
    );
    assert!(by_name.stderr.contains("skipped the check"), "{}", by_name.stderr);
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kubeconfig = std::fs::read_to_string(&e.cp.kubeconfig).unwrap();
    let dead = dir.path().join("dead-kubeconfig");
    std::fs::write(&dead, kubeconfig.replace(&e.cp.server, &format!("https://{closed}"))).unwrap();
    let unanswered = import_with(&e, &["--uuid", &uuid["beta"], "-n", &ns], Some(&dead)).await;
    assert_eq!(picked(&unanswered), want(&["beta"]));
    assert!(
        unanswered.stderr.contains("cannot be reached") && unanswered.stderr.contains("skipped the check"),
        "{}",
        unanswered.stderr
    );
    for (args, message) in [
        (
            &["--name", "gamma", "-n", &ns][..],
            "no instance to import matches --name \"gamma\"",
        ),
        (
            &["--uuid", "no-such-uuid", "-n", &ns],
            "the account has no instance no-such-uuid",
        ),
        (&["--all", "-n", &ns, "-o", "json"], "prints YAML only"),
    ] {
        let run = import(&e, args, false).await;
        assert!(
            !run.ok && run.stdout.is_empty() && run.stderr.contains(message),
            "{args:?}: {}",
            run.stderr
        );
    }

    // Objects that record instances: one asks for `alpha` in spec (this namespace), one in
    // another namespace records `beta` in status.
    e.create("owner", spec(json!({ "instanceUuid": uuid["alpha"] }))).await;
    let client = e.cp.client().await;
    let other = unique_namespace(&client, "import-other").await;
    let api: Api<cds_redis_operator::crd::RedisInstance> = Api::namespaced(client, &other);
    let keeper = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": "keeper" }, "spec": spec(json!({})),
    }))
    .unwrap();
    api.create(&Default::default(), &keeper).await.unwrap();
    let status = json!({ "status": { "instanceUuid": uuid["beta"] } });
    api.patch_status("keeper", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    for (args, refused) in [
        (
            &["--uuid", &uuid["alpha"], "-n", &ns][..],
            vec![("alpha", format!("{ns}/owner"))],
        ),
        (
            &["--tag", "team-a", "-n", &ns],
            vec![("alpha", format!("{ns}/owner")), ("beta", format!("{other}/keeper"))],
        ),
    ] {
        let run = import(&e, args, true).await;
        assert!(
            !run.ok && run.stdout.is_empty(),
            "{args:?} was not refused: {}",
            run.stdout
        );
        for (key, by) in refused {
            assert!(
                run.stderr.contains(&format!("instance {}", uuid[key])) && run.stderr.contains(&by),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
    // What nobody records imports with the check on; --no-cluster-check skips it on purpose.
    let free = import(&e, &["--uuid", &uuid["alpha-2"], "-n", &ns], true).await;
    assert_eq!(picked(&free), want(&["alpha-2"]));
    assert!(!free.stderr.contains("warning"), "{}", free.stderr);
    let forced = import(&e, &["--uuid", &uuid["alpha"], "-n", &ns, "--no-cluster-check"], true).await;
    assert_eq!(picked(&forced), want(&["alpha"]));
    assert!(forced.stderr.contains("--no-cluster-check"), "{}", forced.stderr);
    assert_eq!(
        e.admin.calls_total("CreateDBInstance").await,
        4,
        "the CLI never creates"
    );
    e.sim.shutdown().await;
}

#[test]
fn import_help_says_what_the_cluster_check_does() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cds-redis-operator"))
        .args(["cds", "import", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for text in [
        "--uuid",
        "--name",
        "--tag",
        "--all",
        "--namespace",
        "--management-policy",
        "--deletion-policy",
        "--no-cluster-check",
        "KUBECONFIG",
        "skipped with a warning",
    ] {
        assert!(help.contains(text), "{text} is not in:\n{help}");
    }
}
