//! The apiserver floor's writes of one object: the writes the operator made on its way to Ready
//! (finalizer, password record, status applies, Events), each timed.

use super::*;

use cds_redis_operator::crd::{FIELD_MANAGER, FINALIZER};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Patch, PatchParams};

/// `total` spread over `n` objects: how many object `i` gets.
fn share(total: u64, n: usize, i: usize) -> u64 {
    total / n as u64 + u64::from((i as u64) < total % n as u64)
}

/// One write, timed, retried like the benchmark's creates. A 409 after a retry means the first
/// attempt landed: the answer is then `None`, and the caller re-reads the object.
async fn timed<T, F, Fut>(what: &str, latencies: &mut Vec<Duration>, retries: &mut u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    for attempt in 1.. {
        let t = Instant::now();
        let result = f().await;
        let took = t.elapsed();
        match result {
            Ok(v) => {
                latencies.push(took);
                return Some(v);
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt > 1 => return None,
            Err(e) if attempt < 10 => {
                eprintln!("floor: {what} failed ({e}); retrying");
                *retries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("floor: {what} failed 10 times: {e}"),
        }
    }
    unreachable!()
}

/// What the floor client writes and where: the operator's apply → Ready writes (`per_kind`)
/// spread over the `n` objects in `ns`, status applies modelled on `status`.
pub(crate) struct Plan<'a> {
    pub(crate) client: kube::Client,
    pub(crate) ns: String,
    pub(crate) objects: Api<RedisInstance>,
    pub(crate) n: usize,
    pub(crate) per_kind: &'a Writes,
    pub(crate) status: &'a Value,
}

/// One object's writes under way: its identity, the resourceVersion it was last written at, and
/// the latencies and retries so far.
struct ObjectWrites<'a> {
    plan: &'a Plan<'a>,
    name: String,
    uid: String,
    rv: Option<String>,
    latencies: Vec<Duration>,
    retries: u64,
}

/// Writes object `i` (`obj`, as created) as the operator wrote its objects on the way to Ready;
/// returns the latency of each write and the retries.
pub(crate) async fn write_object(plan: &Plan<'_>, i: usize, obj: RedisInstance) -> (Vec<Duration>, u64) {
    let mut w = ObjectWrites {
        plan,
        name: obj.metadata.name.clone().unwrap(),
        uid: obj.metadata.uid.clone().unwrap(),
        rv: obj.metadata.resource_version.clone(),
        latencies: vec![],
        retries: 0,
    };
    let share_i = |total| share(total, plan.n, i);
    w.finalizer_patches(share_i(plan.per_kind.finalizer)).await;
    w.secret_creates(share_i(plan.per_kind.secrets)).await;
    w.status_and_events(share_i(plan.per_kind.status), share_i(plan.per_kind.events))
        .await;
    (w.latencies, w.retries)
}

impl ObjectWrites<'_> {
    /// The finalizer (a conditional merge patch, as the operator's), `count` times.
    async fn finalizer_patches(&mut self, count: u64) {
        let objects = &self.plan.objects;
        for j in 0..count {
            let mut finalizers = vec![FINALIZER.to_owned()];
            if j % 2 == 1 {
                finalizers.push("cds.capitalonline.net/bench-floor".to_owned());
            }
            let patch = json!({ "metadata": { "resourceVersion": self.rv, "finalizers": finalizers } });
            let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
            let name = &self.name;
            let written = timed("finalizer patch", &mut self.latencies, &mut self.retries, || {
                objects.patch(name, &params, &patch)
            })
            .await;
            self.rv = self.written_rv(written).await;
        }
    }

    /// The password record (created, owned by the object), `count` times.
    async fn secret_creates(&mut self, count: u64) {
        let secrets: Api<Secret> = Api::namespaced(self.plan.client.clone(), &self.plan.ns);
        for j in 0..count {
            let secret = password_record(&self.name, &self.uid, j);
            let params = PostParams::default();
            let _ = timed("secret create", &mut self.latencies, &mut self.retries, || {
                secrets.create(&params, &secret)
            })
            .await;
        }
    }

    /// Status applies and Events, in the operator's order (intent, Creating; UUID, Created;
    /// Running, Running).
    async fn status_and_events(&mut self, k_status: u64, k_events: u64) {
        let events: Api<Event> = Api::namespaced(self.plan.client.clone(), &self.plan.ns);
        for j in 0..k_status.max(k_events) {
            if j < k_status {
                self.status_apply(j, k_status).await;
            }
            if j < k_events {
                let event = event(&self.plan.ns, &self.name, &self.uid, self.rv.as_deref(), j);
                let params = PostParams::default();
                let _ = timed("event create", &mut self.latencies, &mut self.retries, || {
                    events.create(&params, &event)
                })
                .await;
            }
        }
    }

    /// Status apply `j` of `k_status` (server-side, forced, the operator's field manager).
    async fn status_apply(&mut self, j: u64, k_status: u64) {
        let objects = &self.plan.objects;
        let body = status_body(self.plan.status, &self.name, self.rv.as_deref(), j, k_status);
        let (params, apply) = (PatchParams::apply(FIELD_MANAGER).force(), Patch::Apply(&body));
        let name = &self.name;
        let written = timed("status apply", &mut self.latencies, &mut self.retries, || {
            objects.patch_status(name, &params, &apply)
        })
        .await;
        self.rv = self.written_rv(written).await;
    }

    /// The resourceVersion after a write: the written object's, or read again when the write was
    /// a retry whose first attempt had landed.
    async fn written_rv(&self, written: Option<RedisInstance>) -> Option<String> {
        match written {
            Some(o) => o.metadata.resource_version,
            None => self
                .plan
                .objects
                .get(&self.name)
                .await
                .ok()
                .and_then(|o| o.metadata.resource_version),
        }
    }
}

/// The body of status apply `j` of `k_status` to object `name`, modelled on `status`.
fn status_body(status: &Value, name: &str, rv: Option<&str>, j: u64, k_status: u64) -> Value {
    let mut st = status.clone();
    if j + 1 < k_status && st.is_object() {
        // Before Running: the create intent, not yet the endpoint; a step
        // number keeps consecutive applies distinct.
        st["phase"] = json!(if j == 0 { "Pending" } else { "Creating" });
        st["createAttempt"] = json!({ "instanceName": name, "startedAt": Time(jiff::Timestamp::now()) });
        st["cloudStatusText"] = json!(format!("step {j}"));
        if let Some(m) = st.as_object_mut() {
            m.remove("endpoint");
        }
    }
    json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1",
        "kind": "RedisInstance",
        "metadata": { "resourceVersion": rv },
        "status": st,
    })
}

/// Password record `j` of object `name` (`uid`), as the operator creates it.
fn password_record(name: &str, uid: &str, j: u64) -> Secret {
    serde_json::from_value(json!({
        "metadata": {
            "name": if j == 0 { format!("cdsredis-password-{uid}") } else { format!("cdsredis-password-{uid}-{j}") },
            "labels": { "app.kubernetes.io/managed-by": "cds-redis-operator", "cds.capitalonline.net/role": "password-record", "cds.capitalonline.net/instance": name },
            "ownerReferences": [{ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true }],
        },
        "type": "Opaque",
        "stringData": { "password": "bench-password" },
    }))
    .unwrap()
}

/// Event `j` of object `name` (`uid`, at `rv`) in `ns`, as the operator reports its steps.
fn event(ns: &str, name: &str, uid: &str, rv: Option<&str>, j: u64) -> Event {
    let reasons = ["Creating", "Created", "Running"];
    let now = jiff::Timestamp::now();
    let reason = reasons[(j as usize).min(reasons.len() - 1)];
    serde_json::from_value(json!({
        "metadata": { "name": format!("{name}.{:x}", now.as_nanosecond()), "namespace": ns },
        "action": "Reconcile",
        "reason": reason,
        "note": format!("instance {uid} of {name}: {reason}"),
        "type": "Normal",
        "eventTime": MicroTime(now),
        "reportingController": "cds-redis-operator",
        "reportingInstance": "bench-floor",
        "regarding": { "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance", "name": name, "namespace": ns, "uid": uid, "resourceVersion": rv },
    }))
    .unwrap()
}
