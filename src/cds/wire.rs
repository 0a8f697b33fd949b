//! The CDS Redis API's JSON, spelled as the API spells it (`cds-redis-api.md` §3-4).
//!
//! Parsing is lenient where the documentation and real responses disagree (§6 item 6): numbers
//! may come as strings, objects as `""` or `null`, lists as `null`. The same types serialise the
//! simulator's responses, in the shapes the real API returns.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The `Code` of a successful response.
pub const SUCCESS: &str = "Success";

/// The envelope of every response: `{Code, Message, Data, TaskId}`.
///
/// `Data` is kept as the raw JSON text and parsed straight into the action's type: a listing of
/// thousands of instances never becomes a `serde_json::Value` tree (several times its size).
#[derive(Serialize, Deserialize, Debug)]
pub struct Envelope {
    /// `Success`, or an error code.
    #[serde(rename = "Code", default, deserialize_with = "lenient_string")]
    pub code: String,
    /// Free text; never compare it.
    #[serde(rename = "Message", default, deserialize_with = "lenient_string")]
    pub message: String,
    /// The action's payload, as sent.
    #[serde(rename = "Data", default = "null_raw")]
    pub data: Box<RawValue>,
    /// Task id of an asynchronous action; often `""`, missing on some list calls.
    #[serde(rename = "TaskId", default, deserialize_with = "lenient_string")]
    pub task_id: String,
    /// A request id, if the server sends one (not documented).
    #[serde(
        rename = "RequestId",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub request_id: String,
}

fn null_raw() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Whether a payload is one of the spellings of "nothing": `null`, `""` or `{}`.
fn is_empty_payload(raw: &RawValue) -> bool {
    let text = raw.get().trim();
    text == "null" || text == "\"\"" || (text.starts_with('{') && text[1..].trim() == "}")
}

impl Envelope {
    /// A successful envelope around `data`.
    pub fn success(data: impl Serialize, task_id: impl Into<String>) -> Self {
        Self {
            code: SUCCESS.into(),
            message: "Success.".into(),
            data: serde_json::value::to_raw_value(&data).expect("serialisable payload"),
            task_id: task_id.into(),
            request_id: String::new(),
        }
    }

    /// A failed envelope: `code` and `message`, an empty payload.
    pub fn failure(code: impl Into<String>, message: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            data: RawValue::from_string("{}".to_owned()).expect("{} is JSON"),
            task_id: String::new(),
            request_id: request_id.into(),
        }
    }

    /// The payload parsed as `T`, leniently (`null` or `""` parse as `T::default()` where `T`
    /// allows it through its own field defaults).
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if is_empty_payload(&self.data) {
            return serde_json::from_str("{}");
        }
        serde_json::from_str(self.data.get())
    }

    /// The payload parsed as a list (`null`, `""` and `{}` are empty).
    pub fn data_as_list<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        if is_empty_payload(&self.data) {
            return Ok(vec![]);
        }
        serde_json::from_str(self.data.get())
    }

    /// The task id, from the top level or (before August 2021) from inside `Data`.
    pub fn task_id(&self) -> Option<String> {
        if !self.task_id.is_empty() {
            return Some(self.task_id.clone());
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "TaskId", default, deserialize_with = "lenient_string")]
            task_id: String,
        }
        if !self.data.get().trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<Inner>(self.data.get())
            .ok()
            .map(|i| i.task_id)
            .filter(|t| !t.is_empty())
    }
}

/// A string that may arrive as a number, a bool or `null`.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

/// An integer that may arrive as a number, a numeric string, `""` or `null`.
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    })
}

/// A list that may arrive as `null` or `""`.
pub fn lenient_vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .collect(),
        _ => Ok(vec![]),
    }
}

/// One region of `DescribeRegins`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Region {
    /// City id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub city_id: String,
    /// City name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub city_name: String,
    /// 1 when Redis can be bought there.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub is_saling: Option<i64>,
    /// Region id, e.g. `CN_Beijing_A` (may be empty; skip those).
    #[serde(default, deserialize_with = "lenient_string")]
    pub region_id: String,
    /// Macro-area, e.g. 中国大陆.
    #[serde(default, deserialize_with = "lenient_string")]
    pub region_name: String,
    /// Site name, e.g. 北京1.
    #[serde(default, deserialize_with = "lenient_string")]
    pub site_name: String,
}

impl Region {
    /// Whether Redis is on sale in this region.
    pub fn on_sale(&self) -> bool {
        self.is_saling == Some(1)
    }
}

/// `Data` of `DescribeAvailableDBConfig`: the Redis catalogue of one region.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DbConfig {
    /// `redis`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub product_name: String,
    /// The region.
    #[serde(default, deserialize_with = "lenient_string")]
    pub region_id: String,
    /// One entry per version.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub products: Vec<Product>,
}

/// One Redis version of the catalogue.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Product {
    /// e.g. `5.0`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: String,
    /// The architectures offered for this version.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub architectures: Vec<ArchitectureOffer>,
}

/// One architecture of a version.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ArchitectureOffer {
    /// Display name, e.g. 经济型主从.
    #[serde(default, deserialize_with = "lenient_string")]
    pub architecture_name: String,
    /// 1 master-replica, 2 cluster, 3 economical master-replica.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub architecture_type: Option<i64>,
    /// e.g. `Redis 主从版`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub sub_product_name: String,
    /// Documented as a string, `[]` in examples: kept as it came.
    #[serde(default)]
    pub engines_type: Value,
    /// Network link types.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub network_links: Vec<NetworkLink>,
    /// Compute roles and their specs.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub compute_roles: Vec<ComputeRole>,
}

/// A network link type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkLink {
    /// e.g. `default_link`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub link_type: String,
    /// Display name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    /// Description.
    #[serde(default, deserialize_with = "lenient_string")]
    pub desc_detail: String,
}

/// A compute role (only "general purpose" exists).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ComputeRole {
    /// Display name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub compute_name: String,
    /// 0 = general purpose.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub compute_type: Option<i64>,
    /// Disks and memory specs.
    #[serde(default)]
    pub standards: Standards,
}

/// Disk and memory specs of a compute role.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Standards {
    /// Disks (not used by Redis create); kept as they came.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub attach_disk: Vec<Value>,
    /// Memory specs, each with its `PaasGoodsId`.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub cpu_ram: Vec<CpuRam>,
}

/// One memory spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CpuRam {
    /// CPU count, 0 for Redis.
    #[serde(rename = "CPU", default, deserialize_with = "lenient_i64")]
    pub cpu: Option<i64>,
    /// e.g. `4G`.
    #[serde(rename = "Name", default, deserialize_with = "lenient_string")]
    pub name: String,
    /// The spec id to create with.
    #[serde(rename = "PaasGoodsId", default, deserialize_with = "lenient_i64")]
    pub paas_goods_id: Option<i64>,
    /// Memory in GB.
    #[serde(rename = "RAM", default, deserialize_with = "lenient_i64")]
    pub ram: Option<i64>,
}

/// Body of `CreateDBInstance`. `Debug` hides the password; the body itself is never logged.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInstanceRequest {
    /// Region.
    #[serde(default)]
    pub region_id: String,
    /// VDC.
    #[serde(default)]
    pub vdc_id: String,
    /// Private network of the VDC.
    #[serde(default)]
    pub base_pipe_id: String,
    /// Instance name.
    #[serde(default)]
    pub instance_name: String,
    /// Spec id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub paas_goods_id: Option<i64>,
    /// Redis password.
    #[serde(default)]
    pub password: String,
    /// Test-group billing.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_i64")]
    pub test_group_id: Option<i64>,
    /// How many instances; the operator always sends 1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_i64")]
    pub amount: Option<i64>,
    /// Port; the cloud defaults to 9736.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_i64")]
    pub service_port: Option<i64>,
    /// Billing subject.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_i64")]
    pub subject_id: Option<i64>,
}

impl std::fmt::Debug for CreateInstanceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateInstanceRequest")
            .field("region_id", &self.region_id)
            .field("vdc_id", &self.vdc_id)
            .field("base_pipe_id", &self.base_pipe_id)
            .field("instance_name", &self.instance_name)
            .field("paas_goods_id", &self.paas_goods_id)
            .field("password", &"***")
            .field("service_port", &self.service_port)
            .finish_non_exhaustive()
    }
}

/// Port the cloud uses when `ServicePort` is not given.
pub const DEFAULT_SERVICE_PORT: u16 = 9736;
/// Ports the cloud refuses for `ServicePort` (its own exporters and cluster bus).
pub const FORBIDDEN_SERVICE_PORTS: [u16; 4] = [9100, 9121, 9122, 16379];
/// Ports `ServicePort` may take, except [`FORBIDDEN_SERVICE_PORTS`].
pub const SERVICE_PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// Whether the cloud accepts `port` as `ServicePort`.
pub fn service_port_allowed(port: i64) -> bool {
    u16::try_from(port).is_ok_and(|p| SERVICE_PORTS.contains(&p) && !FORBIDDEN_SERVICE_PORTS.contains(&p))
}

/// `Data` of `CreateDBInstance`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CreateInstanceData {
    /// The new instances' UUIDs (one, since `Amount` is 1).
    #[serde(rename = "InstancesUuid", default, deserialize_with = "lenient_vec")]
    pub instances_uuid: Vec<String>,
}

/// One instance of `DescribeDBInstances`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    /// Instance id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_uuid: String,
    /// Instance name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_name: String,
    /// e.g. `CREATING`, `RUNNING`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Display label of the status, e.g. 运行中.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status_str: String,
    /// Private IP.
    #[serde(rename = "IP", default, deserialize_with = "lenient_string")]
    pub ip: String,
    /// Port.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub port: Option<i64>,
    /// Memory in MB.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub ram: Option<i64>,
    /// Redis version.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: String,
    /// e.g. `Redis 主从版`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub sub_product_name: String,
    /// e.g. `redis-replication`.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub sub_product_key: String,
    /// Region.
    #[serde(default, deserialize_with = "lenient_string")]
    pub region_id: String,
    /// VDC.
    #[serde(default, deserialize_with = "lenient_string")]
    pub vdc_id: String,
    /// VDC name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub vdc_name: String,
    /// Zone label.
    #[serde(default, deserialize_with = "lenient_string")]
    pub display_name: String,
    /// e.g. `default_link`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub link_type: String,
    /// Display label of the link type.
    #[serde(default, deserialize_with = "lenient_string")]
    pub link_type_str: String,
    /// `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub created_time: String,
    /// Billing id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub resource_id: String,
    /// Project name.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub project_name: String,
    /// Tags.
    #[serde(default, deserialize_with = "lenient_vec", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Value>,
    /// Documented as a dict, `""` in examples: kept as it came.
    #[serde(default)]
    pub master_info: Value,
    /// Always `null` for Redis.
    #[serde(default)]
    pub relation_service: Value,
    /// Always `null` for Redis.
    #[serde(default)]
    pub clone_services: Value,
    /// Always `null` for Redis.
    #[serde(default)]
    pub ro_groups: Value,
    /// `null` in the real snapshot.
    #[serde(default)]
    pub app_name: Value,
    /// `null` in the real snapshot.
    #[serde(default)]
    pub cpu: Value,
}

/// What the operator reads of a listed instance: the fields its status reports.
///
/// The controller's shared listing parses into this rather than [`Instance`]: unknown fields are
/// skipped, and a snapshot of thousands of instances takes about a third of the memory.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceSummary {
    /// Instance id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_uuid: String,
    /// Instance name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_name: String,
    /// e.g. `CREATING`, `RUNNING`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Display label of the status, e.g. 运行中.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status_str: String,
    /// Private IP.
    #[serde(rename = "IP", default, deserialize_with = "lenient_string")]
    pub ip: String,
    /// Port.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub port: Option<i64>,
    /// Memory in MB.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub ram: Option<i64>,
    /// Redis version.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: String,
    /// `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub created_time: String,
}

impl From<Instance> for InstanceSummary {
    fn from(i: Instance) -> Self {
        Self {
            instance_uuid: i.instance_uuid,
            instance_name: i.instance_name,
            status: i.status,
            status_str: i.status_str,
            ip: i.ip,
            port: i.port,
            ram: i.ram,
            version: i.version,
            created_time: i.created_time,
        }
    }
}

/// The status value of a running instance, the only one documented.
pub const STATUS_RUNNING: &str = "RUNNING";
/// The status value of an instance being created (observed on the same platform).
pub const STATUS_CREATING: &str = "CREATING";
/// The status value the simulator uses while an instance is deleted (not documented upstream).
pub const STATUS_DELETING: &str = "DELETING";

/// Body of `DeleteDBInstance`, `DescribeBackups`-style single-instance bodies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceRef {
    /// Instance id.
    #[serde(default)]
    pub instance_uuid: String,
}

/// One backup of `DescribeBackups` (and, with the download fields, `DownloadBackup`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Backup {
    /// Backup id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_id: String,
    /// `manual`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_mode: String,
    /// Size in bytes (documented as a string, a number in examples).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub backup_size: Option<i64>,
    /// `full-backup`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_type: String,
    /// Description.
    #[serde(default, deserialize_with = "lenient_string")]
    pub desc: String,
    /// Start, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub start_time: String,
    /// End, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub end_time: String,
    /// The instance.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_id: String,
    /// `finished`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Cluster shard id (`DownloadBackup` only), `""` otherwise.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub shard_id: String,
    /// Public download URL (`DownloadBackup` only).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub backup_download_url: String,
    /// Internal download URL (`DownloadBackup` only).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub backup_intranet_download_url: String,
}

/// Body of `CreateBackup`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBackupRequest {
    /// Instance id.
    #[serde(default)]
    pub instance_uuid: String,
    /// Description.
    #[serde(default)]
    pub desc: String,
}

/// Body of `DeleteBackup`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteBackupRequest {
    /// Instance id.
    #[serde(default)]
    pub instance_uuid: String,
    /// Backup id.
    #[serde(default)]
    pub backup_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cds");

    fn fixture(name: &str) -> Envelope {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn regions_fixture_parses() {
        let env = fixture("describe-regins.json");
        assert_eq!(env.code, SUCCESS);
        let regions: Vec<Region> = env.data_as_list().unwrap();
        assert_eq!(regions.len(), 25);
        assert_eq!(regions.iter().filter(|r| !r.on_sale()).count(), 3);
        assert!(regions.iter().any(|r| r.region_id == "CN_Beijing_A" && r.on_sale()));
    }

    #[test]
    fn catalogue_fixture_parses() {
        let cfg: DbConfig = fixture("describe-available-db-config.CN_Beijing_A.json")
            .data_as()
            .unwrap();
        let versions: Vec<_> = cfg.products.iter().map(|p| p.version.as_str()).collect();
        for v in ["2.8", "4.0", "5.0"] {
            assert!(versions.contains(&v), "{versions:?}");
        }
        let specs: Vec<&CpuRam> = cfg
            .products
            .iter()
            .flat_map(|p| &p.architectures)
            .flat_map(|a| &a.compute_roles)
            .flat_map(|r| &r.standards.cpu_ram)
            .collect();
        assert!(specs.iter().any(|s| s.paas_goods_id == Some(12467) && s.ram == Some(4)));
        assert!(specs.iter().all(|s| s.paas_goods_id.is_some() && s.ram.is_some()));
    }

    #[test]
    fn instances_fixture_parses() {
        let list: Vec<Instance> = fixture("describe-db-instances.json").data_as_list().unwrap();
        assert_eq!(list.len(), 1);
        let i = &list[0];
        assert_eq!(i.instance_uuid, "86b9ded8-3f11-4bea-9232-a571a6de0fbf");
        assert_eq!(i.status, STATUS_RUNNING);
        assert_eq!(i.ram, Some(4096));
        assert_eq!(i.port, Some(9736));
        assert_eq!(i.ip, "10.240.17.13");
        assert_eq!(i.master_info, Value::String(String::new()));
    }

    #[test]
    fn a_summary_reads_the_same_fields_as_the_full_instance() {
        let env = fixture("describe-db-instances.json");
        let full: Vec<Instance> = env.data_as_list().unwrap();
        let summary: Vec<InstanceSummary> = env.data_as_list().unwrap();
        assert_eq!(summary.len(), full.len());
        assert_eq!(summary[0], InstanceSummary::from(full[0].clone()));
        assert_eq!(summary[0].status, STATUS_RUNNING);
        assert!(!summary[0].ip.is_empty() && summary[0].port.is_some());
    }

    #[test]
    fn loose_types_parse() {
        let i: Instance =
            serde_json::from_str(r#"{"InstanceUuid":"u","Port":"9736","Ram":null,"Tags":null,"Status":null}"#).unwrap();
        assert_eq!(i.port, Some(9736));
        assert_eq!(i.ram, None);
        assert!(i.tags.is_empty());
        assert_eq!(i.status, "");
        let b: Backup = serde_json::from_str(r#"{"BackupSize":"1024","BackupId":7}"#).unwrap();
        assert_eq!(b.backup_size, Some(1024));
        assert_eq!(b.backup_id, "7");
        let env: Envelope = serde_json::from_str(r#"{"Code":"Success","Message":"succes","Data":""}"#).unwrap();
        assert!(env.data_as_list::<Instance>().unwrap().is_empty());
        assert_eq!(
            env.data_as::<CreateInstanceData>().unwrap(),
            CreateInstanceData::default()
        );
    }

    #[test]
    fn task_id_is_read_from_top_level_or_data() {
        let top: Envelope =
            serde_json::from_str(r#"{"Code":"Success","Data":{"InstancesUuid":["a"]},"TaskId":"7424648"}"#).unwrap();
        assert_eq!(top.task_id().as_deref(), Some("7424648"));
        let inner: Envelope =
            serde_json::from_str(r#"{"Code":"Success","Data":{"InstancesUuid":["a"],"TaskId":7424649}}"#).unwrap();
        assert_eq!(inner.task_id().as_deref(), Some("7424649"));
        assert_eq!(inner.data_as::<CreateInstanceData>().unwrap().instances_uuid, ["a"]);
        let none: Envelope = serde_json::from_str(r#"{"Code":"Success","Data":[]}"#).unwrap();
        assert_eq!(none.task_id(), None);
    }

    #[test]
    fn empty_payloads_in_every_spelling() {
        for data in ["null", "\"\"", "{}", "{ }", "[]"] {
            let env: Envelope = serde_json::from_str(&format!(r#"{{"Code":"Success","Data":{data}}}"#)).unwrap();
            assert!(env.data_as_list::<Instance>().unwrap().is_empty(), "{data}");
            assert_eq!(
                env.data_as::<CreateInstanceData>().unwrap(),
                CreateInstanceData::default(),
                "{data}"
            );
        }
        let missing: Envelope = serde_json::from_str(r#"{"Code":"Success"}"#).unwrap();
        assert!(missing.data_as_list::<Instance>().unwrap().is_empty());
        // The simulator's side: a payload serialises back as it was given.
        let env = Envelope::success(serde_json::json!({"InstancesUuid": ["u"]}), "t");
        let text = serde_json::to_string(&env).unwrap();
        assert!(text.contains(r#""Data":{"InstancesUuid":["u"]}"#), "{text}");
    }

    #[test]
    fn create_request_debug_hides_password() {
        let r = CreateInstanceRequest {
            password: "hunter2-secret".into(),
            ..Default::default()
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        // The wire form does carry it, as a JSON number for PaasGoodsId.
        let json = serde_json::to_value(CreateInstanceRequest {
            paas_goods_id: Some(12467),
            ..r
        })
        .unwrap();
        assert_eq!(json["PaasGoodsId"], 12467);
        assert_eq!(json["Password"], "hunter2-secret");
    }

    #[test]
    fn service_ports_follow_the_clouds_rule() {
        for ok in [1024, 6379, i64::from(DEFAULT_SERVICE_PORT), 9101, 16380, 65535] {
            assert!(service_port_allowed(ok), "{ok}");
        }
        for refused in [-1, 0, 80, 1023, 9100, 9121, 9122, 16379, 65536, i64::MAX] {
            assert!(!service_port_allowed(refused), "{refused}");
        }
    }
}
