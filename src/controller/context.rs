//! The [`Context`] every reconcile shares: clients, settings, and the little memory the
//! controller keeps between reconciles of an object (all of it rebuilt from the cluster and the
//! cloud after a restart; none of it is needed for safety across restarts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use super::accounts::{Account, Accounts, Budget};
use super::claims::Claims;
use super::configs::{self, Configs, Resolved};
use super::events::{EventPublisher, EventType};
use super::run::RunConfig;
use super::secrets::SecretReader;
use crate::crd::account::{AccountSettings, ConfigId};
use crate::crd::{RedisInstance, RedisInstanceStatus};
use crate::error::Error;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::server::Readiness;

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The operator's settings.
    pub config: RunConfig,
    /// CDS clients, listings and catalogues per account.
    pub accounts: Accounts,
    /// Referenced Secrets, records and connection Secrets.
    pub secrets: SecretReader,
    /// Events.
    pub events: EventPublisher,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Which object claims which cloud instance.
    pub claims: Arc<Claims>,
    /// Every `RedisInstance` the operator watches.
    pub objects: Store<RedisInstance>,
    /// The account configs, and who uses them.
    pub configs: Configs,
    /// Whether this replica may act.
    pub leadership: Leadership,
    /// Whether the watches have listed everything once (the caches can be trusted).
    pub readiness: Arc<Readiness>,
    /// Per-object memory, by UID.
    memory: Mutex<HashMap<String, Memory>>,
    /// Reconciles started, for their log span.
    reconciles: std::sync::atomic::AtomicU64,
}

/// What the controller remembers of one object between its reconciles. Kept small and only
/// while it holds something (see [`Memory::is_empty`]): a map of every object's memory with the
/// last written status inline was a 2,048-slot table of 235-byte entries (481 KiB) at 1,000
/// objects, held for good.
#[derive(Default)]
struct Memory {
    /// Retryable failures in a row (for the backoff).
    failures: u32,
    /// When the operator last changed the object's cloud instance (create, delete): its next
    /// decision must rest on a listing requested after that, not on one that predates it.
    cloud_write: Option<Instant>,
    /// The status our last write left, as the server returned it, until the watch cache shows
    /// it: reconciling on a cache that lags our own write would redo work. Boxed: it is set for
    /// a moment per write, and inline it made every entry of the map ten times larger.
    status_write: Option<Box<(Instant, RedisInstanceStatus)>>,
    /// A delete of ours got no readable answer: it may be under way, so a 409 on the next one
    /// is that delete in progress (the cloud documents no status for it).
    delete_unanswered: bool,
    /// When the cloud last refused a delete of ours as busy with no delete of ours known.
    delete_busy: Option<Instant>,
}

impl Memory {
    /// Whether it remembers nothing, the same as no entry: its entry is then dropped.
    fn is_empty(&self) -> bool {
        self.failures == 0
            && self.cloud_write.is_none()
            && self.status_write.is_none()
            && !self.delete_unanswered
            && self.delete_busy.is_none()
    }
}

/// The UID of `obj` (the key of the per-object memory).
pub fn uid(obj: &RedisInstance) -> String {
    obj.uid().unwrap_or_default()
}

/// `namespace/name` of `obj`, for logs.
pub fn key(obj: &RedisInstance) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

impl Context {
    /// Builds the context.
    #[allow(clippy::too_many_arguments)] // one field each; a builder would only hide them
    pub fn new(
        client: kube::Client,
        config: RunConfig,
        accounts: Accounts,
        secrets: SecretReader,
        events: EventPublisher,
        metrics: Arc<Metrics>,
        objects: Store<RedisInstance>,
        configs: Configs,
        claims: Arc<Claims>,
        leadership: Leadership,
        readiness: Arc<Readiness>,
    ) -> Self {
        Self {
            client,
            config,
            accounts,
            secrets,
            events,
            metrics,
            claims,
            objects,
            configs,
            leadership,
            readiness,
            memory: Mutex::new(HashMap::new()),
            reconciles: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Runs `f` on `obj`'s memory, keeping the entry only while it remembers something.
    fn with_memory<T>(&self, obj: &RedisInstance, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut memory = self.memory.lock().expect("not poisoned");
        let uid = uid(obj);
        match memory.get_mut(&uid) {
            Some(m) => {
                let out = f(m);
                if m.is_empty() {
                    memory.remove(&uid);
                }
                out
            }
            None => {
                let mut m = Memory::default();
                let out = f(&mut m);
                if !m.is_empty() {
                    memory.insert(uid, m);
                }
                out
            }
        }
    }

    /// The number of the next reconcile (1, 2, ...), shown in its log span.
    pub fn next_reconcile_id(&self) -> u64 {
        self.reconciles.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// Fails once this replica cannot prove it leads: checked before every write.
    pub fn fence(&self) -> Result<(), Error> {
        self.leadership.check().map_err(|_| Error::NotLeader)
    }

    /// Records a status write of `obj` as the server returned it.
    pub fn wrote_status(&self, obj: &RedisInstance, written: Option<RedisInstanceStatus>) {
        if let Some(st) = written {
            self.with_memory(obj, |m| m.status_write = Some(Box::new((Instant::now(), st))));
        }
    }

    /// Whether the watch cache has not caught up with our last status write of `obj` yet.
    pub fn cache_behind(&self, obj: &RedisInstance) -> bool {
        self.with_memory(obj, |m| match m.status_write.as_deref() {
            // Bounded, so that a status edited by someone else cannot stall the object.
            Some((at, st)) if obj.status.as_ref() != Some(st) && at.elapsed() < Duration::from_secs(10) => true,
            _ => {
                m.status_write = None;
                false
            }
        })
    }

    /// Records that the operator just created or deleted `obj`'s cloud instance.
    pub fn wrote_cloud(&self, obj: &RedisInstance) {
        self.with_memory(obj, |m| m.cloud_write = Some(Instant::now()));
    }

    /// Notes that a delete of `obj`'s instance got no readable answer (it may be under way).
    pub fn delete_unanswered(&self, obj: &RedisInstance) {
        self.with_memory(obj, |m| m.delete_unanswered = true);
    }

    /// Notes that the cloud refused a delete of `obj`'s instance as busy (409).
    pub fn delete_busy(&self, obj: &RedisInstance) {
        self.with_memory(obj, |m| m.delete_busy = Some(Instant::now()));
    }

    /// Time since the cloud refused a delete of `obj`'s instance as busy, in this process.
    pub fn delete_busy_age(&self, obj: &RedisInstance) -> Option<Duration> {
        self.with_memory(obj, |m| m.delete_busy.map(|at| at.elapsed()))
    }

    /// Whether a delete of `obj`'s instance got no readable answer in this process.
    pub fn delete_maybe_sent(&self, obj: &RedisInstance) -> bool {
        self.with_memory(obj, |m| m.delete_unanswered)
    }

    /// Whether a listing requested at `requested_at` predates our last cloud write of `obj`.
    pub fn listing_stale(&self, obj: &RedisInstance, requested_at: Instant) -> bool {
        self.with_memory(obj, |m| match m.cloud_write {
            Some(at) if requested_at < at => true,
            _ => {
                m.cloud_write = None;
                false
            }
        })
    }

    /// Counts a retryable failure of `obj`; returns how many happened in a row.
    pub fn failed(&self, obj: &RedisInstance) -> u32 {
        self.with_memory(obj, |m| {
            m.failures += 1;
            m.failures
        })
    }

    /// A reconcile of `obj` succeeded: the backoff starts over.
    pub fn succeeded(&self, obj: &RedisInstance) {
        self.with_memory(obj, |m| m.failures = 0);
    }

    /// Forgets `obj` (released, or deleted).
    pub fn forget(&self, obj: &RedisInstance) {
        self.memory.lock().expect("not poisoned").remove(&uid(obj));
        self.claims.release(obj);
        self.metrics.set_phase(&uid(obj), None);
    }

    /// Forgets the object with this UID, which the watch no longer shows (deleted, or moved to
    /// another shard): its memory, its phase in the metrics and its reservations (its claims
    /// went with the watch event).
    pub fn forget_uid(&self, uid: &str) {
        self.memory.lock().expect("not poisoned").remove(uid);
        self.claims.release_uid(uid);
        self.metrics.set_phase(uid, None);
    }

    /// Forgets every object the watch no longer has (deleted without a finalizer, e.g.
    /// `ObserveOnly` objects, which no reconcile sees go).
    pub fn forget_missing(&self) {
        let alive: std::collections::HashSet<String> = self.objects.state().iter().map(|o| uid(o)).collect();
        {
            let mut memory = self.memory.lock().expect("not poisoned");
            memory.retain(|u, _| alive.contains(u));
            // The table keeps the size of its busiest moment (a rollout of N objects) otherwise.
            memory.shrink_to_fit();
        }
        // A reconcile in flight when its object left (moved to another shard) may have
        // reserved a claim after the watch event dropped the others.
        self.claims.retain_reservations(|u| alive.contains(u));
        self.metrics.retain_phases(|u| alive.contains(u));
    }

    /// The account `obj` uses: its config's (`spec.providerConfigRef`, else the
    /// `ClusterProviderConfig` named `default`), else the operator's own credentials.
    pub async fn account_for(&self, obj: &RedisInstance) -> Result<Arc<Account>, Error> {
        match self.configs.resolve(obj)? {
            Resolved::Operator => self.operator_account(),
            Resolved::Config { id, settings, .. } => self.config_account(&id, &settings).await,
        }
    }

    /// The account of config `id`, with the credentials its Secret holds now (a rotated Secret
    /// takes effect on the next call).
    pub async fn config_account(&self, id: &ConfigId, settings: &AccountSettings) -> Result<Arc<Account>, Error> {
        let credentials = self.secrets.config_credentials(settings).await.map_err(|e| match e {
            Error::SecretNotFound { .. } | Error::SecretKeyMissing { .. } => Error::Credentials(format!("{id}: {e}")),
            e => e,
        })?;
        let budget = Budget {
            endpoint: settings.endpoint.clone(),
            qps: settings.qps,
            burst: settings.burst,
        };
        Ok(self.accounts.get(id, &budget, credentials)?)
    }

    /// The account of the operator's own credentials.
    pub fn operator_account(&self) -> Result<Arc<Account>, Error> {
        let credentials = self.config.cds.credentials().map_err(|e| Error::Credentials(crate::error_chain(&e)))?.ok_or_else(|| {
            Error::Credentials(
                "no CDS credentials: the operator has none (CDS_ACCESS_KEY_ID/CDS_ACCESS_KEY_SECRET), no ClusterProviderConfig \"default\" exists, and spec.providerConfigRef is not set".into(),
            )
        })?;
        Ok(self
            .accounts
            .get(&ConfigId::Operator, &Budget::default(), credentials)?)
    }

    /// What a terminal failure of `obj` depended on besides its spec: the `resourceVersion`s
    /// of its password Secret and of its config's credentials Secret, and which config.
    pub fn input_versions(&self, obj: &RedisInstance) -> Vec<String> {
        let ns = obj.namespace().unwrap_or_default();
        let version = |ns: &str, name: &str| {
            self.secrets
                .meta(ns, name)
                .and_then(|m| m.resource_version())
                .unwrap_or_else(|| "absent".to_owned())
        };
        let mut versions = vec![version(&ns, &obj.spec.password_secret_ref.name)];
        match self.configs.resolve(obj) {
            Ok(Resolved::Config { id, settings, .. }) => {
                versions.push(id.to_string());
                versions.push(version(&settings.secret_namespace, &settings.secret_name));
            }
            Ok(Resolved::Operator) => {}
            Err(_) => versions.push(self.configs.id_of(obj).to_string()),
        }
        versions
    }

    /// Whether `obj`'s config, or its credentials Secret, lacks the in-use finalizer (so
    /// deleting it would leave the instance without an account).
    pub fn account_unheld(&self, obj: &RedisInstance) -> bool {
        match self.configs.resolve(obj) {
            // A config being deleted can take no new finalizer; its Secret still can.
            Ok(Resolved::Config {
                settings,
                held,
                deleting,
                ..
            }) => (!held && !deleting) || self.secrets.unheld(&settings.secret_namespace, &settings.secret_name),
            _ => false,
        }
    }

    /// Holds `obj`'s config and its credentials Secret (in-use finalizers), before anything is
    /// created with them.
    pub async fn hold_account(&self, obj: &RedisInstance) -> Result<(), Error> {
        self.fence()?;
        if let Resolved::Config {
            id,
            settings,
            held,
            deleting,
        } = self.configs.resolve(obj)?
        {
            if !held && !deleting {
                configs::set_config_held(&self.client, &id, true).await?;
            }
            self.secrets
                .set_held(&settings.secret_namespace, &settings.secret_name, true)
                .await?;
        }
        Ok(())
    }

    /// After `obj`'s cleanup finalizer was removed: takes the hold off its credentials Secret if
    /// no other object may still delete an instance with it, and off its config if nothing else
    /// uses it. Only a process that sees every user releases (see
    /// [`Configs::sees_all_users_of`]).
    pub async fn release_account(&self, obj: &RedisInstance) -> Result<(), Error> {
        let id = self.configs.id_of(obj);
        if !self.configs.sees_all_users_of(&id) {
            return Ok(());
        }
        let mut released = self.secrets.released().await;
        released.insert(obj.uid().unwrap_or_default());
        let Some(settings) = self.configs.settings(&id).map(|f| f.settings) else {
            return Ok(());
        };
        self.fence()?;
        let (ns, name) = (&settings.secret_namespace, &settings.secret_name);
        if self.configs.sees_all_holders_of(ns, name) && self.configs.secret_holders(ns, name, &released) == 0 {
            self.secrets.set_held(ns, name, false).await?;
        }
        if self.configs.users_of(&id, &released).is_empty() {
            configs::set_config_held(&self.client, &id, false).await?;
        }
        Ok(())
    }

    /// Publishes an Event about `obj` (a failure to publish is logged, never fatal).
    pub async fn event(&self, obj: &RedisInstance, type_: EventType, reason: &str, note: String) {
        if self.fence().is_err() {
            return;
        }
        if let Err(e) = self.events.publish(obj.object_ref(&()), type_, reason, &note).await {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    /// The steady poll period, jittered by ±20 %.
    pub fn steady_requeue(&self) -> Duration {
        self.config
            .steady_poll_interval
            .mul_f64(0.8 + 0.4 * rand::random::<f64>())
    }
}
