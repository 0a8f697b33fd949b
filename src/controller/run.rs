//! Wiring: the settings of `cds-redis-operator run`, the leader election, the watches (objects,
//! and Secrets metadata-only), and the controller that drives [`super::reconcile`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::accounts::{Accounts, Ttls};
use super::claims::Claims;
use super::configs::Configs;
use super::context::Context;
use super::events::EventPublisher;
use super::reconcile::{error_policy, reconcile};
use super::secrets::{self, SecretReader};
use super::shard::Shard;
use crate::config::CdsSettings;
use crate::crd::account::{AccountConfig as _, ClusterProviderConfig, ConfigId, ProviderConfig};
use crate::crd::backup::RedisBackup;
use crate::crd::{DeletionPolicy, RedisInstance};
use crate::duration::parse_duration;
use crate::leader::{LeaderElector, Leadership, LeaseConfig};
use crate::metrics::Metrics;
use crate::server::Readiness;

/// Settings of `cds-redis-operator run`, from flags with environment fallbacks.
#[derive(Clone, Debug, clap::Args)]
pub struct RunConfig {
    #[command(flatten)]
    pub cds: CdsSettings,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long = "namespace", env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Poll period while an instance is being created or deleted.
    #[arg(long, env = "CDS_BUSY_POLL_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub busy_poll_interval: Duration,
    /// Poll period of steady instances (drift checks), jittered by ±20%.
    #[arg(long, env = "CDS_STEADY_POLL_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub steady_poll_interval: Duration,
    /// How long a created instance may take to show up in listings; a create whose answer was
    /// lost is not retried before this has passed without the name appearing.
    #[arg(long, env = "CDS_VISIBILITY_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub visibility_grace: Duration,
    /// How long an accepted delete (or one whose answer was lost and that the cloud then called
    /// busy) may leave the instance listed before it is sent once more: the cloud documents no
    /// status for an instance being deleted.
    #[arg(long, env = "CDS_DELETE_RESEND_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub delete_resend_after: Duration,
    /// Refresh status.lastSyncTime at least this often even when nothing changed.
    #[arg(long, env = "CDS_STATUS_REFRESH_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub status_refresh_interval: Duration,
    /// How long region catalogues (flavor → PaasGoodsId) are cached.
    #[arg(long, env = "CDS_CATALOGUE_TTL", default_value = "1h", value_parser = parse_duration)]
    pub catalogue_ttl: Duration,
    /// How long what the preflight looks up (regions on sale, the VDCs of a region and their
    /// free IPs) is cached; a finding that would block a create is confirmed by a lookup at most
    /// 30 s old.
    #[arg(long, env = "CDS_PREFLIGHT_TTL", default_value = "5m", value_parser = parse_duration)]
    pub preflight_ttl: Duration,
    /// Objects reconciled at the same time.
    #[arg(long, env = "CDS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Deletion policy of objects that do not set spec.deletionPolicy.
    #[arg(long, env = "CDS_DEFAULT_DELETION_POLICY", default_value = "Delete", value_parser = parse_deletion_policy)]
    pub default_deletion_policy: DeletionPolicy,
    /// Elect a leader through a Lease so only one replica acts.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "LEADER_ELECTION_ID", default_value = "cds-redis-operator")]
    pub leader_election_id: String,
    /// Own only the objects labelled `cds.capitalonline.net/shard: SHARD`, and elect the leader on
    /// the Lease `<leader-election-id>-SHARD` (see README, "Shards").
    #[arg(long, env = "CDS_SHARD", value_parser = super::shard::parse_shard_name, conflicts_with = "known_shards")]
    pub shard: Option<String>,
    /// The shards other processes run (comma-separated): this process, started without
    /// `--shard`, leaves the objects labelled with one of them alone and owns every other one.
    #[arg(long, env = "CDS_KNOWN_SHARDS", value_delimiter = ',', value_parser = super::shard::parse_shard_name)]
    pub known_shards: Vec<String>,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: std::net::SocketAddr,
}

impl RunConfig {
    /// Which objects this process owns.
    pub fn shard(&self) -> Shard {
        Shard::new(self.shard.as_deref(), &self.known_shards)
    }

    /// `watcher::Config` of a watch of our kinds: this process's shard selector, if any.
    pub fn watch_config(&self) -> watcher::Config {
        match self.shard().selector() {
            Some(selector) => watcher::Config::default().labels(&selector),
            None => watcher::Config::default(),
        }
    }
}

fn parse_deletion_policy(s: &str) -> Result<DeletionPolicy, String> {
    match s {
        "Delete" => Ok(DeletionPolicy::Delete),
        "Retain" => Ok(DeletionPolicy::Retain),
        _ => Err(format!("{s:?} is not Delete or Retain")),
    }
}

/// Why the operator stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No Kubernetes configuration, or the apiserver cannot be reached.
    #[error("cannot reach Kubernetes")]
    Kubernetes(#[source] kube::Error),
    /// The operator's own CDS credentials are configured but cannot be read.
    #[error("the operator's CDS credentials cannot be read")]
    Credentials(#[source] crate::config::SettingsError),
    /// The leader lease was lost; the process exits so that it restarts as a standby.
    #[error("lost the leader lease; exiting so a standby can take over")]
    LostLease,
}

/// Runs the operator until SIGTERM/SIGINT (or the loss of the leader lease).
pub async fn run(config: RunConfig) -> Result<(), RunError> {
    crate::cds::client::install_crypto_provider();
    let client = kube::Client::try_default().await.map_err(RunError::Kubernetes)?;
    run_with_client(client, config).await
}

/// [`run`] with a given client.
pub async fn run_with_client(client: kube::Client, config: RunConfig) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let server = tokio::spawn(crate::server::serve(
        config.metrics_address,
        metrics.clone(),
        readiness.clone(),
    ));
    // Fail early on unreadable operator credentials (absent ones are fine: objects may bring their own).
    config.cds.credentials().map_err(RunError::Credentials)?;
    let identity = config.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned();
        format!("{host}-{}", std::process::id())
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = signal_tx.send(true);
    });
    let elector = config.leader_election.then(|| elector(&client, &config, &identity));
    if let Some(elector) = &elector {
        readiness.standby();
        let mut stop = stop_rx.clone();
        tokio::select! {
            _ = elector.acquire() => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
    metrics.set_leader(true);
    readiness.syncing();
    let lost = Arc::new(AtomicBool::new(false));
    if let Some(elector) = elector.clone() {
        // Holding the lease; on losing it the controller stops (the fence already did).
        let (lost, stop_tx) = (lost.clone(), stop_tx.clone());
        tokio::spawn(async move {
            elector.hold().await;
            lost.store(true, Ordering::SeqCst);
            let _ = stop_tx.send(true);
        });
    }
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::unconditional, LeaderElector::leadership);
    control(client, config, identity, metrics, readiness, leadership, stop_rx).await;
    server.abort();
    if lost.load(Ordering::SeqCst) {
        return Err(RunError::LostLease);
    }
    if let Some(elector) = &elector {
        elector.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn elector(client: &kube::Client, config: &RunConfig, identity: &str) -> LeaderElector {
    LeaderElector::new(
        client.clone(),
        LeaseConfig {
            name: config.shard().lease_name(&config.leader_election_id),
            namespace: config.leader_election_namespace.clone(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        },
    )
}

/// The watches: objects (feeding the claim index and readiness), Secrets, metadata-only, and
/// the account configs.
struct Watches<O, S, C, P> {
    objects: Store<RedisInstance>,
    object_events: O,
    secrets: Store<PartialObjectMeta<Secret>>,
    secret_events: S,
    claims: Arc<Claims>,
    configs: Configs,
    cluster_config_events: C,
    config_events: P,
    /// Objects to reconcile because their config changed.
    config_triggers: futures::channel::mpsc::UnboundedReceiver<ObjectRef<RedisInstance>>,
    /// The UIDs of the objects the watch no longer shows (deleted, or moved to another shard).
    left: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Fills `configs.backups`: the `RedisBackup` controller's watch.
    backup_writer: reflector::store::Writer<RedisBackup>,
    /// The watch of every object's use of configs, in the default process of a sharded install.
    users_events: Option<futures::stream::BoxStream<'static, Result<watcher::Event<RedisInstance>, watcher::Error>>>,
}

#[allow(clippy::type_complexity)] // four opaque stream types; naming them would box them
fn watches(
    client: &kube::Client,
    config: &RunConfig,
    readiness: &Arc<Readiness>,
) -> Watches<
    impl futures::Stream<Item = Result<RedisInstance, watcher::Error>> + Send + 'static,
    impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static,
    impl futures::Stream<Item = Result<ClusterProviderConfig, watcher::Error>> + Send + 'static,
    impl futures::Stream<Item = Result<ProviderConfig, watcher::Error>> + Send + 'static,
> {
    let (ri_api, secret_api): (Api<RedisInstance>, Api<PartialObjectMeta<Secret>>) =
        match config.watch_namespace.as_deref() {
            Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    // The caches keep only what the operator reads: no managedFields; of a Secret's metadata only
    // its name, version, owners and finalizers (a `kubectl apply`'d Secret carries its data in
    // the last-applied-configuration annotation; a label map of one entry allocates an 11-slot
    // B-tree node, about 540 bytes, per Secret: 1,000 password records held 0.5 MiB of them);
    // of an object, no last-applied-configuration.
    // Secrets are not filtered by shard: user Secrets carry no shard label. Only the objects are.
    let (secrets, secret_writer) = reflector::store();
    let secret_watch = watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .modify(|s: &mut PartialObjectMeta<Secret>| {
            s.metadata.managed_fields = None;
            s.metadata.annotations = None;
            s.metadata.labels = None;
        });
    let secret_events = readiness
        .track_initial_list(
            crate::server::Watch::Secrets,
            reflector::reflector(secret_writer, secret_watch),
        )
        .touched_objects();
    let (objects, writer) = reflector::store();
    let ri_watch = watcher(ri_api.clone(), config.watch_config())
        .default_backoff()
        .modify(|o: &mut RedisInstance| {
            o.metadata.managed_fields = None;
            if let Some(annotations) = o.metadata.annotations.as_mut() {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        });
    // The claim index follows every event, deletions and relists included. A delete is also
    // an object that left this shard's selector (relabelled to another shard): its claims go
    // with it, and its memory (sent to `left`, see `control`).
    let claims = Arc::new(Claims::default());
    let claims_of_watch = claims.clone();
    let (left_tx, left) = tokio::sync::mpsc::unbounded_channel();
    // The claims see each event before readiness does: once synced, the index is complete.
    let object_events = readiness
        .track_initial_list(
            crate::server::Watch::Objects,
            reflector::reflector(writer, ri_watch).inspect(move |event| {
                if let Ok(event) = event {
                    claims_of_watch.observe(event);
                    if let watcher::Event::Delete(obj) = event {
                        let _ = left_tx.send(super::context::uid(obj));
                    }
                }
            }),
        )
        .applied_objects();
    // The configs: every process reads them all (a shard too).
    let (cluster_store, cluster_writer) = reflector::store();
    let (namespaced_store, namespaced_writer) = reflector::store();
    // Who uses a config: the default process of a sharded install also watches every object
    // (no selector; spec and finalizers only), since it alone counts users and releases holds; a
    // shard sees its own part only and never releases; an unsharded process has them all.
    let namespace = config.watch_namespace.as_deref();
    let shard = config.shard();
    let (users, users_events) = match &shard {
        Shard::Default { known } if !known.is_empty() => {
            let (store, writer) = reflector::store();
            let watch = watcher(ri_api.clone(), watcher::Config::default())
                .default_backoff()
                .modify(|o: &mut RedisInstance| {
                    o.metadata.managed_fields = None;
                    o.metadata.annotations = None;
                    o.metadata.labels = None;
                    o.status = None;
                });
            let events = readiness
                .track_initial_list(crate::server::Watch::Users, reflector::reflector(writer, watch))
                .boxed();
            (store, Some(events))
        }
        _ => {
            readiness.watch_synced(crate::server::Watch::Users);
            (objects.clone(), None)
        }
    };
    let whole = !matches!(shard, Shard::Named(_));
    let (backups, backup_writer) = reflector::store();
    let configs = Configs {
        cluster: cluster_store,
        namespaced: namespaced_store,
        users,
        backups,
        whole_namespaces: whole,
        whole_cluster: whole && namespace.is_none(),
    };
    let (trigger_tx, config_triggers) = futures::channel::mpsc::unbounded();
    let cluster_api: Api<ClusterProviderConfig> = Api::all(client.clone());
    let namespaced_api: Api<ProviderConfig> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (cluster_config_events, config_events) = {
        let strip = |m: &mut kube::api::ObjectMeta| {
            m.managed_fields = None;
            if let Some(a) = m.annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        };
        // Each change of a config wakes the objects that use it (the store already has it).
        let wake = |configs: Configs, objects: Store<RedisInstance>, tx: futures::channel::mpsc::UnboundedSender<_>| {
            move |id: ConfigId| {
                for r in configs.objects_using(&id, &objects) {
                    let _ = tx.unbounded_send(r);
                }
            }
        };
        let wake_cluster = wake(configs.clone(), objects.clone(), trigger_tx.clone());
        let wake_namespaced = wake(configs.clone(), objects.clone(), trigger_tx);
        let cluster = readiness
            .track_initial_list(
                crate::server::Watch::ClusterConfigs,
                reflector::reflector(
                    cluster_writer,
                    watcher(cluster_api, watcher::Config::default())
                        .default_backoff()
                        .modify(move |c: &mut ClusterProviderConfig| strip(&mut c.metadata)),
                ),
            )
            .touched_objects()
            .inspect(move |c| {
                if let Ok(c) = c {
                    wake_cluster(c.id());
                }
            });
        let namespaced = readiness
            .track_initial_list(
                crate::server::Watch::Configs,
                reflector::reflector(
                    namespaced_writer,
                    watcher(namespaced_api, watcher::Config::default())
                        .default_backoff()
                        .modify(move |c: &mut ProviderConfig| strip(&mut c.metadata)),
                ),
            )
            .touched_objects()
            .inspect(move |c| {
                if let Ok(c) = c {
                    wake_namespaced(c.id());
                }
            });
        (cluster, namespaced)
    };
    Watches {
        objects,
        object_events,
        secrets,
        secret_events,
        claims,
        configs,
        cluster_config_events,
        config_events,
        config_triggers,
        left,
        users_events,
        backup_writer,
    }
}

/// Runs the controller until `stop` says so.
async fn control(
    client: kube::Client,
    config: RunConfig,
    identity: String,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    leadership: Leadership,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut w = watches(&client, &config, &readiness);
    let shard = config.shard();
    if let Some(selector) = shard.selector() {
        tracing::info!(%selector, lease = %shard.lease_name(&config.leader_election_id), "owning the objects of one shard");
    }
    let concurrency = config.concurrency;
    let accounts = Accounts::new(
        config.cds.client_config(),
        (config.cds.cds_qps, config.cds.cds_burst),
        metrics.clone(),
        Arc::new(LeaseGate(leadership.clone())),
        Ttls {
            catalogue: config.catalogue_ttl,
            preflight: config.preflight_ttl,
        },
    )
    .with_workers(usize::from(config.concurrency));
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        accounts,
        SecretReader::new(client.clone(), w.secrets),
        EventPublisher::new(client, "cds-redis-operator", shard.reporting_instance(&identity)),
        metrics,
        w.objects.clone(),
        w.configs.clone(),
        w.claims,
        leadership,
        readiness,
    ));
    let housekeeping = {
        let ctx = ctx.clone();
        tokio::spawn(async move { housekeeping(&ctx).await })
    };
    let forget = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            while let Some(uid) = w.left.recv().await {
                ctx.forget_uid(&uid);
            }
        })
    };
    let users = w.users_events.map(|events| tokio::spawn(events.for_each(|_| async {})));
    let backups = tokio::spawn(super::backup::run(ctx.clone(), w.backup_writer, stop.clone()));
    let cluster_configs = tokio::spawn(super::providerconfig::run(
        ctx.clone(),
        w.configs.cluster.clone(),
        w.cluster_config_events,
        w.configs.whole_cluster,
        stop.clone(),
    ));
    let namespaced_configs = tokio::spawn(super::providerconfig::run(
        ctx.clone(),
        w.configs.namespaced.clone(),
        w.config_events,
        w.configs.whole_namespaces,
        stop.clone(),
    ));
    let mapper_configs = w.configs.clone();
    let schedules = tokio::spawn(super::schedule::run(ctx.clone(), stop.clone()));
    let mapper_store = w.objects.clone();
    tracing::info!("starting the RedisInstance controller");
    Controller::for_stream(w.object_events, w.objects)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .watches_stream(w.secret_events, move |secret| {
            secrets::referencing(&secret, &mapper_store, &mapper_configs)
        })
        .reconcile_on(w.config_triggers)
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    housekeeping.abort();
    if let Some(users) = users {
        users.abort();
    }
    forget.abort();
    let _ = backups.await;
    let _ = schedules.await;
    let _ = cluster_configs.await;
    let _ = namespaced_configs.await;
}

/// Every 30 seconds, once the caches are synced: forgets objects deleted without a finalizer
/// (ObserveOnly objects are never reconciled again), and, as a leader that sees every user,
/// releases credentials Secrets no object needs any more.
async fn housekeeping(ctx: &Context) {
    ctx.readiness.wait_synced().await;
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        ctx.forget_missing();
        // Only where every user of a Secret's configs is seen (not in a shard).
        if let Err(e) = super::providerconfig::release_unneeded_secret_holds(ctx).await {
            tracing::warn!(error = %e, "releasing unneeded credentials Secret holds");
        }
    }
}

/// Lets the CDS clients send only while this process holds the leader lease.
struct LeaseGate(Leadership);

impl crate::cds::SendGate for LeaseGate {
    fn may_send(&self) -> bool {
        self.0.check().is_ok()
    }
}
