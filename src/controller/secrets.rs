//! Reading and writing Secrets: the password and credentials a `RedisInstance` references, the
//! record of the password an instance was created with, the connection Secret, and the in-use
//! finalizer that keeps an account Secret until no deletion needs it.
//!
//! Secrets are watched metadata-only (no Secret data of the cluster sits in the operator's
//! memory); the data of a referenced Secret is fetched when its `resourceVersion` changes, and
//! cached until it changes again.
//!
//! Only our own Secrets are written (contract, Ownership rule 2): a Secret is created, or
//! updated when a fresh read shows this object's UID as its controller, never otherwise; every
//! update is conditional on the `resourceVersion` of that read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use crate::cds::Credentials;
use crate::crd::account::AccountSettings;
use crate::crd::{FIELD_MANAGER, RedisInstance};
use crate::error::Error;

/// The data of a Secret, as fetched: its keys and values, sorted by key. A slice, not a
/// `BTreeMap`: the Secrets the operator reads hold one to a few keys, and a `BTreeMap` allocates
/// an 11-slot node (about 540 bytes) for its first key; the cache holds one password record per
/// object (530 KiB of such nodes at 1,000 objects).
#[derive(Debug, Default)]
pub struct SecretData(Box<[(String, ByteString)]>);

impl SecretData {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&ByteString> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&BTreeMap<String, ByteString>> for SecretData {
    fn from(data: &BTreeMap<String, ByteString>) -> Self {
        // A BTreeMap iterates in key order: the slice is sorted.
        Self(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// Label on every Secret the operator writes.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "cds-redis-operator");
/// Label saying what a Secret the operator writes is for: [`RECORD_ROLE`] or [`CONNECTION_ROLE`].
pub const ROLE_LABEL: &str = "cds.capitalonline.net/role";
/// Role of the password records.
pub const RECORD_ROLE: &str = "password-record";
/// Role of the connection Secrets.
pub const CONNECTION_ROLE: &str = "connection";
/// Role of a backup's download Secrets.
pub const DOWNLOAD_ROLE: &str = "backup-download";
pub use crate::crd::account::IN_USE_FINALIZER;
/// Key of the password in the password record.
const RECORD_KEY: &str = "password";

/// A Secret's data with the UID of its controller, as fetched.
#[derive(Debug)]
pub struct Fetched {
    /// The data.
    pub data: SecretData,
    /// The UID of the controller ownerReference, if any.
    pub controller: Option<String>,
    resource_version: String,
}

/// Fetched Secrets by (namespace, name).
type DataCache = HashMap<(String, String), Arc<Fetched>>;

/// Reads Secrets through the metadata store and a data cache keyed by `resourceVersion`.
pub struct SecretReader {
    client: kube::Client,
    store: Store<PartialObjectMeta<Secret>>,
    cache: Mutex<DataCache>,
    /// UIDs of objects whose cleanup finalizer was removed, until they leave the cache; the
    /// lock also serialises the releases of in-use finalizers.
    released: Mutex<HashSet<String>>,
}

impl SecretReader {
    /// A reader over `store` (the metadata reflector of Secrets).
    pub fn new(client: kube::Client, store: Store<PartialObjectMeta<Secret>>) -> Self {
        Self {
            client,
            store,
            cache: Mutex::new(HashMap::new()),
            released: Mutex::new(HashSet::new()),
        }
    }

    /// The metadata of a Secret, if the store has it.
    pub fn meta(&self, namespace: &str, name: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// `namespace/name` as the cache knows it at the store's version, else as fetched now;
    /// `None` when it does not exist.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<Arc<Fetched>>, Error> {
        let store_rv = self.meta(namespace, name).and_then(|m| m.resource_version());
        if let Some(rv) = &store_rv
            && let Some(cached) = self.cache.lock().await.get(&(namespace.to_owned(), name.to_owned()))
            && &cached.resource_version == rv
        {
            return Ok(Some(cached.clone()));
        }
        self.fetch(namespace, name).await
    }

    /// `namespace/name` read from the apiserver now (never from a cache).
    pub async fn fetch(&self, namespace: &str, name: &str) -> Result<Option<Arc<Fetched>>, Error> {
        let key = (namespace.to_owned(), name.to_owned());
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await? {
            None => {
                self.cache.lock().await.remove(&key);
                Ok(None)
            }
            Some(secret) => {
                let fetched = self.remember(key, &secret).await;
                Ok(Some(fetched))
            }
        }
    }

    async fn remember(&self, key: (String, String), secret: &Secret) -> Arc<Fetched> {
        let fetched = Arc::new(Fetched {
            controller: controller_uid(secret.owner_references()),
            resource_version: secret.resource_version().unwrap_or_default(),
            data: secret.data.as_ref().map(SecretData::from).unwrap_or_default(),
        });
        self.cache.lock().await.insert(key, fetched.clone());
        fetched
    }

    /// The UTF-8, non-empty value of `key` in `namespace/name`.
    pub async fn value(&self, namespace: &str, name: &str, key: &str) -> Result<String, Error> {
        let secret = self.get(namespace, name).await?.ok_or_else(|| Error::SecretNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
        value_of(&secret.data, namespace, name, key)
    }

    /// The password `obj` references.
    pub async fn password(&self, obj: &RedisInstance) -> Result<String, Error> {
        let r = &obj.spec.password_secret_ref;
        self.value(&namespace(obj), &r.name, &r.key).await
    }

    /// The `resourceVersion`s of the Secrets `obj` reads (password, credentials), as the
    /// metadata store knows them: what a terminal failure depended on.
    pub fn input_versions(&self, obj: &RedisInstance) -> Vec<String> {
        let ns = namespace(obj);
        [obj.spec.password_secret_ref.name.as_str()]
            .into_iter()
            .map(|name| {
                self.meta(&ns, name)
                    .and_then(|m| m.resource_version())
                    .unwrap_or_else(|| "absent".to_owned())
            })
            .collect()
    }

    /// The password the instance was created with, from the record Secret this object owns.
    pub async fn recorded_password(&self, obj: &RedisInstance) -> Result<Option<String>, Error> {
        let (ns, name) = (namespace(obj), record_name(obj));
        match self.get(&ns, &name).await? {
            Some(record) if record.controller.as_deref() == obj.uid().as_deref() => {
                value_of(&record.data, &ns, &name, RECORD_KEY).map(Some)
            }
            Some(_) => Err(Error::SecretConflict { namespace: ns, name }),
            None => Ok(None),
        }
    }

    /// Writes the record of the password the instance is created with (owned by `obj`).
    pub async fn write_record(&self, obj: &RedisInstance, password: &str) -> Result<(), Error> {
        let data = BTreeMap::from([(RECORD_KEY.to_owned(), password.to_owned())]);
        self.write_owned(obj, &record_name(obj), RECORD_ROLE, data).await
    }

    /// Whether the Secret `name` in `obj`'s namespace exists, is controlled by `obj`, and holds
    /// every one of `keys` (from the metadata cache and the data cache).
    pub async fn has_own<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        name: &str,
        keys: &[&str],
    ) -> Result<bool, Error> {
        let ns = obj.namespace().unwrap_or_default();
        Ok(match self.get(&ns, name).await? {
            Some(s) => s.controller.as_deref() == obj.uid().as_deref() && keys.iter().all(|k| s.data.get(k).is_some()),
            None => false,
        })
    }

    /// Writes a backup's download Secret `name` (never over a Secret that is not its own).
    pub async fn write_download_secret<K: Resource<DynamicType = ()>>(
        &self,
        backup: &K,
        name: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.write_owned(backup, name, DOWNLOAD_ROLE, data).await
    }

    /// Writes the connection Secret `name` with `data` unless it already holds exactly that.
    /// A Secret of that name that is not this object's own is never touched: `SecretConflict`.
    pub async fn ensure_connection_secret(
        &self,
        obj: &RedisInstance,
        name: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let ns = namespace(obj);
        if let Some(existing) = self.get(&ns, name).await?
            && existing.controller.as_deref() == obj.uid().as_deref()
            && same_data(&existing.data, &data)
        {
            return Ok(());
        }
        self.write_owned(obj, name, CONNECTION_ROLE, data).await
    }

    /// Creates `name`, or updates it if a fresh read shows it is controlled by `obj`; a Secret
    /// of that name owned by anyone else is a `SecretConflict`.
    async fn write_owned<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        name: &str,
        role: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let ns = obj.namespace().unwrap_or_default();
        // Which object a Secret is for: `cds.capitalonline.net/instance` or `.../backup`.
        let owner_label = match K::kind(&()).as_ref() {
            "RedisInstance" => "cds.capitalonline.net/instance",
            _ => "cds.capitalonline.net/backup",
        };
        let owner = obj
            .controller_owner_ref(&())
            .ok_or_else(|| Error::InvalidSpec("the object has no UID yet".into()))?;
        let mut secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": { MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1, ROLE_LABEL: role, owner_label: obj.name_any() },
                "ownerReferences": [owner],
            },
            "type": "Opaque",
            "stringData": data,
        });
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let written = match self.fetch(&ns, name).await? {
            None => {
                // A create fails if someone made the Secret in the meantime: never a takeover.
                let new: Secret = serde_json::from_value(secret).expect("a valid Secret");
                api.create(&PostParams::default(), &new).await?
            }
            Some(existing) if existing.controller.as_deref() == obj.uid().as_deref() => {
                // Conditional on the version we checked: a concurrent change of owner → 409.
                secret["metadata"]["resourceVersion"] = json!(existing.resource_version);
                api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret))
                    .await?
            }
            Some(_) => {
                return Err(Error::SecretConflict {
                    namespace: ns,
                    name: name.to_owned(),
                });
            }
        };
        self.remember((ns, name.to_owned()), &written).await;
        Ok(())
    }

    /// The objects released (cleanup finalizer removed) whose holds may not show yet in the
    /// caches: two objects sharing a Secret and released milliseconds apart each still see the
    /// other's finalizer, and without this memory neither would take the hold off. Releases are
    /// serialised by this lock.
    pub async fn released(&self) -> tokio::sync::MutexGuard<'_, HashSet<String>> {
        self.released.lock().await
    }

    /// Whether the Secret `ns/name` exists, is not being deleted (it can take no new finalizer
    /// then) and lacks our in-use finalizer.
    pub fn unheld(&self, ns: &str, name: &str) -> bool {
        self.meta(ns, name).is_some_and(|m| {
            m.metadata.deletion_timestamp.is_none() && !m.finalizers().iter().any(|f| f == IN_USE_FINALIZER)
        })
    }

    /// The Secrets (namespace, name) carrying our in-use finalizer.
    pub fn held(&self) -> Vec<(String, String)> {
        self.store
            .state()
            .iter()
            .filter(|m| m.finalizers().iter().any(|f| f == IN_USE_FINALIZER))
            .map(|m| (m.namespace().unwrap_or_default(), m.name_any()))
            .collect()
    }

    /// The credentials in the Secret a config names.
    pub async fn config_credentials(&self, s: &AccountSettings) -> Result<Credentials, Error> {
        let id = self
            .value(&s.secret_namespace, &s.secret_name, &s.access_key_id_key)
            .await?;
        let secret = self
            .value(&s.secret_namespace, &s.secret_name, &s.access_key_secret_key)
            .await?;
        Ok(Credentials::new(id, secret))
    }

    /// Adds (`held`) or removes our in-use finalizer on the Secret `ns/name` (a fresh metadata
    /// read, then a conditional merge patch).
    pub async fn set_held(&self, ns: &str, name: &str, held: bool) -> Result<(), Error> {
        super::writes::set_in_use(&Api::<Secret>::namespaced(self.client.clone(), ns), name, held).await
    }
}

fn value_of(data: &SecretData, namespace: &str, name: &str, key: &str) -> Result<String, Error> {
    let missing = |problem: String| Error::SecretKeyMissing {
        namespace: namespace.into(),
        name: name.into(),
        problem,
    };
    let bytes = data
        .get(key)
        .ok_or_else(|| missing(format!("key {key:?} is missing")))?;
    let value = String::from_utf8(bytes.0.clone()).map_err(|_| missing(format!("key {key:?} is not UTF-8")))?;
    if value.is_empty() {
        return Err(missing(format!("key {key:?} is empty")));
    }
    Ok(value)
}

fn same_data(existing: &SecretData, data: &BTreeMap<String, String>) -> bool {
    existing.len() == data.len()
        && data
            .iter()
            .all(|(k, v)| existing.get(k).is_some_and(|b| b.0 == v.as_bytes()))
}

/// The name of the password record of `obj`. It carries the object's UID, so neither another
/// object nor a user's Secret named after the object can collide with it by accident; one made
/// on purpose is never written into (`SecretConflict`).
pub fn record_name(obj: &RedisInstance) -> String {
    format!("{RECORD_PREFIX}{}", obj.uid().unwrap_or_default())
}

/// The name of a password record less its owner's UID.
const RECORD_PREFIX: &str = "cdsredis-password-";

/// Whether `secret` is the password record of the `RedisInstance` that owns it: named after
/// that owner's UID ([`record_name`]). Told by name, not by the role label, because the store
/// keeps no labels.
fn is_record(secret: &PartialObjectMeta<Secret>) -> bool {
    let name = secret.name_any();
    let Some(uid) = name.strip_prefix(RECORD_PREFIX) else {
        return false;
    };
    secret
        .owner_references()
        .iter()
        .any(|o| o.kind == "RedisInstance" && o.uid == uid)
}

fn namespace(obj: &RedisInstance) -> String {
    obj.namespace().unwrap_or_default()
}

fn controller_uid(refs: &[OwnerReference]) -> Option<String> {
    refs.iter().find(|r| r.controller == Some(true)).map(|r| r.uid.clone())
}

/// The `RedisInstance`s a Secret concerns: those referencing it by name in its namespace, and
/// its owner (connection Secret, password record).
pub fn referencing(
    secret: &PartialObjectMeta<Secret>,
    instances: &Store<RedisInstance>,
    configs: &super::configs::Configs,
) -> Vec<ObjectRef<RedisInstance>> {
    let ns = secret.namespace();
    let name = secret.name_any();
    let mut out: Vec<ObjectRef<RedisInstance>> = secret
        .owner_references()
        .iter()
        .filter(|o| o.kind == "RedisInstance" && o.api_version.starts_with(crate::crd::GROUP))
        .map(|o| ObjectRef::new(&o.name).within(ns.as_deref().unwrap_or_default()))
        .collect();
    // A password record concerns its owner only: no scan of every object for each of the
    // thousands of records written during a large rollout.
    if is_record(secret) {
        return out;
    }
    // The objects whose config reads it (a config's Secret may be in another namespace).
    for id in configs.reading_secret(ns.as_deref().unwrap_or_default(), &name) {
        out.extend(configs.objects_using(&id, instances));
    }
    for obj in instances.state() {
        if obj.namespace() != ns {
            continue;
        }
        let s = &obj.spec;
        let refs = s.password_secret_ref.name == name
            || s.write_connection_secret_to_ref
                .as_ref()
                .is_some_and(|r| r.name == name);
        if refs {
            out.push(ObjectRef::from_obj(obj.as_ref()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_data_is_looked_up_by_key() {
        let map = BTreeMap::from([
            ("password".to_owned(), ByteString(b"p".to_vec())),
            ("accessKeyId".to_owned(), ByteString(b"id".to_vec())),
            ("accessKeySecret".to_owned(), ByteString(b"s".to_vec())),
        ]);
        let data = SecretData::from(&map);
        assert_eq!(data.len(), 3);
        for (k, v) in &map {
            assert_eq!(data.get(k), Some(v), "{k}");
        }
        assert_eq!(data.get("pass"), None);
        assert!(SecretData::default().get("password").is_none());
        assert!(same_data(
            &data,
            &BTreeMap::from([
                ("password".to_owned(), "p".to_owned()),
                ("accessKeyId".to_owned(), "id".to_owned()),
                ("accessKeySecret".to_owned(), "s".to_owned()),
            ])
        ));
        assert!(!same_data(
            &data,
            &BTreeMap::from([("password".to_owned(), "p".to_owned())])
        ));
    }

    fn secret_meta(name: &str, owner: Option<(&str, &str)>) -> PartialObjectMeta<Secret> {
        let owners: Vec<serde_json::Value> = owner
            .map(|(kind, uid)| json!({ "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": kind, "name": "r", "uid": uid, "controller": true }))
            .into_iter()
            .collect();
        serde_json::from_value(json!({ "metadata": { "name": name, "namespace": "ns", "ownerReferences": owners } }))
            .unwrap()
    }

    #[test]
    fn a_password_record_is_told_by_its_name_and_owner() {
        assert!(is_record(&secret_meta(
            "cdsredis-password-u1",
            Some(("RedisInstance", "u1"))
        )));
        for (name, owner) in [
            ("cdsredis-password-u1", Some(("RedisInstance", "u2"))),
            ("cdsredis-password-u1", Some(("Deployment", "u1"))),
            ("cdsredis-password-u1", None),
            ("pw", Some(("RedisInstance", "u1"))),
        ] {
            assert!(!is_record(&secret_meta(name, owner)), "{name} {owner:?}");
        }
    }
}
