//! The apiserver floor: the writes the operator made on the way to Ready, made again on fresh
//! objects by a minimal kube-rs client with nothing else running, and timed.

use super::*;

use futures::channel::mpsc::UnboundedSender;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::task::JoinHandle;

/// What the floor client did and how long it took.
pub(crate) struct Floor {
    /// From the first create of an object to the last write.
    pub(crate) elapsed: Duration,
    /// Creates of the objects (by the admin client, as the benchmark creates them).
    pub(crate) creates: u64,
    /// The writes of the operator's kinds made (the operator's apply → Ready writes).
    pub(crate) planned: Writes,
    /// The floor client's writes as the audit log shows them.
    pub(crate) audited: Writes,
    /// Latency of each of those writes.
    pub(crate) latencies: Vec<Duration>,
    /// Attempts repeated after an error.
    pub(crate) retries: u64,
}

impl Floor {
    /// Latency per write in milliseconds: (mean, median, p99).
    pub(crate) fn latency_ms(&self) -> (f64, f64, f64) {
        let mut l: Vec<f64> = self.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        if l.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        l.sort_by(f64::total_cmp);
        let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
        (l.iter().sum::<f64>() / l.len() as f64, at(0.5), at(0.99))
    }
}

/// The apiserver floor: N fresh objects in a new namespace, created as the benchmark creates them,
/// each then written as the operator wrote its objects on the way to Ready (`per_kind`, spread
/// over the objects) by a minimal client with its own identity and the operator's concurrency,
/// while the operator's two watches (the objects, Secrets metadata-only) are open in that
/// namespace. Status applies are modelled on `status` (a Ready object's status).
pub(crate) async fn apiserver_floor(
    cp: &ControlPlane,
    admin: &kube::Client,
    n: usize,
    per_kind: &Writes,
    status: &Value,
) -> Floor {
    let ns = unique_namespace(admin, &format!("floor-{n}")).await;
    let (kubeconfig, user) = service_account(cp, admin, &ns, "bench-floor", &format!("{ns}-floor")).await;
    let client = cp.client_for(&kubeconfig).await;
    let objects: Api<RedisInstance> = Api::namespaced(client.clone(), &ns);
    let admin_objects: Api<RedisInstance> = Api::namespaced(admin.clone(), &ns);
    let watches = open_watches(&client, &objects, &ns).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let audit_before = writes(&cp.audit_log(), &user);

    let plan = Plan {
        client,
        ns,
        objects,
        n,
        per_kind,
        status,
    };
    let t0 = Instant::now();
    let done = create_and_write(admin_objects.clone(), &plan).await;
    let elapsed = t0.elapsed();
    for w in &watches {
        w.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let audited = writes(&cp.audit_log(), &user).minus(&audit_before);
    let (mut latencies, mut retries) = (vec![], 0);
    for (l, r) in done {
        latencies.extend(l);
        retries += r;
    }
    let planned = Writes {
        other: 0,
        ..per_kind.clone()
    };
    remove_objects(&admin_objects, n).await;
    Floor {
        elapsed,
        creates: n as u64,
        planned,
        audited,
        latencies,
        retries,
    }
}

/// Creates the objects and writes each once created: the latencies and retries of each object's
/// writes.
async fn create_and_write(admin_objects: Api<RedisInstance>, plan: &Plan<'_>) -> Vec<(Vec<Duration>, u64)> {
    // Creating: CONCURRENCY creates in flight, as the benchmark makes them; each created object
    // goes to the writers, CONCURRENCY objects in flight, as the operator's reconciles.
    let (created_tx, created_rx) = futures::channel::mpsc::unbounded::<RedisInstance>();
    let creating = create_objects(admin_objects, plan.n, created_tx);
    let writing = created_rx
        .enumerate()
        .map(|(i, obj)| write_object(plan, i, obj))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>();
    let (_, done) = tokio::join!(creating, writing);
    done
}

/// The operator's two watches in `ns` (the objects; Secrets, metadata only), their events read
/// and dropped; returns once both have listed.
async fn open_watches(client: &kube::Client, objects: &Api<RedisInstance>, ns: &str) -> [JoinHandle<()>; 2] {
    let (synced_tx, mut synced_rx) = futures::channel::mpsc::unbounded::<()>();
    let watches = [
        watch(objects.clone(), synced_tx.clone()),
        watch(
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
            synced_tx.clone(),
        ),
    ];
    for _ in 0..2 {
        synced_rx.next().await;
    }
    watches
}

/// A watch on `api` in its own task, its events read and dropped; `synced` hears of each initial
/// list done.
fn watch<K>(api: Api<K>, synced: UnboundedSender<()>) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .for_each(move |e| {
                if matches!(e, Ok(watcher::Event::InitDone)) {
                    let _ = synced.unbounded_send(());
                }
                async {}
            }),
    )
}

/// Creates the N objects as the benchmark creates them (CONCURRENCY in flight) and sends each,
/// as stored, to `created`.
async fn create_objects(api: Api<RedisInstance>, n: usize, created: UnboundedSender<RedisInstance>) {
    futures::stream::iter(0..n)
        .map(|i| {
            let (api, tx) = (api.clone(), created.clone());
            async move {
                let stored = match create_retried(&api, &object(i)).await {
                    Some(o) => o,
                    None => api.get(&object_name(i)).await.unwrap(),
                };
                let _ = tx.unbounded_send(stored);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
}

/// Leaves no objects behind for the next N (not timed): finalizers off, then deletes them all.
async fn remove_objects(api: &Api<RedisInstance>, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let patch = json!({ "metadata": { "finalizers": null } });
                let _ = api
                    .patch(&object_name(i), &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
}
