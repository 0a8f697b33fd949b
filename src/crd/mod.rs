//! The `RedisInstance` API (`cds.capitalonline.net/v1alpha1`): what users write and read back.
//!
//! The Rust types are the source of truth for the CRD: `cds-redis-operator crd` prints
//! [`RedisInstance::crd`], and `crds/` holds that output (a test fails when it is stale).
//! Every field's doc comment becomes its OpenAPI description, which `kubectl explain` prints.
//! Admission-time rules (immutability, exactly-one-of, port rules) are CEL rules in the schema,
//! so the API server enforces them before the operator ever sees a bad object.

pub mod account;
pub mod backup;
pub mod conditions;
mod naming;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cds::catalogue;

pub use naming::default_instance_name;

/// API group of every CDS resource.
pub const GROUP: &str = "cds.capitalonline.net";
/// Finalizer that keeps a `RedisInstance` until its cloud instance is cleaned up.
pub const FINALIZER: &str = "cds.capitalonline.net/cleanup";
/// Field manager used for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "cds-redis-operator";
/// The label that puts an object (`RedisInstance`, `RedisBackup`, `RedisBackupSchedule`) in an
/// operator shard: a process started with `--shard S` owns the objects labelled `S`; the default
/// process owns the others (see `controller::shard`).
pub const SHARD_LABEL: &str = "cds.capitalonline.net/shard";

/// Expands to a CEL rule that makes an optional spec field immutable: it may be neither added,
/// removed nor changed after creation.
macro_rules! immutable_optional {
    ($field:literal) => {
        concat!(
            "has(self.",
            $field,
            ") == has(oldSelf.",
            $field,
            ") && (!has(self.",
            $field,
            ") || self.",
            $field,
            " == oldSelf.",
            $field,
            ")"
        )
    };
}

/// A Redis instance on CapitalOnline cloud (CDS), created, observed and deleted by the operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cds.capitalonline.net",
    version = "v1alpha1",
    kind = "RedisInstance",
    plural = "redisinstances",
    shortname = "cdsredis",
    category = "cds",
    namespaced,
    status = "RedisInstanceStatus",
    doc = "A Redis instance on CapitalOnline cloud (CDS). The operator creates it exactly once, \
           follows it until it runs, reports its endpoint and conditions in status, and deletes it \
           (or keeps it, see deletionPolicy) when this object is deleted.",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint.host"}"#,
    printcolumn = r#"{"name": "UUID", "type": "string", "jsonPath": ".status.instanceUuid"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Port", "type": "integer", "jsonPath": ".status.endpoint.port", "priority": 1}"#,
    printcolumn = r#"{"name": "TaskId", "type": "string", "jsonPath": ".status.taskId", "priority": 1}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Synced\")].reason", "priority": 1}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.paasGoodsId) != has(self.flavor)")
        .message("exactly one of paasGoodsId or flavor must be set"),
    validation = Rule::new(immutable_optional!("instanceName")).message("instanceName is immutable"),
    validation = Rule::new(immutable_optional!("paasGoodsId")).message("paasGoodsId is immutable"),
    validation = Rule::new(immutable_optional!("flavor")).message("flavor is immutable"),
    validation = Rule::new(immutable_optional!("servicePort")).message("servicePort is immutable"),
    validation = Rule::new(immutable_optional!("testGroupId")).message("testGroupId is immutable"),
    validation = Rule::new(immutable_optional!("subjectId")).message("subjectId is immutable"),
    validation = Rule::new(
        "!has(oldSelf.instanceUuid) || (has(self.instanceUuid) && self.instanceUuid == oldSelf.instanceUuid)"
    )
    .message("instanceUuid is immutable once set")
)]
pub struct RedisInstanceSpec {
    /// Region (site/zone) of the instance, e.g. `CN_Beijing_A`; `cds-redis-operator cds regions`
    /// lists the regions where Redis is on sale. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("regionId is immutable"))]
    #[schemars(length(min = 1))]
    pub region_id: String,

    /// Virtual data centre (VDC) the instance lives in (`VdcId` of `DescribeVdc`;
    /// `cds-redis-operator cds vdcs` lists them). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("vdcId is immutable"))]
    #[schemars(length(min = 1))]
    pub vdc_id: String,

    /// The VDC's private network the instance takes its IP from (`PrivateNetwork[].PrivateId`
    /// of `DescribeVdc`; `cds-redis-operator cds vdcs` lists them with their free IPs). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("basePipeId is immutable"))]
    #[schemars(length(min = 1))]
    pub base_pipe_id: String,

    /// Name of the cloud instance. Defaults to a deterministic name derived from the namespace,
    /// the object name and the first 8 characters of its UID (see `status.instanceName`), which
    /// the operator also uses to find an instance whose create response was lost. Immutable;
    /// 1-64 characters without whitespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    pub instance_name: Option<String>,

    /// Product specification id of the region's catalogue (`PaasGoodsId` of
    /// `DescribeAvailableDBConfig`); fixes version, architecture and memory. Exactly one of
    /// `paasGoodsId` and `flavor` must be set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub paas_goods_id: Option<i64>,

    /// Version, architecture and memory size, resolved to a `paasGoodsId` through the region's
    /// catalogue (`cds-redis-operator cds flavors --region R` lists them). Exactly one of
    /// `paasGoodsId` and `flavor` must be set. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<Flavor>,

    /// TCP port Redis listens on. 1024-65535 except 9100, 9121, 9122 and 16379; the cloud uses
    /// 9736 when unset. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "self >= 1024 && self <= 65535 && !(self in [9100, 9121, 9122, 16379])"
    ).message("servicePort must be within 1024-65535 and not one of 9100, 9121, 9122, 16379"))]
    pub service_port: Option<i32>,

    /// Secret (in this namespace) holding the Redis password the instance is created with.
    /// Read once, at create time; the cloud cannot change a password afterwards, so a later
    /// change of the Secret is reported as `PasswordOutOfSync`.
    pub password_secret_ref: SecretKeyRef,

    /// The CDS account of the instance: a `ClusterProviderConfig` (`{name}`), or a
    /// `ProviderConfig` of this namespace (`{kind: ProviderConfig, name}`). Without it, the
    /// `ClusterProviderConfig` named `default` if it exists, else the operator's own credentials.
    /// Rotate keys by changing the config's Secret; pointing an existing instance at another
    /// account makes it invisible to the operator (reported as `ExternallyDeleted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_config_ref: Option<account::ProviderConfigRef>,

    /// Secret (in this namespace) the operator writes for applications: `host`, `port`,
    /// `password`, `uri` (`redis://:PASSWORD@HOST:PORT`) and `instanceUuid`. Owned by this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<SecretRef>,

    /// What deleting this object does to the cloud instance: `Delete` it or `Retain` it.
    /// Defaults to the operator's `--default-deletion-policy` (itself `Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Adopt this existing cloud instance instead of creating one (`cds-redis-operator cds
    /// import` writes such objects for existing instances). Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub instance_uuid: Option<String>,

    /// `Full` (default): create, observe and delete the instance. `ObserveOnly`: never create
    /// or delete, only report the instance named by `instanceUuid` or `instanceName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// While true, deleting this object is refused at admission (by the `ValidatingAdmissionPolicy`
    /// the chart and `deploy/` install), so a GitOps prune, a namespace deletion or a stray
    /// `kubectl delete` cannot remove it or its cloud instance. To delete it, set this to false
    /// first, then delete. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,

    /// Billing: use test-group billing (`TestGroupId`), passed through on create. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_group_id: Option<i64>,

    /// Billing subject (`SubjectId`, a test-account id of `DescribeAccountSubject`), passed
    /// through on create. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<i64>,
}

/// Version, architecture and memory of an instance, resolved against the region's catalogue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flavor {
    /// Redis version as the catalogue spells it, e.g. `5.0`, `4.0`, `2.8`.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+$"))]
    pub version: String,
    /// Architecture: `MasterReplica`, `Cluster` or `EconomicalMasterReplica`.
    pub architecture: Architecture,
    /// Memory in GB, e.g. `4`.
    #[schemars(range(min = 1))]
    pub ram_gb: i64,
}

/// The cloud's Redis architectures (`ArchitectureType` 1, 2, 3 in the catalogue).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Architecture {
    /// Master with a replica (主从版, type 1).
    MasterReplica,
    /// Sharded cluster (集群版, type 2).
    Cluster,
    /// Economical master-replica (经济型主从版, type 3).
    EconomicalMasterReplica,
}

impl From<Architecture> for catalogue::Architecture {
    fn from(a: Architecture) -> Self {
        match a {
            Architecture::MasterReplica => Self::MasterReplica,
            Architecture::Cluster => Self::Cluster,
            Architecture::EconomicalMasterReplica => Self::EconomicalMasterReplica,
        }
    }
}

impl From<&Flavor> for catalogue::Flavor {
    fn from(f: &Flavor) -> Self {
        Self {
            version: f.version.clone(),
            architecture: f.architecture.into(),
            ram_gb: f.ram_gb,
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        catalogue::Architecture::from(*self).fmt(f)
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}GB", self.version, self.architecture, self.ram_gb)
    }
}

/// A key of a Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret's data; defaults to `password`.
    #[serde(default = "default_password_key")]
    pub key: String,
}

impl Default for SecretKeyRef {
    fn default() -> Self {
        Self {
            name: String::new(),
            key: default_password_key(),
        }
    }
}

fn default_password_key() -> String {
    "password".to_owned()
}

/// A Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// What deleting the object does to its cloud instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
// Left out of the schema: kube puts an optional enum's type description over its field's, and
// the fields say more (the default, the status meaning).
#[schemars(description = "")]
pub enum DeletionPolicy {
    /// Delete the cloud instance, then release the object.
    #[default]
    Delete,
    /// Keep the cloud instance; only the object goes.
    Retain,
}

/// How much the operator may do to the cloud instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
// Left out of the schema: kube puts an optional enum's type description over its field's, and
// the fields say more (the default, the status meaning).
#[schemars(description = "")]
pub enum ManagementPolicy {
    /// Create, observe and delete.
    #[default]
    Full,
    /// Only observe and report; never create or delete.
    ObserveOnly,
}

/// What the operator observed and did; written only by the operator.
// The schema default is what the apiserver serves before the operator's first status write
// (it drops a status sent on create, but applies defaults on every read): observed generation 0
// makes kstatus say InProgress from the moment the object exists, instead of Current.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = { "observedGeneration": 0, "phase": "Pending" }))]
pub struct RedisInstanceStatus {
    /// UUID of the cloud instance (`InstanceUuid`), once created or adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_uuid: Option<String>,
    /// `TaskId` the cloud returned for the create (for support; tasks cannot be queried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Name of the cloud instance actually used (the spec's or the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// `PaasGoodsId` used for the create (the spec's, or resolved from `flavor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paas_goods_id: Option<i64>,
    /// Lifecycle phase: `Pending`, `Creating`, `Running`, `Deleting`, `Failed` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The cloud's `Status` of the instance, verbatim (e.g. `CREATING`, `RUNNING`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_status: Option<String>,
    /// The cloud's `StatusStr` of the instance, verbatim (e.g. 运行中).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_status_text: Option<String>,
    /// Where clients connect: the instance's private IP and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Memory of the instance in MB, as the cloud reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_mb: Option<i64>,
    /// Redis version, as the cloud reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Creation time as the cloud reports it (`YYYY-MM-DD HH:MM:SS`, cloud time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// The `metadata.generation` the status was last computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the operator last read the instance from the cloud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// A create the operator started; kept until its outcome is known, so that a crash or a lost
    /// response is resolved by looking the name up instead of creating a second instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_attempt: Option<CreateAttempt>,
    /// The deletion policy in force when `spec.deletionPolicy` is not set: the operator's default
    /// at the time the instance was created or adopted, so that changing that default later does
    /// not change what deleting this object does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// When the cloud accepted the operator's `DeleteDBInstance` of this instance: the delete is
    /// not sent again while the instance is still listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<Time>,
    /// The inputs of a create the cloud rejected for good: no create is sent again until the
    /// object or a referenced Secret changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_create: Option<RejectedCreate>,
    /// `Ready`, `Synced`, `Reconciling` and `Stalled` conditions (standard `metav1.Condition`);
    /// `Reconciling` and `Stalled` are present only while True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Where clients connect to the instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Private IP address of the instance in its VDC network.
    pub host: String,
    /// TCP port of the instance.
    pub port: i32,
}

/// The intent marker written before `CreateDBInstance` is called.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAttempt {
    /// The instance name the create was sent with.
    pub instance_name: String,
    /// When the create was started.
    pub started_at: Time,
}

/// The inputs of a create the cloud rejected for good.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedCreate {
    /// The `metadata.generation` the create was sent for.
    pub generation: i64,
    /// The `resourceVersion`s of the referenced Secrets (password, credentials) at the time.
    pub secret_versions: Vec<String>,
}

/// Lifecycle phase of a `RedisInstance`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
// Left out of the schema: kube puts an optional enum's type description over its field's, and
// the fields say more (the default, the status meaning).
#[schemars(description = "")]
pub enum Phase {
    /// Nothing created yet (waiting for input or for the create to start).
    Pending,
    /// The cloud is creating the instance.
    Creating,
    /// The cloud reports the instance `RUNNING`.
    Running,
    /// The instance is being deleted.
    Deleting,
    /// A terminal error stops progress until the object or its Secrets change.
    Failed,
    /// The cloud reports a status the operator does not know.
    Unknown,
}

impl RedisInstance {
    /// The effective management policy (`Full` unless the spec says otherwise).
    pub fn management_policy(&self) -> ManagementPolicy {
        self.spec.management_policy.unwrap_or_default()
    }
}

/// Every CRD of the operator, in the order of their files in `crds/` (by name): `RedisBackup`,
/// `RedisBackupSchedule`, `RedisInstance`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        account::ClusterProviderConfig::crd(),
        account::ProviderConfig::crd(),
        backup::RedisBackup::crd(),
        backup::RedisBackupSchedule::crd(),
        RedisInstance::crd(),
    ]
}

/// The file of `crds/` a CRD is kept in: `<plural>.<group>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default())
}

/// The `RedisInstance` CRD as YAML, exactly what `crds/redisinstances.cds.capitalonline.net.yaml`
/// holds.
pub fn crd_yaml() -> String {
    crd_yaml_of(RedisInstance::crd())
}

/// A CRD as YAML, exactly what `cds-redis-operator crd --kind KIND` prints and `crds/` holds.
///
/// Its descriptions are flowing paragraphs: the line breaks of the doc comments they come from
/// are joined, so `kubectl explain` wraps the text to the terminal instead of breaking it mid-sentence.
pub fn crd_yaml_of(mut crd: CustomResourceDefinition) -> String {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            let mut value = serde_json::to_value(&*schema).expect("a schema always serialises");
            reflow_descriptions(&mut value);
            *schema = serde_json::from_value(value).expect("reflowing keeps the schema valid");
        }
    }
    let yaml = serde_norway::to_string(&crd).expect("a CRD always serialises to YAML");
    format!("---\n{yaml}")
}

/// Joins the lines of every paragraph of every `description` in a schema (paragraphs are
/// separated by blank lines, which stay).
fn reflow_descriptions(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    serde_json::Value::String(text) if key == "description" => *text = reflow(text),
                    _ => reflow_descriptions(value),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

/// A text with its paragraphs kept and the lines within each joined by single spaces.
fn reflow(text: &str) -> String {
    let mut paragraphs: Vec<String> = vec![];
    let mut current: Vec<&str> = vec![];
    for line in text.lines().map(str::trim).chain([""]) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    paragraphs.join("\n\n")
}

#[cfg(test)]
mod tests;
