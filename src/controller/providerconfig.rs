//! The controller of `ProviderConfig` and `ClusterProviderConfig` (`accounts.md`): checks the
//! credentials with one cheap signed call (`DescribeRegins`) whenever the config or its Secret
//! changes, counts the objects that use the config, keeps it (and its Secret) while they need
//! it, and says in status what is going on. Runs only in a process that sees every object that
//! may use the kind (not in a shard; for `ClusterProviderConfig`s, not in a process watching
//! one namespace): the others only read the configs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt as _;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;

use super::configs;
use super::context::Context;
use super::writes;
use crate::backoff;
use crate::crd::account::{AccountConfig, IN_USE_FINALIZER, ProviderConfigStatus};
use crate::crd::conditions::{self, READY, RECONCILING, STALLED};
use crate::error::Error;

/// Condition type: the config is being deleted and waits for the objects that use it.
pub const IN_USE: &str = "InUse";

/// Reasons of a config's conditions.
pub mod reason {
    /// A signed call with the credentials succeeded.
    pub const VERIFIED: &str = "CredentialsVerified";
    /// The credentials Secret does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The credentials Secret lacks a key (or its value is empty).
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    /// The cloud refused the credentials (or the signature made with them).
    pub const INVALID_CREDENTIALS: &str = "InvalidCredentials";
    /// The cloud could not be reached or failed; the check is retried.
    pub const CLOUD_UNAVAILABLE: &str = "CloudUnavailable";
    /// The config is being deleted and objects still use it.
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
}

/// How often a config is looked at without a change (its `users` count).
const RECHECK: Duration = Duration::from_secs(20);
/// How many users an `InUse` message names.
const USERS_NAMED: usize = 5;

/// What checking a config's credentials found.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// `DescribeRegins` succeeded.
    Verified,
    /// A problem only a person can fix: reason and message.
    Broken(&'static str, String),
    /// The cloud could not answer; retried.
    Unavailable(String),
}

/// The status of a config for `verdict`, with `users` using it (pure). Conditions keep their
/// `lastTransitionTime` unless their status flips.
pub fn config_status(
    old: Option<&ProviderConfigStatus>,
    generation: Option<i64>,
    verdict: &Verdict,
    users: &[String],
    deleting: bool,
    now: &Time,
) -> ProviderConfigStatus {
    let mut conds = old.map(|s| s.conditions.clone()).unwrap_or_default();
    let cond = |type_: &str, status: bool, reason: &str, message: String| Condition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    };
    let (ready, stalled, reconciling) = match verdict {
        Verdict::Verified => (
            cond(
                READY,
                true,
                reason::VERIFIED,
                "DescribeRegins succeeded with these credentials".into(),
            ),
            None,
            None,
        ),
        Verdict::Broken(r, m) => (
            cond(READY, false, r, m.clone()),
            Some(cond(STALLED, true, r, m.clone())),
            None,
        ),
        Verdict::Unavailable(m) => (
            cond(READY, false, reason::CLOUD_UNAVAILABLE, m.clone()),
            None,
            Some(cond(RECONCILING, true, reason::CLOUD_UNAVAILABLE, m.clone())),
        ),
    };
    conditions::set_condition(&mut conds, ready);
    for (type_, c) in [(STALLED, stalled), (RECONCILING, reconciling)] {
        match c {
            Some(c) => {
                conditions::set_condition(&mut conds, c);
            }
            None => conds.retain(|c| c.type_ != type_),
        }
    }
    if deleting && !users.is_empty() {
        let mut named: Vec<&str> = users.iter().take(USERS_NAMED).map(String::as_str).collect();
        if users.len() > USERS_NAMED {
            named.push("…");
        }
        let message = format!(
            "deletion waits for the {} object(s) that use this config: {}",
            users.len(),
            named.join(", ")
        );
        conditions::set_condition(&mut conds, cond(IN_USE, true, reason::DELETION_BLOCKED, message));
    } else {
        conds.retain(|c| c.type_ != IN_USE);
    }
    ProviderConfigStatus {
        conditions: conds,
        users: Some(users.len() as i64),
        observed_generation: generation,
    }
}

/// What a verdict was reached for: the config's generation and its Secret's version.
type VerdictKey = (Option<i64>, String);

/// The controller's memory: the last verdict per config UID, with the generation and Secret
/// version it was reached for, and the retryable failures in a row.
#[derive(Default)]
struct Memory {
    verdicts: Mutex<HashMap<String, (VerdictKey, Verdict)>>,
    failures: Mutex<HashMap<String, u32>>,
}

struct ConfigContext {
    ctx: Arc<Context>,
    memory: Memory,
}

/// Runs the controller of kind `K` on `stream` (the config watch, already reflected into
/// `store`) until `stop`, if `manage` (the process sees every object that may use a `K`);
/// otherwise only drains the stream.
pub async fn run<K, S>(
    ctx: Arc<Context>,
    store: Store<K>,
    stream: S,
    manage: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    K: AccountConfig,
    S: futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
{
    if !manage {
        // A shard reads the configs (the store) and leaves them to the default process.
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                next = stream.next() => if next.is_none() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
    let cctx = Arc::new(ConfigContext {
        ctx: ctx.clone(),
        memory: Memory::default(),
    });
    Controller::for_stream(stream, store)
        .with_config(ControllerConfig::default().concurrency(2))
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile::<K>, error_policy::<K>, cctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "provider config controller event");
            }
        })
        .await;
}

fn error_policy<K: AccountConfig>(cfg: Arc<K>, err: &Error, cctx: Arc<ConfigContext>) -> Action {
    let mut failures = cctx.memory.failures.lock().expect("not poisoned");
    let n = failures.entry(cfg.uid().unwrap_or_default()).or_default();
    *n += 1;
    tracing::info!(config = %cfg.id(), error = %err, "provider config reconcile failed");
    Action::requeue(backoff::exponential(
        Duration::from_secs(2),
        *n,
        Duration::from_secs(300),
    ))
}

async fn reconcile<K: AccountConfig>(cfg: Arc<K>, cctx: Arc<ConfigContext>) -> Result<Action, Error> {
    let ctx = &cctx.ctx;
    ctx.readiness.wait_synced().await;
    let id = cfg.id();
    let released = ctx.secrets.released().await.clone();
    let users = ctx.configs.users_of(&id, &released);
    let deleting = cfg.meta().deletion_timestamp.is_some();
    let held = cfg.finalizers().iter().any(|f| f == IN_USE_FINALIZER);
    if ctx.fence().is_ok() {
        // The config: held while used (an object about to use it takes the hold itself first).
        if users.is_empty() == held {
            configs::set_config_held(&ctx.client, &id, !users.is_empty()).await?;
        }
        // Its Secret: held while an object may still delete an instance with it.
        let s = cfg.settings();
        let holders = ctx
            .configs
            .secret_holders(&s.secret_namespace, &s.secret_name, &released);
        if holders > 0 && ctx.secrets.unheld(&s.secret_namespace, &s.secret_name) {
            ctx.secrets.set_held(&s.secret_namespace, &s.secret_name, true).await?;
        }
    }
    if deleting && users.is_empty() {
        // Going away: no status to write.
        return Ok(Action::await_change());
    }
    let verdict = verify(&*cfg, &cctx).await;
    let now = Time(jiff::Timestamp::now());
    let status = config_status(
        cfg.config_status(),
        cfg.meta().generation,
        &verdict,
        &users,
        deleting,
        &now,
    );
    if cfg.config_status() != Some(&status) {
        let api = cfg.api(ctx.client.clone());
        let mut rv = cfg.resource_version();
        writes::write_status(ctx, &api, &*cfg, &mut rv, &status).await?;
    }
    let uid = cfg.uid().unwrap_or_default();
    if let Verdict::Unavailable(_) = &verdict {
        // Retried with backoff; the status already says why.
        let mut failures = cctx.memory.failures.lock().expect("not poisoned");
        let n = failures.entry(uid).or_default();
        *n += 1;
        return Ok(Action::requeue(backoff::exponential(
            Duration::from_secs(2),
            *n,
            Duration::from_secs(300),
        )));
    }
    cctx.memory.failures.lock().expect("not poisoned").remove(&uid);
    Ok(Action::requeue(RECHECK))
}

/// Checks the credentials of `cfg` with `DescribeRegins`, once per generation and Secret version
/// (a verdict that only a person can change is not asked again until one of them changes).
async fn verify<K: AccountConfig>(cfg: &K, cctx: &ConfigContext) -> Verdict {
    let ctx = &cctx.ctx;
    let s = cfg.settings();
    let secret_version = ctx
        .secrets
        .meta(&s.secret_namespace, &s.secret_name)
        .and_then(|m| m.resource_version())
        .unwrap_or_else(|| "absent".to_owned());
    let key = (cfg.meta().generation, secret_version);
    let uid = cfg.uid().unwrap_or_default();
    if let Some((k, v)) = cctx.memory.verdicts.lock().expect("not poisoned").get(&uid)
        && *k == key
        && !matches!(v, Verdict::Unavailable(_))
    {
        return v.clone();
    }
    let verdict = match ctx.config_account(&cfg.id(), &s).await {
        Err(Error::Credentials(m)) if m.contains("not found") => Verdict::Broken(reason::SECRET_NOT_FOUND, m),
        Err(Error::Credentials(m)) => Verdict::Broken(reason::CREDENTIALS_MISSING, m),
        Err(e) if e.is_terminal() => Verdict::Broken(reason::INVALID_CREDENTIALS, e.to_string()),
        Err(e) => Verdict::Unavailable(e.to_string()),
        Ok(account) => match account.client.describe_regions().await {
            Ok(_) => Verdict::Verified,
            // The error names the action: "DescribeRegins: HTTP 403 SignatureDoesNotMatch ...".
            Err(e) if e.is_retryable() => Verdict::Unavailable(e.to_string()),
            Err(e) => Verdict::Broken(reason::INVALID_CREDENTIALS, e.to_string()),
        },
    };
    cctx.memory
        .verdicts
        .lock()
        .expect("not poisoned")
        .insert(uid, (key, verdict.clone()));
    verdict
}

/// Every 30 s in a process that sees every object: takes our in-use finalizer off every Secret
/// no object needs any more (its config was deleted or now reads another Secret, or a process
/// was killed between its two release writes); returns how many it released.
pub async fn release_unneeded_secret_holds(ctx: &Context) -> Result<usize, Error> {
    if !ctx.configs.whole_namespaces || ctx.fence().is_err() {
        return Ok(0);
    }
    let mut released = ctx.secrets.released().await;
    let alive: std::collections::HashSet<String> = ctx.configs.users.state().iter().filter_map(|o| o.uid()).collect();
    released.retain(|u| alive.contains(u));
    let mut count = 0;
    for (ns, name) in ctx.secrets.held() {
        if ctx.configs.sees_all_holders_of(&ns, &name) && ctx.configs.secret_holders(&ns, &name, &released) == 0 {
            tracing::info!(secret = %format!("{ns}/{name}"), "no object needs this credentials Secret any more: releasing it");
            ctx.secrets.set_held(&ns, &name, false).await?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    fn cond<'a>(s: &'a ProviderConfigStatus, t: &str) -> Option<&'a Condition> {
        s.conditions.iter().find(|c| c.type_ == t)
    }

    #[test]
    fn verdicts_become_kstatus_conditions() {
        let users = vec!["a/x".to_owned()];
        let ok = config_status(None, Some(1), &Verdict::Verified, &users, false, &now());
        assert_eq!(cond(&ok, READY).unwrap().status, "True");
        assert!(cond(&ok, STALLED).is_none() && cond(&ok, RECONCILING).is_none());
        assert_eq!((ok.users, ok.observed_generation), (Some(1), Some(1)));

        let broken = config_status(
            Some(&ok),
            Some(2),
            &Verdict::Broken(reason::INVALID_CREDENTIALS, "no".into()),
            &users,
            false,
            &now(),
        );
        assert_eq!(cond(&broken, READY).unwrap().reason, reason::INVALID_CREDENTIALS);
        assert_eq!(cond(&broken, STALLED).unwrap().status, "True");

        let down = config_status(
            Some(&broken),
            Some(2),
            &Verdict::Unavailable("x".into()),
            &[],
            false,
            &now(),
        );
        assert!(cond(&down, STALLED).is_none());
        assert_eq!(cond(&down, RECONCILING).unwrap().status, "True");
        assert_eq!(down.users, Some(0));
    }

    #[test]
    fn a_config_deleted_while_used_says_who_uses_it() {
        let users: Vec<String> = (0..7).map(|i| format!("ns/r{i}")).collect();
        let s = config_status(None, Some(1), &Verdict::Verified, &users, true, &now());
        let c = cond(&s, IN_USE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", reason::DELETION_BLOCKED)
        );
        assert!(c.message.contains("7 object(s)") && c.message.contains("ns/r0") && c.message.contains('…'));
        assert!(!c.message.contains("ns/r6"), "{}", c.message);
        let done = config_status(Some(&s), Some(1), &Verdict::Verified, &[], true, &now());
        assert!(cond(&done, IN_USE).is_none());
    }
}
