//! The invariants of the soak: those checked after every round (no instance recorded by two
//! objects, no foreign Secret modified) and those checked once everything converged.

use std::collections::{BTreeMap, BTreeSet};

use cds_redis_operator::crd::conditions::synced;
use cds_redis_operator::crd::{ManagementPolicy, RedisInstance};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::Value;

use super::{Class, NsName, Soak, invariant};

/// The in-use finalizer the operator may put on an account Secret (contract, Ownership rule 4).
const IN_USE_FINALIZER: &str = "cds.capitalonline.net/in-use";

/// The cloud calls an operator log shows as started (finish time minus latency) after
/// `after_ms` (milliseconds since the epoch), as `action at TIME`. Calls the client's lease
/// gate stopped before sending (outcome `fenced`) never left the process and do not count.
pub fn calls_started_after(log: &str, after_ms: i64) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["fields"]["message"] == "CDS call finished" && v["fields"]["outcome"] != "fenced")
        .filter_map(|v| {
            let finished: jiff::Timestamp = v["timestamp"].as_str()?.parse().ok()?;
            let latency = v["span"]["latency_ms"].as_i64().unwrap_or(0);
            let started = finished.as_millisecond() - latency;
            let action = v["span"]["action"].as_str().unwrap_or("?");
            (started > after_ms).then(|| format!("{action} at {finished}"))
        })
        .collect()
}

/// What changed in a user's Secret, if anything the operator may not change did.
fn foreign_change(before: &Secret, now: &Secret, may_hold: bool) -> Option<String> {
    if before.resource_version() == now.resource_version() {
        return None;
    }
    let mut changes = vec![];
    if before.owner_references() != now.owner_references() {
        changes.push(format!(
            "ownerReferences {:?} -> {:?}",
            before.owner_references(),
            now.owner_references()
        ));
    }
    if before.data != now.data || before.string_data != now.string_data {
        changes.push("data changed".to_owned());
    }
    if before.labels() != now.labels() {
        changes.push(format!("labels {:?} -> {:?}", before.labels(), now.labels()));
    }
    if before.annotations() != now.annotations() {
        changes.push(format!(
            "annotations {:?} -> {:?}",
            before.annotations(),
            now.annotations()
        ));
    }
    let allowed = |f: &String| before.finalizers().contains(f) || (may_hold && f == IN_USE_FINALIZER);
    if !now.finalizers().iter().all(allowed) {
        changes.push(format!(
            "finalizers {:?} -> {:?}",
            before.finalizers(),
            now.finalizers()
        ));
    }
    if changes.is_empty() && !may_hold {
        changes.push(format!(
            "resourceVersion {:?} -> {:?}",
            before.resource_version(),
            now.resource_version()
        ));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

fn condition<'a>(
    o: &'a RedisInstance,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    o.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// `+1.234s` after `origin` (ms).
fn after(origin: i64, at: i64) -> String {
    format!("+{:.3}s", (at - origin) as f64 / 1000.0)
}

impl Soak {
    /// Secrets the soak deleted that still exist, with their finalizers.
    pub(super) async fn leftover_secrets(&self) -> Vec<String> {
        let mut out = vec![];
        for (ns, name) in &self.deleted_secrets {
            if let Ok(Some(s)) = self.secrets_api(ns).get_opt(name).await {
                out.push(format!("Secret {ns}/{name} (finalizers {:?})", s.finalizers()));
            }
        }
        out
    }

    /// Namespaces the soak deleted that still exist.
    pub(super) async fn leftover_namespaces(&self) -> Vec<String> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut out = vec![];
        for ns in &self.deleted_namespaces {
            if let Ok(Some(n)) = api.get_opt(ns).await {
                let conditions = n.status.and_then(|s| s.conditions).unwrap_or_default();
                let why: Vec<String> = conditions
                    .into_iter()
                    .filter(|c| c.status == "True")
                    .map(|c| format!("{}: {}", c.type_, c.message.unwrap_or_default()))
                    .collect();
                out.push(format!("namespace {ns} ({why:?})"));
            }
        }
        out
    }

    /// No cloud instance is recorded by two `Full` objects, in any namespace.
    pub(super) async fn check_not_shared(&mut self, when: &str) {
        let objs = Api::<RedisInstance>::all(self.client.clone())
            .list(&Default::default())
            .await
            .unwrap()
            .items;
        let mut by_uuid: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in &objs {
            if o.management_policy() != ManagementPolicy::Full {
                continue;
            }
            if let Some(uuid) = o.status.as_ref().and_then(|s| s.instance_uuid.clone()) {
                by_uuid.entry(uuid).or_default().push(format!(
                    "{}/{}",
                    o.namespace().unwrap_or_default(),
                    o.name_any()
                ));
            }
        }
        for (uuid, holders) in by_uuid {
            self.report.check(invariant::NOT_SHARED, holders.len() == 1, || {
                format!("{when}: instance {uuid} is recorded by {holders:?}")
            });
        }
    }

    /// Every user Secret the soak made and did not delete is as it was made (an account
    /// Secret may carry the in-use finalizer).
    pub(super) async fn check_foreign_secrets(&mut self, when: &str) {
        let keys: Vec<NsName> = self.foreign.keys().cloned().collect();
        for key in keys {
            let now = self.secrets_api(&key.0).get_opt(&key.1).await.unwrap();
            let f = &self.foreign[&key];
            let change = match &now {
                None => Some("deleted".to_owned()),
                Some(s) => foreign_change(&f.created, s, f.may_hold),
            };
            self.report.check(invariant::FOREIGN_SECRETS, change.is_none(), || {
                format!("{}/{} {when}: {}", key.0, key.1, change.unwrap_or_default())
            });
        }
    }

    /// The invariants checked once everything converged.
    pub(super) async fn final_invariants(&mut self) {
        let converge = self.report.converge.as_secs_f64();
        let objs = Api::<RedisInstance>::all(self.client.clone())
            .list(&Default::default())
            .await
            .unwrap()
            .items;
        let instances = self.admin.instances().await;
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in &instances {
            by_name
                .entry(i["listed"]["InstanceName"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push(i["listed"]["InstanceUuid"].as_str().unwrap_or_default().to_owned());
        }
        let uuid_names: BTreeMap<String, String> = by_name
            .iter()
            .flat_map(|(name, uuids)| uuids.iter().map(move |u| (u.clone(), name.clone())))
            .collect();

        // Nothing stays deleting.
        for o in &objs {
            let finalizers = o.finalizers().to_vec();
            let name = format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
            self.report
                .check(invariant::FINALIZERS, o.metadata.deletion_timestamp.is_none(), || {
                    format!("{name}: still deleting after {converge:.0}s (finalizers {finalizers:?})")
                });
        }
        let secrets = self.leftover_secrets().await;
        for i in 0..self.deleted_secrets.len() {
            let (ns, name) = &self.deleted_secrets[i];
            let left = secrets
                .iter()
                .find(|s| s.starts_with(&format!("Secret {ns}/{name} ")))
                .cloned();
            self.report.check(invariant::FINALIZERS, left.is_none(), || {
                format!(
                    "{} still exists {converge:.0}s after the soak deleted it",
                    left.unwrap_or_default()
                )
            });
        }
        let namespaces = self.leftover_namespaces().await;
        for i in 0..self.deleted_namespaces.len() {
            let ns = &self.deleted_namespaces[i];
            let left = namespaces
                .iter()
                .find(|s| s.starts_with(&format!("namespace {ns} ")))
                .cloned();
            self.report.check(invariant::FINALIZERS, left.is_none(), || {
                format!(
                    "{} still exists {converge:.0}s after the soak deleted it",
                    left.unwrap_or_default()
                )
            });
        }

        // Instances some object records (a live one, or one stuck deleting: reported above).
        let recorded: BTreeSet<String> = objs
            .iter()
            .filter_map(|o| o.status.as_ref()?.instance_uuid.clone())
            .collect();
        // Each live object: settled with the expected outcome, with its instance.
        let mut shared_names = BTreeSet::new();
        for o in objs.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
            self.report.live += 1;
            let ns = o.namespace().unwrap_or_default();
            let key = (ns.clone(), o.name_any());
            let mut who = format!("{}/{}", key.0, key.1);
            let st = o.status.clone().unwrap_or_default();
            let ready = condition(o, "Ready").is_some_and(|c| c.status == "True");
            if ready {
                self.report.ready += 1;
            }
            let reason = condition(o, "Synced")
                .filter(|c| c.status == "False")
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            let Some(tracked) = self.objects.get(&key).cloned() else {
                self.report.check(invariant::SETTLED, false, || {
                    format!("{who}: an object the soak did not make")
                });
                continue;
            };
            who = tracked.describe();
            let expected: &[&str] = match &tracked.class {
                Class::Normal => &[],
                // Refused by the cloud, or, when the preflight could read the catalogue, before
                // any order (paasGoodsId 999 is not offered).
                Class::Rejected(_) => &[synced::CLOUD_REJECTED, synced::FLAVOR_NOT_AVAILABLE],
                Class::SecretConflict => &[synced::SECRET_CONFLICT],
                Class::Collider(_) => &[synced::INSTANCE_IN_USE],
                Class::Adopter => &[
                    synced::INSTANCE_IN_USE,
                    synced::INSTANCE_NOT_FOUND,
                    synced::EXTERNALLY_DELETED,
                ],
            };
            let settled = match &tracked.class {
                Class::Normal => ready,
                Class::Rejected(_) | Class::SecretConflict => !ready && expected.contains(&reason.as_str()),
                Class::Collider(_) | Class::Adopter => ready || expected.contains(&reason.as_str()),
            };
            let conditions = st.conditions.clone();
            self.report.check(invariant::SETTLED, settled, || {
                format!(
                    "{who} ({:?}): Ready={ready}, Synced reason {reason:?}, expected {}: {conditions:?}",
                    tracked.class,
                    if expected.is_empty() {
                        "Ready".to_owned()
                    } else {
                        format!("{expected:?}")
                    }
                )
            });
            let own = tracked.instance_name();
            let named = by_name.get(&own).cloned().unwrap_or_default();
            let status_uuid = st.instance_uuid.clone();
            let instance_ok = match &tracked.class {
                Class::Normal | Class::SecretConflict => {
                    named.len() == 1 && status_uuid.as_deref() == Some(named[0].as_str())
                }
                Class::Rejected(_) => named.is_empty() && status_uuid.is_none(),
                Class::Collider(shared) => {
                    shared_names.insert(shared.clone());
                    !ready || status_uuid.as_ref().is_some_and(|u| named.contains(u))
                }
                Class::Adopter => {
                    let adopted = status_uuid.is_some() && status_uuid == o.spec.instance_uuid;
                    !ready || (adopted && status_uuid.as_ref().is_some_and(|u| uuid_names.contains_key(u)))
                }
            };
            self.report.check(invariant::ONE_INSTANCE, instance_ok, || {
                format!(
                    "{who} ({:?}): status UUID {status_uuid:?}, cloud instances named {own}: {named:?}",
                    tracked.class
                )
            });
        }
        for shared in shared_names {
            let named = by_name.get(&shared).cloned().unwrap_or_default();
            self.report.check(invariant::ONE_INSTANCE, named.len() <= 1, || {
                format!("{} cloud instances share the name {shared}: {named:?}", named.len())
            });
        }

        // No instance without its object.
        for (uuid, name) in &uuid_names {
            let ok = recorded.contains(uuid) || self.retained.contains(name);
            let made_for = self.made_for(name);
            self.report.check(invariant::NO_ORPHAN, ok, || {
                format!("cloud instance {uuid} named {name} is recorded by no object (and was not retained); made for {made_for}")
            });
        }

        self.check_not_shared("at the end").await;
        self.check_foreign_secrets("at the end").await;
        let writes = self.admin.writes().await;
        self.check_deletes(&writes);
        self.check_rejected_creates(&writes);

        let calls = self.admin.calls_json().await;
        if let Some(m) = calls["faultsInjected"].as_object() {
            self.report.faults = m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
        }
        if let Some(m) = calls["calls"].as_object() {
            self.report.calls = m
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum()),
                    )
                })
                .collect();
        }
    }

    /// The objects whose instance is named `instance_name`, described, and whether deleted.
    fn made_for(&self, instance_name: &str) -> String {
        let made: Vec<String> = self
            .objects
            .values()
            .filter(|t| t.instance_name() == instance_name)
            .map(|t| format!("{}{}", t.describe(), if t.deleted { ", deleted" } else { "" }))
            .collect();
        if made.is_empty() {
            "no object of the soak".to_owned()
        } else {
            made.join(" and ")
        }
    }

    /// The operator kills between `from` and `to` (ms), relative to `origin`.
    fn kills_between(&self, origin: i64, from: i64, to: i64) -> Vec<String> {
        self.kills_at
            .iter()
            .filter(|k| (from..=to).contains(*k))
            .map(|k| after(origin, *k))
            .collect()
    }

    /// Per instance, the `DeleteDBInstance` calls that reached the cloud (a 409 on an instance
    /// still creating aside) are at most 1 + the answers lost (by the cloud, or by an operator
    /// killed in between).
    fn check_deletes(&mut self, writes: &[Value]) {
        let mut by_uuid: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for w in writes {
            if w["action"] == "DeleteDBInstance" && w["executed"] == true && w["instanceState"] != "creating" {
                by_uuid
                    .entry(w["instanceUuid"].as_str().unwrap_or_default().to_owned())
                    .or_default()
                    .push(w);
            }
        }
        for (uuid, calls) in by_uuid {
            let lost = calls
                .iter()
                .filter(|w| w["outcome"].as_str().is_some_and(|o| o.starts_with("lost_")))
                .count();
            let at = |w: &Value| w["atMs"].as_i64().unwrap_or(0);
            let origin = at(calls[0]);
            let last = at(calls[calls.len() - 1]);
            let kills = self.kills_between(origin, origin, last);
            let timeline: Vec<String> = calls
                .iter()
                .map(|w| {
                    format!(
                        "{} {} -> {} by {}",
                        after(origin, at(w)),
                        w["instanceState"].as_str().unwrap_or_default(),
                        w["outcome"].as_str().unwrap_or_default(),
                        w["accessKeyId"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            let name = calls[0]["instanceName"].as_str().unwrap_or_default().to_owned();
            let made_for = self.made_for(&name);
            // An operator killed after sending a delete lost its answer as surely as the cloud
            // can: its successor may send one more (answered 409 while the cloud deletes).
            self.report.check(invariant::DELETES, calls.len() <= 1 + lost + kills.len(), || {
                format!(
                    "instance {uuid} ({name}, made for {made_for}): {} deletes reached the cloud for {lost} lost answers: {timeline:?}; operator SIGKILLs in between: {kills:?}",
                    calls.len()
                )
            });
        }
    }

    /// Of each object whose create is rejected for good, at most one create reaches the cloud
    /// per generation.
    fn check_rejected_creates(&mut self, writes: &[Value]) {
        let rejected: Vec<(String, String, Vec<i64>)> = self
            .objects
            .values()
            .filter_map(|t| match &t.class {
                Class::Rejected(generations) => Some((t.describe(), t.instance_name(), generations.clone())),
                _ => None,
            })
            .collect();
        for (who, instance_name, generations) in rejected {
            let creates: Vec<(i64, String)> = writes
                .iter()
                .filter(|w| {
                    w["action"] == "CreateDBInstance"
                        && w["executed"] == true
                        && w["instanceName"].as_str() == Some(instance_name.as_str())
                })
                .map(|w| {
                    (
                        w["atMs"].as_i64().unwrap_or(0),
                        w["outcome"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            for (g, start) in generations.iter().enumerate() {
                let end = generations.get(g + 1).copied().unwrap_or(i64::MAX);
                let sent: Vec<&(i64, String)> = creates.iter().filter(|(at, _)| (*start..end).contains(at)).collect();
                let kills = self.kills_between(*start, *start, end.min(*start + 600_000));
                let timeline: Vec<String> = sent
                    .iter()
                    .map(|(at, o)| format!("{} {o}", after(*start, *at)))
                    .collect();
                self.report.check(invariant::REJECTED, sent.len() <= 1, || {
                    format!(
                        "{who} generation {}: {} creates reached the cloud: {timeline:?}; operator SIGKILLs in that generation: {kills:?}",
                        g + 1,
                        sent.len()
                    )
                });
            }
        }
    }
}
