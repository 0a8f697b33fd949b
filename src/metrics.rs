//! Prometheus metrics of the operator: reconciles, failures by reason, durations, cloud calls by
//! action and outcome, objects by phase, time to Ready, leadership.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cds::client::CallObserver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// A gauge per phase of one kind of object, and the phase each object is counted in.
struct PhaseGauges {
    family: Family<PhaseLabels, Gauge>,
    phases: Mutex<HashMap<String, String>>,
}

impl PhaseGauges {
    /// Registers `name`, with every one of `phases` a series from the start, at 0.
    fn register(registry: &mut Registry, name: &str, help: &str, phases: &[&str]) -> Self {
        let family = Family::<PhaseLabels, Gauge>::default();
        registry.register(name, help, family.clone());
        for phase in phases {
            family.get_or_create(&PhaseLabels { phase: (*phase).into() }).set(0);
        }
        Self {
            family,
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts object `uid` in `phase` (`None` when it is gone). Only the gauges of the old and
    /// the new phase move: O(1) per reconcile.
    fn set(&self, uid: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock().expect("not poisoned");
        let previous = match phase {
            Some(p) if phases.get(uid).is_some_and(|old| old == p) => return,
            Some(p) => phases.insert(uid.to_owned(), p.to_owned()),
            None => phases.remove(uid),
        };
        let gauge = |p: &str| self.family.get_or_create(&PhaseLabels { phase: p.into() }).clone();
        if let Some(old) = previous {
            gauge(&old).dec();
        }
        if let Some(new) = phase {
            gauge(new).inc();
        }
    }
}

impl PhaseGauges {
    /// Stops counting every object for which `alive` is false.
    fn retain(&self, alive: impl Fn(&str) -> bool) {
        let mut phases = self.phases.lock().expect("not poisoned");
        phases.retain(|uid, phase| {
            let keep = alive(uid);
            if !keep {
                self.family.get_or_create(&PhaseLabels { phase: phase.clone() }).dec();
            }
            keep
        });
    }
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    cloud_calls: Family<CallLabels, Counter>,
    cloud_call_duration: Family<ActionLabels, Histogram>,
    objects: PhaseGauges,
    backups: PhaseGauges,
    time_to_ready: Histogram,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `cds_redis` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cds_redis");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by outcome (success, error)",
            reconciles.clone(),
        );
        let failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles by condition reason",
            failures.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        let cloud_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "cloud_calls",
            "CDS API calls by action and outcome (success or error code)",
            cloud_calls.clone(),
        );
        let cloud_call_duration = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "cloud_call_duration_seconds",
            "Latency of CDS API calls",
            cloud_call_duration.clone(),
        );
        let objects = PhaseGauges::register(
            &mut registry,
            "objects",
            "RedisInstance objects by phase",
            &["Pending", "Creating", "Running", "Deleting", "Failed", "Unknown"],
        );
        let backups = PhaseGauges::register(
            &mut registry,
            "backups",
            "RedisBackup objects by phase",
            &["Pending", "Creating", "Completed", "Deleting", "Failed"],
        );
        let time_to_ready = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "time_to_ready_seconds",
            "From object creation to its first Ready=True",
            time_to_ready.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        Self {
            registry,
            reconciles,
            failures,
            reconcile_duration,
            cloud_calls,
            cloud_call_duration,
            objects,
            backups,
            time_to_ready,
            leader,
        }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, duration: Duration, failure_reason: Option<&str>) {
        let outcome = if failure_reason.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        if let Some(reason) = failure_reason {
            self.failures
                .get_or_create(&ReasonLabels { reason: reason.into() })
                .inc();
        }
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Records the phase of `RedisInstance` `uid` (`None` when it is gone).
    pub fn set_phase(&self, uid: &str, phase: Option<&str>) {
        self.objects.set(uid, phase);
    }

    /// Records the phase of `RedisBackup` `uid` (`None` when it is gone).
    pub fn set_backup_phase(&self, uid: &str, phase: Option<&str>) {
        self.backups.set(uid, phase);
    }

    /// Drops the phase of every `RedisInstance` for which `alive` is false (objects gone unseen).
    pub fn retain_phases(&self, alive: impl Fn(&str) -> bool) {
        self.objects.retain(alive);
    }

    /// Records the time from creation to the first Ready.
    pub fn became_ready(&self, after: Duration) {
        self.time_to_ready.observe(after.as_secs_f64());
    }

    /// Records leadership.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl CallObserver for Metrics {
    fn observe(&self, action: &str, outcome: &str, latency: Duration) {
        self.cloud_calls
            .get_or_create(&CallLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.cloud_call_duration
            .get_or_create(&ActionLabels { action: action.into() })
            .observe(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_series() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(20), None);
        m.reconciled(Duration::from_millis(20), Some("SecretNotFound"));
        m.observe("CreateDBInstance", "success", Duration::from_millis(40));
        m.set_phase("a", Some("Creating"));
        m.set_phase("a", Some("Running"));
        m.set_phase("a", Some("Running"));
        m.set_phase("b", Some("Running"));
        m.set_phase("b", None);
        m.set_phase("c", Some("Failed"));
        m.set_backup_phase("a", Some("Creating"));
        m.set_backup_phase("a", Some("Completed"));
        m.set_backup_phase("d", Some("Pending"));
        m.set_backup_phase("d", None);
        m.became_ready(Duration::from_secs(30));
        let text = m.encode();
        for line in [
            r#"cds_redis_reconciles_total{outcome="success"} 1"#,
            r#"cds_redis_reconcile_failures_total{reason="SecretNotFound"} 1"#,
            r#"cds_redis_cloud_calls_total{action="CreateDBInstance",outcome="success"} 1"#,
            r#"cds_redis_objects{phase="Running"} 1"#,
            r#"cds_redis_objects{phase="Creating"} 0"#,
            r#"cds_redis_objects{phase="Failed"} 1"#,
            r#"cds_redis_objects{phase="Deleting"} 0"#,
            r#"cds_redis_backups{phase="Completed"} 1"#,
            r#"cds_redis_backups{phase="Creating"} 0"#,
            r#"cds_redis_backups{phase="Pending"} 0"#,
            "cds_redis_time_to_ready_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
