//! Reading and writing Secrets: the password and credentials a `RedisInstance` references, the
//! record of the password an instance was created with, and the connection Secret.
//!
//! Secrets are watched metadata-only (no Secret data of the cluster sits in the operator's
//! memory); the data of a referenced Secret is fetched when its `resourceVersion` changes, and
//! cached until it changes again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tokio::sync::Mutex;

use crate::cds::Credentials;
use crate::crd::{FIELD_MANAGER, RedisInstance};
use crate::error::Error;

/// The data of a Secret, as fetched.
pub type SecretData = BTreeMap<String, ByteString>;

/// Label on every Secret the operator writes.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "cds-redis-operator");
/// Label saying what a Secret the operator writes is for: [`RECORD_ROLE`] or `connection`.
pub const ROLE_LABEL: &str = "cds.capitalonline.net/role";
/// Role of the password records.
pub const RECORD_ROLE: &str = "password-record";
/// Key of the password in the password record.
const RECORD_KEY: &str = "password";

/// Fetched Secret data by (namespace, name), with the `resourceVersion` it was fetched at.
type DataCache = HashMap<(String, String), (String, Arc<SecretData>)>;

/// Reads Secrets through the metadata store and a data cache keyed by `resourceVersion`.
pub struct SecretReader {
    client: kube::Client,
    store: Store<PartialObjectMeta<Secret>>,
    cache: Mutex<DataCache>,
}

impl SecretReader {
    /// A reader over `store` (the metadata reflector of Secrets).
    pub fn new(client: kube::Client, store: Store<PartialObjectMeta<Secret>>) -> Self {
        Self {
            client,
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The metadata of a Secret, if the store has it.
    pub fn meta(&self, namespace: &str, name: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The data of `namespace/name`, or `None` when it does not exist.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<Arc<SecretData>>, Error> {
        let key = (namespace.to_owned(), name.to_owned());
        let store_rv = self.meta(namespace, name).and_then(|m| m.resource_version());
        if let Some(rv) = &store_rv
            && let Some((cached_rv, data)) = self.cache.lock().await.get(&key)
            && cached_rv == rv
        {
            return Ok(Some(data.clone()));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await? {
            None => {
                self.cache.lock().await.remove(&key);
                Ok(None)
            }
            Some(secret) => {
                let rv = secret.resource_version().unwrap_or_default();
                let data = Arc::new(secret.data.unwrap_or_default());
                self.cache.lock().await.insert(key, (rv, data.clone()));
                Ok(Some(data))
            }
        }
    }

    /// The UTF-8, non-empty value of `key` in `namespace/name`.
    pub async fn value(&self, namespace: &str, name: &str, key: &str) -> Result<String, Error> {
        let data = self.get(namespace, name).await?.ok_or_else(|| Error::SecretNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
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

    /// The password `obj` references.
    pub async fn password(&self, obj: &RedisInstance) -> Result<String, Error> {
        let r = &obj.spec.password_secret_ref;
        self.value(&namespace(obj), &r.name, &r.key).await
    }

    /// The credentials `obj` references, if it references any.
    pub async fn credentials(&self, obj: &RedisInstance) -> Result<Option<Credentials>, Error> {
        let Some(r) = &obj.spec.credentials_secret_ref else {
            return Ok(None);
        };
        let ns = namespace(obj);
        let id = self.value(&ns, &r.name, "accessKeyId").await?;
        let secret = self.value(&ns, &r.name, "accessKeySecret").await?;
        Ok(Some(Credentials::new(id, secret)))
    }

    /// The password the instance was created with, from the record Secret.
    pub async fn recorded_password(&self, obj: &RedisInstance) -> Result<Option<String>, Error> {
        let name = record_name(obj);
        match self.value(&namespace(obj), &name, RECORD_KEY).await {
            Ok(p) => Ok(Some(p)),
            Err(Error::SecretNotFound { .. } | Error::SecretKeyMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the record of the password the instance is created with (owned by `obj`).
    pub async fn write_record(&self, obj: &RedisInstance, password: &str) -> Result<(), Error> {
        let name = record_name(obj);
        let data = BTreeMap::from([(RECORD_KEY.to_owned(), password.to_owned())]);
        self.apply(obj, &name, RECORD_ROLE, data).await
    }

    /// Writes the connection Secret `name` with `data` unless it already holds exactly that.
    /// Refuses to take over a Secret another owner manages.
    pub async fn ensure_connection_secret(
        &self,
        obj: &RedisInstance,
        name: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let ns = namespace(obj);
        if let Some(meta) = self.meta(&ns, name)
            && !owned_by(&meta.metadata.owner_references, obj)
        {
            return Err(Error::InvalidSpec(format!(
                "Secret {ns}/{name} exists and is not managed by this RedisInstance; choose another writeConnectionSecretToRef name"
            )));
        }
        if let Some(existing) = self.get(&ns, name).await? {
            let same = existing.len() == data.len()
                && data
                    .iter()
                    .all(|(k, v)| existing.get(k).is_some_and(|b| b.0 == v.as_bytes()));
            if same {
                return Ok(());
            }
        }
        self.apply(obj, name, "connection", data).await
    }

    async fn apply(
        &self,
        obj: &RedisInstance,
        name: &str,
        role: &str,
        data: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let ns = namespace(obj);
        let owner = obj
            .controller_owner_ref(&())
            .ok_or_else(|| Error::InvalidSpec("the object has no UID yet".into()))?;
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": { MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1, ROLE_LABEL: role, "cds.capitalonline.net/instance": obj.name_any() },
                "ownerReferences": [owner],
            },
            "type": "Opaque",
            "stringData": data,
        });
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let written = api
            .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret))
            .await?;
        // Remember what we wrote, so the next read needs no GET.
        let rv = written.resource_version().unwrap_or_default();
        self.cache
            .lock()
            .await
            .insert((ns, name.to_owned()), (rv, Arc::new(written.data.unwrap_or_default())));
        Ok(())
    }
}

/// The name of the password record of `obj`.
pub fn record_name(obj: &RedisInstance) -> String {
    format!("{}-cdsredis-password", obj.name_any())
}

fn namespace(obj: &RedisInstance) -> String {
    obj.namespace().unwrap_or_default()
}

fn owned_by(
    refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    obj: &RedisInstance,
) -> bool {
    let uid = obj.meta().uid.as_deref();
    refs.iter().flatten().any(|r| Some(r.uid.as_str()) == uid)
}

/// The `RedisInstance`s a Secret concerns: those referencing it by name in its namespace, and
/// its owner (connection Secret, password record).
pub fn referencing(
    secret: &PartialObjectMeta<Secret>,
    instances: &Store<RedisInstance>,
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
    if secret.labels().get(ROLE_LABEL).is_some_and(|r| r == RECORD_ROLE) {
        return out;
    }
    for obj in instances.state() {
        if obj.namespace() != ns {
            continue;
        }
        let s = &obj.spec;
        let refs = s.password_secret_ref.name == name
            || s.credentials_secret_ref.as_ref().is_some_and(|r| r.name == name)
            || s.write_connection_secret_to_ref
                .as_ref()
                .is_some_and(|r| r.name == name);
        if refs {
            out.push(ObjectRef::from_obj(obj.as_ref()));
        }
    }
    out
}
