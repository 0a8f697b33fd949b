//! `CreateDBInstance`, `DescribeDBInstances` and `DeleteDBInstance`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lenient_i64, lenient_string, lenient_vec};

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
    /// A tag to create the instance with, listed afterwards in its `Tags`. Not in the Redis
    /// doc's `CreateDBInstance` table (only the listing's `Tags` and its `TagName` filter are):
    /// the operator never sends it; the simulator takes it, so tests can tag instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_name: Option<String>,
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
            .field("tag_name", &self.tag_name)
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
    /// Its tags.
    #[serde(default, deserialize_with = "lenient_tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
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

/// A tag of a listed instance (`Tags: [{TagID, TagName}]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Tag {
    /// The tag's id.
    #[serde(rename = "TagID", default, deserialize_with = "lenient_i64")]
    pub tag_id: Option<i64>,
    /// The tag's name.
    #[serde(rename = "TagName", default, deserialize_with = "lenient_string")]
    pub tag_name: String,
}

/// Tags as documented (`[{TagID, TagName}]`); a bare string is taken as a tag name, anything
/// else is skipped: an odd tag must not make a whole listing unreadable.
fn lenient_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Tag>, D::Error> {
    let Value::Array(items) = Value::deserialize(d)? else {
        return Ok(vec![]);
    };
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            Value::String(name) => Some(Tag {
                tag_id: None,
                tag_name: name,
            }),
            Value::Object(_) => serde_json::from_value(item).ok(),
            _ => None,
        })
        .collect())
}

impl Instance {
    /// Whether one of its tags is named exactly `name`.
    pub fn has_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.tag_name == name)
    }
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
