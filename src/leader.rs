//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! acts (contract, Ownership rule 7). Every write uses the Lease's `resourceVersion`, so two
//! replicas can never both believe they took it.
//!
//! Time is judged as client-go does, on each replica's own monotonic clock, never by comparing
//! the holder's `renewTime` with the local wall clock:
//! - a standby takes over only after the lease record stayed unchanged for a whole lease
//!   duration since it first saw it;
//! - the leader counts its lease from the moment it *sent* its last successful renewal, and
//!   stops acting ([`Leadership::check`] fails) a safety margin before that lease could expire
//!   for a standby. Every renewal is bounded by that deadline, so a stuck request cannot keep a
//!   leader acting, and a frozen (SIGSTOPped) leader that wakes up finds its lease lapsed before
//!   it sends anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

/// Timing of the election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and a standby retries.
    pub retry_period: Duration,
}

/// Whether this replica may act: checked before every cloud write and Kubernetes write.
#[derive(Clone, Debug)]
pub struct Leadership(Option<Arc<Mutex<Option<Instant>>>>);

impl Leadership {
    /// Leader election is off: this replica always acts.
    pub fn unconditional() -> Self {
        Self(None)
    }

    fn elected() -> Self {
        Self(Some(Arc::new(Mutex::new(None))))
    }

    /// `Ok` while the lease is certainly ours.
    pub fn check(&self) -> Result<(), NotLeader> {
        match &self.0 {
            None => Ok(()),
            Some(until) => match *until.lock().expect("not poisoned") {
                Some(t) if Instant::now() < t => Ok(()),
                _ => Err(NotLeader),
            },
        }
    }

    fn extend_to(&self, until: Instant) {
        if let Some(u) = &self.0 {
            *u.lock().expect("not poisoned") = Some(until);
        }
    }

    fn valid_until(&self) -> Option<Instant> {
        self.0.as_ref().and_then(|u| *u.lock().expect("not poisoned"))
    }

    fn revoke(&self) {
        if let Some(u) = &self.0 {
            *u.lock().expect("not poisoned") = None;
        }
    }
}

/// This replica cannot prove it holds the lease.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("this replica no longer holds the leader lease")]
pub struct NotLeader;

/// What a standby last saw of the lease, and when (on its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: String,
    resource_version: Option<String>,
}

/// Takes and holds the lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leadership: Leadership,
    observed: Arc<Mutex<Option<(Observed, Instant)>>>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

impl LeaderElector {
    /// An elector for `config`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            leadership: Leadership::elected(),
            observed: Arc::new(Mutex::new(None)),
        }
    }

    /// The fence the acting code checks.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// How long before the lease could lapse for a standby this replica stops acting: one
    /// retry period, so a renewal in flight at the deadline is never relied upon.
    fn margin(&self) -> Duration {
        self.config.retry_period
    }

    /// One attempt to take or renew the lease, bounded by `timeout`; `Ok(true)` when we hold it
    /// afterwards (and the fence is extended from the moment the attempt started).
    async fn attempt(&self, timeout: Duration) -> Result<bool, kube::Error> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.try_acquire_or_renew()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(timeout_ms = timeout.as_millis() as u64, "lease request timed out");
                return Ok(false);
            }
        };
        if let Ok(true) = result {
            let lease_end = started + self.config.lease_duration;
            self.leadership
                .extend_to(lease_end.checked_sub(self.margin()).unwrap_or(started));
        }
        result
    }

    /// Whether the lease record `observed` has stayed unchanged for a whole lease duration on
    /// this replica's clock.
    fn expired(&self, observed: Observed) -> bool {
        let mut last = self.observed.lock().expect("not poisoned");
        match last.as_ref() {
            Some((seen, since)) if *seen == observed => since.elapsed() >= self.config.lease_duration,
            _ => {
                *last = Some((observed, Instant::now()));
                false
            }
        }
    }

    /// One attempt to take or renew the lease; `Ok(true)` when we hold it afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let c = &self.config;
        let secs = c.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&c.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(c.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(c.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let resource_version = lease.metadata.resource_version.clone();
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != c.identity {
            let observed = Observed {
                holder: holder.clone(),
                resource_version,
            };
            if !holder.is_empty() && !self.expired(observed) {
                return Ok(false);
            }
            spec.holder_identity = Some(c.identity.clone());
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(secs);
        // `replace` sends the resourceVersion we read: a concurrent writer makes this fail.
        match self.api.replace(&c.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.attempt(self.config.retry_period).await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(false) => tracing::debug!("another replica holds the lease"),
                Err(e) => tracing::warn!(error = %e, "cannot read or take the lease"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the lease until it cannot prove it still holds it; returns then, with the fence
    /// already closed. Each renewal is bounded by the fence's deadline.
    pub async fn hold(&self) {
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let Some(until) = self.leadership.valid_until().filter(|t| *t > Instant::now()) else {
                tracing::error!("could not renew the lease in time; no longer acting");
                self.leadership.revoke();
                return;
            };
            match self.attempt(until - Instant::now()).await {
                Ok(true) => {}
                Ok(false) => {
                    // Either another replica took the lease, or the request did not finish in
                    // time: only a later success proves the lease is still ours.
                    if self
                        .api
                        .get_opt(&self.config.name)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|l| {
                            l.spec
                                .and_then(|s| s.holder_identity)
                                .is_some_and(|h| h != self.config.identity)
                        })
                    {
                        tracing::error!("another replica took the lease");
                        self.leadership.revoke();
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
            }
        }
    }

    /// Gives the lease up (on a clean shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        self.leadership.revoke();
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.config.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fence_closes_when_the_lease_was_not_renewed_in_time() {
        assert!(
            Leadership::unconditional().check().is_ok(),
            "no election: always acting"
        );
        let fence = Leadership::elected();
        assert!(fence.check().is_err(), "not acting before the lease is taken");
        fence.extend_to(Instant::now() + Duration::from_millis(50));
        assert!(fence.check().is_ok());
        // No renewal, or a process frozen past the deadline: closed on its own clock, with no
        // request needed to find out.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(fence.check().is_err());
        fence.extend_to(Instant::now() + Duration::from_secs(10));
        fence.revoke();
        assert!(fence.check().is_err(), "revoked when another replica took the lease");
    }
}
