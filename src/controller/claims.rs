//! Which object claims which cloud instance (contract, Ownership rule 1: one instance, one
//! object), kept from the `RedisInstance` watch, plus the reservations a reconcile makes right
//! before it creates or adopts, so two objects reconciled at the same moment cannot both win.
//!
//! A `Full` object claims what it has recorded: the UUID in its status, and the instance name
//! it created (or is creating) with. `spec.instanceUuid` is a wish, not a claim: an object that
//! asks for an instance another object records must not make that object's claim look contested
//! (both would report `InstanceInUse`, and deleting both would orphan the instance); it
//! competes through a reservation when it adopts. `ObserveOnly` objects claim nothing: they may observe
//! an instance another object manages.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::crd::{ManagementPolicy, RedisInstance};

/// What can be claimed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// A cloud instance, by UUID.
    Uuid(String),
    /// A cloud instance name (created with, or being created with).
    Name(String),
}

/// A claimant: UID and `namespace/name`.
type Claimant = (String, String);

#[derive(Default)]
struct State {
    /// Claims seen on the objects, by claim.
    seen: HashMap<Claim, BTreeSet<Claimant>>,
    /// The claims each object's last seen version makes, by UID.
    of: HashMap<String, Vec<Claim>>,
    /// Claims reserved by a reconcile before its write shows in the watch.
    reserved: HashMap<Claim, Claimant>,
    /// Objects listed since the watch (re)started, until the listing is complete.
    relisting: Option<Vec<RedisInstance>>,
}

/// The claim index of the cluster (or the watched namespace).
#[derive(Default)]
pub struct Claims(Mutex<State>);

/// The claims `obj` makes.
pub fn claims_of(obj: &RedisInstance) -> Vec<Claim> {
    if obj.management_policy() != ManagementPolicy::Full {
        return vec![];
    }
    let status = obj.status.as_ref();
    let uuids = [status.and_then(|s| s.instance_uuid.clone())];
    let names = [
        status.and_then(|s| s.instance_name.clone()),
        status.and_then(|s| s.create_attempt.as_ref().map(|a| a.instance_name.clone())),
    ];
    let mut out: Vec<Claim> = uuids
        .into_iter()
        .flatten()
        .map(Claim::Uuid)
        .chain(names.into_iter().flatten().map(Claim::Name))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn claimant(obj: &RedisInstance) -> Claimant {
    (
        obj.uid().unwrap_or_default(),
        format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
    )
}

impl State {
    fn forget(&mut self, uid: &str) {
        for claim in self.of.remove(uid).unwrap_or_default() {
            if let Some(set) = self.seen.get_mut(&claim) {
                set.retain(|(u, _)| u != uid);
                if set.is_empty() {
                    self.seen.remove(&claim);
                }
            }
        }
    }

    fn apply(&mut self, obj: &RedisInstance) {
        let who = claimant(obj);
        self.forget(&who.0);
        let claims = claims_of(obj);
        for claim in &claims {
            self.seen.entry(claim.clone()).or_default().insert(who.clone());
        }
        self.of.insert(who.0, claims);
    }

    fn holder(&self, claim: &Claim, uid: &str) -> Option<String> {
        let seen = self
            .seen
            .get(claim)
            .and_then(|set| set.iter().find(|(u, _)| u != uid).map(|(_, name)| name.clone()));
        seen.or_else(|| {
            self.reserved
                .get(claim)
                .filter(|(u, _)| u != uid)
                .map(|(_, name)| name.clone())
        })
    }
}

impl Claims {
    /// Follows a watch event of `RedisInstance`s.
    pub fn observe(&self, event: &watcher::Event<RedisInstance>) {
        let mut state = self.0.lock().expect("not poisoned");
        match event {
            watcher::Event::Apply(obj) => state.apply(obj),
            watcher::Event::Delete(obj) => {
                let uid = obj.uid().unwrap_or_default();
                state.forget(&uid);
                state.reserved.retain(|_, (u, _)| *u != uid);
            }
            watcher::Event::Init => state.relisting = Some(Vec::new()),
            watcher::Event::InitApply(obj) => {
                if let Some(list) = state.relisting.as_mut() {
                    list.push(obj.clone());
                }
            }
            watcher::Event::InitDone => {
                let listed = state.relisting.take().unwrap_or_default();
                state.seen.clear();
                state.of.clear();
                for obj in &listed {
                    state.apply(obj);
                }
                let alive: BTreeSet<String> = state.of.keys().cloned().collect();
                state.reserved.retain(|_, (u, _)| alive.contains(u));
            }
        }
    }

    /// The other object (`namespace/name`) that holds `claim`, if any.
    pub fn holder(&self, claim: &Claim, obj: &RedisInstance) -> Option<String> {
        let uid = obj.uid().unwrap_or_default();
        self.0.lock().expect("not poisoned").holder(claim, &uid)
    }

    /// Reserves `claim` for `obj`, unless another object holds it (then: that object).
    pub fn reserve(&self, claim: Claim, obj: &RedisInstance) -> Result<(), String> {
        let who = claimant(obj);
        let mut state = self.0.lock().expect("not poisoned");
        if let Some(other) = state.holder(&claim, &who.0) {
            return Err(other);
        }
        state.reserved.insert(claim, who);
        Ok(())
    }

    /// Drops every reservation of `obj` (it released its instance).
    pub fn release(&self, obj: &RedisInstance) {
        let uid = obj.uid().unwrap_or_default();
        self.0
            .lock()
            .expect("not poisoned")
            .reserved
            .retain(|_, (u, _)| *u != uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(name: &str, uid: &str, spec: serde_json::Value, status: serde_json::Value) -> RedisInstance {
        let mut s = json!({
            "regionId": "r", "vdcId": "v", "basePipeId": "p", "paasGoodsId": 1,
            "passwordSecretRef": { "name": "pw" },
        });
        for (k, v) in spec.as_object().unwrap() {
            s[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
            "metadata": { "name": name, "namespace": "ns", "uid": uid },
            "spec": s, "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn an_instance_recorded_by_one_object_is_held_against_every_other() {
        let claims = Claims::default();
        let a = object(
            "a",
            "ua",
            json!({}),
            json!({ "instanceUuid": "u1", "instanceName": "n1" }),
        );
        let b = object("b", "ub", json!({ "instanceUuid": "u1" }), json!({}));
        let watcher_only = object(
            "c",
            "uc",
            json!({ "managementPolicy": "ObserveOnly" }),
            json!({ "instanceUuid": "u1" }),
        );
        claims.observe(&watcher::Event::Apply(a.clone()));
        claims.observe(&watcher::Event::Apply(watcher_only.clone()));
        assert_eq!(claims.holder(&Claim::Uuid("u1".into()), &b).as_deref(), Some("ns/a"));
        assert_eq!(claims.holder(&Claim::Name("n1".into()), &b).as_deref(), Some("ns/a"));
        assert_eq!(claims.holder(&Claim::Uuid("u1".into()), &a), None, "its own claim");
        assert!(claims.reserve(Claim::Uuid("u1".into()), &b).is_err());
        // b only asks for u1 (spec.instanceUuid): that does not contest a's record (found by
        // the soak: both reported InstanceInUse, and deleting both orphaned the instance).
        claims.observe(&watcher::Event::Apply(b.clone()));
        assert_eq!(
            claims.holder(&Claim::Uuid("u1".into()), &a),
            None,
            "a wish is not a claim"
        );
        // Deleted: the claim goes with it.
        claims.observe(&watcher::Event::Delete(a));
        assert_eq!(claims.holder(&Claim::Uuid("u1".into()), &b), None);
    }

    #[test]
    fn of_two_concurrent_reservations_one_wins() {
        let claims = Claims::default();
        let a = object("a", "ua", json!({}), json!({}));
        let b = object("b", "ub", json!({}), json!({}));
        assert!(claims.reserve(Claim::Name("shared".into()), &a).is_ok());
        assert_eq!(claims.reserve(Claim::Name("shared".into()), &b), Err("ns/a".to_owned()));
        assert!(claims.reserve(Claim::Name("shared".into()), &a).is_ok(), "idempotent");
        claims.release(&a);
        assert!(claims.reserve(Claim::Name("shared".into()), &b).is_ok());
    }

    #[test]
    fn a_relist_replaces_what_was_seen() {
        let claims = Claims::default();
        let a = object("a", "ua", json!({}), json!({ "instanceUuid": "u1" }));
        let b = object("b", "ub", json!({}), json!({ "instanceUuid": "u2" }));
        let probe = object("p", "up", json!({}), json!({}));
        claims.observe(&watcher::Event::Apply(a));
        claims.observe(&watcher::Event::Init);
        claims.observe(&watcher::Event::InitApply(b));
        claims.observe(&watcher::Event::InitDone);
        assert_eq!(
            claims.holder(&Claim::Uuid("u1".into()), &probe),
            None,
            "a was deleted while unwatched"
        );
        assert_eq!(
            claims.holder(&Claim::Uuid("u2".into()), &probe).as_deref(),
            Some("ns/b")
        );
    }
}
