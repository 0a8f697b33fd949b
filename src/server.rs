//! The HTTP endpoints of the operator: `/metrics` (Prometheus), `/healthz` (the process
//! answers) and `/readyz` (a standby replica, or a leader whose watches are synced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::{Stream, StreamExt as _};
use kube::runtime::watcher;

use crate::metrics::Metrics;

/// What `/readyz` reports.
///
/// A leader is ready once each of its watches has completed an initial list, as the watch
/// streams themselves report it ([`Readiness::track_initial_list`]). Not from
/// `Store::wait_until_ready`: in kube-runtime 5 a store's readiness is a oneshot channel that
/// remembers one waker only, and the `Controller` polls that same store's readiness on every
/// one of its own wake-ups, so a second task waiting on it is never woken (the leader answered
/// 503 forever while reconciling normally).
#[derive(Default)]
pub struct Readiness {
    state: AtomicU8,
    /// The watches that completed an initial list since this replica began leading, a bit each.
    synced: AtomicU8,
    /// Wakes the tasks waiting in [`Readiness::wait_synced`].
    synced_notify: tokio::sync::Notify,
}

const STANDBY: u8 = 1;
const SYNCING: u8 = 2;
const READY: u8 = 3;

/// A watch the leader needs listed once before it is ready.
#[derive(Clone, Copy, Debug)]
pub enum Watch {
    /// The `RedisInstance` objects.
    Objects = 1,
    /// The Secrets (metadata).
    Secrets = 2,
    /// The `ClusterProviderConfig`s.
    ClusterConfigs = 4,
    /// The `ProviderConfig`s.
    Configs = 8,
    /// Every object's use of configs (the default process of a sharded install; marked synced at
    /// once elsewhere).
    Users = 16,
    /// The `RedisBackup`s (they hold the configs they were made with).
    Backups = 32,
}

const ALL_WATCHES: u8 = Watch::Objects as u8
    | Watch::Secrets as u8
    | Watch::ClusterConfigs as u8
    | Watch::Configs as u8
    | Watch::Users as u8
    | Watch::Backups as u8;

impl Readiness {
    /// Waiting for the leader lease (ready: a standby replica is healthy).
    pub fn standby(&self) {
        self.state.store(STANDBY, Ordering::SeqCst);
    }
    /// Leading, watches not synced yet (not ready).
    pub fn syncing(&self) {
        self.synced.store(0, Ordering::SeqCst);
        self.state.store(SYNCING, Ordering::SeqCst);
    }
    /// `watch` completed an initial list: ready once every watch has.
    pub fn watch_synced(&self, watch: Watch) {
        let synced = self.synced.fetch_or(watch as u8, Ordering::SeqCst) | watch as u8;
        if synced == ALL_WATCHES {
            self.synced_notify.notify_waiters();
        }
        if synced == ALL_WATCHES
            && self
                .state
                .compare_exchange(SYNCING, READY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            tracing::info!("watches synced; ready");
        }
    }
    /// Passes a reflector's stream through, marking `watch` synced at each `InitDone` (the end
    /// of an initial list, or of a re-list after an error), once the store holds that list.
    pub fn track_initial_list<K, S>(
        self: &Arc<Self>,
        watch: Watch,
        stream: S,
    ) -> impl Stream<Item = S::Item> + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        let this = self.clone();
        stream.inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                this.watch_synced(watch);
            }
        })
    }
    /// Waits until every watch has completed an initial list since this replica began leading
    /// (immediate afterwards). Any number of tasks may wait.
    pub async fn wait_synced(&self) {
        loop {
            // Created before the check, so a notification in between is not lost.
            let notified = self.synced_notify.notified();
            if self.synced.load(Ordering::SeqCst) == ALL_WATCHES {
                return;
            }
            notified.await;
        }
    }

    fn is_ready(&self) -> (bool, &'static str) {
        match self.state.load(Ordering::SeqCst) {
            STANDBY => (true, "standby"),
            READY => (true, "ok"),
            SYNCING => (false, "watches not synced yet"),
            _ => (false, "starting"), // 0: nothing reported yet
        }
    }
}

struct Shared {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// Serves the endpoints on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Result<(), String> {
    let shared = Arc::new(Shared { metrics, readiness });
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    match s.readiness.is_ready() {
        (true, msg) => (StatusCode::OK, msg),
        (false, msg) => (StatusCode::SERVICE_UNAVAILABLE, msg),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{StreamExt as _, stream};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::{WatchStreamExt as _, reflector};

    use super::*;

    /// Watch events of an initial list of `objects`, then a watch that stays open.
    fn listed(objects: Vec<ConfigMap>) -> impl Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> {
        let events = std::iter::once(watcher::Event::Init)
            .chain(objects.into_iter().map(watcher::Event::InitApply))
            .chain(std::iter::once(watcher::Event::InitDone))
            .map(Ok);
        stream::iter(events).chain(stream::pending())
    }

    #[test]
    fn ready_as_a_standby_or_once_a_leader_listed_every_watch() {
        let r = Readiness::default();
        assert_eq!(r.is_ready(), (false, "starting"));
        r.standby();
        assert_eq!(r.is_ready(), (true, "standby"));
        r.syncing();
        r.watch_synced(Watch::Objects);
        assert_eq!(r.is_ready(), (false, "watches not synced yet"));
        r.watch_synced(Watch::Objects);
        assert_eq!(r.is_ready(), (false, "watches not synced yet"), "the same watch twice");
        r.watch_synced(Watch::Secrets);
        r.watch_synced(Watch::ClusterConfigs);
        assert_eq!(r.is_ready(), (false, "watches not synced yet"), "the configs too");
        r.watch_synced(Watch::Users);
        r.watch_synced(Watch::Backups);
        r.watch_synced(Watch::Configs);
        assert_eq!(r.is_ready(), (true, "ok"));
        // A re-list after a watch error keeps it ready.
        r.watch_synced(Watch::Secrets);
        assert_eq!(r.is_ready(), (true, "ok"));
        // Leading again (a new term) starts from nothing listed.
        r.syncing();
        r.watch_synced(Watch::Secrets);
        assert_eq!(r.is_ready(), (false, "watches not synced yet"));
    }

    /// The operator's wiring in small: the `Controller` waits on the objects' store itself, and
    /// readiness must still come (it never did while a second task awaited
    /// `Store::wait_until_ready` on the same store).
    #[tokio::test]
    async fn a_leader_becomes_ready_while_the_controller_waits_on_the_same_store() {
        let readiness = Arc::new(Readiness::default());
        readiness.syncing();
        let (store, writer) = reflector::store::<ConfigMap>();
        let (_, secret_writer) = reflector::store::<ConfigMap>();
        let object: ConfigMap =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": "o", "namespace": "n" } })).unwrap();
        let objects = readiness
            .track_initial_list(Watch::Objects, reflector::reflector(writer, listed(vec![object])))
            .applied_objects();
        let secrets = readiness
            .track_initial_list(Watch::Secrets, reflector::reflector(secret_writer, listed(vec![])))
            .touched_objects();
        readiness.watch_synced(Watch::ClusterConfigs);
        readiness.watch_synced(Watch::Configs);
        readiness.watch_synced(Watch::Users);
        readiness.watch_synced(Watch::Backups);
        let (reconciled_tx, mut reconciled) = tokio::sync::mpsc::unbounded_channel();
        let controller = tokio::spawn(
            Controller::for_stream(objects, store)
                .watches_stream(secrets, |_| None)
                .run(
                    move |o, _| {
                        let _ = reconciled_tx.send(o.metadata.name.clone());
                        async { Ok::<_, std::io::Error>(Action::await_change()) }
                    },
                    |_, _, _| Action::await_change(),
                    Arc::new(()),
                )
                .for_each(|_| async {}),
        );
        let reconciled = tokio::time::timeout(Duration::from_secs(5), reconciled.recv()).await;
        assert_eq!(
            reconciled.ok().flatten().flatten().as_deref(),
            Some("o"),
            "the controller runs"
        );
        assert_eq!(readiness.is_ready(), (true, "ok"));
        controller.abort();
    }
}
