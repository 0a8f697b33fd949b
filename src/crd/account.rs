//! The account API (`cds.capitalonline.net/v1alpha1`, `../shared/spec/accounts.md`): a
//! `ProviderConfig` (namespaced) or `ClusterProviderConfig` (cluster-scoped) names a CDS account
//! (an AccessKey in a Secret), its endpoint and its own cloud call budget; objects pick one with
//! `spec.providerConfigRef`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema, Resource, ResourceExt as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Name of the `ClusterProviderConfig` objects use when they name none.
pub const DEFAULT_CONFIG: &str = "default";

/// Finalizer that keeps a config (and, on its credentials Secret, that Secret) while objects
/// still need it.
pub const IN_USE_FINALIZER: &str = "cds.capitalonline.net/in-use";

/// Default key of the access key id in the credentials Secret.
pub const ACCESS_KEY_ID_KEY: &str = "accessKeyId";
/// Default key of the access key secret in the credentials Secret.
pub const ACCESS_KEY_SECRET_KEY: &str = "accessKeySecret";

/// A CDS account usable by the objects of this namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cds.capitalonline.net",
    version = "v1alpha1",
    kind = "ProviderConfig",
    plural = "providerconfigs",
    shortname = "cdspc",
    category = "cds",
    namespaced,
    status = "ProviderConfigStatus",
    doc = "A CapitalOnline cloud (CDS) account for the objects of this namespace: the Secret with \
           its AccessKey, its endpoint and its own cloud call budget. Objects use it with \
           spec.providerConfigRef {kind: ProviderConfig, name}.",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Secret", "type": "string", "jsonPath": ".spec.credentials.secretRef.name"}"#,
    printcolumn = r#"{"name": "Users", "type": "integer", "jsonPath": ".status.users"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason", "priority": 1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// Where the AccessKey is: a Secret in this namespace.
    pub credentials: LocalCredentials,

    /// CDS API endpoint of this account (scheme and host), e.g.
    /// `https://cdsapi-asia.capitalonline.net`. Default: the operator's `--endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://\S+$"))]
    pub endpoint: Option<String>,

    /// Cloud calls per second this account may make (the API's quota is per account).
    /// Default: the operator's `--cds-qps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("qps must be positive"))]
    pub qps: Option<f64>,

    /// Calls this account may make at once above `qps`. Default: the operator's `--cds-burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
}

/// A CDS account usable by the objects of every namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cds.capitalonline.net",
    version = "v1alpha1",
    kind = "ClusterProviderConfig",
    plural = "clusterproviderconfigs",
    shortname = "cdscpc",
    category = "cds",
    status = "ProviderConfigStatus",
    doc = "A CapitalOnline cloud (CDS) account for the objects of every namespace: the Secret with \
           its AccessKey, its endpoint and its own cloud call budget. Objects use it with \
           spec.providerConfigRef {name} (kind ClusterProviderConfig is the default); the one \
           named `default` serves the objects that name no config.",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Secret", "type": "string", "jsonPath": ".spec.credentials.secretRef.name"}"#,
    printcolumn = r#"{"name": "Users", "type": "integer", "jsonPath": ".status.users"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason", "priority": 1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProviderConfigSpec {
    /// Where the AccessKey is: a Secret in a namespace the operator can read.
    pub credentials: ClusterCredentials,

    /// CDS API endpoint of this account (scheme and host), e.g.
    /// `https://cdsapi-asia.capitalonline.net`. Default: the operator's `--endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://\S+$"))]
    pub endpoint: Option<String>,

    /// Cloud calls per second this account may make (the API's quota is per account).
    /// Default: the operator's `--cds-qps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("qps must be positive"))]
    pub qps: Option<f64>,

    /// Calls this account may make at once above `qps`. Default: the operator's `--cds-burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
}

/// The credentials of a `ProviderConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalCredentials {
    /// The Secret (in the config's namespace) holding the AccessKey.
    pub secret_ref: LocalCredentialsSecretRef,
}

/// The credentials of a `ClusterProviderConfig`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCredentials {
    /// The Secret holding the AccessKey.
    pub secret_ref: ClusterCredentialsSecretRef,
}

/// A Secret in the config's namespace with an AccessKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalCredentialsSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the access key id. Default `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub access_key_id_key: Option<String>,
    /// Key of the access key secret. Default `accessKeySecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub access_key_secret_key: Option<String>,
}

/// A Secret with an AccessKey, in a namespace the operator can read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCredentialsSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Key of the access key id. Default `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub access_key_id_key: Option<String>,
    /// Key of the access key secret. Default `accessKeySecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub access_key_secret_key: Option<String>,
}

/// What the operator found of a config; written only by the operator. Until its first write
/// the apiserver serves `{observedGeneration: 0}`, which kstatus reads as `InProgress`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = { "observedGeneration": 0 }))]
pub struct ProviderConfigStatus {
    /// `Ready`: the credentials were read and a signed call (`DescribeRegins`) succeeded since
    /// they last changed. `Stalled` (present only while True): the config cannot work until a
    /// person changes it or its Secret. `Reconciling` (present only while True): being checked,
    /// or the cloud could not be reached and the check is retried. `InUse` (present only while
    /// True): the config is being deleted and waits for the objects that use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// How many objects use this config (name it, or, for the `ClusterProviderConfig` named
    /// `default`, name none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Which config an object uses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigRef {
    /// `ClusterProviderConfig` (default) or `ProviderConfig` (one in the object's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderConfigKind>,
    /// Name of the config.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The kinds of config.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
// Left out of the schema: kube puts an optional enum's type description over its field's.
#[schemars(description = "")]
pub enum ProviderConfigKind {
    /// A `ClusterProviderConfig`.
    #[default]
    ClusterProviderConfig,
    /// A `ProviderConfig` of the object's namespace.
    ProviderConfig,
}

/// A config, by identity: what an object's reference resolves to, and the key of an account's
/// budget.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigId {
    /// The operator's own credentials (flags, environment or `--credentials-dir`).
    Operator,
    /// A `ClusterProviderConfig`, by name.
    Cluster(String),
    /// A `ProviderConfig`, by namespace and name.
    Namespaced(String, String),
}

impl std::fmt::Display for ConfigId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator => f.write_str("the operator's own credentials"),
            Self::Cluster(name) => write!(f, "ClusterProviderConfig {name}"),
            Self::Namespaced(ns, name) => write!(f, "ProviderConfig {ns}/{name}"),
        }
    }
}

impl ConfigId {
    /// The reference an object of the config's namespace would give (`None`: the operator's).
    pub fn to_ref(&self) -> Option<ProviderConfigRef> {
        match self {
            Self::Operator => None,
            Self::Cluster(name) => Some(ProviderConfigRef {
                kind: Some(ProviderConfigKind::ClusterProviderConfig),
                name: name.clone(),
            }),
            Self::Namespaced(_, name) => Some(ProviderConfigRef {
                kind: Some(ProviderConfigKind::ProviderConfig),
                name: name.clone(),
            }),
        }
    }
}

impl ProviderConfigRef {
    /// The config this reference names, from an object in `namespace`.
    pub fn id(&self, namespace: &str) -> ConfigId {
        match self.kind.unwrap_or_default() {
            ProviderConfigKind::ClusterProviderConfig => ConfigId::Cluster(self.name.clone()),
            ProviderConfigKind::ProviderConfig => ConfigId::Namespaced(namespace.to_owned(), self.name.clone()),
        }
    }
}

/// Where a config's AccessKey is, and what it asks for: the same for both kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountSettings {
    /// Namespace of the credentials Secret.
    pub secret_namespace: String,
    /// Name of the credentials Secret.
    pub secret_name: String,
    /// Key of the access key id.
    pub access_key_id_key: String,
    /// Key of the access key secret.
    pub access_key_secret_key: String,
    /// Endpoint, if not the operator's.
    pub endpoint: Option<String>,
    /// Calls per second, if not the operator's.
    pub qps: Option<f64>,
    /// Burst, if not the operator's.
    pub burst: Option<u32>,
}

/// What both config kinds share, so one controller serves them.
pub trait AccountConfig:
    Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Serialize + Send + Sync + 'static
{
    /// Where the AccessKey is and what the account asks for.
    fn settings(&self) -> AccountSettings;
    /// The status, if any.
    fn config_status(&self) -> Option<&ProviderConfigStatus>;
    /// Its identity.
    fn id(&self) -> ConfigId;
    /// The API of this object (its namespace's, or the cluster's).
    fn api(&self, client: kube::Client) -> kube::Api<Self>;
}

fn key_or(key: &Option<String>, default: &str) -> String {
    key.clone().unwrap_or_else(|| default.to_owned())
}

impl AccountConfig for ProviderConfig {
    fn settings(&self) -> AccountSettings {
        let r = &self.spec.credentials.secret_ref;
        AccountSettings {
            secret_namespace: self.namespace().unwrap_or_default(),
            secret_name: r.name.clone(),
            access_key_id_key: key_or(&r.access_key_id_key, ACCESS_KEY_ID_KEY),
            access_key_secret_key: key_or(&r.access_key_secret_key, ACCESS_KEY_SECRET_KEY),
            endpoint: self.spec.endpoint.clone(),
            qps: self.spec.qps,
            burst: self.spec.burst,
        }
    }
    fn config_status(&self) -> Option<&ProviderConfigStatus> {
        self.status.as_ref()
    }
    fn id(&self) -> ConfigId {
        ConfigId::Namespaced(self.namespace().unwrap_or_default(), self.name_any())
    }
    fn api(&self, client: kube::Client) -> kube::Api<Self> {
        kube::Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
}

impl AccountConfig for ClusterProviderConfig {
    fn settings(&self) -> AccountSettings {
        let r = &self.spec.credentials.secret_ref;
        AccountSettings {
            secret_namespace: r.namespace.clone(),
            secret_name: r.name.clone(),
            access_key_id_key: key_or(&r.access_key_id_key, ACCESS_KEY_ID_KEY),
            access_key_secret_key: key_or(&r.access_key_secret_key, ACCESS_KEY_SECRET_KEY),
            endpoint: self.spec.endpoint.clone(),
            qps: self.spec.qps,
            burst: self.spec.burst,
        }
    }
    fn config_status(&self) -> Option<&ProviderConfigStatus> {
        self.status.as_ref()
    }
    fn id(&self) -> ConfigId {
        ConfigId::Cluster(self.name_any())
    }
    fn api(&self, client: kube::Client) -> kube::Api<Self> {
        kube::Api::all(client)
    }
}
