//! The `RedisInstance` controller (`cds-redis-operator run`).
//!
//! Each reconcile is observe → plan → act → report:
//! - **observe**: the object, its Secrets, and the account's shared cloud listing;
//! - **plan**: [`plan::plan`], a pure function, picks the one next step;
//! - **act**: carry the step out (at most one cloud write);
//! - **report**: [`status`] computes the status; it is written by server-side apply only when it
//!   changed, and transitions become Events.

pub mod accounts;
pub mod events;
pub mod plan;
pub mod secrets;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::cds::catalogue;
use crate::cds::wire::CreateInstanceRequest;
use crate::config::CdsSettings;
use crate::crd::conditions::{self, ready, synced};
use crate::crd::{
    CreateAttempt, DeletionPolicy, FIELD_MANAGER, FINALIZER, ManagementPolicy, Phase, RedisInstance,
    RedisInstanceStatus, default_instance_name,
};
use crate::error::Error;
use crate::failpoint;
use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::Metrics;
use crate::server::Readiness;
use crate::simulator::parse_duration;
use accounts::{Account, Accounts};
use events::{EventPublisher, EventType};
use plan::{Facts, Lookup, Step};
use secrets::SecretReader;

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
    /// Refresh status.lastSyncTime at least this often even when nothing changed.
    #[arg(long, env = "CDS_STATUS_REFRESH_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub status_refresh_interval: Duration,
    /// How long region catalogues (flavor → PaasGoodsId) are cached.
    #[arg(long, env = "CDS_CATALOGUE_TTL", default_value = "1h", value_parser = parse_duration)]
    pub catalogue_ttl: Duration,
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
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: std::net::SocketAddr,
}

fn parse_deletion_policy(s: &str) -> Result<DeletionPolicy, String> {
    match s {
        "Delete" => Ok(DeletionPolicy::Delete),
        "Retain" => Ok(DeletionPolicy::Retain),
        _ => Err(format!("{s:?} is not Delete or Retain")),
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    client: kube::Client,
    config: RunConfig,
    accounts: Accounts,
    secrets: SecretReader,
    events: EventPublisher,
    metrics: Arc<Metrics>,
    attempts: Mutex<HashMap<String, u32>>,
    /// When the operator last changed an object's cloud instance (create, delete): its next
    /// decision must rest on a listing requested after that, not on one that predates it.
    cloud_writes: Mutex<HashMap<String, Instant>>,
    /// The status each object got from our last write, as the server returned it, until the
    /// watch cache shows it: reconciling on a cache that lags our own write would redo work.
    status_writes: Mutex<HashMap<String, (Instant, RedisInstanceStatus)>>,
}

impl Context {
    fn wrote_status(&self, obj: &RedisInstance, written: Option<RedisInstanceStatus>) {
        if let Some(st) = written {
            self.status_writes
                .lock()
                .expect("not poisoned")
                .insert(obj.uid().unwrap_or_default(), (Instant::now(), st));
        }
    }

    /// Whether the watch cache has not caught up with our last status write of `obj` yet.
    fn cache_behind(&self, obj: &RedisInstance) -> bool {
        let uid = obj.uid().unwrap_or_default();
        let mut writes = self.status_writes.lock().expect("not poisoned");
        match writes.get(&uid) {
            // Bounded, so that a status edited by someone else cannot stall the object.
            Some((at, st)) if obj.status.as_ref() != Some(st) && at.elapsed() < Duration::from_secs(10) => true,
            Some(_) => {
                writes.remove(&uid);
                false
            }
            None => false,
        }
    }

    fn wrote_cloud(&self, obj: &RedisInstance) {
        self.cloud_writes
            .lock()
            .expect("not poisoned")
            .insert(obj.uid().unwrap_or_default(), Instant::now());
    }

    async fn account_for(&self, obj: &RedisInstance) -> Result<Arc<Account>, Error> {
        let credentials = match self.secrets.credentials(obj).await? {
            Some(c) => c,
            None => self.config.cds.credentials().map_err(Error::Credentials)?.ok_or_else(|| {
                Error::Credentials(
                    "no CDS credentials: give the operator CDS_ACCESS_KEY_ID/CDS_ACCESS_KEY_SECRET or set spec.credentialsSecretRef".into(),
                )
            })?,
        };
        Ok(self.accounts.get(credentials)?)
    }

    async fn event(&self, obj: &RedisInstance, type_: EventType, reason: &str, note: String) {
        if let Err(e) = self.events.publish(obj.object_ref(&()), type_, reason, &note).await {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    fn steady_requeue(&self) -> Duration {
        self.config
            .steady_poll_interval
            .mul_f64(0.8 + 0.4 * rand::random::<f64>())
    }
}

fn key(obj: &RedisInstance) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What a successful act step leaves to report.
enum Done {
    /// The finalizer is gone; nothing more to write.
    Released,
    /// Reconcile again after `after`; `problem` is a non-error `Synced=False` reason.
    Requeue {
        after: Duration,
        problem: Option<(&'static str, String)>,
        connection_ok: bool,
    },
    /// Waiting for the cloud: reconcile again after `after`, leaving `Synced` as the last real
    /// outcome said (a create whose answer was lost stays visible as such).
    Wait { after: Duration },
}

/// Reconciles one object (the controller's reconcile function).
pub async fn reconcile(obj: Arc<RedisInstance>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_object(&obj, &ctx).await;
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::metric_label));
    match &result {
        Ok(_) => {
            ctx.attempts.lock().expect("not poisoned").remove(&key(&obj));
        }
        Err(e) => tracing::info!(object = %key(&obj), reason = e.reason(), error = %e, "reconcile failed"),
    }
    result
}

/// Backoff per object: terminal errors wait for a change (with a slow safety recheck),
/// retryable ones back off exponentially with jitter.
pub fn error_policy(obj: Arc<RedisInstance>, err: &Error, ctx: Arc<Context>) -> Action {
    if err.is_terminal() {
        return Action::requeue(ctx.steady_requeue());
    }
    let mut attempts = ctx.attempts.lock().expect("not poisoned");
    let n = attempts.entry(key(&obj)).or_default();
    *n += 1;
    let base = if matches!(err, Error::Conflict) {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let cap = base.saturating_mul(1 << (*n - 1).min(10)).min(Duration::from_secs(300));
    Action::requeue(cap.mul_f64(0.5 + 0.5 * rand::random::<f64>()))
}

async fn reconcile_object(obj: &RedisInstance, ctx: &Context) -> Result<Action, Error> {
    let api: Api<RedisInstance> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let uid = obj.uid().unwrap_or_default();
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        ctx.metrics.set_phase(&uid, None);
        return Ok(Action::await_change());
    }
    if ctx.cache_behind(obj) {
        // The watch event of our own write is on its way and triggers the next reconcile.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    if !deleting && !has_finalizer && obj.management_policy() == ManagementPolicy::Full {
        let mut finalizers = obj.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        set_finalizers(&api, obj, finalizers).await?;
        // The update triggers the next reconcile.
        return Ok(Action::await_change());
    }
    let now = Time(jiff::Timestamp::now());
    let old = obj.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let outcome = act(obj, ctx, &api, &mut st, &now, deleting).await;
    if matches!(outcome, Ok(Done::Released)) {
        ctx.status_writes.lock().expect("not poisoned").remove(&uid);
        ctx.cloud_writes.lock().expect("not poisoned").remove(&uid);
        ctx.metrics.set_phase(&uid, None);
        return Ok(Action::await_change());
    }
    let generation = obj.metadata.generation;
    let action = match &outcome {
        Ok(Done::Requeue {
            after,
            problem,
            connection_ok,
        }) => {
            if deleting {
                st.phase = Some(Phase::Deleting);
            }
            match problem {
                Some((reason, message)) if *reason == synced::EXTERNALLY_DELETED => {
                    st.phase = Some(Phase::Failed);
                    status::set_ready(
                        &mut st,
                        false,
                        ready::EXTERNALLY_DELETED,
                        message.clone(),
                        generation,
                        &now,
                    );
                    status::set_synced(&mut st, false, reason, message.clone(), generation, &now);
                }
                Some((reason, message)) => {
                    status::ready_from_phase(&mut st, *connection_ok, generation, &now);
                    status::set_synced(&mut st, false, reason, message.clone(), generation, &now);
                }
                None => {
                    status::ready_from_phase(&mut st, *connection_ok, generation, &now);
                    status::set_synced(&mut st, true, synced::RECONCILE_SUCCESS, "", generation, &now);
                }
            }
            Ok(Action::requeue(*after))
        }
        Ok(Done::Wait { after }) => {
            status::ready_from_phase(&mut st, false, generation, &now);
            if conditions::find(&st.conditions, conditions::SYNCED).is_none() {
                status::set_synced(&mut st, true, synced::RECONCILE_SUCCESS, "", generation, &now);
            }
            Ok(Action::requeue(*after))
        }
        Ok(Done::Released) => unreachable!("handled above"),
        Err(e) => {
            if deleting {
                st.phase = Some(Phase::Deleting);
            } else if st.instance_uuid.is_none() && st.create_attempt.is_none() {
                st.phase = Some(if e.is_terminal() { Phase::Failed } else { Phase::Pending });
            } else if e.is_terminal() && matches!(e, Error::AmbiguousInstance { .. } | Error::InstanceNotFound(_)) {
                st.phase = Some(Phase::Failed);
            }
            if st.phase.is_none() {
                st.phase = Some(Phase::Pending);
            }
            status::ready_from_phase(&mut st, false, generation, &now);
            status::set_synced(&mut st, false, e.reason(), e.to_string(), generation, &now);
            Err(())
        }
    };
    report(obj, ctx, &api, &old, &st, &now).await?;
    ctx.metrics
        .set_phase(&uid, st.phase.map(|p| format!("{p:?}")).as_deref());
    match (action, outcome) {
        (Ok(a), _) => Ok(a),
        (Err(()), Err(e)) => Err(e),
        (Err(()), Ok(_)) => unreachable!("an error action comes from an error outcome"),
    }
}

/// Writes the status if it changed and turns transitions into Events.
async fn report(
    obj: &RedisInstance,
    ctx: &Context,
    api: &Api<RedisInstance>,
    old: &RedisInstanceStatus,
    new: &RedisInstanceStatus,
    now: &Time,
) -> Result<(), Error> {
    if status::needs_write(old, new, ctx.config.status_refresh_interval, now) {
        let written = write_status(api, obj, new, None).await?;
        ctx.wrote_status(obj, written);
    }
    let was = |t: &str| conditions::find(&old.conditions, t).cloned();
    let is = |t: &str| conditions::find(&new.conditions, t).cloned();
    if let (Some(r), prev) = (is(conditions::READY), was(conditions::READY))
        && r.status == "True"
        && prev.is_none_or(|p| p.status != "True")
    {
        let endpoint = new
            .endpoint
            .as_ref()
            .map(|e| format!("{}:{}", e.host, e.port))
            .unwrap_or_default();
        ctx.event(
            obj,
            EventType::Normal,
            "Running",
            format!(
                "instance {} is running at {endpoint}",
                new.instance_uuid.clone().unwrap_or_default()
            ),
        )
        .await;
        if let Some(created) = &obj.metadata.creation_timestamp {
            ctx.metrics.became_ready(now.0.duration_since(created.0).unsigned_abs());
        }
    }
    if let Some(s) = is(conditions::SYNCED)
        && s.status == "False"
        && was(conditions::SYNCED).is_none_or(|p| p.reason != s.reason)
    {
        ctx.event(obj, EventType::Warning, &s.reason, s.message.clone()).await;
    }
    Ok(())
}

/// Writes the status; returns it as the server stored it.
async fn write_status(
    api: &Api<RedisInstance>,
    obj: &RedisInstance,
    st: &RedisInstanceStatus,
    precondition: Option<String>,
) -> Result<Option<RedisInstanceStatus>, Error> {
    let mut body = json!({
        "apiVersion": RedisInstance::api_version(&()),
        "kind": RedisInstance::kind(&()),
        "status": st,
    });
    if let Some(rv) = precondition {
        // A resourceVersion in an apply patch is a precondition: another writer first → 409.
        body["metadata"] = json!({ "resourceVersion": rv });
    }
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(written.status)
}

async fn set_finalizers(api: &Api<RedisInstance>, obj: &RedisInstance, finalizers: Vec<String>) -> Result<(), Error> {
    // The resourceVersion makes the merge patch conditional: no lost update of other finalizers.
    let patch = json!({ "metadata": { "resourceVersion": obj.resource_version(), "finalizers": finalizers } });
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn deletion_policy(obj: &RedisInstance, ctx: &Context) -> DeletionPolicy {
    obj.spec.deletion_policy.unwrap_or(ctx.config.default_deletion_policy)
}

async fn act(
    obj: &RedisInstance,
    ctx: &Context,
    api: &Api<RedisInstance>,
    st: &mut RedisInstanceStatus,
    now: &Time,
    deleting: bool,
) -> Result<Done, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let policy = deletion_policy(obj, ctx);
    let management = obj.management_policy();
    // Deletions that need no cloud call never wait for one (a broken account must not hold them).
    if deleting && (policy == DeletionPolicy::Retain || management == ManagementPolicy::ObserveOnly) {
        return release(obj, ctx, api, st, "Retained").await;
    }
    let known_uuid = st.instance_uuid.clone().or_else(|| obj.spec.instance_uuid.clone());
    if deleting && known_uuid.is_none() && st.create_attempt.is_none() {
        return release(obj, ctx, api, st, "Deleted").await;
    }

    let account = ctx.account_for(obj).await?;
    let instance_name = st
        .instance_name
        .clone()
        .or_else(|| obj.spec.instance_name.clone())
        .unwrap_or_else(|| default_instance_name(&ns, &obj.name_any(), &obj.uid().unwrap_or_default()));
    let busy =
        deleting || st.create_attempt.is_some() || st.instance_uuid.is_none() || st.phase != Some(Phase::Running);
    let max_age = if busy {
        ctx.config.busy_poll_interval
    } else {
        ctx.config.steady_poll_interval
    };
    let uid = obj.uid().unwrap_or_default();
    let snapshot = account.inventory.snapshot(max_age).await?;
    // A listing requested before our own last create/delete of this instance cannot show its
    // effect: decisions from it must not repeat that write (it would only earn a 409).
    let stale = {
        let mut writes = ctx.cloud_writes.lock().expect("not poisoned");
        match writes.get(&uid) {
            Some(&at) if snapshot.requested_at < at => true,
            Some(_) => {
                writes.remove(&uid);
                false
            }
            None => false,
        }
    };
    let lookup = match &known_uuid {
        Some(uuid) => Lookup::ByUuid(snapshot.by_uuid(uuid).cloned().map(Box::new)),
        None => Lookup::ByName(snapshot.by_name(&instance_name).into_iter().cloned().collect()),
    };
    let mut facts = Facts {
        deleting,
        has_finalizer: true,
        management,
        deletion_policy: policy,
        status_uuid: st.instance_uuid.clone(),
        create_attempt_age: st
            .create_attempt
            .as_ref()
            .map(|a| now.0.duration_since(a.started_at.0).unsigned_abs()),
        lookup,
        visibility_grace: ctx.config.visibility_grace,
    };
    let mut step = plan::plan(&facts);
    // Absence decides irreversible things: confirm it with a per-UUID query first.
    if let (Step::ExternallyDeleted | Step::RemoveFinalizer | Step::NotFound, Some(uuid)) = (&step, &known_uuid) {
        facts.lookup = Lookup::ByUuid(account.inventory.query_uuid(uuid).await?.map(Box::new));
        step = plan::plan(&facts);
    }
    if stale && matches!(step, Step::Delete(_)) {
        step = Step::WaitForVisibility;
    }
    tracing::debug!(object = %key(obj), ?step, stale, "planned");
    let busy_after = ctx.config.busy_poll_interval;
    match step {
        Step::Nothing | Step::AddFinalizer => Ok(Done::Requeue {
            after: busy_after,
            problem: None,
            connection_ok: false,
        }),
        Step::RemoveFinalizer => release(obj, ctx, api, st, "Deleted").await,
        Step::Ambiguous(count) => Err(Error::AmbiguousInstance {
            name: instance_name,
            count,
        }),
        Step::NotFound => Err(Error::InstanceNotFound(known_uuid.unwrap_or(instance_name))),
        Step::ExternallyDeleted => {
            let uuid = known_uuid.unwrap_or_default();
            Ok(Done::Requeue {
                after: ctx.steady_requeue(),
                problem: Some((
                    synced::EXTERNALLY_DELETED,
                    format!(
                        "cloud instance {uuid} no longer exists and is not re-created; delete this object to release it"
                    ),
                )),
                connection_ok: false,
            })
        }
        Step::WaitForVisibility => {
            st.phase = Some(if deleting { Phase::Deleting } else { Phase::Creating });
            Ok(Done::Wait { after: busy_after })
        }
        Step::Create => create(obj, ctx, api, &account, st, now, instance_name).await,
        Step::Delete(uuid) => {
            st.phase = Some(Phase::Deleting);
            match account.client.delete_instance(&uuid).await {
                Ok(task) => {
                    ctx.wrote_cloud(obj);
                    failpoint::hit("after-delete");
                    let task = task.map(|t| format!(" (task {t})")).unwrap_or_default();
                    ctx.event(
                        obj,
                        EventType::Normal,
                        "Deleting",
                        format!("deleting instance {uuid}{task}"),
                    )
                    .await;
                    Ok(Done::Requeue {
                        after: busy_after,
                        problem: None,
                        connection_ok: false,
                    })
                }
                // Already gone: the next reconcile confirms it and releases the object.
                Err(e) if e.is_not_found() => Ok(Done::Requeue {
                    after: Duration::from_millis(200),
                    problem: None,
                    connection_ok: false,
                }),
                Err(e) => Err(e.into()),
            }
        }
        Step::Observe(inst) | Step::Adopt(inst) | Step::WaitForDeletion(inst) => {
            let newly_ours = st.instance_uuid.as_deref() != Some(inst.instance_uuid.as_str());
            if newly_ours {
                let (reason, note) = if st.create_attempt.is_some() {
                    (
                        "Created",
                        format!(
                            "found instance {} created by an earlier attempt whose answer was lost",
                            inst.instance_uuid
                        ),
                    )
                } else {
                    (
                        "Adopted",
                        format!(
                            "adopted existing instance {} ({})",
                            inst.instance_uuid, inst.instance_name
                        ),
                    )
                };
                ctx.event(obj, EventType::Normal, reason, note).await;
            }
            let before = st.endpoint.clone();
            status::apply_instance(st, &inst, now);
            st.create_attempt = None;
            if let (Some(from), Some(to)) = (&before, &st.endpoint)
                && from != to
                && !newly_ours
            {
                ctx.event(
                    obj,
                    EventType::Normal,
                    "EndpointChanged",
                    format!(
                        "instance {} moved from {}:{} to {}:{}",
                        inst.instance_uuid, from.host, from.port, to.host, to.port
                    ),
                )
                .await;
            }
            if deleting {
                st.phase = Some(Phase::Deleting);
                return Ok(Done::Requeue {
                    after: busy_after,
                    problem: None,
                    connection_ok: false,
                });
            }
            let (connection_ok, problem) = secrets_step(obj, ctx, st).await?;
            let after = if st.phase == Some(Phase::Running) && connection_ok {
                ctx.steady_requeue()
            } else {
                busy_after
            };
            Ok(Done::Requeue {
                after,
                problem,
                connection_ok,
            })
        }
    }
}

/// Removes the finalizer, with an Event saying what happened to the cloud instance.
async fn release(
    obj: &RedisInstance,
    ctx: &Context,
    api: &Api<RedisInstance>,
    st: &RedisInstanceStatus,
    what: &str,
) -> Result<Done, Error> {
    let uuid = st.instance_uuid.clone().or_else(|| obj.spec.instance_uuid.clone());
    let note = match (what, uuid) {
        ("Retained", Some(u)) => {
            format!("kept cloud instance {u} (deletionPolicy Retain or managementPolicy ObserveOnly)")
        }
        ("Deleted", Some(u)) => format!("cloud instance {u} is gone"),
        (_, None) => "no cloud instance was created".to_owned(),
        (_, Some(u)) => format!("released instance {u}"),
    };
    ctx.event(obj, EventType::Normal, what, note).await;
    let finalizers: Vec<String> = obj.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    set_finalizers(api, obj, finalizers).await?;
    Ok(Done::Released)
}

/// The create protocol's act part: resolve, read the password, record it, write the intent
/// (optimistic concurrency), then call `CreateDBInstance` once.
async fn create(
    obj: &RedisInstance,
    ctx: &Context,
    api: &Api<RedisInstance>,
    account: &Account,
    st: &mut RedisInstanceStatus,
    now: &Time,
    instance_name: String,
) -> Result<Done, Error> {
    let spec = &obj.spec;
    let goods = match (spec.paas_goods_id, &spec.flavor) {
        (Some(id), _) => id,
        (None, Some(flavor)) => {
            let cfg = account.catalogue.config(&account.client, &spec.region_id).await?;
            catalogue::resolve(&cfg, &spec.region_id, flavor)?
        }
        (None, None) => return Err(Error::InvalidSpec("set either paasGoodsId or flavor".into())),
    };
    let password = ctx.secrets.password(obj).await?;
    ctx.secrets.write_record(obj, &password).await?;

    st.instance_name = Some(instance_name.clone());
    st.paas_goods_id = Some(goods);
    st.create_attempt = Some(CreateAttempt {
        instance_name: instance_name.clone(),
        started_at: now.clone(),
    });
    st.phase = Some(Phase::Creating);
    let generation = obj.metadata.generation;
    status::ready_from_phase(st, false, generation, now);
    status::set_synced(st, true, synced::RECONCILE_SUCCESS, "", generation, now);
    let written = write_status(api, obj, st, obj.resource_version()).await?;
    ctx.wrote_status(obj, written);
    failpoint::hit("after-intent");
    ctx.event(
        obj,
        EventType::Normal,
        "Creating",
        format!("creating instance {instance_name} (PaasGoodsId {goods})"),
    )
    .await;

    let request = CreateInstanceRequest {
        region_id: spec.region_id.clone(),
        vdc_id: spec.vdc_id.clone(),
        base_pipe_id: spec.base_pipe_id.clone(),
        instance_name: instance_name.clone(),
        paas_goods_id: Some(goods),
        password,
        test_group_id: spec.test_group_id,
        amount: Some(1),
        service_port: spec.service_port.map(i64::from),
        subject_id: spec.subject_id,
    };
    match account.client.create_instance(&request).await {
        Ok(created) => {
            ctx.wrote_cloud(obj);
            failpoint::hit("after-create");
            let task = created
                .task_id
                .clone()
                .map(|t| format!(" (task {t})"))
                .unwrap_or_default();
            ctx.event(
                obj,
                EventType::Normal,
                "Created",
                format!("created instance {} named {instance_name}{task}", created.instance_uuid),
            )
            .await;
            st.instance_uuid = Some(created.instance_uuid);
            st.task_id = created.task_id;
            Ok(Done::Requeue {
                after: ctx.config.busy_poll_interval,
                problem: None,
                connection_ok: false,
            })
        }
        Err(e) if e.outcome_unknown() => {
            ctx.wrote_cloud(obj);
            // Keep the intent: the name lookup resolves what happened.
            ctx.event(
                obj,
                EventType::Warning,
                "CreateOutcomeUnknown",
                format!("the create of {instance_name} may have succeeded ({e}); looking the name up before any retry"),
            )
            .await;
            Err(e.into())
        }
        Err(e) => {
            st.create_attempt = None;
            Err(e.into())
        }
    }
}

/// Password record, `PasswordOutOfSync`, and the connection Secret. Returns whether the
/// connection Secret is in place (or not asked for) and a non-error problem to report.
async fn secrets_step(
    obj: &RedisInstance,
    ctx: &Context,
    st: &RedisInstanceStatus,
) -> Result<(bool, Option<(&'static str, String)>), Error> {
    let wants_connection = obj.spec.write_connection_secret_to_ref.is_some();
    if obj.management_policy() == ManagementPolicy::ObserveOnly && !wants_connection {
        return Ok((true, None));
    }
    let recorded = ctx.secrets.recorded_password(obj).await?;
    let source = ctx.secrets.password(obj).await;
    let mut problem = None;
    let password = match (recorded, source) {
        (Some(rec), Ok(src)) => {
            if rec != src {
                problem = Some((
                    synced::PASSWORD_OUT_OF_SYNC,
                    "the password Secret changed after the instance was created; the cloud cannot change a password, so the instance and the connection Secret keep the original one".to_owned(),
                ));
            }
            Some(rec)
        }
        (Some(rec), Err(_)) => Some(rec),
        (None, Ok(src)) => {
            // An adopted instance: assume the referenced password is its password.
            ctx.secrets.write_record(obj, &src).await?;
            Some(src)
        }
        (None, Err(e)) if wants_connection => return Err(e),
        (None, Err(_)) => None,
    };
    let Some(target) = &obj.spec.write_connection_secret_to_ref else {
        return Ok((true, problem));
    };
    match (&st.endpoint, password, &st.instance_uuid, st.phase) {
        (Some(endpoint), Some(password), Some(uuid), Some(Phase::Running)) => {
            let data = status::connection_data(endpoint, &password, uuid);
            ctx.secrets.ensure_connection_secret(obj, &target.name, data).await?;
            Ok((true, problem))
        }
        _ => Ok((false, problem)),
    }
}

/// Runs the operator until SIGTERM/SIGINT (or the loss of the leader lease).
pub async fn run(config: RunConfig) -> Result<(), String> {
    crate::cds::client::install_crypto_provider();
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    run_with_client(client, config).await
}

/// [`run`] with a given client.
pub async fn run_with_client(client: kube::Client, config: RunConfig) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let server = tokio::spawn(crate::server::serve(
        config.metrics_address,
        metrics.clone(),
        readiness.clone(),
    ));
    // Fail early on unreadable operator credentials (absent ones are fine: objects may bring their own).
    config.cds.credentials()?;

    let identity = config.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_owned();
        format!("{host}-{}", std::process::id())
    });
    let elector = config.leader_election.then(|| {
        LeaderElector::new(
            client.clone(),
            LeaseConfig {
                name: config.leader_election_id.clone(),
                namespace: config.leader_election_namespace.clone(),
                identity: identity.clone(),
                lease_duration: Duration::from_secs(15),
                retry_period: Duration::from_secs(2),
            },
        )
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = signal_tx.send(true);
    });
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

    // Secrets are watched metadata-only: their data is fetched on demand (see `secrets`).
    let (ri_api, secret_api): (Api<RedisInstance>, Api<PartialObjectMeta<Secret>>) = match &config.watch_namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    // The caches keep only what the operator reads: no managedFields; of a Secret's metadata only
    // its name, version, owners and role label (a `kubectl apply`'d Secret carries its data in
    // the last-applied-configuration annotation); of an object, no last-applied-configuration.
    let (secret_store, secret_writer) = reflector::store();
    let secret_watch = watcher(secret_api, watcher::Config::default())
        .default_backoff()
        .modify(|s: &mut PartialObjectMeta<Secret>| {
            s.metadata.managed_fields = None;
            s.metadata.annotations = None;
            if let Some(labels) = s.metadata.labels.as_mut() {
                labels.retain(|k, _| k == secrets::ROLE_LABEL);
            }
        });
    let secret_stream = readiness
        .track_initial_list(
            crate::server::Watch::Secrets,
            reflector::reflector(secret_writer, secret_watch),
        )
        .touched_objects();
    let (store, writer) = reflector::store();
    let ri_watch = watcher(ri_api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut RedisInstance| {
            o.metadata.managed_fields = None;
            if let Some(annotations) = o.metadata.annotations.as_mut() {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        });
    let ri_stream = readiness
        .track_initial_list(crate::server::Watch::Objects, reflector::reflector(writer, ri_watch))
        .applied_objects();
    let controller = Controller::for_stream(ri_stream, store.clone())
        .with_config(ControllerConfig::default().concurrency(config.concurrency));

    let ctx = Arc::new(Context {
        client: client.clone(),
        accounts: Accounts::new(
            config.cds.client_config(),
            config.cds.rate_limiter(),
            metrics.clone(),
            config.catalogue_ttl,
        ),
        secrets: SecretReader::new(client.clone(), secret_store.clone()),
        events: EventPublisher::new(client.clone(), "cds-redis-operator", identity),
        metrics: metrics.clone(),
        attempts: Mutex::new(HashMap::new()),
        cloud_writes: Mutex::new(HashMap::new()),
        status_writes: Mutex::new(HashMap::new()),
        config,
    });

    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(elector) = &elector {
        let (lost, stop_tx) = (lost.clone(), stop_tx.clone());
        let elector = elector.clone();
        tokio::spawn(async move {
            elector.hold().await;
            lost.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = stop_tx.send(true);
        });
    }
    let mut stop = stop_rx.clone();
    let mapper_store = store.clone();
    tracing::info!("starting the RedisInstance controller");
    controller
        .watches_stream(secret_stream, move |secret| {
            secrets::referencing(&secret, &mapper_store)
        })
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
    server.abort();
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Err("lost the leader lease; exiting so a standby can take over".into());
    }
    if let Some(elector) = &elector {
        elector.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}
