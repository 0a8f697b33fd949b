//! The preflight on the real control plane against the simulator: an order the cloud would refuse
//! (region not on sale, VDC not in the region, a network not in the VDC or full, a product not
//! offered) is never placed, and the object says what is wrong and how to fix it; a preflight
//! that cannot look things up does not block the create.

mod support;

use cds_redis_operator::crd::Phase;
use serde_json::json;

use crate::support::env::*;

fn stalled(o: &cds_redis_operator::crd::RedisInstance) -> Option<String> {
    status(o)
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| c.reason.clone())
}

#[tokio::test]
async fn an_order_the_cloud_would_refuse_is_not_placed_and_the_object_names_the_fix() {
    let mut sim = fast_sim();
    sim.vdcs.push("vdc-sh:CN_Shanghai_C:pipe-sh".into());
    let e = env("preflight", sim).await;
    let _op = e.operator();
    e.secret("pw", &[("password", "preflight-Pa55word")]).await;
    let doc_network = "4e6f6790-a6b3-11e9-8f88-0242ac110041";
    let cases = [
        (
            "not-on-sale",
            json!({ "regionId": "US_NewYork_A" }),
            "RegionNotOnSale",
            "Redis is not on sale in region US_NewYork_A; regions on sale: ",
        ),
        (
            "unknown-vdc",
            json!({ "vdcId": "vdc-typo" }),
            "VdcNotFound",
            "VDC vdc-typo is not in region CN_Beijing_A; VDCs in CN_Beijing_A: ",
        ),
        (
            "vdc-elsewhere",
            json!({ "vdcId": "vdc-sh" }),
            "VdcNotFound",
            "VDC vdc-sh is not in region CN_Beijing_A (it is in CN_Shanghai_C)",
        ),
        (
            "foreign-network",
            json!({ "basePipeId": doc_network }),
            "NetworkNotFound",
            "is not a private network of VDC vdc-1; its private networks: pipe-1",
        ),
        (
            "goods",
            json!({ "paasGoodsId": 999 }),
            "FlavorNotAvailable",
            "paasGoodsId 999 is not offered in region CN_Beijing_A (see `cds flavors --region CN_Beijing_A`",
        ),
    ];
    for (name, extra, _, _) in &cases {
        e.create(name, spec(extra.clone())).await;
    }
    for (name, _, reason, says) in &cases {
        let o = e.wait_reason(name, "Synced", reason).await;
        assert_eq!(stalled(&o).as_deref(), Some(*reason), "{name}: terminal");
        let message = conditions_message(&o, "Synced");
        assert!(message.contains(says), "{name}: {message}");
        assert!(message.ends_with("no order was placed"), "{name}: {message}");
        assert!(status(&o).create_attempt.is_none(), "{name}: no intent is written");
        assert_eq!(status(&o).phase, Some(Phase::Failed), "{name}");
    }
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 0, "no order placed");
    // The lookups are shared: one listing of regions and one of Beijing's VDCs (plus the
    // confirmations of the findings, at most 30 s old) for five objects, not five each.
    let vdc_calls = e.admin.calls_total("DescribeVdc").await;
    assert!(vdc_calls <= 8, "DescribeVdc {vdc_calls} times");
    // A fixed spec is a new order: it passes.
    e.create("fixed", spec(json!({}))).await;
    e.wait_ready("fixed").await;
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 1);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_full_network_is_retried_and_the_order_placed_once_an_ip_is_free() {
    let mut sim = fast_sim();
    sim.vdcs.push("vdc-small:CN_Beijing_A:one-ip:1".into());
    let e = env("netfull", sim).await;
    let _op = e.operator_with(vec!["--preflight-ttl", "2s"], vec![]);
    e.secret("pw", &[("password", "preflight-Pa55word")]).await;
    let small = json!({ "vdcId": "vdc-small", "basePipeId": "one-ip" });
    e.create("first", spec(small.clone())).await;
    e.wait_ready("first").await;
    e.create("second", spec(small)).await;
    let o = e.wait_reason("second", "Synced", "NetworkFull").await;
    assert_eq!(stalled(&o), None, "a full network is not terminal");
    assert_eq!(reason_of(&o, "Reconciling").as_deref(), Some("Retrying"));
    assert!(
        conditions_message(&o, "Synced")
            .contains("private network one-ip of VDC vdc-small has 0 free IP addresses, 1 needed")
    );
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 1);
    // The first instance goes, its IP comes back, the second order is placed.
    e.delete("first").await;
    e.wait_gone("first").await;
    e.wait_ready("second").await;
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 2);
    e.sim.shutdown().await;
}

#[tokio::test]
async fn a_preflight_that_cannot_look_things_up_does_not_block_the_create() {
    let e = env("noprefl", fast_sim()).await;
    // The account may not use the VDC service (or it is down): every DescribeVdc fails.
    e.admin
        .set_faults(json!({ "errors": { "DescribeVdc": { "internalError": 1.0 } } }))
        .await;
    let _op = e.operator();
    e.secret("pw", &[("password", "preflight-Pa55word")]).await;
    e.create("blind", spec(json!({}))).await;
    e.wait_ready("blind").await;
    assert_eq!(e.admin.calls_total("CreateDBInstance").await, 1);
    let skipped = e
        .events("blind")
        .await
        .into_iter()
        .find(|(_, reason, _)| reason == "PreflightSkipped")
        .expect("a PreflightSkipped event");
    assert!(skipped.2.contains("DescribeVdc (InternalError)"), "{}", skipped.2);
    // The same order with a VDC the cloud does not know: the cloud's own check refuses it.
    e.create("blind-typo", spec(json!({ "vdcId": "vdc-typo" }))).await;
    let o = e.wait_reason("blind-typo", "Synced", "CloudRejected").await;
    assert!(conditions_message(&o, "Synced").contains("VdcId vdc-typo does not exist"));
    e.sim.shutdown().await;
}
