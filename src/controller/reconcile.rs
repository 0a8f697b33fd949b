//! One reconcile: observe → plan → act → report, and the error policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use tracing::Instrument as _;

use super::act::{Act, Progress};
use super::context::{self, Context};
use super::events::EventType;
use super::observe;
use super::plan::{self, Decision, Step};
use super::status::{self, Outcome};
use super::writes::ObjectWrites;
use crate::backoff;
use crate::crd::conditions::{self, READY, SYNCED};
use crate::crd::{RedisInstance, RedisInstanceStatus};
use crate::error::Error;

/// How many times one reconcile may look at the cloud before acting: the listing, then a
/// per-UUID confirmation. A third request means a planner bug; it is reported, not looped on.
const MAX_LOOKS: usize = 2;

/// Metadata writes (the finalizer, the account Secret's hold) a reconcile carries on after.
const MAX_METADATA_STEPS: usize = 2;

/// What a metadata step put in place.
#[derive(Clone, Copy)]
enum Held {
    Finalizer,
    Credentials,
}

impl Held {
    fn apply(self, facts: &mut plan::Facts) {
        match self {
            Self::Finalizer => facts.has_finalizer = true,
            Self::Credentials => facts.credentials_unheld = false,
        }
    }
}

/// Reconciles one object (the controller's reconcile function).
pub async fn reconcile(obj: Arc<RedisInstance>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    // A number per reconcile, so the logs show which steps one reconcile took.
    let span = tracing::debug_span!("reconcile", id = ctx.next_reconcile_id());
    let result = reconcile_object(&obj, &ctx).instrument(span).await;
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
    let old = obj.status.clone().unwrap_or_default();
    let Steps {
        result,
        status: mut st,
        mut writes,
        deleting,
    } = run_steps(obj, ctx, &old, &now).await;
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
        // Its account has its share of the workers: again in a moment, nothing written, and
        // not a failure (no backoff grows).
        Err(Error::AccountBusy) => Ok(Action::requeue(Duration::from_millis(
            500 + rand::random::<u64>() % 1000,
        ))),
        Err(e) => {
            status::conclude(&mut st, deleting, Outcome::Failed(&e), generation, &now);
            report(obj, ctx, &mut writes, &old, &st, &now).await?;
            Err(e)
        }
    }
}

/// What the steps of one reconcile left.
struct Steps<'a> {
    /// The last step's result.
    result: Result<Progress, Error>,
    /// The status built so far.
    status: RedisInstanceStatus,
    /// The object's writes, at the resourceVersion of the last one.
    writes: ObjectWrites<'a>,
    /// The object is being deleted.
    deleting: bool,
}

/// Plans and acts until a step leaves something to report: after a metadata step (the
/// finalizer, the account hold) the reconcile goes on, so the first reconcile of an object
/// already reports its conditions instead of waiting for the watch event of its own finalizer.
async fn run_steps<'a>(obj: &'a RedisInstance, ctx: &'a Context, old: &RedisInstanceStatus, now: &Time) -> Steps<'a> {
    let mut facts = observe::local_facts(obj, ctx, now);
    // The account, with this reconcile's place among its workers.
    let mut account: Option<(Arc<super::accounts::Account>, super::accounts::InFlight)> = None;
    let (mut st, mut writes) = (old.clone(), ObjectWrites::new(ctx, obj));
    let mut steps = 0;
    let result = loop {
        let step = match decide(obj, ctx, &mut facts, &mut account).await {
            Ok(step) => step,
            Err(e) => break Err(e),
        };
        steps += 1;
        let metadata = match step {
            Step::AddFinalizer => Some(Held::Finalizer),
            Step::HoldCredentials => Some(Held::Credentials),
            _ => None,
        };
        let mut act = Act {
            obj,
            ctx,
            writes,
            status: st,
            account: account.as_ref().map(|(a, _)| a.clone()),
            facts: &facts,
            now: now.clone(),
        };
        let result = act.run(step).await;
        (st, writes) = (act.status, act.writes);
        match (result, metadata) {
            // In place: plan again (the writes carry the new resourceVersion).
            (Ok(Progress::AwaitChange), Some(held)) if steps <= MAX_METADATA_STEPS => held.apply(&mut facts),
            (result, _) => break result,
        }
    };
    Steps {
        result,
        status: st,
        writes,
        deleting: facts.deleting,
    }
}

/// Plans, looking at the cloud as often as the planner asks (at most [`MAX_LOOKS`] times).
async fn decide(
    obj: &RedisInstance,
    ctx: &Context,
    facts: &mut plan::Facts,
    account: &mut Option<(Arc<super::accounts::Account>, super::accounts::InFlight)>,
) -> Result<plan::Step, Error> {
    for _ in 0..=MAX_LOOKS {
        match plan::plan(facts) {
            Decision::Act(step) => return Ok(step),
            Decision::Look(look) => {
                let acc = match account {
                    Some((a, _)) => a.clone(),
                    None => {
                        let a = ctx.account_for(obj).await?;
                        let entered = ctx.accounts.enter(&a).ok_or(Error::AccountBusy)?;
                        account.insert((a, entered)).0.clone()
                    }
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
