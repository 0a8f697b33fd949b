//! `DescribeRegins` and `DescribeAvailableDBConfig`: where Redis is sold, and what.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lenient_i64, lenient_string, lenient_vec};

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
