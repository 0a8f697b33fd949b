//! Unit tests of `wire`.

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
fn vdc_fixture_parses_as_the_example_and_the_sdk_spell_it() {
    let env = fixture("describe-vdc.json");
    assert_eq!((env.code.as_str(), env.page_count), (SUCCESS, None));
    let vdcs: Vec<Vdc> = env.data_as_list().unwrap();
    assert_eq!(vdcs.len(), 1);
    let vdc = &vdcs[0];
    assert_eq!(
        (
            vdc.vdc_id.as_str(),
            vdc.vdc_name.as_str(),
            vdc.region_id.as_str(),
            vdc.vdc_status.as_str()
        ),
        (
            "0bb08ed7-e686-4168-93e5-e0187579753b",
            "cdsApi-testaa",
            "CN_Beijing_A",
            ""
        )
    );
    let network = vdc.private_network("4e6f6790-a6b3-11e9-8f88-0242ac110041").unwrap();
    assert_eq!(
        (network.name.as_str(), network.unuse_ip_num),
        ("siwang-api1", Some(253))
    );
    assert_eq!(network.segments, ["10.240.59.0/16~10.240.59.255/16"]);
    let public = &vdc.public_network[0];
    assert_eq!((public.qos, public.segments[0].mask), (Some(20), Some(30)));
    // The doc's table spells some fields otherwise, and numbers as strings: parsed leniently.
    let table: Vec<Vdc> = serde_json::from_str(
        r#"[{"VdcId":"v","VdcStatus":"ok","PrivateNetwork":[{"Id":"x","Ip":"10.0.0.0","UnuseIpNum":"7"}],"PublicNetwork":null}]"#,
    )
    .unwrap();
    assert_eq!(
        (table[0].vdc_status.as_str(), table[0].private_network[0].unuse_ip_num),
        ("ok", Some(7))
    );
    assert!(table[0].public_network.is_empty());
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
fn tags_parse_as_documented_and_odd_ones_are_skipped() {
    let i: Instance = serde_json::from_str(
        r#"{"InstanceUuid":"u","Tags":[{"TagID":3,"TagName":"shop"},{"TagID":"4","TagName":"team"},"bare",7,null]}"#,
    )
    .unwrap();
    let names: Vec<_> = i.tags.iter().map(|t| (t.tag_id, t.tag_name.as_str())).collect();
    assert_eq!(names, [(Some(3), "shop"), (Some(4), "team"), (None, "bare")]);
    assert!(i.has_tag("shop") && !i.has_tag("sho"));
    let back = serde_json::to_value(&i).unwrap();
    assert_eq!(back["Tags"][0], serde_json::json!({"TagID": 3, "TagName": "shop"}));
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

#[test]
fn backup_debug_never_shows_download_urls() {
    let b = Backup {
        backup_id: "b-1".into(),
        desc: "nightly ✓".into(),
        backup_download_url: "https://h/download/SeCrEt".into(),
        ..Backup::default()
    };
    let shown = format!("{b:?}");
    assert!(!shown.contains("SeCrEt"), "{shown}");
    assert!(
        shown.contains("b-1") && shown.contains("backup_download_url: \"***\""),
        "{shown}"
    );
    assert!(shown.contains("backup_intranet_download_url: \"\""), "{shown}");
}
