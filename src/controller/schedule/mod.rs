//! The `RedisBackupSchedule` controller: one `RedisBackup` per cron slot, the oldest pruned beyond
//! `keep`, and the schedule's status (`../shared/spec/redisbackup.md`).
//!
//! Each reconcile is observe → plan → act → report:
//! - observe: the schedule, the `RedisBackup`s it owns (a watch of the backups carrying
//!   [`SCHEDULE_LABEL`], kept in a store), whether its `RedisInstance` exists (the instance
//!   controller's store), the time;
//! - [`plan`]: pure, with the slot arithmetic of [`cron`]: the backup to create, the ones to
//!   delete, the status; [`status`]: the conditions;
//! - act: create (a 409 `AlreadyExists` is the slot done: a slot's backup name is fixed), delete
//!   (conditional on the UID; gone already counts as done), each behind the leader fence, with an
//!   Event (`BackupScheduled`, `BackupPruned`);
//! - report: the status by server-side apply, conditional on the `resourceVersion` read, only
//!   when it changed; the next reconcile at the next slot (errors back off).

pub mod cron;
pub mod plan;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::writes;
use crate::backoff;
use crate::crd::RedisInstance;
use crate::crd::backup::{RedisBackup, RedisBackupSchedule, RedisBackupScheduleStatus, SCHEDULE_LABEL};
use crate::crd::conditions::{self, SYNCED, synced};
use crate::error::Error;
use plan::{Due, Owned, Plan, Prune};

/// A reconcile at a slot comes this much after it, so that the slot is never a hair ahead of
/// the clock when it runs.
const SLOT_MARGIN: Duration = Duration::from_millis(200);

/// How long a status we wrote is trusted over a watch cache that does not show it yet.
const CACHE_LAG: Duration = Duration::from_secs(10);

/// Why a reconcile of a schedule failed (an invalid schedule is not a failure: it is reported
/// in status and waits for an edit). Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// This replica cannot prove it holds the leader lease: it writes nothing.
    #[error("this replica no longer holds the leader lease")]
    NotLeader,
    /// The schedule changed since it was read; the status write was refused.
    #[error("the schedule changed while it was reconciled; retrying")]
    Conflict,
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Any other failure of a write shared with the other controllers.
    #[error(transparent)]
    Write(Box<Error>),
}

impl From<Error> for ScheduleError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotLeader => Self::NotLeader,
            Error::Conflict => Self::Conflict,
            Error::Kube(e) => Self::Kube(e),
            other => Self::Write(Box::new(other)),
        }
    }
}

impl ScheduleError {
    /// The `Synced` reason it shows.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotLeader => synced::NOT_LEADER,
            Self::Conflict | Self::Kube(_) => synced::KUBERNETES_API_ERROR,
            Self::Write(e) => e.reason(),
        }
    }
}

/// What the schedule controller shares between its reconciles.
struct Shared {
    ctx: Arc<Context>,
    /// Every `RedisBackup` carrying the schedule label.
    backups: Store<RedisBackup>,
    /// Per schedule UID: retryable failures in a row, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Per schedule UID: the status last written, until the watch cache shows it.
    written: Mutex<HashMap<String, (Instant, RedisBackupScheduleStatus)>>,
}

/// Runs the schedule controller until `stop` says so: watches the schedules and the backups
/// they own (label-selected), and reconciles each schedule at its slots and on every change.
pub async fn run(ctx: Arc<Context>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let (schedules, backups): (Api<RedisBackupSchedule>, Api<RedisBackup>) = match &ctx.config.watch_namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let (store, writer) = reflector::store();
    // This shard's schedules, and the backups they made (which carry the schedule's shard label).
    let shard = ctx.config.shard();
    let backup_watch = watcher(backups, watcher::Config::default().labels(&shard.and(SCHEDULE_LABEL)))
        .default_backoff()
        .modify(|b: &mut RedisBackup| b.metadata.managed_fields = None);
    let backup_events = reflector::reflector(writer, backup_watch).touched_objects();
    let shared = Arc::new(Shared {
        ctx,
        backups: store,
        failures: Mutex::default(),
        written: Mutex::default(),
    });
    tracing::info!("starting the RedisBackupSchedule controller");
    let schedule_watch = shared.ctx.config.watch_config();
    Controller::new(schedules, schedule_watch)
        .owns_stream(backup_events)
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "schedule controller event");
            }
        })
        .await;
}

/// Reconciles one schedule: observe, plan, act, report.
async fn reconcile(obj: Arc<RedisBackupSchedule>, sh: Arc<Shared>) -> Result<Action, ScheduleError> {
    // Decisions rest on the caches: the instance store and the backups' store listed once.
    // Each wait is logged (debug), to tell where a schedule waits if it never gets a status.
    tracing::debug!(schedule = %key(&obj), "schedule reconcile: waiting for the caches");
    sh.ctx.readiness.wait_synced().await;
    let _ = sh.backups.wait_until_ready().await;
    tracing::debug!(schedule = %key(&obj), "schedule reconcile: caches ready");
    if obj.meta().deletion_timestamp.is_some() {
        // The garbage collector deletes its backups.
        return Ok(Action::await_change());
    }
    if cache_behind(&sh, &obj) {
        // The watch event of our write is on its way and brings the next reconcile.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let now = Timestamp::now();
    let owned = owned_backups(&sh.backups, &obj);
    let old = obj.status.clone().unwrap_or_default();
    let namespace = obj.namespace().unwrap_or_default();
    let instance = ObjectRef::<RedisInstance>::new(&obj.spec.instance_ref.name).within(&namespace);
    let facts = plan::Facts {
        name: &obj.name_any(),
        spec: &obj.spec,
        created: obj.creation_timestamp().map_or(now, |t| t.0),
        generation: obj.metadata.generation,
        status: &old,
        backups: &owned,
        instance_found: sh.ctx.objects.get(&instance).is_some(),
        now,
    };
    let planned = plan::plan(&facts);
    let mut st = planned.status.clone();
    if let Err(e) = act(&obj, &sh, &planned, &mut st).await {
        if !matches!(e, ScheduleError::NotLeader) {
            status::failed(&mut st, e.reason(), e.to_string(), obj.metadata.generation, now);
            report(&obj, &sh, &st).await?;
        }
        return Err(e);
    }
    report(&obj, &sh, &st).await?;
    sh.failures.lock().expect("not poisoned").remove(&uid(&obj));
    Ok(requeue(planned.next, facts.instance_found, &sh.ctx, now))
}

/// Backoff per schedule: exponential with jitter, from 2 s (500 ms after a conflict) to 5 min.
fn error_policy(obj: Arc<RedisBackupSchedule>, err: &ScheduleError, sh: Arc<Shared>) -> Action {
    tracing::info!(schedule = %key(&obj), reason = err.reason(), error = %err, "schedule reconcile failed");
    let failures = {
        let mut f = sh.failures.lock().expect("not poisoned");
        let n = f.entry(uid(&obj)).or_default();
        *n += 1;
        *n
    };
    let base = match err {
        ScheduleError::Conflict => Duration::from_millis(500),
        _ => Duration::from_secs(2),
    };
    Action::requeue(backoff::exponential(base, failures, Duration::from_secs(300)))
}

fn uid(obj: &RedisBackupSchedule) -> String {
    obj.uid().unwrap_or_default()
}

fn key(obj: &RedisBackupSchedule) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The backups in the store that `obj` controls (the label alone is not proof: anyone can set it).
fn owned_backups(store: &Store<RedisBackup>, obj: &RedisBackupSchedule) -> Vec<Owned> {
    let (namespace, uid) = (obj.namespace(), obj.uid());
    store
        .state()
        .iter()
        .filter(|b| b.namespace() == namespace)
        .filter(|b| {
            b.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
        })
        .map(|b| Owned {
            name: b.name_any(),
            uid: b.uid().unwrap_or_default(),
            phase: b.status.as_ref().and_then(|s| s.phase),
            created: b.creation_timestamp().map(|t| t.0),
            deleting: b.meta().deletion_timestamp.is_some(),
        })
        .collect()
}

/// The next reconcile: at the next slot; sooner (the steady poll) while the instance is missing,
/// so the condition clears soon after it appears; none while suspended or invalid.
fn requeue(next: Option<Timestamp>, instance_found: bool, ctx: &Context, now: Timestamp) -> Action {
    let until_next = next.map(|n| Duration::try_from(now.duration_until(n)).unwrap_or_default() + SLOT_MARGIN);
    let recheck = (!instance_found).then(|| ctx.steady_requeue());
    match until_next.into_iter().chain(recheck).min() {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// Creates the due backup and deletes the pruned ones; `st` records the slot once it is made.
async fn act(
    obj: &RedisBackupSchedule,
    sh: &Shared,
    planned: &Plan,
    st: &mut RedisBackupScheduleStatus,
) -> Result<(), ScheduleError> {
    if let Some(due) = &planned.create {
        create(obj, sh, due).await?;
        plan::made(st, due);
    }
    for p in &planned.prune {
        prune(obj, sh, p).await?;
    }
    Ok(())
}

/// Creates the backup of a slot; one that exists already is that slot done.
async fn create(obj: &RedisBackupSchedule, sh: &Shared, due: &Due) -> Result<(), ScheduleError> {
    sh.ctx.fence().map_err(|_| ScheduleError::NotLeader)?;
    let api: Api<RedisBackup> = Api::namespaced(sh.ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &plan::backup_for(obj, due)).await {
        Ok(_) => {
            let note = format!("created RedisBackup {} for the slot {}", due.name, due.slot);
            event(obj, sh, EventType::Normal, "BackupScheduled", note).await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
            tracing::debug!(schedule = %key(obj), backup = %due.name, "the slot's backup exists already");
            Ok(())
        }
        Err(e) => Err(ScheduleError::Kube(e)),
    }
}

/// Deletes a backup beyond `keep`, if it is still the one planned on (same UID).
async fn prune(obj: &RedisBackupSchedule, sh: &Shared, p: &Prune) -> Result<(), ScheduleError> {
    sh.ctx.fence().map_err(|_| ScheduleError::NotLeader)?;
    let api: Api<RedisBackup> = Api::namespaced(sh.ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(p.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&p.name, &params).await {
        Ok(_) => {
            let note = format!("deleted RedisBackup {}: {}", p.name, p.why);
            event(obj, sh, EventType::Normal, "BackupPruned", note).await;
            Ok(())
        }
        // Gone already, or another object of that name now: nothing of ours to delete.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(ScheduleError::Kube(e)),
    }
}

/// Writes the status if it changed, and a Warning Event when `Synced` turns False for a new
/// reason.
async fn report(obj: &RedisBackupSchedule, sh: &Shared, new: &RedisBackupScheduleStatus) -> Result<(), ScheduleError> {
    let old = obj.status.as_ref();
    if !status::needs_write(old, new) {
        return Ok(());
    }
    write_status(obj, sh, new).await?;
    let was = old.and_then(|o| conditions::find(&o.conditions, SYNCED));
    if let Some(s) = conditions::find(&new.conditions, SYNCED)
        && s.status == "False"
        && was.is_none_or(|w| w.reason != s.reason)
    {
        event(obj, sh, EventType::Warning, &s.reason, s.message.clone()).await;
    }
    Ok(())
}

/// Whether the watch cache does not show our last status write of `obj` yet: planning on it
/// would redo work and write over our own status (a conflict). Bounded, so that a status edited
/// by someone else cannot hold the schedule up.
fn cache_behind(sh: &Shared, obj: &RedisBackupSchedule) -> bool {
    let mut written = sh.written.lock().expect("not poisoned");
    match written.get(&uid(obj)) {
        Some((at, st)) if at.elapsed() < CACHE_LAG && obj.status.as_ref() != Some(st) => true,
        _ => {
            written.remove(&uid(obj));
            false
        }
    }
}

/// The whole status by server-side apply, conditional on the `resourceVersion` read.
async fn write_status(
    obj: &RedisBackupSchedule,
    sh: &Shared,
    st: &RedisBackupScheduleStatus,
) -> Result<(), ScheduleError> {
    let api: Api<RedisBackupSchedule> = Api::namespaced(sh.ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let mut version = obj.resource_version();
    match writes::write_status(&sh.ctx, &api, obj, &mut version, st).await {
        Ok(stored) => {
            // As the server stored it (its times in whole seconds), to compare with the cache.
            let mut written = sh.written.lock().expect("not poisoned");
            written.retain(|_, (at, _)| at.elapsed() < CACHE_LAG);
            written.insert(uid(obj), (Instant::now(), stored.status.unwrap_or_default()));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Publishes an Event about the schedule (never fatal; nothing once the lease is lost).
async fn event(obj: &RedisBackupSchedule, sh: &Shared, type_: EventType, reason: &str, note: String) {
    if sh.ctx.fence().is_err() {
        return;
    }
    if let Err(e) = sh.ctx.events.publish(obj.object_ref(&()), type_, reason, &note).await {
        tracing::warn!(error = %e, "cannot publish an event");
    }
}
