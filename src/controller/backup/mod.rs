//! The `RedisBackup` controller (`../shared/spec/redisbackup.md`): one backup of a
//! `RedisInstance`'s cloud instance, made exactly once, followed until finished, and deleted (or
//! kept) with its object. Each reconcile is observe → plan → act → report:
//! - [`plan`]: pure, the one next step from the facts (the create-once protocol, with a marker in
//!   the backup's `Desc` and the intent in status before `CreateBackup`);
//! - [`act`]: carries the step out: at most one cloud write, the object's two writes (status
//!   and finalizer, both conditional), the download Secret;
//! - [`status`]: pure, how the reconcile ended becomes the phase and the conditions.
//!
//! Cloud calls: `DescribeBackups` is per instance, so all backups of one instance share one
//! listing per poll ([`crate::cds::backups`]); a backup in progress polls every busy poll
//! period, a completed one only checks it still exists once an hour ([`DRIFT_CHECK`]), and a
//! backup waiting for its instance reads the operator's cache only.

pub mod act;
pub mod plan;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt};

use super::context::Context;
use crate::backoff;
use crate::crd::backup::RedisBackup;
use crate::error::Error;

/// How often a completed backup is checked against the cloud (a slow drift check).
pub const DRIFT_CHECK: Duration = Duration::from_secs(3600);

/// What the backup controller shares between reconciles.
pub struct BackupContext {
    /// The operator's shared context (clients, accounts, the `RedisInstance` cache, leadership).
    pub ctx: Arc<Context>,
    /// Retryable failures in a row, by UID (for the backoff).
    failures: Mutex<HashMap<String, u32>>,
}

/// Runs the `RedisBackup` controller until `stop` says so; its watch fills `writer`, the store
/// of `ctx.configs.backups` (a backup that may still delete its cloud backup holds the account
/// it was made with).
pub async fn run(
    ctx: Arc<Context>,
    writer: kube::runtime::reflector::store::Writer<RedisBackup>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let api: Api<RedisBackup> = match ctx.config.watch_namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let store = ctx.configs.backups.clone();
    // A backup is owned by the shard its own label names (it should carry its instance's).
    let watch = watcher(api, ctx.config.watch_config())
        .default_backoff()
        .modify(|b: &mut RedisBackup| b.metadata.managed_fields = None);
    let stream = ctx
        .readiness
        .track_initial_list(
            crate::server::Watch::Backups,
            kube::runtime::reflector::reflector(writer, watch),
        )
        .applied_objects();
    let bctx = Arc::new(BackupContext {
        ctx: ctx.clone(),
        failures: Mutex::new(HashMap::new()),
    });
    tracing::info!("starting the RedisBackup controller");
    Controller::for_stream(stream, store)
        .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency))
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, bctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "backup controller event");
            }
        })
        .await;
}

/// Reconciles one backup.
pub async fn reconcile(backup: Arc<RedisBackup>, bctx: Arc<BackupContext>) -> Result<Action, Error> {
    bctx.ctx.readiness.wait_synced().await;
    let result = act::Act::new(&bctx.ctx, &backup).run().await;
    match &result {
        Ok(_) => {
            bctx.failures
                .lock()
                .expect("not poisoned")
                .remove(&uid(backup.as_ref()));
        }
        Err(e) => tracing::info!(
            backup = %format!("{}/{}", backup.namespace().unwrap_or_default(), backup.name_any()),
            reason = e.reason(),
            error = %e,
            "backup reconcile failed"
        ),
    }
    result
}

/// Terminal errors wait for a change (with the slow drift check); retryable ones back off.
pub fn error_policy(backup: Arc<RedisBackup>, err: &Error, bctx: Arc<BackupContext>) -> Action {
    if err.is_terminal() {
        return Action::requeue(DRIFT_CHECK);
    }
    let failures = {
        let mut all = bctx.failures.lock().expect("not poisoned");
        let n = all.entry(uid(backup.as_ref())).or_default();
        *n += 1;
        *n
    };
    let base = match err {
        Error::Conflict => Duration::from_millis(500),
        _ => Duration::from_secs(2),
    };
    Action::requeue(backoff::exponential(base, failures, Duration::from_secs(300)))
}

fn uid<K: Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_default()
}
