//! Preflight: before an order is placed, is the region on sale, the VDC in it, `basePipeId` one of
//! its private networks with a free IP, and the `PaasGoodsId` offered there? A pure check over
//! what the cloud said ([`Facts`]), and a per-account cache of what it said ([`Preflight`]).
//!
//! A preflight only ever blocks an order on a positive finding: what it could not look up (the
//! account may not be allowed to call `/network`, or the cloud may be down) is skipped, and the
//! create goes on as it did before there was a preflight, with the cloud's own checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::catalogue::{Catalogue, offers};
use super::client::{CdsClient, VdcFilter};
use super::error::CdsError;
use super::wire::{CreateInstanceRequest, DbConfig, Region, Vdc};

/// A finding older than this is looked up again before it blocks an order: a VDC created or an
/// IP freed a minute ago must not stall an object for a whole TTL.
pub const CONFIRM_AGE: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered (and its check skipped) before it is tried again.
const FAILED_LOOKUP_TTL: Duration = Duration::from_secs(60);
/// At most this many alternatives are named in a message.
const NAMED: usize = 10;

/// What an order asks for, as the preflight sees it.
#[derive(Clone, Debug)]
pub struct Order<'a> {
    /// `RegionId`.
    pub region_id: &'a str,
    /// `VdcId`.
    pub vdc_id: &'a str,
    /// `BasePipeId`.
    pub base_pipe_id: &'a str,
    /// `PaasGoodsId`.
    pub paas_goods_id: i64,
    /// How many instances (IPs) it takes.
    pub amount: i64,
}

impl<'a> From<&'a CreateInstanceRequest> for Order<'a> {
    fn from(r: &'a CreateInstanceRequest) -> Self {
        Self {
            region_id: &r.region_id,
            vdc_id: &r.vdc_id,
            base_pipe_id: &r.base_pipe_id,
            paas_goods_id: r.paas_goods_id.unwrap_or_default(),
            amount: r.amount.unwrap_or(1),
        }
    }
}

/// What the cloud said, each part `None` when it could not be looked up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    /// `DescribeRegins`.
    pub regions: Option<&'a [Region]>,
    /// `DescribeVdc` of the order's region.
    pub vdcs: Option<&'a [Vdc]>,
    /// The order's VDC looked up by id, wherever it is (only asked to explain a miss).
    pub vdc_by_id: Option<&'a Vdc>,
    /// `DescribeAvailableDBConfig` of the order's region.
    pub catalogue: Option<&'a DbConfig>,
}

/// Why an order would fail: each names the problem and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// The region does not exist or Redis is not sold there.
    #[error("Redis is not on sale in region {region}; regions on sale: {on_sale} (see `cds regions`)")]
    RegionNotOnSale {
        /// The order's region.
        region: String,
        /// Some regions on sale.
        on_sale: String,
    },
    /// The VDC is not in the region.
    #[error(
        "VDC {vdc} is not in region {region}{elsewhere}; VDCs in {region}: {in_region} (see `cds vdcs --region {region}`)"
    )]
    VdcNotFound {
        /// The order's VDC.
        vdc: String,
        /// The order's region.
        region: String,
        /// ` (it is in X)` when the VDC exists in another region.
        elsewhere: String,
        /// The VDCs the region has.
        in_region: String,
    },
    /// `basePipeId` is not a private network of the VDC.
    #[error(
        "basePipeId {network} is not a private network of VDC {vdc}; its private networks: {networks} (see `cds vdcs`)"
    )]
    NetworkNotFound {
        /// The order's network.
        network: String,
        /// The order's VDC.
        vdc: String,
        /// The VDC's private networks.
        networks: String,
    },
    /// The network has no free IP for the instance.
    #[error(
        "private network {network} of VDC {vdc} has {free} free IP addresses, {needed} needed; free some or choose another network (see `cds vdcs`)"
    )]
    NetworkFull {
        /// The order's network.
        network: String,
        /// The order's VDC.
        vdc: String,
        /// Its free IPs.
        free: i64,
        /// IPs the order takes.
        needed: i64,
    },
    /// The region's catalogue does not offer the `PaasGoodsId`.
    #[error(
        "paasGoodsId {goods} is not offered in region {region} (see `cds flavors --region {region}`, or set spec.flavor)"
    )]
    GoodsNotOffered {
        /// The order's goods id.
        goods: i64,
        /// The order's region.
        region: String,
    },
}

impl Finding {
    /// Whether only a change of the object can clear it (a full network can drain on its own).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::NetworkFull { .. })
    }
}

fn named<'a>(items: impl Iterator<Item = String> + 'a) -> String {
    let all: Vec<String> = items.collect();
    match all.len() {
        0 => "none".into(),
        n if n > NAMED => format!("{} and {} more", all[..NAMED].join(", "), n - NAMED),
        _ => all.join(", "),
    }
}

fn labelled(id: &str, name: &str) -> String {
    if name.is_empty() {
        id.to_owned()
    } else {
        format!("{id} ({name})")
    }
}

/// Checks `order` against `facts`, in the order a person would fix things: region, VDC,
/// network, free IPs, goods. A check whose facts are unknown passes.
pub fn check(order: &Order<'_>, facts: &Facts<'_>) -> Result<(), Finding> {
    let region = order.region_id;
    if let Some(regions) = facts.regions
        && !regions.iter().any(|r| r.region_id == region && r.on_sale())
    {
        let on_sale = regions.iter().filter(|r| r.on_sale()).map(|r| r.region_id.clone());
        return Err(Finding::RegionNotOnSale {
            region: region.into(),
            on_sale: named(on_sale),
        });
    }
    if let Some(vdcs) = facts.vdcs {
        let Some(vdc) = vdcs.iter().find(|v| v.vdc_id == order.vdc_id) else {
            let elsewhere = facts
                .vdc_by_id
                .filter(|v| v.vdc_id == order.vdc_id && v.region_id != region)
                .map(|v| format!(" (it is in {})", v.region_id))
                .unwrap_or_default();
            return Err(Finding::VdcNotFound {
                vdc: order.vdc_id.into(),
                region: region.into(),
                elsewhere,
                in_region: named(vdcs.iter().map(|v| labelled(&v.vdc_id, &v.vdc_name))),
            });
        };
        let Some(network) = vdc.private_network(order.base_pipe_id) else {
            return Err(Finding::NetworkNotFound {
                network: order.base_pipe_id.into(),
                vdc: order.vdc_id.into(),
                networks: named(vdc.private_network.iter().map(|n| labelled(&n.private_id, &n.name))),
            });
        };
        if let Some(free) = network.unuse_ip_num.filter(|free| *free < order.amount) {
            return Err(Finding::NetworkFull {
                network: order.base_pipe_id.into(),
                vdc: order.vdc_id.into(),
                free,
                needed: order.amount,
            });
        }
    }
    if let Some(cfg) = facts.catalogue
        && !offers(cfg).iter().any(|o| o.paas_goods_id == order.paas_goods_id)
    {
        return Err(Finding::GoodsNotOffered {
            goods: order.paas_goods_id,
            region: region.into(),
        });
    }
    Ok(())
}

/// A lookup the preflight could not make, so its check was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The action, e.g. `DescribeVdc`.
    pub action: &'static str,
    /// Why, as the error's metric label (never a secret).
    pub why: String,
}

impl Skipped {
    fn of(action: &'static str, why: &str) -> Self {
        Self {
            action,
            why: why.to_owned(),
        }
    }
}

/// The result of a preflight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found against the order; the lookups it could not make.
    Pass(Vec<Skipped>),
    /// The order would fail.
    Fail(Finding),
}

/// A cached lookup: when it was made and what it gave.
struct Looked<T> {
    at: Instant,
    value: Result<Arc<T>, String>,
}

impl<T> Looked<T> {
    fn fresh(&self, max_age: Duration) -> bool {
        let max_age = if self.value.is_ok() {
            max_age
        } else {
            max_age.min(FAILED_LOOKUP_TTL)
        };
        self.at.elapsed() < max_age
    }
}

/// What one account's cloud said about regions and VDCs, each looked up at most once per TTL
/// (concurrent askers wait for one lookup).
pub struct Preflight {
    ttl: Duration,
    regions: Mutex<Option<Looked<Vec<Region>>>>,
    vdcs: Mutex<HashMap<String, Looked<Vec<Vdc>>>>,
}

impl Preflight {
    /// An empty cache whose lookups live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            regions: Mutex::new(None),
            vdcs: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `order`. A finding from lookups older than [`CONFIRM_AGE`] is confirmed by fresh
    /// ones before it blocks the order.
    pub async fn check(&self, client: &CdsClient, catalogue: &Catalogue, order: &Order<'_>) -> Verdict {
        match self.check_with(client, catalogue, order, self.ttl, false).await {
            Verdict::Fail(_) => {
                let confirm_age = CONFIRM_AGE.min(self.ttl);
                self.check_with(client, catalogue, order, confirm_age, true).await
            }
            pass => pass,
        }
    }

    /// One pass over lookups no older than `max_age`; with `explain`, a VDC missing from its
    /// region is looked up by id, to say where it is.
    async fn check_with(
        &self,
        client: &CdsClient,
        catalogue: &Catalogue,
        order: &Order<'_>,
        max_age: Duration,
        explain: bool,
    ) -> Verdict {
        let mut skipped = vec![];
        let regions = self.regions(client, max_age).await;
        if let Err(why) = &regions {
            skipped.push(Skipped::of("DescribeRegins", why));
        }
        let vdcs = self.vdcs(client, order.region_id, max_age).await;
        if let Err(why) = &vdcs {
            skipped.push(Skipped::of("DescribeVdc", why));
        }
        let catalogue = catalogue.config(client, order.region_id).await.map_err(|e| label(&e));
        let mut facts = Facts {
            regions: regions.as_deref().ok().map(Vec::as_slice),
            vdcs: vdcs.as_deref().ok().map(Vec::as_slice),
            vdc_by_id: None,
            catalogue: catalogue.as_deref().ok(),
        };
        let region_on_sale = check(
            order,
            &Facts {
                vdcs: None,
                catalogue: None,
                ..facts
            },
        )
        .is_ok();
        if region_on_sale {
            // A region not on sale has no catalogue (the cloud answers InvalidParameter): only
            // then is a failed catalogue lookup worth reporting as skipped.
            if let Err(why) = &catalogue {
                skipped.push(Skipped {
                    action: "DescribeAvailableDBConfig",
                    why: why.clone(),
                });
            }
        }
        let by_id;
        if explain && let Err(Finding::VdcNotFound { .. }) = check(order, &facts) {
            by_id = self.vdc_by_id(client, order.vdc_id).await;
            facts.vdc_by_id = by_id.as_ref();
        }
        match check(order, &facts) {
            Ok(()) => Verdict::Pass(skipped),
            Err(finding) => Verdict::Fail(finding),
        }
    }

    /// Counts the IPs an order placed (or maybe placed) as taken in the cached listing, so the
    /// next order in the same network is checked against what is left, not what was.
    pub async fn placed(&self, order: &Order<'_>) {
        let mut cached = self.vdcs.lock().await;
        let Some(Looked { value: Ok(vdcs), .. }) = cached.get_mut(order.region_id) else {
            return;
        };
        let network = Arc::make_mut(vdcs)
            .iter_mut()
            .filter(|v| v.vdc_id == order.vdc_id)
            .flat_map(|v| v.private_network.iter_mut())
            .find(|n| n.private_id == order.base_pipe_id);
        if let Some(free) = network.and_then(|n| n.unuse_ip_num.as_mut()) {
            *free = (*free - order.amount).max(0);
        }
    }

    async fn regions(&self, client: &CdsClient, max_age: Duration) -> Result<Arc<Vec<Region>>, String> {
        let mut cached = self.regions.lock().await;
        if let Some(looked) = cached.as_ref().filter(|l| l.fresh(max_age)) {
            return looked.value.clone();
        }
        let value = client.describe_regions().await.map(Arc::new).map_err(|e| label(&e));
        *cached = Some(Looked {
            at: Instant::now(),
            value: value.clone(),
        });
        value
    }

    async fn vdcs(&self, client: &CdsClient, region: &str, max_age: Duration) -> Result<Arc<Vec<Vdc>>, String> {
        let mut cached = self.vdcs.lock().await;
        if let Some(looked) = cached.get(region).filter(|l| l.fresh(max_age)) {
            return looked.value.clone();
        }
        let filter = VdcFilter {
            region_id: Some(region.to_owned()),
            ..VdcFilter::default()
        };
        let value = client.describe_vdcs(&filter).await.map(Arc::new).map_err(|e| label(&e));
        cached.insert(
            region.to_owned(),
            Looked {
                at: Instant::now(),
                value: value.clone(),
            },
        );
        value
    }

    /// The VDC with this id in any region, to say where it is (not cached: asked only on a miss,
    /// at most once per [`CONFIRM_AGE`] per object through the confirmation).
    async fn vdc_by_id(&self, client: &CdsClient, vdc_id: &str) -> Option<Vdc> {
        let filter = VdcFilter {
            vdc_id: Some(vdc_id.to_owned()),
            ..VdcFilter::default()
        };
        let found = client.describe_vdcs(&filter).await.ok()?;
        found.into_iter().find(|v| v.vdc_id == vdc_id)
    }
}

/// What a failed lookup is remembered as: its code or kind, never its message.
fn label(e: &CdsError) -> String {
    e.metric_label()
}

#[cfg(test)]
mod tests;
