//! Flavor → `PaasGoodsId`: the region's catalogue (`DescribeAvailableDBConfig`), cached per
//! region with a TTL, and a pure resolver that says what the region offers when a flavor is not
//! there. Flavors and architectures are spelled here as the cloud knows them; the CRD maps its
//! own types onto them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::client::CdsClient;
use super::error::CdsError;
use super::wire::DbConfig;

/// The cloud's Redis architectures, numbered by the catalogue's `ArchitectureType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Architecture {
    /// Master with a replica (主从版, type 1).
    MasterReplica,
    /// Sharded cluster (集群版, type 2).
    Cluster,
    /// Economical master-replica (经济型主从版, type 3).
    EconomicalMasterReplica,
}

impl Architecture {
    /// Every architecture the catalogue is known to offer.
    pub const ALL: [Self; 3] = [Self::MasterReplica, Self::Cluster, Self::EconomicalMasterReplica];

    /// The catalogue's `ArchitectureType` number.
    pub fn cloud_type(self) -> i64 {
        match self {
            Self::MasterReplica => 1,
            Self::Cluster => 2,
            Self::EconomicalMasterReplica => 3,
        }
    }

    /// The architecture of a catalogue `ArchitectureType` number, if it is one we know.
    pub fn from_cloud_type(t: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.cloud_type() == t)
    }

    /// Its name, e.g. `MasterReplica`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MasterReplica => "MasterReplica",
            Self::Cluster => "Cluster",
            Self::EconomicalMasterReplica => "EconomicalMasterReplica",
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A flavor to look up in a catalogue: version, architecture and memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// Redis version as the catalogue spells it, e.g. `5.0`.
    pub version: String,
    /// Architecture.
    pub architecture: Architecture,
    /// Memory in GB.
    pub ram_gb: i64,
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}GB", self.version, self.architecture, self.ram_gb)
    }
}

/// One offer of a region's catalogue, flattened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Offer {
    /// Redis version, e.g. `5.0`.
    pub version: String,
    /// Architecture, when the catalogue's type is one we know.
    pub architecture: Option<Architecture>,
    /// The catalogue's `ArchitectureType`.
    pub architecture_type: i64,
    /// The catalogue's architecture name.
    pub architecture_name: String,
    /// Memory in GB.
    pub ram_gb: i64,
    /// The spec id.
    pub paas_goods_id: i64,
}

/// Every offer of a catalogue, in catalogue order.
pub fn offers(config: &DbConfig) -> Vec<Offer> {
    let mut out = vec![];
    for product in &config.products {
        for arch in &product.architectures {
            let t = arch.architecture_type.unwrap_or(0);
            for role in &arch.compute_roles {
                for spec in &role.standards.cpu_ram {
                    if let (Some(id), Some(ram)) = (spec.paas_goods_id, spec.ram) {
                        out.push(Offer {
                            version: product.version.clone(),
                            architecture: Architecture::from_cloud_type(t),
                            architecture_type: t,
                            architecture_name: arch.architecture_name.clone(),
                            ram_gb: ram,
                            paas_goods_id: id,
                        });
                    }
                }
            }
        }
    }
    out
}

/// A flavor the region does not offer, with what it does offer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("flavor {flavor} is not offered in region {region}; it offers: {}", if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") })]
pub struct FlavorNotAvailable {
    /// The flavor asked for.
    pub flavor: String,
    /// The region.
    pub region: String,
    /// What the region offers, e.g. `5.0 MasterReplica 4GB`, deduplicated.
    pub offered: Vec<String>,
}

/// The `PaasGoodsId` of `flavor` in `config`: the first offer with the same version,
/// architecture type and memory, as the Terraform provider picks it.
pub fn resolve(config: &DbConfig, region: &str, flavor: &Flavor) -> Result<i64, FlavorNotAvailable> {
    let all = offers(config);
    all.iter()
        .find(|o| {
            o.version == flavor.version
                && o.architecture_type == flavor.architecture.cloud_type()
                && o.ram_gb == flavor.ram_gb
        })
        .map(|o| o.paas_goods_id)
        .ok_or_else(|| {
            let mut offered: Vec<String> = vec![];
            for o in &all {
                let label = match o.architecture {
                    Some(a) => format!("{} {} {}GB", o.version, a, o.ram_gb),
                    None => format!("{} type{} {}GB", o.version, o.architecture_type, o.ram_gb),
                };
                if !offered.contains(&label) {
                    offered.push(label);
                }
            }
            FlavorNotAvailable {
                flavor: flavor.to_string(),
                region: region.to_owned(),
                offered,
            }
        })
}

/// Region catalogues of one account, each fetched at most once per TTL.
pub struct Catalogue {
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Arc<DbConfig>)>>,
}

impl Catalogue {
    /// An empty cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The catalogue of `region`, from the cache or the cloud. Concurrent callers wait for one
    /// fetch.
    pub async fn config(&self, client: &CdsClient, region: &str) -> Result<Arc<DbConfig>, CdsError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, cfg)) = cache.get(region)
            && at.elapsed() < self.ttl
        {
            return Ok(cfg.clone());
        }
        let cfg = Arc::new(client.describe_available_db_config(region).await?);
        cache.insert(region.to_owned(), (Instant::now(), cfg.clone()));
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds::wire::Envelope;

    fn beijing() -> DbConfig {
        let text = include_str!("../../tests/fixtures/cds/describe-available-db-config.CN_Beijing_A.json");
        serde_json::from_str::<Envelope>(text).unwrap().data_as().unwrap()
    }

    /// A small catalogue: one product per `(version, ArchitectureType, RAM GB, PaasGoodsId)`, in
    /// this order.
    fn catalogue(offers: &[(&str, i64, i64, i64)]) -> DbConfig {
        use crate::cds::wire::{ArchitectureOffer, ComputeRole, CpuRam, Product, Standards};
        let products = offers
            .iter()
            .map(|&(version, architecture_type, ram, id)| Product {
                version: version.into(),
                architectures: vec![ArchitectureOffer {
                    architecture_type: Some(architecture_type),
                    compute_roles: vec![ComputeRole {
                        standards: Standards {
                            cpu_ram: vec![CpuRam {
                                paas_goods_id: Some(id),
                                ram: Some(ram),
                                ..CpuRam::default()
                            }],
                            ..Standards::default()
                        },
                        ..ComputeRole::default()
                    }],
                    ..ArchitectureOffer::default()
                }],
            })
            .collect();
        DbConfig {
            products,
            ..DbConfig::default()
        }
    }

    fn flavor(version: &str, architecture: Architecture, ram_gb: i64) -> Flavor {
        Flavor {
            version: version.into(),
            architecture,
            ram_gb,
        }
    }

    #[test]
    fn the_first_matching_offer_wins() {
        let cfg = catalogue(&[("5.0", 2, 4, 20), ("5.0", 1, 4, 10), ("5.0", 1, 4, 11)]);
        assert_eq!(
            resolve(&cfg, "R", &flavor("5.0", Architecture::MasterReplica, 4)),
            Ok(10)
        );
        assert_eq!(resolve(&cfg, "R", &flavor("5.0", Architecture::Cluster, 4)), Ok(20));
    }

    #[test]
    fn the_offers_listed_are_deduplicated_and_name_unknown_types() {
        let cfg = catalogue(&[("5.0", 1, 4, 10), ("5.0", 1, 4, 11), ("6.0", 7, 2, 30)]);
        let err = resolve(&cfg, "R", &flavor("5.0", Architecture::MasterReplica, 8)).unwrap_err();
        assert_eq!(err.offered, ["5.0 MasterReplica 4GB", "6.0 type7 2GB"]);
        assert_eq!(err.flavor, "5.0 MasterReplica 8GB");
        let err = resolve(&catalogue(&[]), "R", &flavor("5.0", Architecture::Cluster, 1)).unwrap_err();
        assert!(err.to_string().ends_with("it offers: nothing"), "{err}");
    }

    #[test]
    fn resolves_documented_flavors() {
        let cfg = beijing();
        let f = flavor;
        assert_eq!(
            resolve(
                &cfg,
                "CN_Beijing_A",
                &f("2.8", Architecture::EconomicalMasterReplica, 4)
            ),
            Ok(12467)
        );
        assert_eq!(
            resolve(
                &cfg,
                "CN_Beijing_A",
                &f("2.8", Architecture::EconomicalMasterReplica, 1)
            ),
            Ok(12461)
        );
        let id = resolve(&cfg, "CN_Beijing_A", &f("5.0", Architecture::MasterReplica, 4)).unwrap();
        assert!((12923..=12941).contains(&id), "{id}");
        let id = resolve(&cfg, "CN_Beijing_A", &f("5.0", Architecture::Cluster, 8)).unwrap();
        assert!((13385..=13403).contains(&id), "{id}");
    }

    #[test]
    fn unknown_flavor_lists_the_offers() {
        let cfg = beijing();
        let err = resolve(
            &cfg,
            "CN_Beijing_A",
            &Flavor {
                version: "7.0".into(),
                architecture: Architecture::Cluster,
                ram_gb: 3,
            },
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("flavor 7.0 Cluster 3GB is not offered in region CN_Beijing_A; it offers: "),
            "{msg}"
        );
        assert!(
            msg.contains("5.0 MasterReplica 4GB") && msg.contains("2.8 EconomicalMasterReplica 64GB"),
            "{msg}"
        );
        assert_eq!(err.offered.len(), offers(&cfg).len());
    }

    #[test]
    fn architectures_round_trip_through_the_cloud_type() {
        for a in Architecture::ALL {
            assert_eq!(Architecture::from_cloud_type(a.cloud_type()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
        assert_eq!(Architecture::from_cloud_type(7), None);
    }
}
