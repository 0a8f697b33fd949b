//! Which account an object uses (`spec.providerConfigRef`, else the `ClusterProviderConfig`
//! named `default`, else the operator's own credentials), who uses a config, and the holds that
//! keep a config and its credentials Secret while objects still need them (`accounts.md`).
//!
//! Holds are taken by the process that reconciles the object, before it creates anything; they
//! are released only by a process that sees every user of the config
//! ([`Configs::sees_all_users_of`]): a shard, or a process watching one namespace for a
//! `ClusterProviderConfig`, sees only part of them and would release a hold another object
//! still needs.

use std::collections::HashSet;
use std::sync::Arc;

use kube::ResourceExt as _;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::account::{
    AccountConfig, AccountSettings, ClusterProviderConfig, ConfigId, DEFAULT_CONFIG, IN_USE_FINALIZER, ProviderConfig,
    ProviderConfigKind,
};
use crate::crd::backup::RedisBackup;
use crate::crd::{FINALIZER, RedisInstance};
use crate::error::Error;

/// The configs every process watches.
#[derive(Clone)]
pub struct Configs {
    /// `ClusterProviderConfig`s.
    pub cluster: Store<ClusterProviderConfig>,
    /// `ProviderConfig`s of every watched namespace.
    pub namespaced: Store<ProviderConfig>,
    /// Every object that may use a config (all of them in a process that sees every object;
    /// the shard's own otherwise).
    pub users: Store<RedisInstance>,
    /// The `RedisBackup`s this process watches: one that may still delete its cloud backup
    /// uses the config it was made with (`status.providerConfigRef`).
    pub backups: Store<RedisBackup>,
    /// Whether `users` holds every object of each watched namespace (the process is not a
    /// shard): the users of a `ProviderConfig` are all known.
    pub whole_namespaces: bool,
    /// Whether `users` holds every object of the cluster (not a shard, every namespace
    /// watched): the users of a `ClusterProviderConfig` are all known.
    pub whole_cluster: bool,
}

/// A config as the cache has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Its settings.
    pub settings: AccountSettings,
    /// Whether it carries the in-use finalizer.
    pub held: bool,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// The account an object uses, as resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// The operator's own credentials.
    Operator,
    /// A config.
    Config {
        /// Which.
        id: ConfigId,
        /// Its settings.
        settings: AccountSettings,
        /// Whether it carries the in-use finalizer.
        held: bool,
        /// Whether it is being deleted (no finalizer can be added then).
        deleting: bool,
    },
}

impl Configs {
    /// Whether this process sees every object that may use config `id` (and so may count its
    /// users and release its holds).
    pub fn sees_all_users_of(&self, id: &ConfigId) -> bool {
        match id {
            ConfigId::Operator => false,
            ConfigId::Cluster(_) => self.whole_cluster,
            ConfigId::Namespaced(..) => self.whole_namespaces,
        }
    }

    /// Whether this process sees every object that may hold the Secret `ns/name`: every user
    /// of every config reading it.
    pub fn sees_all_holders_of(&self, ns: &str, name: &str) -> bool {
        self.whole_namespaces
            && self
                .reading_secret(ns, name)
                .iter()
                .all(|id| self.sees_all_users_of(id))
    }

    /// The config `obj` uses, by identity, whether it exists or not.
    pub fn id_of(&self, obj: &RedisInstance) -> ConfigId {
        match &obj.spec.provider_config_ref {
            Some(r) => r.id(&obj.namespace().unwrap_or_default()),
            None if self.cluster.get(&ObjectRef::new(DEFAULT_CONFIG)).is_some() => {
                ConfigId::Cluster(DEFAULT_CONFIG.to_owned())
            }
            None => ConfigId::Operator,
        }
    }

    /// The config `obj` uses, or `ProviderConfigNotFound` saying what exists instead.
    pub fn resolve(&self, obj: &RedisInstance) -> Result<Resolved, Error> {
        let id = self.id_of(obj);
        match self.settings(&id) {
            Some(found) => Ok(Resolved::Config {
                id,
                settings: found.settings,
                held: found.held,
                deleting: found.deleting,
            }),
            None if id == ConfigId::Operator => Ok(Resolved::Operator),
            None => Err(Error::ProviderConfigNotFound(self.not_found(&id))),
        }
    }

    /// Config `id` as the cache has it, if it exists.
    pub fn settings(&self, id: &ConfigId) -> Option<Found> {
        fn found<K: AccountConfig>(c: &K) -> Found {
            Found {
                settings: c.settings(),
                held: c.finalizers().iter().any(|f| f == IN_USE_FINALIZER),
                deleting: c.meta().deletion_timestamp.is_some(),
            }
        }
        match id {
            ConfigId::Operator => None,
            ConfigId::Cluster(name) => self.cluster.get(&ObjectRef::new(name)).map(|c| found(c.as_ref())),
            ConfigId::Namespaced(ns, name) => self
                .namespaced
                .get(&ObjectRef::new(name).within(ns))
                .map(|c| found(c.as_ref())),
        }
    }

    /// The namespaces holding a `ProviderConfig` named `name`.
    fn namespaces_with_provider_config(&self, name: &str) -> Vec<String> {
        self.namespaced
            .state()
            .iter()
            .filter(|c| c.name_any() == name)
            .map(|c| c.namespace().unwrap_or_default())
            .collect()
    }

    /// Why `id` cannot be used, with what exists that the user may have meant.
    fn not_found(&self, id: &ConfigId) -> String {
        match id {
            ConfigId::Operator => "no CDS credentials".to_owned(),
            ConfigId::Cluster(name) => {
                let mut msg = format!("ClusterProviderConfig {name:?} not found");
                let local = self.namespaces_with_provider_config(name);
                if !local.is_empty() {
                    msg.push_str(&format!(
                        " (a ProviderConfig of that name exists in namespace {}: name it with kind: ProviderConfig)",
                        local.join(", ")
                    ));
                }
                msg
            }
            ConfigId::Namespaced(ns, name) => {
                let mut msg = format!("ProviderConfig {name:?} not found in namespace {ns}");
                let elsewhere = self.namespaces_with_provider_config(name);
                if !elsewhere.is_empty() {
                    msg.push_str(&format!(
                        "; a ProviderConfig of that name exists in namespace {}, but a ProviderConfig serves only the objects of its own namespace (use a ClusterProviderConfig to share an account)",
                        elsewhere.join(", ")
                    ));
                }
                if self.cluster.get(&ObjectRef::new(name)).is_some() {
                    msg.push_str("; a ClusterProviderConfig of that name exists: drop kind: ProviderConfig to use it");
                }
                msg
            }
        }
    }

    /// The objects that use config `id` (not counting `released` ones), by `namespace/name`:
    /// the `RedisInstance`s naming it (or, for `default`, naming none), and the `RedisBackup`s
    /// made with it that may still delete their cloud backup (as `RedisBackup/namespace/name`).
    pub fn users_of(&self, id: &ConfigId, released: &HashSet<String>) -> Vec<String> {
        let mut users: Vec<String> = self
            .users
            .state()
            .iter()
            .filter(|o| !o.uid().is_some_and(|u| released.contains(&u)) && self.id_of(o) == *id)
            .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
            .collect();
        users.extend(
            self.backup_holders()
                .filter(|(b, c)| c == id && !b.uid().is_some_and(|u| released.contains(&u)))
                .map(|(b, _)| format!("RedisBackup/{}/{}", b.namespace().unwrap_or_default(), b.name_any())),
        );
        users.sort();
        users
    }

    /// The backups that may still delete a cloud backup, with the config they were made with.
    fn backup_holders(&self) -> impl Iterator<Item = (Arc<RedisBackup>, ConfigId)> {
        self.backups.state().into_iter().filter_map(|b| {
            let r = b.status.as_ref()?.provider_config_ref.as_ref()?;
            let id = r.id(&b.namespace().unwrap_or_default());
            b.finalizers().iter().any(|f| f == FINALIZER).then_some((b, id))
        })
    }

    /// How many objects may still delete a cloud instance with the credentials Secret
    /// `ns/name`: those with the cleanup finalizer whose config reads that Secret, not counting
    /// `released` ones.
    pub fn secret_holders(&self, ns: &str, name: &str, released: &HashSet<String>) -> usize {
        let reads = |id: &ConfigId| {
            self.settings(id)
                .is_some_and(|f| f.settings.secret_namespace == ns && f.settings.secret_name == name)
        };
        let instances = self
            .users
            .state()
            .iter()
            .filter(|o| {
                o.finalizers().iter().any(|f| f == FINALIZER)
                    && !o.uid().is_some_and(|u| released.contains(&u))
                    && reads(&self.id_of(o))
            })
            .count();
        let backups = self
            .backup_holders()
            .filter(|(b, id)| !b.uid().is_some_and(|u| released.contains(&u)) && reads(id))
            .count();
        instances + backups
    }

    /// The configs whose credentials are the Secret `ns/name`.
    pub fn reading_secret(&self, ns: &str, name: &str) -> Vec<ConfigId> {
        let reads = |s: AccountSettings| s.secret_namespace == ns && s.secret_name == name;
        let cluster = self
            .cluster
            .state()
            .into_iter()
            .filter(|c| reads(c.settings()))
            .map(|c| c.id());
        let namespaced = self
            .namespaced
            .state()
            .into_iter()
            .filter(|c| reads(c.settings()))
            .map(|c| c.id());
        cluster.chain(namespaced).collect()
    }

    /// The objects (of this process) that use config `id`, to reconcile when it changes.
    pub fn objects_using(&self, id: &ConfigId, objects: &Store<RedisInstance>) -> Vec<ObjectRef<RedisInstance>> {
        objects
            .state()
            .iter()
            .filter(|o| self.id_of(o) == *id)
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    }
}

/// The kind of a config id, for messages and API calls.
pub fn kind_of(id: &ConfigId) -> Option<ProviderConfigKind> {
    match id {
        ConfigId::Operator => None,
        ConfigId::Cluster(_) => Some(ProviderConfigKind::ClusterProviderConfig),
        ConfigId::Namespaced(..) => Some(ProviderConfigKind::ProviderConfig),
    }
}

/// Adds (`held`) or removes the in-use finalizer of config `id` (on a fresh read, conditional on
/// its `resourceVersion`); nothing if the config does not exist.
pub async fn set_config_held(client: &kube::Client, id: &ConfigId, held: bool) -> Result<(), Error> {
    match id {
        ConfigId::Operator => Ok(()),
        ConfigId::Cluster(name) => {
            super::writes::set_in_use(&kube::Api::<ClusterProviderConfig>::all(client.clone()), name, held).await
        }
        ConfigId::Namespaced(ns, name) => {
            super::writes::set_in_use(&kube::Api::<ProviderConfig>::namespaced(client.clone(), ns), name, held).await
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    fn store<K>(objects: Vec<serde_json::Value>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
    {
        let (store, mut writer) = reflector::store();
        for o in objects {
            writer.apply_watcher_event(&Event::Apply(serde_json::from_value(o).unwrap()));
        }
        store
    }

    fn configs(
        cluster: Vec<serde_json::Value>,
        namespaced: Vec<serde_json::Value>,
        users: Vec<serde_json::Value>,
    ) -> Configs {
        Configs {
            cluster: store(cluster),
            namespaced: store(namespaced),
            users: store(users),
            backups: store(vec![]),
            whole_namespaces: true,
            whole_cluster: true,
        }
    }

    fn cpc(name: &str, secret_ns: &str, secret: &str) -> serde_json::Value {
        json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ClusterProviderConfig",
                "metadata": { "name": name },
                "spec": { "credentials": { "secretRef": { "name": secret, "namespace": secret_ns } } } })
    }

    fn pc(ns: &str, name: &str, secret: &str) -> serde_json::Value {
        json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "ProviderConfig",
                "metadata": { "name": name, "namespace": ns, "finalizers": [IN_USE_FINALIZER] },
                "spec": { "credentials": { "secretRef": { "name": secret } } } })
    }

    fn object(ns: &str, name: &str, config: Option<serde_json::Value>, finalizer: bool) -> serde_json::Value {
        let mut spec = json!({ "regionId": "r", "vdcId": "v", "basePipeId": "p", "paasGoodsId": 1,
                               "passwordSecretRef": { "name": "pw" } });
        if let Some(c) = config {
            spec["providerConfigRef"] = c;
        }
        let finalizers: Vec<&str> = if finalizer { vec![FINALIZER] } else { vec![] };
        json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
                "metadata": { "name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "finalizers": finalizers },
                "spec": spec })
    }

    fn instance(v: serde_json::Value) -> RedisInstance {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_object_uses_what_it_names_else_default_else_the_operator() {
        let no_default = configs(vec![cpc("shared", "ops", "s")], vec![pc("a", "team", "t")], vec![]);
        let with_default = configs(vec![cpc("default", "ops", "d")], vec![], vec![]);
        let bare = instance(object("a", "x", None, false));
        assert_eq!(no_default.resolve(&bare).unwrap(), Resolved::Operator);
        assert_eq!(with_default.id_of(&bare), ConfigId::Cluster("default".into()));
        let team = instance(object(
            "a",
            "x",
            Some(json!({ "kind": "ProviderConfig", "name": "team" })),
            false,
        ));
        match no_default.resolve(&team).unwrap() {
            Resolved::Config {
                id,
                settings,
                held,
                deleting,
            } => {
                assert_eq!(id, ConfigId::Namespaced("a".into(), "team".into()));
                assert_eq!(
                    (
                        settings.secret_namespace.as_str(),
                        settings.secret_name.as_str(),
                        settings.access_key_id_key.as_str()
                    ),
                    ("a", "t", "accessKeyId")
                );
                assert!(held && !deleting);
            }
            other => panic!("{other:?}"),
        }
        let shared = instance(object("b", "y", Some(json!({ "name": "shared" })), false));
        assert!(matches!(
            no_default.resolve(&shared).unwrap(),
            Resolved::Config { held: false, .. }
        ));
    }

    #[test]
    fn a_missing_config_says_what_exists_instead() {
        let c = configs(vec![cpc("shared", "ops", "s")], vec![pc("a", "team", "t")], vec![]);
        let err = |v| c.resolve(&instance(v)).unwrap_err().to_string();
        let other_ns = err(object(
            "b",
            "x",
            Some(json!({ "kind": "ProviderConfig", "name": "team" })),
            false,
        ));
        assert!(
            other_ns.contains("exists in namespace a") && other_ns.contains("own namespace"),
            "{other_ns}"
        );
        let wrong_kind = err(object("a", "x", Some(json!({ "name": "team" })), false));
        assert!(wrong_kind.contains("kind: ProviderConfig"), "{wrong_kind}");
        let cluster_as_local = err(object(
            "a",
            "x",
            Some(json!({ "kind": "ProviderConfig", "name": "shared" })),
            false,
        ));
        assert!(
            cluster_as_local.contains("ClusterProviderConfig of that name exists"),
            "{cluster_as_local}"
        );
        let e = c
            .resolve(&instance(object("a", "x", Some(json!({ "name": "nope" })), false)))
            .unwrap_err();
        assert_eq!(e.reason(), crate::crd::conditions::synced::PROVIDER_CONFIG_NOT_FOUND);
        assert!(e.is_terminal());
    }

    #[test]
    fn users_and_secret_holders_are_counted_across_configs() {
        let team = json!({ "kind": "ProviderConfig", "name": "team" });
        let c = configs(
            vec![cpc("shared", "a", "t")],
            vec![pc("a", "team", "t")],
            vec![
                object("a", "x", Some(team.clone()), true),
                object("a", "y", Some(team.clone()), false),
                object("b", "z", Some(json!({ "name": "shared" })), true),
                object("b", "w", None, true),
            ],
        );
        let id = ConfigId::Namespaced("a".into(), "team".into());
        let none = HashSet::new();
        assert_eq!(c.users_of(&id, &none), vec!["a/x", "a/y"]);
        // Two configs read Secret a/t: both users with the cleanup finalizer hold it.
        assert_eq!(c.secret_holders("a", "t", &none), 2);
        let released = HashSet::from(["uid-a-x".to_owned()]);
        assert_eq!(c.secret_holders("a", "t", &released), 1);
        assert_eq!(c.users_of(&id, &released), vec!["a/y"]);
        let mut ids = c.reading_secret("a", "t");
        ids.sort();
        assert_eq!(ids, vec![ConfigId::Cluster("shared".into()), id.clone()]);
        // A process that does not see the whole cluster must not release a Secret a
        // ClusterProviderConfig reads.
        let partial = Configs {
            whole_cluster: false,
            ..c.clone()
        };
        assert!(c.sees_all_holders_of("a", "t") && !partial.sees_all_holders_of("a", "t"));
        assert!(partial.sees_all_users_of(&id));
    }

    #[test]
    fn a_backup_holds_the_config_it_was_made_with_while_it_may_delete() {
        let backup = |name: &str, finalizer: bool, config: Option<serde_json::Value>| {
            let finalizers: Vec<&str> = if finalizer { vec![FINALIZER] } else { vec![] };
            let mut status = json!({});
            if let Some(c) = config {
                status["providerConfigRef"] = c;
            }
            json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisBackup",
                    "metadata": { "name": name, "namespace": "a", "uid": format!("uid-{name}"), "finalizers": finalizers },
                    "spec": { "instanceRef": { "name": "gone" } }, "status": status })
        };
        let team = json!({ "kind": "ProviderConfig", "name": "team" });
        let c = Configs {
            backups: store(vec![
                backup("deleting", true, Some(team.clone())),
                backup("released", false, Some(team.clone())),
                backup("operator", true, None),
            ]),
            ..configs(vec![], vec![pc("a", "team", "t")], vec![])
        };
        let id = ConfigId::Namespaced("a".into(), "team".into());
        let none = HashSet::new();
        assert_eq!(c.users_of(&id, &none), vec!["RedisBackup/a/deleting"]);
        assert_eq!(c.secret_holders("a", "t", &none), 1);
        assert_eq!(
            c.secret_holders("a", "t", &HashSet::from(["uid-deleting".to_owned()])),
            0
        );
    }
}
