//! What a `RedisInstance` needs that the instance listing does not say, told from the region's
//! catalogue and the VDC's networks: the `PaasGoodsId` (the listing has version, memory and
//! product name) and the `BasePipeId` (the listing has the VDC and the IP).

use std::net::Ipv4Addr;

use crate::cds::catalogue::offers;
use crate::cds::wire::{DbConfig, Instance, Vdc};

/// Where an instance sits in the catalogue and the VDC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Its product's `PaasGoodsId`.
    pub paas_goods_id: i64,
    /// Its private network (`PrivateId`).
    pub base_pipe_id: String,
}

/// Why a placement cannot be told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// The listing lacks a field the placement is computed from.
    #[error("the listing gives no {0}")]
    Missing(&'static str),
    /// No product of the region's catalogue has the instance's version, memory and product.
    #[error("the catalogue of region {region} has no Redis {version} product of {ram_mb} MB named {product:?}")]
    NoProduct {
        /// The region.
        region: String,
        /// The instance's version.
        version: String,
        /// The instance's memory.
        ram_mb: i64,
        /// The instance's `SubProductName`.
        product: String,
    },
    /// Products of several architectures match, and the product name does not tell them apart.
    #[error("several products of region {region} match (PaasGoodsId {}): the product name {product:?} does not tell which", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
    AmbiguousProduct {
        /// The region.
        region: String,
        /// The instance's `SubProductName`.
        product: String,
        /// The candidates.
        ids: Vec<i64>,
    },
    /// `DescribeVdc` does not list the instance's VDC.
    #[error("DescribeVdc does not list its VDC {0}")]
    UnknownVdc(String),
    /// The VDC has several private networks and the IP is in none or several of their segments.
    #[error("cannot tell which private network of VDC {vdc} holds its IP {ip:?} (networks: {})", networks.join(", "))]
    AmbiguousNetwork {
        /// The VDC.
        vdc: String,
        /// The instance's IP.
        ip: String,
        /// The VDC's private networks.
        networks: Vec<String>,
    },
}

/// The placement of `instance`, given its region's catalogue and its VDC (if listed).
pub fn placement(instance: &Instance, catalogue: &DbConfig, vdc: Option<&Vdc>) -> Result<Placement, Unresolved> {
    let vdc = match vdc {
        Some(vdc) => vdc,
        None if instance.vdc_id.is_empty() => return Err(Unresolved::Missing("VdcId")),
        None => return Err(Unresolved::UnknownVdc(instance.vdc_id.clone())),
    };
    Ok(Placement {
        paas_goods_id: paas_goods_id(instance, catalogue)?,
        base_pipe_id: base_pipe_id(instance, vdc)?,
    })
}

/// The `PaasGoodsId` of the catalogue's product with the instance's version and memory, among
/// the architectures whose `SubProductName` is the instance's (all, if none is). Several offers
/// of one architecture: the first, as the operator resolves a flavor; of several: ambiguous.
pub fn paas_goods_id(instance: &Instance, catalogue: &DbConfig) -> Result<i64, Unresolved> {
    let ram_mb = instance.ram.filter(|r| *r > 0).ok_or(Unresolved::Missing("Ram"))?;
    let named: Vec<i64> = catalogue
        .products
        .iter()
        .flat_map(|p| &p.architectures)
        .filter(|a| !instance.sub_product_name.is_empty() && a.sub_product_name == instance.sub_product_name)
        .filter_map(|a| a.architecture_type)
        .collect();
    let matching: Vec<_> = offers(catalogue)
        .into_iter()
        .filter(|o| o.version == instance.version && o.ram_gb * 1024 == ram_mb)
        .filter(|o| named.is_empty() || named.contains(&o.architecture_type))
        .collect();
    let Some(first) = matching.first() else {
        return Err(Unresolved::NoProduct {
            region: instance.region_id.clone(),
            version: instance.version.clone(),
            ram_mb,
            product: instance.sub_product_name.clone(),
        });
    };
    if matching.iter().any(|o| o.architecture_type != first.architecture_type) {
        return Err(Unresolved::AmbiguousProduct {
            region: instance.region_id.clone(),
            product: instance.sub_product_name.clone(),
            ids: matching.iter().map(|o| o.paas_goods_id).collect(),
        });
    }
    Ok(first.paas_goods_id)
}

/// The private network of `vdc` whose segments hold the instance's IP; if none or several do,
/// the VDC's only private network, if it has one.
pub fn base_pipe_id(instance: &Instance, vdc: &Vdc) -> Result<String, Unresolved> {
    let ip: Option<Ipv4Addr> = instance.ip.parse().ok();
    let holding: Vec<&str> = vdc
        .private_network
        .iter()
        .filter(|n| ip.is_some_and(|ip| n.segments.iter().any(|s| segment_holds(s, ip))))
        .map(|n| n.private_id.as_str())
        .collect();
    match (holding.as_slice(), vdc.private_network.as_slice()) {
        ([one], _) => Ok((*one).to_owned()),
        (_, [only]) => Ok(only.private_id.clone()),
        _ => Err(Unresolved::AmbiguousNetwork {
            vdc: vdc.vdc_id.clone(),
            ip: instance.ip.clone(),
            networks: vdc.private_network.iter().map(|n| n.private_id.clone()).collect(),
        }),
    }
}

/// Whether a segment holds `ip`. Segments come as the doc's example writes them, a range
/// `FIRST/MASK~LAST/MASK` (`10.240.59.0/16~10.240.59.255/16`), or as a CIDR (`10.241.16.0/16`,
/// the doc's table); anything else holds nothing.
pub fn segment_holds(segment: &str, ip: Ipv4Addr) -> bool {
    let addr = |s: &str| s.split('/').next().and_then(|a| a.trim().parse::<Ipv4Addr>().ok());
    if let Some((first, last)) = segment.split_once('~') {
        return matches!((addr(first), addr(last)), (Some(a), Some(b)) if a <= ip && ip <= b);
    }
    let Some((net, bits)) = segment.split_once('/') else {
        return addr(segment) == Some(ip);
    };
    match (net.trim().parse::<Ipv4Addr>(), bits.trim().parse::<u32>()) {
        (Ok(net), Ok(bits)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        _ => false,
    }
}
