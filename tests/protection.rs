//! Deletion protection on a real apiserver, with the operator and the simulator running: the
//! chart's `ValidatingAdmissionPolicy`s refuse deleting a `RedisInstance` whose
//! `spec.deletionProtection` is true (`kubectl delete`, `kubectl delete --all`, a
//! `deletecollection`, a namespace deletion) with a message that says how to proceed, and refuse
//! deleting the CRD unless it carries the opt-in annotation; unprotected objects, other CRDs and
//! an annotated CRD go. Nothing protected is deleted in the cloud.
//!
//! The test control plane runs no kube-controller-manager (tests/support/control_plane.rs), so no
//! namespace controller empties a deleted namespace: the namespace test sends the requests that
//! controller sends (a `deletecollection` per resource) itself.

mod support;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::control_plane::{self, ControlPlane, unique_namespace};
use crate::support::env::{Env, PASSWORD, env, eventually, fast_sim, spec, status};
use crate::support::repo_root as root;

const CRD_NAME: &str = "redisinstances.cds.capitalonline.net";
const CRD_OPT_IN: &str = "cds.capitalonline.net/allow-crd-deletion";

/// The CRD test deletes the CRD of this binary's control plane: it holds this lock for writing,
/// every other test for reading.
static CRD_IN_USE: LazyLock<tokio::sync::RwLock<()>> = LazyLock::new(|| tokio::sync::RwLock::new(()));

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn helm_template(cp: &ControlPlane, extra: &[&str]) -> String {
    let out = std::process::Command::new(cp.assets.join("helm"))
        .args([
            "template",
            "cds-redis-operator",
            "charts/cds-redis-operator",
            "--namespace",
            "cds-system",
            "--kube-version",
            "1.37.2",
        ])
        .args(extra)
        .current_dir(root())
        .env("HELM_CACHE_HOME", cp.dir.join("helm-cache"))
        .env("HELM_CONFIG_HOME", cp.dir.join("helm-config"))
        .env("HELM_DATA_HOME", cp.dir.join("helm-data"))
        .output()
        .expect("run helm");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "helm template failed: {stderr}");
    stdout
}

/// The YAML documents of a multi-document text, parsed, without empty ones.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_norway::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The admission policies and bindings among `docs`, as (kind, name).
fn policies(docs: &[Value]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = docs
        .iter()
        .filter(|d| {
            d["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy"))
        })
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Applies the chart's admission policies (default values, as `deploy/` has them). Their type
/// check (`status.typeChecking`) is written by kube-controller-manager, which the test control
/// plane does not run: the requests below prove that the expressions compile and decide right
/// (a policy that does not compile refuses every request, `failurePolicy: Fail`).
async fn install_policies(cp: &ControlPlane) {
    let rendered = helm_template(cp, &["--show-only", "templates/deletion-protection.yaml"]);
    let out = cp.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=tests", "-f", "-"],
        &rendered,
    );
    assert!(out.status.success(), "apply the policies: {}", text(&out).1);
}

/// Waits until the policy refuses deleting a protected object of `e`'s namespace (admission
/// policies take effect a moment after they are written); the dry run deletes nothing.
async fn wait_until_enforced(e: &Env) {
    e.create("probe", spec(json!({ "deletionProtection": true }))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out =
            e.cp.kubectl(&["delete", "redisinstance", "probe", "-n", &e.ns, "--dry-run=server"]);
        if !out.status.success() && text(&out).1.contains("deletionProtection") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the policy is not enforced after 30s: {:?}",
            text(&out)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The probe goes the way the message says, and the dry run left no trace.
    let probe = e.api.get("probe").await.unwrap();
    assert!(probe.metadata.deletion_timestamp.is_none());
    unprotect(e, "probe").await;
    e.api.delete("probe", &DeleteParams::default()).await.unwrap();
}

/// A namespace with the policies installed, the operator running and the password Secret.
async fn protected_env(prefix: &str) -> (Env, support::operator::Operator) {
    let e = env(prefix, fast_sim()).await;
    install_policies(e.cp).await;
    e.secret("pw", &[("password", PASSWORD)]).await;
    wait_until_enforced(&e).await;
    let op = e.operator();
    (e, op)
}

async fn unprotect(e: &Env, name: &str) {
    e.api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "deletionProtection": false } })),
        )
        .await
        .unwrap();
}

/// The cloud instance of each object, by UUID, once all are Ready.
async fn ready_uuids(e: &Env, names: &[&str]) -> Vec<String> {
    let mut uuids = vec![];
    for name in names {
        let o = e.wait_ready(name).await;
        uuids.push(status(&o).instance_uuid.expect("a Ready object has a UUID"));
    }
    uuids
}

/// Whether the cloud instance is listed and not being deleted.
async fn untouched_in_cloud(e: &Env, uuid: &str) -> bool {
    e.admin
        .instances()
        .await
        .iter()
        .any(|i| i["listed"]["InstanceUuid"] == uuid && i["gone_at_ms"].is_null())
}

async fn gone_from_cloud(e: &Env, uuid: &str) -> bool {
    !e.admin
        .instances()
        .await
        .iter()
        .any(|i| i["listed"]["InstanceUuid"] == uuid)
}

/// Asserts the protected objects are there, not being deleted, and their instances untouched,
/// after giving the operator time to act on a deletion had one got through.
async fn assert_spared(e: &Env, names: &[&str], uuids: &[String]) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, uuid) in names.iter().zip(uuids) {
        let o = e.api.get(name).await.unwrap();
        assert!(
            o.metadata.deletion_timestamp.is_none(),
            "{name} is being deleted despite its deletionProtection"
        );
        assert!(
            untouched_in_cloud(e, uuid).await,
            "the cloud instance {uuid} of {name} was deleted"
        );
    }
}

/// The admission error of a refused request.
fn forbidden<T>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{s:?}");
            s.message
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the request was accepted"),
    }
}

#[tokio::test]
async fn kubectl_delete_of_a_protected_object_is_refused_with_the_way_out() {
    let _crd = CRD_IN_USE.read().await;
    let (e, _op) = protected_env("protect-kubectl").await;
    e.create("guarded", spec(json!({ "deletionProtection": true }))).await;
    e.create("free", spec(json!({ "deletionProtection": false }))).await;
    let uuids = ready_uuids(&e, &["guarded", "free"]).await;

    let out =
        e.cp.kubectl(&["delete", "redisinstance", "guarded", "-n", &e.ns, "--wait=false"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "kubectl delete of a protected object succeeded");
    let expected = format!(
        "RedisInstance {}/guarded has spec.deletionProtection: true, so it cannot be deleted",
        e.ns
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("Forbidden"), "{stderr}");
    assert_spared(&e, &["guarded"], &uuids[..1]).await;

    // An unprotected object deletes as always, cloud instance included.
    let out =
        e.cp.kubectl(&["delete", "redisinstance", "free", "-n", &e.ns, "--wait=false"]);
    assert!(out.status.success(), "{:?}", text(&out));
    e.wait_gone("free").await;
    eventually("the free instance deleted in the cloud", || {
        gone_from_cloud(&e, &uuids[1])
    })
    .await;

    // The message's own command lifts the protection; then the delete goes through.
    let command = stderr
        .split("or with ")
        .nth(1)
        .and_then(|rest| rest.split("), then delete it again").next())
        .unwrap_or_else(|| panic!("no command in {stderr}"));
    let (head, patch) = command.split_once(" -p '").expect("a -p argument");
    let mut args: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(args.remove(0), "kubectl", "{command}");
    args.extend(["-p", patch.trim_end_matches('\'')]);
    let out = e.cp.kubectl(&args);
    assert!(out.status.success(), "`{command}` failed: {:?}", text(&out));
    assert_eq!(
        e.api.get("guarded").await.unwrap().spec.deletion_protection,
        Some(false)
    );
    let out =
        e.cp.kubectl(&["delete", "redisinstance", "guarded", "-n", &e.ns, "--wait=false"]);
    assert!(out.status.success(), "{:?}", text(&out));
    e.wait_gone("guarded").await;
    eventually("the guarded instance deleted in the cloud", || {
        gone_from_cloud(&e, &uuids[0])
    })
    .await;
}

#[tokio::test]
async fn delete_all_and_deletecollection_spare_protected_objects() {
    let _crd = CRD_IN_USE.read().await;
    let (e, _op) = protected_env("protect-collection").await;
    let names = ["a-free", "b-guarded", "c-free", "d-guarded"];
    for name in names {
        let protect = name.ends_with("guarded");
        e.create(name, spec(json!({ "deletionProtection": protect }))).await;
    }
    let uuids = ready_uuids(&e, &names).await;
    let guarded = ["b-guarded", "d-guarded"];
    let guarded_uuids = [uuids[1].clone(), uuids[3].clone()];

    // One DELETE of the collection: admission is asked about every object, and the first
    // protected one fails the request (objects after it may not be tried at all).
    let message = forbidden(
        e.api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
    );
    assert!(message.contains("has spec.deletionProtection: true"), "{message}");
    assert_spared(&e, &guarded, &guarded_uuids).await;

    // `kubectl delete --all` deletes one by one: the unprotected ones go, each protected one is
    // refused with the message.
    let out =
        e.cp.kubectl(&["delete", "cdsredis", "--all", "-n", &e.ns, "--wait=false"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "kubectl delete --all succeeded");
    for name in guarded {
        assert!(
            stderr.contains(&format!(
                "RedisInstance {}/{name} has spec.deletionProtection: true",
                e.ns
            )),
            "{stderr}"
        );
    }
    e.wait_gone("a-free").await;
    e.wait_gone("c-free").await;
    for uuid in [&uuids[0], &uuids[2]] {
        eventually("a free instance deleted in the cloud", || gone_from_cloud(&e, uuid)).await;
    }
    assert_spared(&e, &guarded, &guarded_uuids).await;

    // Unprotected, the same deletecollection empties the namespace.
    for name in guarded {
        unprotect(&e, name).await;
    }
    e.api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    for (name, uuid) in guarded.iter().zip(&guarded_uuids) {
        e.wait_gone(name).await;
        eventually("a formerly protected instance deleted in the cloud", || {
            gone_from_cloud(&e, uuid)
        })
        .await;
    }
}

/// A namespace deletion deletes its objects one request at a time (the namespace controller's
/// `deletecollection`): protected objects are refused and hold the namespace in `Terminating`.
#[tokio::test]
async fn namespace_deletion_is_held_by_protected_objects() {
    let _crd = CRD_IN_USE.read().await;
    let (e, _op) = protected_env("protect-ns").await;
    e.create("guarded", spec(json!({ "deletionProtection": true }))).await;
    e.create("free", spec(json!({}))).await;
    let uuids = ready_uuids(&e, &["guarded", "free"]).await;

    let namespaces: Api<Namespace> = Api::all(e.cp.client().await);
    namespaces.delete(&e.ns, &DeleteParams::default()).await.unwrap();
    let ns = namespaces.get(&e.ns).await.unwrap();
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    // What the namespace controller sends for redisinstances (it retries while refused).
    let message = forbidden(
        e.api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
    );
    assert!(
        message.contains(&format!(
            "RedisInstance {}/guarded has spec.deletionProtection: true",
            e.ns
        )),
        "{message}"
    );
    assert_spared(&e, &["guarded"], &uuids[..1]).await;
    let ns = namespaces.get(&e.ns).await.unwrap();
    assert!(
        ns.metadata.deletion_timestamp.is_some(),
        "the namespace is held, still Terminating"
    );

    // Unprotected, the namespace's retry goes through: both objects and both instances go.
    unprotect(&e, "guarded").await;
    e.api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    for (name, uuid) in ["guarded", "free"].iter().zip(&uuids) {
        e.wait_gone(name).await;
        eventually("the instance deleted in the cloud", || gone_from_cloud(&e, uuid)).await;
    }
}

/// Deleting the CRD deletes every object without asking admission about each (protected or
/// not), so the CRD itself is guarded: refused without the annotation, allowed with it.
#[tokio::test]
async fn crd_deletion_needs_the_opt_in_annotation() {
    let _crd = CRD_IN_USE.write().await;
    let cp = control_plane::shared();
    let client = cp.client().await;
    cp.install_crd(&client).await;
    install_policies(cp).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());

    // A protected object with no operator (no finalizer): the CRD deletion would take it along.
    let ns = unique_namespace(&client, "protect-crd").await;
    let objects: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "cds.capitalonline.net",
            "v1alpha1",
            "RedisInstance",
        )),
    );
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": "guarded" },
        "spec": spec(json!({ "deletionProtection": true })),
    }))
    .unwrap();
    objects.create(&Default::default(), &object).await.unwrap();

    // Refused (waiting for the new policy to take effect; a dry run deletes nothing).
    let deadline = Instant::now() + Duration::from_secs(30);
    let stderr = loop {
        let out = cp.kubectl(&["delete", "crd", CRD_NAME, "--dry-run=server"]);
        let (_, stderr) = text(&out);
        if !out.status.success() {
            break stderr;
        }
        assert!(Instant::now() < deadline, "the CRD policy is not enforced after 30s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(stderr.contains("Forbidden"), "{stderr}");
    assert!(
        stderr.contains(&format!("kubectl annotate crd {CRD_NAME} {CRD_OPT_IN}=true")),
        "the message says how to proceed: {stderr}"
    );
    let out = cp.kubectl(&["delete", "crd", CRD_NAME, "--wait=false"]);
    assert!(!out.status.success(), "the CRD was deleted: {:?}", text(&out));
    // A deletecollection too: its items reach admission without a request name.
    let message = forbidden(
        crds.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().fields(&format!("metadata.name={CRD_NAME}")),
        )
        .await,
    );
    assert!(message.contains(CRD_OPT_IN), "{message}");
    // Any other value than "true" is no opt-in.
    let annotate = |value: &str| json!({ "metadata": { "annotations": { CRD_OPT_IN: value } } });
    crds.patch(CRD_NAME, &PatchParams::default(), &Patch::Merge(annotate("yes")))
        .await
        .unwrap();
    forbidden(crds.delete(CRD_NAME, &DeleteParams::default()).await);
    let crd = crds.get(CRD_NAME).await.unwrap();
    assert!(crd.metadata.deletion_timestamp.is_none());
    assert!(objects.get_opt("guarded").await.unwrap().is_some());

    // Other CRDs are not concerned.
    let other: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": "widgets.example.com" },
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "versions": [{ "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object" } } }],
        },
    }))
    .unwrap();
    crds.create(&Default::default(), &other).await.unwrap();
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();

    // Opted in, the deletion goes through, and takes the protected object with it.
    crds.patch(CRD_NAME, &PatchParams::default(), &Patch::Merge(annotate("true")))
        .await
        .unwrap();
    let out = cp.kubectl(&["delete", "crd", CRD_NAME, "--wait=false"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    while crds.get_opt(CRD_NAME).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the CRD is still there after 60s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Back for the other tests of this binary (without the annotation: apply owns no such field).
    cp.install_crd(&client).await;
    let crd = crds.get(CRD_NAME).await.unwrap();
    assert!(!crd.metadata.annotations.unwrap_or_default().contains_key(CRD_OPT_IN));
    assert!(objects.get_opt("guarded").await.unwrap().is_none());
}

#[tokio::test]
async fn the_chart_and_deploy_ship_the_policies_and_a_value_turns_them_off() {
    let cp = control_plane::shared();
    let expected = vec![
        (
            "ValidatingAdmissionPolicy".to_owned(),
            "cds-redis-operator-crd-deletion-protection".to_owned(),
        ),
        (
            "ValidatingAdmissionPolicy".to_owned(),
            "cds-redis-operator-deletion-protection".to_owned(),
        ),
        (
            "ValidatingAdmissionPolicyBinding".to_owned(),
            "cds-redis-operator-crd-deletion-protection".to_owned(),
        ),
        (
            "ValidatingAdmissionPolicyBinding".to_owned(),
            "cds-redis-operator-deletion-protection".to_owned(),
        ),
    ];
    let chart = documents(&helm_template(cp, &[]));
    assert_eq!(policies(&chart), expected, "the chart, default values");
    let deploy = documents(&std::fs::read_to_string(root().join("deploy/cds-redis-operator.yaml")).unwrap());
    assert_eq!(policies(&deploy), expected, "deploy/cds-redis-operator.yaml");
    // The same documents in both.
    for (kind, name) in &expected {
        let find = |docs: &[Value]| {
            docs.iter()
                .find(|d| d["kind"] == kind.as_str() && d["metadata"]["name"] == name.as_str())
                .cloned()
        };
        assert_eq!(find(&chart), find(&deploy), "{kind} {name}");
    }
    // Every binding denies, and points at its policy.
    for d in chart.iter().filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding") {
        assert_eq!(d["spec"]["validationActions"], json!(["Deny"]));
        assert_eq!(d["spec"]["policyName"], d["metadata"]["name"]);
    }
    let off = documents(&helm_template(
        cp,
        &["--set", "deletionProtection.admissionPolicy=false"],
    ));
    assert!(policies(&off).is_empty(), "{:?}", policies(&off));
    assert!(off.len() + 4 == chart.len(), "only the policies go");
}

/// What `kubectl explain` prints comes from the generated CRD: its descriptions are flowing
/// paragraphs (a line break only between paragraphs), which kubectl wraps to the terminal.
#[tokio::test]
async fn kubectl_explain_reads_flowing_paragraphs() {
    let yaml = std::fs::read_to_string(root().join("crds/redisinstances.cds.capitalonline.net.yaml")).unwrap();
    let crd: Value = serde_norway::from_str(yaml.trim_start_matches("---\n")).unwrap();
    fn walk(path: &str, v: &Value, bad: &mut Vec<String>, count: &mut usize) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if let (true, Some(d)) = (k == "description", child.as_str()) {
                        *count += 1;
                        if d.replace("\n\n", "").contains('\n') {
                            bad.push(format!("{path}: {d:?}"));
                        }
                    } else {
                        walk(&format!("{path}.{k}"), child, bad, count);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(path, i, bad, count)),
            _ => {}
        }
    }
    let (mut bad, mut count) = (vec![], 0);
    walk("", &crd, &mut bad, &mut count);
    assert!(count > 40, "{count} descriptions");
    assert!(bad.is_empty(), "line breaks inside paragraphs:\n{}", bad.join("\n"));

    let _crd = CRD_IN_USE.read().await;
    let cp = control_plane::shared();
    cp.install_crd(&cp.client().await).await;
    let mut out = String::new();
    for _ in 0..20 {
        let o = cp.kubectl(&["explain", "redisinstance.spec.deletionProtection"]);
        let (stdout, stderr) = text(&o);
        out = stdout + &stderr;
        if o.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("FIELD: deletionProtection <boolean>"), "{out}");
    assert!(
        flat.contains("While true, deleting this object is refused at admission")
            && flat.contains("set this to false first, then delete. Default false."),
        "{out}"
    );
}
