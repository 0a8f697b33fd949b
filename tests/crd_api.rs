//! The `RedisInstance` API on a real kube-apiserver: the CRD installs, the samples are accepted,
//! every CEL rule rejects what it should with its message, `kubectl explain` reads the docs, and
//! status writes do not bump the generation.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::control_plane::{self, unique_namespace};

fn resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cds.capitalonline.net",
        "v1alpha1",
        "RedisInstance",
    ))
}

fn valid_spec() -> Value {
    json!({
        "regionId": "CN_Beijing_A",
        "vdcId": "vdc-1",
        "basePipeId": "pipe-1",
        "paasGoodsId": 12467,
        "passwordSecretRef": { "name": "redis-password" },
    })
}

fn object(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1",
        "kind": "RedisInstance",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .unwrap()
}

async fn setup(prefix: &str) -> (kube::Client, Api<DynamicObject>) {
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    let ns = unique_namespace(&client, prefix).await;
    let api = Api::namespaced_with(client.clone(), &ns, &resource());
    (client, api)
}

/// The error message of a rejected create or update.
fn rejection(result: Result<DynamicObject, kube::Error>) -> String {
    match result {
        Ok(o) => panic!("the apiserver accepted {:?}", o.data["spec"]),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            s.message.clone()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn crd_installs_and_is_served_with_printer_columns() {
    let (_client, api) = setup("crd").await;
    api.create(&PostParams::default(), &object("minimal", valid_spec()))
        .await
        .unwrap();
    let cp = control_plane::shared();
    let out = cp.kubectl(&["get", "cdsredis", "-n", api.namespace().unwrap(), "-o", "wide"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let header = text.lines().next().unwrap_or_default();
    for col in [
        "NAME", "READY", "PHASE", "ENDPOINT", "UUID", "AGE", "PORT", "TASKID", "REASON",
    ] {
        assert!(header.contains(col), "column {col} missing in {header:?}");
    }
    // The category works too.
    let out = cp.kubectl(&["get", "cds", "-n", api.namespace().unwrap(), "-o", "name"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "redisinstance.cds.capitalonline.net/minimal"
    );
}

#[tokio::test]
async fn samples_in_deploy_examples_are_accepted() {
    let (_client, api) = setup("samples").await;
    let ns = api.namespace().unwrap().to_owned();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the documented examples (00-09), found {files:?}"
    );
    let cp = control_plane::shared();
    // How many objects of each of our kinds the files hold (a file may hold several documents).
    let mut expected: std::collections::BTreeMap<String, usize> = Default::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let doc = <Value as serde::Deserialize>::deserialize(doc).unwrap();
            if doc["apiVersion"] == "cds.capitalonline.net/v1alpha1" {
                *expected.entry(doc["kind"].as_str().unwrap().to_owned()).or_default() += 1;
            }
        }
    }
    for file in &files {
        let out = cp.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=tests",
            "-n",
            &ns,
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{} was refused: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(expected["RedisInstance"] >= 5, "{expected:?}");
    for kind in ["RedisBackupSchedule", "ProviderConfig", "ClusterProviderConfig"] {
        assert!(expected.get(kind).is_some_and(|n| *n >= 1), "{kind}: {expected:?}");
    }
    for (kind, count) in &expected {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("cds.capitalonline.net", "v1alpha1", kind));
        // The cluster-scoped kind is served cluster-wide (this binary makes no other object of it).
        let of_kind: Api<DynamicObject> = if kind.starts_with("Cluster") {
            Api::all_with(api.clone().into_client(), &resource)
        } else {
            Api::namespaced_with(api.clone().into_client(), &ns, &resource)
        };
        let list = of_kind.list(&Default::default()).await.unwrap();
        assert_eq!(list.items.len(), *count, "{kind} objects served");
    }
}

#[tokio::test]
async fn create_rules_reject_bad_objects_with_their_message() {
    let (_client, api) = setup("cel-create").await;
    let pp = PostParams::default();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut s = valid_spec();
        f(&mut s);
        s
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "both",
            with(&|s| s["flavor"] = json!({"version": "5.0", "architecture": "MasterReplica", "ramGb": 4})),
            "exactly one of paasGoodsId or flavor must be set",
        ),
        (
            "neither",
            with(&|s| {
                s.as_object_mut().unwrap().remove("paasGoodsId");
            }),
            "exactly one of paasGoodsId or flavor must be set",
        ),
        (
            "port-80",
            with(&|s| s["servicePort"] = json!(80)),
            "servicePort must be within 1024-65535 and not one of 9100, 9121, 9122, 16379",
        ),
        (
            "port-9100",
            with(&|s| s["servicePort"] = json!(9100)),
            "servicePort must be within 1024-65535",
        ),
        (
            "port-16379",
            with(&|s| s["servicePort"] = json!(16379)),
            "servicePort must be within 1024-65535",
        ),
        (
            "port-70000",
            with(&|s| s["servicePort"] = json!(70000)),
            "servicePort must be within 1024-65535",
        ),
        (
            "arch",
            with(&|s| {
                s.as_object_mut().unwrap().remove("paasGoodsId");
                s["flavor"] = json!({"version": "5.0", "architecture": "Sentinel", "ramGb": 4});
            }),
            "Unsupported value: \"Sentinel\"",
        ),
        (
            "deletion",
            with(&|s| s["deletionPolicy"] = json!("Orphan")),
            "Unsupported value: \"Orphan\"",
        ),
        (
            "management",
            with(&|s| s["managementPolicy"] = json!("ReadOnly")),
            "Unsupported value: \"ReadOnly\"",
        ),
        (
            "name-space",
            with(&|s| s["instanceName"] = json!("has space")),
            "spec.instanceName",
        ),
    ];
    for (name, spec, message) in cases {
        let msg = rejection(api.create(&pp, &object(name, spec)).await);
        assert!(msg.contains(message), "{name}: {msg:?} lacks {message:?}");
    }
    // The allowed edges pass.
    for (name, port) in [("port-1024", 1024), ("port-65535", 65535), ("port-9736", 9736)] {
        api.create(&pp, &object(name, with(&|s| s["servicePort"] = json!(port))))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    api.create(
        &pp,
        &object(
            "flavor-only",
            with(&|s| {
                s.as_object_mut().unwrap().remove("paasGoodsId");
                s["flavor"] = json!({"version": "5.0", "architecture": "Cluster", "ramGb": 8});
            }),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn create_only_fields_are_immutable() {
    let (_client, api) = setup("cel-update").await;
    let full = json!({
        "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-1",
        "instanceName": "fixed-name", "paasGoodsId": 12467, "servicePort": 7000,
        "passwordSecretRef": { "name": "pw" }, "testGroupId": 1, "subjectId": 2,
        "instanceUuid": "86b9ded8-3f11-4bea-9232-a571a6de0fbf",
    });
    let edits: Vec<(&str, Value, &str)> = vec![
        ("regionId", json!("CN_Wuxi_A"), "regionId is immutable"),
        ("vdcId", json!("vdc-2"), "vdcId is immutable"),
        ("basePipeId", json!("pipe-2"), "basePipeId is immutable"),
        ("instanceName", json!("other-name"), "instanceName is immutable"),
        ("instanceName", Value::Null, "instanceName is immutable"),
        ("paasGoodsId", json!(12470), "paasGoodsId is immutable"),
        ("servicePort", json!(7001), "servicePort is immutable"),
        ("testGroupId", json!(3), "testGroupId is immutable"),
        ("subjectId", json!(4), "subjectId is immutable"),
        (
            "instanceUuid",
            json!("00000000-0000-0000-0000-000000000000"),
            "instanceUuid is immutable once set",
        ),
        ("instanceUuid", Value::Null, "instanceUuid is immutable once set"),
    ];
    for (i, (field, value, message)) in edits.into_iter().enumerate() {
        let name = format!("imm-{i}");
        api.create(&PostParams::default(), &object(&name, full.clone()))
            .await
            .unwrap();
        // A JSON merge patch: null removes the field.
        let patch = json!({ "spec": { field: value } });
        let result = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        let msg = rejection(result);
        assert!(msg.contains(message), "{field}: {msg:?} lacks {message:?}");
    }
    // Switching paasGoodsId for a flavor is refused too.
    api.create(&PostParams::default(), &object("imm-flavor", full.clone()))
        .await
        .unwrap();
    let patch = json!({ "spec": { "paasGoodsId": null, "flavor": {"version": "5.0", "architecture": "MasterReplica", "ramGb": 4} } });
    let msg = rejection(
        api.patch("imm-flavor", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert!(
        msg.contains("flavor is immutable") && msg.contains("paasGoodsId is immutable"),
        "{msg}"
    );
    // Mutable fields stay mutable.
    let patch = json!({ "spec": { "deletionPolicy": "Retain", "managementPolicy": "ObserveOnly", "providerConfigRef": {"kind": "ProviderConfig", "name": "c"}, "writeConnectionSecretToRef": {"name": "conn"}, "passwordSecretRef": {"name": "other", "key": "pw"} } });
    api.patch("imm-flavor", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // instanceUuid may be set later when it was not set at first (adoption after the fact).
    let mut no_uuid = full.clone();
    no_uuid.as_object_mut().unwrap().remove("instanceUuid");
    api.create(&PostParams::default(), &object("late-adopt", no_uuid))
        .await
        .unwrap();
    let patch = json!({ "spec": { "instanceUuid": "86b9ded8-3f11-4bea-9232-a571a6de0fbf" } });
    api.patch("late-adopt", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn kubectl_explain_prints_the_field_docs() {
    let (_client, _api) = setup("explain").await;
    let cp = control_plane::shared();
    // Discovery may lag the CRD by a moment.
    let mut text = String::new();
    for _ in 0..20 {
        let out = cp.kubectl(&["explain", "redisinstance.spec.passwordSecretRef"]);
        text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(text.contains("GROUP:      cds.capitalonline.net"), "{text}");
    assert!(
        text.contains("Secret (in this namespace) holding the Redis password"),
        "{text}"
    );
    assert!(
        text.contains("key\t<string>") || text.contains("key <string>") || text.contains("key\t"),
        "{text}"
    );
    assert!(text.contains("defaults to `password`"), "{text}");
}

#[tokio::test]
async fn status_subresource_does_not_bump_generation() {
    let (_client, api) = setup("status").await;
    let created = api
        .create(&PostParams::default(), &object("s", valid_spec()))
        .await
        .unwrap();
    let generation = created.metadata.generation;
    assert_eq!(generation, Some(1));
    let status = json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "status": { "phase": "Creating", "instanceUuid": "u-1", "conditions": [
            { "type": "Ready", "status": "False", "reason": "Creating", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z" }
        ] }
    });
    let after = api
        .patch_status(
            "s",
            &PatchParams::apply("cds-redis-operator").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(
        after.metadata.generation, generation,
        "a status write must not bump the generation"
    );
    assert_eq!(after.data["status"]["phase"], "Creating");
    // Status sent through the main resource is ignored (status is a subresource).
    let sneaky = json!({ "status": { "phase": "Running" }, "spec": { "deletionPolicy": "Retain" } });
    let after = api
        .patch("s", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Creating");
    assert_eq!(after.metadata.generation, Some(2));
}

#[test]
fn crds_folder_matches_the_binary() {
    let crd = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cds-redis-operator"))
            .arg("crd")
            .args(args)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut all = String::new();
    // In the order of the files (`cat crds/*.yaml` is what `crd` prints).
    for (kind, plural) in [
        ("ClusterProviderConfig", "clusterproviderconfigs"),
        ("ProviderConfig", "providerconfigs"),
        ("RedisBackup", "redisbackups"),
        ("RedisBackupSchedule", "redisbackupschedules"),
        ("RedisInstance", "redisinstances"),
    ] {
        let (ok, printed) = crd(&["--kind", kind]);
        assert!(ok, "{kind}");
        let path = dir.join(format!("{plural}.cds.capitalonline.net.yaml"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == printed,
            "crds/ is stale: run scripts/generate.sh and commit ({})",
            path.display()
        );
        all.push_str(&printed);
    }
    assert_eq!(crd(&[]), (true, all), "without --kind: every CRD");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        5,
        "crds/ holds the five CRDs only"
    );
    assert!(!crd(&["--kind", "Nope"]).0);
}

/// The backup kinds on the real apiserver: bad input is refused at admission where a schema can
/// say it (an instance of another namespace, `keep: 0`, a changed `instanceRef`).
#[tokio::test]
async fn backup_kinds_refuse_bad_input_at_admission() {
    let (client, _) = setup("backup-crds").await;
    let ns = unique_namespace(&client, "backup-crds-ns").await;
    let api_of = |kind: &str| {
        let gvk = GroupVersionKind::gvk("cds.capitalonline.net", "v1alpha1", kind);
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk))
    };
    let (backups, schedules) = (api_of("RedisBackup"), api_of("RedisBackupSchedule"));
    let of = |kind: &str, name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": kind,
            "metadata": { "name": name }, "spec": spec,
        }))
        .unwrap()
    };
    let pp = PostParams::default();
    let other_ns = backups
        .create(
            &pp,
            &of("RedisBackup", "b", json!({ "instanceRef": { "name": "other/cache" } })),
        )
        .await;
    assert!(rejection(other_ns).contains("spec.instanceRef.name"));
    let backup = of("RedisBackup", "b", json!({ "instanceRef": { "name": "cache" } }));
    backups.create(&pp, &backup).await.unwrap();
    let moved = backups
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "instanceRef": { "name": "other" } } })),
        )
        .await;
    assert!(rejection(moved).contains("instanceRef is immutable"));
    let schedule = |keep: i64| {
        of(
            "RedisBackupSchedule",
            "nightly",
            json!({ "instanceRef": { "name": "cache" }, "schedule": "0 3 * * *", "keep": keep }),
        )
    };
    let keep_zero = schedules.create(&pp, &schedule(0)).await;
    assert!(rejection(keep_zero).contains("spec.keep"));
    schedules.create(&pp, &schedule(7)).await.unwrap();
}
