//! The preflight's rules, one row per finding, over the recorded answers.

use super::*;
use crate::cds::wire::{Envelope, PrivateNetwork};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cds");
const VDC: &str = "0bb08ed7-e686-4168-93e5-e0187579753b";
const NETWORK: &str = "4e6f6790-a6b3-11e9-8f88-0242ac110041";

fn recorded<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    let env: Envelope = serde_json::from_str(&text).unwrap();
    serde_json::from_str(env.data.get()).unwrap()
}

struct Recorded {
    regions: Vec<Region>,
    vdcs: Vec<Vdc>,
    catalogue: DbConfig,
}

fn recorded_cloud() -> Recorded {
    Recorded {
        regions: recorded("describe-regins.json"),
        vdcs: recorded("describe-vdc.json"),
        catalogue: recorded("describe-available-db-config.CN_Beijing_A.json"),
    }
}

impl Recorded {
    fn facts(&self) -> Facts<'_> {
        Facts {
            regions: Some(&self.regions),
            vdcs: Some(&self.vdcs),
            vdc_by_id: None,
            catalogue: Some(&self.catalogue),
        }
    }
}

fn order() -> Order<'static> {
    Order {
        region_id: "CN_Beijing_A",
        vdc_id: VDC,
        base_pipe_id: NETWORK,
        paas_goods_id: 12467,
        amount: 1,
    }
}

#[test]
fn each_check_names_the_problem_and_the_fix() {
    let cloud = recorded_cloud();
    let elsewhere = Vdc {
        vdc_id: "v-sh".into(),
        region_id: "CN_Shanghai_C".into(),
        ..Vdc::default()
    };
    let unknown_vdc = format!("VDC v-x is not in region CN_Beijing_A; VDCs in CN_Beijing_A: {VDC} (cdsApi-testaa)");
    let unknown_network = format!(
        "basePipeId pipe-x is not a private network of VDC {VDC}; its private networks: {NETWORK} (siwang-api1)"
    );
    let rows: Vec<(&str, Order<'static>, Option<&Vdc>, &str)> = vec![
        (
            "not on sale",
            Order {
                region_id: "US_NewYork_A",
                ..order()
            },
            None,
            "Redis is not on sale in region US_NewYork_A; regions on sale: ",
        ),
        (
            "no such region",
            Order {
                region_id: "Mars_1",
                ..order()
            },
            None,
            "(see `cds regions`)",
        ),
        (
            "unknown VDC",
            Order {
                vdc_id: "v-x",
                ..order()
            },
            None,
            &unknown_vdc,
        ),
        (
            "VDC of another region",
            Order {
                vdc_id: "v-sh",
                ..order()
            },
            Some(&elsewhere),
            "VDC v-sh is not in region CN_Beijing_A (it is in CN_Shanghai_C)",
        ),
        (
            "network of no VDC of ours",
            Order {
                base_pipe_id: "pipe-x",
                ..order()
            },
            None,
            &unknown_network,
        ),
        (
            "network too small",
            Order { amount: 254, ..order() },
            None,
            "has 253 free IP addresses, 254 needed",
        ),
        (
            "goods not offered",
            Order {
                paas_goods_id: 999,
                ..order()
            },
            None,
            "paasGoodsId 999 is not offered in region CN_Beijing_A (see `cds flavors --region CN_Beijing_A`",
        ),
    ];
    for (case, order, by_id, says) in rows {
        let facts = Facts {
            vdc_by_id: by_id,
            ..cloud.facts()
        };
        let finding = check(&order, &facts).expect_err(case);
        assert!(finding.to_string().contains(says), "{case}: {finding}");
        assert_eq!(finding.is_terminal(), case != "network too small", "{case}");
    }
    assert_eq!(check(&order(), &cloud.facts()), Ok(()));
}

#[test]
fn what_could_not_be_looked_up_is_not_checked() {
    let wrong = Order {
        region_id: "US_NewYork_A",
        vdc_id: "v-x",
        base_pipe_id: "pipe-x",
        paas_goods_id: 999,
        amount: 1,
    };
    assert_eq!(check(&wrong, &Facts::default()), Ok(()));
    let cloud = recorded_cloud();
    let only_regions = Facts {
        regions: Some(&cloud.regions),
        ..Facts::default()
    };
    assert!(matches!(
        check(&wrong, &only_regions),
        Err(Finding::RegionNotOnSale { .. })
    ));
    let beijing = Order {
        region_id: "CN_Beijing_A",
        ..wrong
    };
    assert_eq!(check(&beijing, &only_regions), Ok(()));
}

#[test]
fn long_lists_are_cut_and_unknown_free_counts_pass() {
    let networks = (0..25)
        .map(|i| PrivateNetwork {
            private_id: format!("n{i}"),
            ..PrivateNetwork::default()
        })
        .collect();
    let vdcs = vec![Vdc {
        vdc_id: VDC.into(),
        region_id: "CN_Beijing_A".into(),
        private_network: networks,
        ..Vdc::default()
    }];
    let facts = Facts {
        vdcs: Some(&vdcs),
        ..Facts::default()
    };
    let e = check(
        &Order {
            base_pipe_id: "x",
            ..order()
        },
        &facts,
    )
    .unwrap_err();
    assert!(e.to_string().contains("n9 and 15 more"), "{e}");
    // A network whose free count the cloud does not give is not taken for full.
    assert_eq!(
        check(
            &Order {
                base_pipe_id: "n3",
                ..order()
            },
            &facts
        ),
        Ok(())
    );
}

#[tokio::test]
async fn an_order_placed_takes_its_ip_from_the_cached_listing() {
    let cloud = recorded_cloud();
    let preflight = Preflight::new(Duration::from_secs(300));
    preflight.vdcs.lock().await.insert(
        "CN_Beijing_A".into(),
        Looked {
            at: Instant::now(),
            value: Ok(Arc::new(cloud.vdcs.clone())),
        },
    );
    let free = |p: &Preflight| {
        let cached = p.vdcs.try_lock().unwrap();
        let vdcs = cached["CN_Beijing_A"].value.clone().unwrap();
        vdcs[0].private_network[0].unuse_ip_num
    };
    preflight.placed(&order()).await;
    assert_eq!(free(&preflight), Some(252));
    preflight.placed(&Order { amount: 300, ..order() }).await;
    assert_eq!(free(&preflight), Some(0), "never below zero");
    // Another region's order leaves the listing alone.
    preflight
        .placed(&Order {
            region_id: "CN_Shanghai_C",
            ..order()
        })
        .await;
    assert_eq!(free(&preflight), Some(0));
}
