//! One reconcile: observe → plan → act → report, and the error policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;

use super::act::{Act, Progress};
use super::context::{self, Context};
use super::events::EventType;
use super::observe;
use super::plan::{self, Decision};
use super::status::{self, Outcome};
use super::writes::ObjectWrites;
use crate::backoff;
use crate::crd::conditions::{self, READY, SYNCED};
use crate::crd::{RedisInstance, RedisInstanceStatus};
use crate::error::Error;

/// How many times one reconcile may look at the cloud before acting: the listing, then a
/// per-UUID confirmation. A third request means a planner bug; it is reported, not looped on.
const MAX_LOOKS: usize = 2;

/// Reconciles one object (the controller's reconcile function).
pub async fn reconcile(obj: Arc<RedisInstance>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_object(&obj, &ctx).await;
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::metric_label));
    match &result {
        Ok(_) => ctx.succeeded(&obj),
        Err(e) => tracing::info!(object = %context::key(&obj), reason = e.reason(), error = %e, "reconcile failed"),
    }
    result
}

/// Backoff per object: terminal errors wait for a change of the object or its Secrets (with a
/// slow safety recheck); retryable ones back off exponentially with jitter.
pub fn error_policy(obj: Arc<RedisInstance>, err: &Error, ctx: Arc<Context>) -> Action {
    if err.is_terminal() {
        return Action::requeue(ctx.steady_requeue());
    }
    let failures = ctx.failed(&obj);
    let base = match err {
        Error::Conflict => Duration::from_millis(500),
        _ => Duration::from_secs(2),
    };
    Action::requeue(backoff::exponential(base, failures, Duration::from_secs(300)))
}

async fn reconcile_object(obj: &RedisInstance, ctx: &Context) -> Result<Action, Error> {
    // Decisions rest on the caches: before their initial lists are in, a Secret looks absent
    // (so a rejected create's inputs look changed, found by the soak) and another object's
    // claim looks free. Immediate once both are synced.
    ctx.readiness.wait_synced().await;
    if ctx.cache_behind(obj) {
        // The watch event of our own write is on its way and triggers the next reconcile.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let now = Time(jiff::Timestamp::now());
    let mut facts = observe::local_facts(obj, ctx, &now);
    let mut account = None;
    let decided = decide(obj, ctx, &mut facts, &mut account).await;
    let old = obj.status.clone().unwrap_or_default();
    let mut act = Act {
        obj,
        ctx,
        writes: ObjectWrites::new(ctx, obj),
        status: old.clone(),
        account,
        facts: &facts,
        now: now.clone(),
    };
    let result = match decided {
        Ok(step) => act.run(step).await,
        Err(e) => Err(e),
    };
    let (mut st, mut writes) = (act.status, act.writes);
    let deleting = facts.deleting;
    let generation = obj.metadata.generation;
    match result {
        Ok(Progress::Released) => {
            ctx.forget(obj);
            Ok(Action::await_change())
        }
        // The watch event of the write brings the next reconcile; the requeue is a safety net
        // for a cache that showed the write's effect late.
        Ok(Progress::AwaitChange) => Ok(Action::requeue(ctx.config.busy_poll_interval)),
        Ok(Progress::Unchanged) => Ok(Action::await_change()),
        Ok(Progress::Report { outcome, after }) => {
            status::conclude(&mut st, deleting, outcome, generation, &now);
            report(obj, ctx, &mut writes, &old, &st, &now).await?;
            Ok(Action::requeue(after))
        }
        // Nothing derived from a stale read is written (Ownership rule 3), and a replica that
        // lost the lease writes nothing at all.
        Err(e @ (Error::Conflict | Error::NotLeader)) => Err(e),
        Err(e) => {
            status::conclude(&mut st, deleting, Outcome::Failed(&e), generation, &now);
            report(obj, ctx, &mut writes, &old, &st, &now).await?;
            Err(e)
        }
    }
}

/// Plans, looking at the cloud as often as the planner asks (at most [`MAX_LOOKS`] times).
async fn decide(
    obj: &RedisInstance,
    ctx: &Context,
    facts: &mut plan::Facts,
    account: &mut Option<Arc<super::accounts::Account>>,
) -> Result<plan::Step, Error> {
    for _ in 0..=MAX_LOOKS {
        match plan::plan(facts) {
            Decision::Act(step) => return Ok(step),
            Decision::Look(look) => {
                let acc = match account {
                    Some(a) => a.clone(),
                    None => account.insert(ctx.account_for(obj).await?).clone(),
                };
                observe::look(obj, ctx, &acc, facts, &look).await?;
            }
        }
    }
    Err(Error::InvalidSpec(format!(
        "the planner asked the cloud more than {MAX_LOOKS} times; this is a bug, please report it"
    )))
}

/// Writes the status if it changed, turns transitions into Events, and updates the metrics.
async fn report(
    obj: &RedisInstance,
    ctx: &Context,
    writes: &mut ObjectWrites<'_>,
    old: &RedisInstanceStatus,
    new: &RedisInstanceStatus,
    now: &Time,
) -> Result<(), Error> {
    if status::needs_write(old, new, ctx.config.status_refresh_interval, now) {
        writes.status(new).await?;
    }
    ctx.metrics
        .set_phase(&context::uid(obj), new.phase.map(|p| format!("{p:?}")).as_deref());
    let was = |t: &str| conditions::find(&old.conditions, t).cloned();
    let is = |t: &str| conditions::find(&new.conditions, t).cloned();
    if let Some(r) = is(READY)
        && r.status == "True"
        && was(READY).is_none_or(|p| p.status != "True")
    {
        let endpoint = new
            .endpoint
            .as_ref()
            .map(|e| format!("{}:{}", e.host, e.port))
            .unwrap_or_default();
        let uuid = new.instance_uuid.clone().unwrap_or_default();
        ctx.event(
            obj,
            EventType::Normal,
            "Running",
            format!("instance {uuid} is running at {endpoint}"),
        )
        .await;
        if let Some(created) = &obj.metadata.creation_timestamp {
            ctx.metrics.became_ready(now.0.duration_since(created.0).unsigned_abs());
        }
    }
    if let Some(s) = is(SYNCED)
        && s.status == "False"
        && was(SYNCED).is_none_or(|p| p.reason != s.reason)
    {
        ctx.event(obj, EventType::Warning, &s.reason, s.message.clone()).await;
    }
    Ok(())
}
