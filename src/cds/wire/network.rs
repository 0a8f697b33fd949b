//! `DescribeVdc` (the VDC service, `/network`): virtual data centres and their networks
//! (`cds-extra-api.md` §1). Spelled as the documentation's example and the Go SDK spell it; the
//! doc's table disagrees with both (`Ip`/`Mask`/`Id` on private networks, `VdcStatus`), so every
//! field is optional and parsed leniently.

use serde::{Deserialize, Serialize};

use super::{lenient_i64, lenient_string, lenient_vec};

/// One VDC of `DescribeVdc`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Vdc {
    /// The VDC id, e.g. `0bb08ed7-e686-4168-93e5-e0187579753b`: a `RedisInstance`'s `vdcId`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub vdc_id: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub vdc_name: String,
    /// The region (availability zone) it is in, e.g. `CN_Beijing_A`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub region_id: String,
    /// `ok` when usable; in the doc's table and the SDK, not in the doc's example.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub vdc_status: String,
    /// Its private networks: a `RedisInstance`'s `basePipeId` is one of their ids.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub private_network: Vec<PrivateNetwork>,
    /// Its public networks (not used by Redis; listed by `cds vdcs`).
    #[serde(default, deserialize_with = "lenient_vec")]
    pub public_network: Vec<PublicNetwork>,
}

/// A private network of a VDC.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PrivateNetwork {
    /// The network id (`PrivateId`): the `BasePipeId` of a create.
    #[serde(default, deserialize_with = "lenient_string")]
    pub private_id: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    /// `ok` when usable.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Free IP addresses (`UnuseIpNum`); absent when the cloud does not say.
    #[serde(default, deserialize_with = "lenient_i64", skip_serializing_if = "Option::is_none")]
    pub unuse_ip_num: Option<i64>,
    /// Its segments, as the cloud writes them, e.g. `10.240.59.0/16~10.240.59.255/16`.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub segments: Vec<String>,
}

/// A public network of a VDC.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PublicNetwork {
    /// The network id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub public_id: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    /// `ok` when usable.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Bandwidth (Mbit/s).
    #[serde(default, deserialize_with = "lenient_i64", skip_serializing_if = "Option::is_none")]
    pub qos: Option<i64>,
    /// Free IP addresses.
    #[serde(default, deserialize_with = "lenient_i64", skip_serializing_if = "Option::is_none")]
    pub unuse_ip_num: Option<i64>,
    /// Its segments.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub segments: Vec<PublicSegment>,
}

/// A segment of a public network.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PublicSegment {
    /// The segment id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub segment_id: String,
    /// First address.
    #[serde(default, deserialize_with = "lenient_string")]
    pub address: String,
    /// Gateway.
    #[serde(default, deserialize_with = "lenient_string")]
    pub gateway: String,
    /// Prefix length.
    #[serde(default, deserialize_with = "lenient_i64", skip_serializing_if = "Option::is_none")]
    pub mask: Option<i64>,
}

impl Vdc {
    /// The private network with this id.
    pub fn private_network(&self, id: &str) -> Option<&PrivateNetwork> {
        self.private_network.iter().find(|n| n.private_id == id)
    }
}
