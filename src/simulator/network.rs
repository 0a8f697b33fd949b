//! The simulated VDC service (`/network`, `DescribeVdc`): VDCs and their private networks, the
//! free IPs each network has left, and the checks a create's `VdcId`/`BasePipeId` must pass.

use std::collections::BTreeMap;

use super::ApiError;
use super::state::Cloud;
use crate::cds::wire::{PrivateNetwork, Vdc};

/// VDCs per page of `DescribeVdc` (`PageSize` is only in the SDK; the docs name no default).
pub const PAGE_SIZE: usize = 10;

/// One page of `DescribeVdc`.
#[derive(Debug)]
pub struct VdcPage {
    /// The VDCs on it.
    pub vdcs: Vec<Vdc>,
    /// Its number, from 1.
    pub page_number: i64,
    /// How many pages the listing has (at least 1).
    pub page_count: i64,
}

/// A VDC added by a flag: `VDC_ID:REGION:NETWORK_ID[:FREE_IPS]` (default 253 free IPs, a /24).
pub fn parse_vdc_flag(spec: &str) -> Result<(String, String, String, i64), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let free = match parts.get(3) {
        None => 253,
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("free IPs {n:?} is not a count"))?,
    };
    match parts[..] {
        [vdc, region, network] | [vdc, region, network, _] if ![vdc, region, network].contains(&"") => {
            Ok((vdc.to_owned(), region.to_owned(), network.to_owned(), free))
        }
        _ => Err("expected VDC_ID:REGION:NETWORK_ID[:FREE_IPS]".into()),
    }
}

impl Cloud {
    /// Adds a private network (and its VDC, unless known) with `free` IPs.
    pub fn add_network(&mut self, vdc_id: &str, region_id: &str, network_id: &str, free: i64) {
        let idx = match self.vdcs.iter().position(|v| v.vdc_id == vdc_id) {
            Some(i) => i,
            None => {
                self.vdcs.push(Vdc {
                    vdc_id: vdc_id.to_owned(),
                    vdc_name: format!("vdc-{}", vdc_id.chars().take(8).collect::<String>()),
                    region_id: region_id.to_owned(),
                    ..Vdc::default()
                });
                self.vdcs.len() - 1
            }
        };
        let vdc = &mut self.vdcs[idx];
        vdc.private_network.retain(|n| n.private_id != network_id);
        vdc.private_network.push(PrivateNetwork {
            private_id: network_id.to_owned(),
            name: format!("private-{}", network_id.chars().take(8).collect::<String>()),
            status: "ok".into(),
            unuse_ip_num: Some(free),
            segments: vec!["10.240.0.0/16~10.240.255.255/16".into()],
        });
    }

    /// `DescribeVdc`: filtered by `RegionId` and `VdcId` (exact) and `Keyword` (in the name),
    /// `PageSize` VDCs (default [`PAGE_SIZE`]) on page `PageNumber` (default 1).
    pub fn describe_vdcs(&self, params: &BTreeMap<String, String>) -> Result<VdcPage, ApiError> {
        let get = |k: &str| params.get(k).filter(|v| !v.is_empty());
        if let Some(region) = get("RegionId")
            && !self.regions.iter().any(|r| &r.region_id == region)
        {
            return Err(ApiError::bad_request(
                "InvalidRegionID.Malformed",
                "The specified parameter   \"RegionId\" is not valid.",
            ));
        }
        let number = |k: &str, default: usize| match get(k) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::bad_request("InvalidParameter", format!("{k} {v:?} is not a positive integer"))
            }),
        };
        let (page, size) = (number("PageNumber", 1)?, number("PageSize", PAGE_SIZE)?);
        let matching: Vec<&Vdc> = self
            .vdcs
            .iter()
            .filter(|v| get("RegionId").is_none_or(|r| &v.region_id == r))
            .filter(|v| get("VdcId").is_none_or(|id| &v.vdc_id == id))
            .filter(|v| get("Keyword").is_none_or(|k| v.vdc_name.contains(k.as_str())))
            .collect();
        if let Some(id) = get("VdcId")
            && matching.is_empty()
            && !self.vdcs.iter().any(|v| &v.vdc_id == id)
        {
            return Err(ApiError::bad_request("VDCNotFound", "the VDC has deleted."));
        }
        Ok(VdcPage {
            page_count: matching.len().div_ceil(size).max(1) as i64,
            page_number: page as i64,
            vdcs: matching
                .into_iter()
                .skip((page - 1) * size)
                .take(size)
                .cloned()
                .collect(),
        })
    }

    /// Checks that `BasePipeId` is a private network of VDC `VdcId` in `RegionId` with `amount`
    /// free IPs, as the cloud refuses an order it cannot place (`InvalidParameter`).
    pub fn check_network(&self, region_id: &str, vdc_id: &str, pipe_id: &str, amount: i64) -> Result<(), ApiError> {
        let refuse = |message: String| Err(ApiError::bad_request("InvalidParameter", message));
        let Some(vdc) = self.vdcs.iter().find(|v| v.vdc_id == vdc_id) else {
            return refuse(format!("VdcId {vdc_id} does not exist"));
        };
        if vdc.region_id != region_id {
            return refuse(format!(
                "VdcId {vdc_id} is in region {}, not {region_id}",
                vdc.region_id
            ));
        }
        let Some(network) = vdc.private_network(pipe_id) else {
            return refuse(format!("BasePipeId {pipe_id} is not a private network of VDC {vdc_id}"));
        };
        if network.unuse_ip_num.is_some_and(|free| free < amount) {
            return refuse(format!("private network {pipe_id} has no free IP address"));
        }
        Ok(())
    }

    /// Takes (`delta` < 0) or gives back (`delta` > 0) IPs of a private network.
    pub fn use_ips(&mut self, vdc_id: &str, pipe_id: &str, delta: i64) {
        let network = self
            .vdcs
            .iter_mut()
            .filter(|v| v.vdc_id == vdc_id)
            .flat_map(|v| v.private_network.iter_mut())
            .find(|n| n.private_id == pipe_id);
        if let Some(free) = network.and_then(|n| n.unuse_ip_num.as_mut()) {
            *free = (*free + delta).max(0);
        }
    }

    /// The name of VDC `vdc_id`, if known.
    pub fn vdc_name(&self, vdc_id: &str) -> Option<&str> {
        self.vdcs
            .iter()
            .find(|v| v.vdc_id == vdc_id)
            .map(|v| v.vdc_name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::default_cloud;
    use crate::simulator::state::Delays;

    fn cloud() -> Cloud {
        default_cloud(
            Delays {
                create_ms: 0,
                delete_ms: 0,
                backup_ms: 0,
            },
            3,
        )
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_default_vdc_is_the_documentation_example() {
        let c = cloud();
        let page = c.describe_vdcs(&params(&[])).unwrap();
        assert_eq!((page.page_number, page.page_count, page.vdcs.len()), (1, 1, 1));
        let vdc = &page.vdcs[0];
        assert_eq!(
            (vdc.vdc_id.as_str(), vdc.region_id.as_str()),
            ("0bb08ed7-e686-4168-93e5-e0187579753b", "CN_Beijing_A")
        );
        assert_eq!(vdc.private_network[0].unuse_ip_num, Some(253));
    }

    #[test]
    fn listings_filter_and_page() {
        let mut c = cloud();
        for i in 0..23 {
            c.add_network(&format!("v{i:02}"), "CN_Shanghai_C", "p", 1);
        }
        let p = |pairs: &[(&str, &str)]| c.describe_vdcs(&params(pairs)).unwrap();
        let shanghai = p(&[("RegionId", "CN_Shanghai_C")]);
        assert_eq!((shanghai.page_count, shanghai.vdcs.len()), (3, 10));
        let last = p(&[("RegionId", "CN_Shanghai_C"), ("PageNumber", "3")]);
        assert_eq!(
            last.vdcs.iter().map(|v| v.vdc_id.as_str()).collect::<Vec<_>>(),
            ["v20", "v21", "v22"]
        );
        assert_eq!(p(&[("VdcId", "v07")]).vdcs.len(), 1);
        assert_eq!(p(&[("Keyword", "cdsApi")]).vdcs.len(), 1);
        assert_eq!(p(&[("RegionId", "CN_Beijing_A"), ("VdcId", "v07")]).vdcs.len(), 0);
        let gone = c.describe_vdcs(&params(&[("VdcId", "nope")])).unwrap_err();
        assert_eq!(gone.code, "VDCNotFound");
        let bad = c.describe_vdcs(&params(&[("RegionId", "Mars_1")])).unwrap_err();
        assert_eq!(bad.code, "InvalidRegionID.Malformed");
        let bad = c.describe_vdcs(&params(&[("PageNumber", "0")])).unwrap_err();
        assert_eq!(bad.code, "InvalidParameter");
    }

    #[test]
    fn a_create_needs_a_known_network_with_free_ips() {
        let mut c = cloud();
        c.add_network("v", "CN_Beijing_A", "p", 2);
        assert!(c.check_network("CN_Beijing_A", "v", "p", 2).is_ok());
        for (region, vdc, pipe, amount, says) in [
            ("CN_Beijing_A", "x", "p", 1, "VdcId x does not exist"),
            ("CN_Shanghai_C", "v", "p", 1, "is in region CN_Beijing_A"),
            ("CN_Beijing_A", "v", "q", 1, "BasePipeId q is not a private network"),
            ("CN_Beijing_A", "v", "p", 3, "no free IP"),
        ] {
            let e = c.check_network(region, vdc, pipe, amount).unwrap_err();
            assert_eq!(e.code, "InvalidParameter");
            assert!(e.message.contains(says), "{}", e.message);
        }
        c.use_ips("v", "p", -2);
        assert!(c.check_network("CN_Beijing_A", "v", "p", 1).is_err());
        c.use_ips("v", "p", 1);
        assert!(c.check_network("CN_Beijing_A", "v", "p", 1).is_ok());
    }

    #[test]
    fn flags_add_networks() {
        assert_eq!(
            parse_vdc_flag("v:CN_Beijing_A:p").unwrap(),
            ("v".into(), "CN_Beijing_A".into(), "p".into(), 253)
        );
        assert_eq!(parse_vdc_flag("v:r:p:0").unwrap().3, 0);
        for bad in ["v:r", "v::p", "v:r:p:-1", "v:r:p:x", "v:r:p:1:2"] {
            assert!(parse_vdc_flag(bad).is_err(), "{bad}");
        }
    }
}
