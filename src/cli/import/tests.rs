use clap::Parser as _;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::cluster::{self, Recorded};
use super::manifest::{self, Entry, PASSWORD_PLACEHOLDER, Policies};
use super::names::{self, is_dns_label, object_name, unique_names};
use super::resolve::{self, Placement, Unresolved, segment_holds};
use super::*;
use crate::cds::wire::{Envelope, PrivateNetwork};
use crate::cli::cds::CdsCommand;
use crate::cli::{Cli, Command};
use crate::crd::RedisInstance;

const UUID_A: &str = "0f3c2a91-5d6e-4b7a-9c8d-1e2f3a4b5c6d";
const UUID_B: &str = "ab12cd34-0000-4000-8000-000000000000";

#[test]
fn object_names_are_dns_labels_derived_from_the_instance_name() {
    for (instance_name, want) in [
        ("cache", "cache"),
        ("My Cache_01", "my-cache-01"),
        ("--shop..sessions--", "shop-sessions"),
        ("Redis 主从 prod", "redis-prod"),
        ("k8s-shop-cache-0f3c2a91", "k8s-shop-cache-0f3c2a91"),
        ("缓存", "redis-0f3c2a91"),
        ("", "redis-0f3c2a91"),
    ] {
        assert_eq!(object_name(instance_name, UUID_A), want, "{instance_name:?}");
    }
    let long = object_name(&format!("{}-{}", "a".repeat(62), "b".repeat(10)), UUID_A);
    assert_eq!(long, "a".repeat(62), "cut to 63, without the trailing '-'");
    assert_eq!(object_name("缓存", "--"), "redis", "a UUID without letters or digits");
}

#[test]
fn names_taken_in_one_import_get_the_short_uuid_then_a_counter() {
    let names = unique_names([
        ("cache", UUID_A),
        ("Cache", UUID_B),
        ("CACHE", UUID_B),
        ("other", UUID_A),
        (&"x".repeat(80), UUID_A),
        (&"x".repeat(70), UUID_B),
    ]);
    assert_eq!(names[..4], ["cache", "cache-ab12cd34", "cache-ab12cd34-2", "other"]);
    assert_eq!(names[4], "x".repeat(63));
    assert_eq!(names[5], format!("{}-ab12cd34", "x".repeat(54)));
    assert!(names.iter().all(|n| is_dns_label(n)), "{names:?}");
}

proptest! {
    #[test]
    fn every_derived_name_is_a_dns_label_and_unique(
        list in proptest::collection::vec(("\\PC{0,80}", "[0-9a-f-]{0,36}"), 1..12)
    ) {
        let names = unique_names(list.iter().map(|(n, u)| (n.as_str(), u.as_str())));
        for name in &names {
            prop_assert!(is_dns_label(name), "{:?}", name);
        }
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        prop_assert_eq!(distinct.len(), names.len());
    }
}

#[test]
fn dns_labels() {
    for ok in ["a", "a-b", "0ab", &"a".repeat(63)] {
        assert!(is_dns_label(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64), "缓存"] {
        assert!(!is_dns_label(bad), "{bad}");
    }
    assert_eq!(names::MAX_LEN, 63);
}

fn beijing() -> DbConfig {
    let text = include_str!("../../../tests/fixtures/cds/describe-available-db-config.CN_Beijing_A.json");
    serde_json::from_str::<Envelope>(text).unwrap().data_as().unwrap()
}

fn instance(version: &str, ram: Option<i64>, product: &str) -> Instance {
    Instance {
        instance_uuid: UUID_A.into(),
        instance_name: "cache".into(),
        status: "RUNNING".into(),
        region_id: "CN_Beijing_A".into(),
        vdc_id: "vdc-1".into(),
        ip: "10.240.59.7".into(),
        version: version.into(),
        ram,
        sub_product_name: product.into(),
        ..Instance::default()
    }
}

#[test]
fn the_product_is_found_by_version_memory_and_product_name() {
    let cfg = beijing();
    let goods = |v, ram, p| resolve::paas_goods_id(&instance(v, ram, p), &cfg);
    assert_eq!(goods("5.0", Some(4096), "Redis 主从版"), Ok(12929));
    assert_eq!(goods("4.0", Some(8192), "Redis 集群版"), Ok(20675));
    assert_eq!(goods("4.0", Some(8192), "Redis 经济型主从"), Ok(18518));
    // One architecture offers it: the product name is not needed.
    assert_eq!(goods("5.0", Some(1024), ""), Ok(12923));
    // Two architectures of 4.0 have 8 GB: without a known product name, ambiguous.
    assert_eq!(
        goods("4.0", Some(8192), "Redis unknown"),
        Err(Unresolved::AmbiguousProduct {
            region: "CN_Beijing_A".into(),
            product: "Redis unknown".into(),
            ids: vec![18518, 20675],
        })
    );
    assert!(matches!(
        goods("5.0", Some(3072), "Redis 主从版"),
        Err(Unresolved::NoProduct { ram_mb: 3072, .. })
    ));
    assert_eq!(goods("5.0", None, "Redis 主从版"), Err(Unresolved::Missing("Ram")));
}

fn vdc(networks: &[(&str, &[&str])]) -> Vdc {
    Vdc {
        vdc_id: "vdc-1".into(),
        private_network: networks
            .iter()
            .map(|(id, segments)| PrivateNetwork {
                private_id: (*id).into(),
                segments: segments.iter().map(|s| (*s).to_owned()).collect(),
                ..PrivateNetwork::default()
            })
            .collect(),
        ..Vdc::default()
    }
}

#[test]
fn the_network_is_the_one_whose_segment_holds_the_ip_else_the_only_one() {
    let two = vdc(&[
        ("pipe-a", &["10.240.59.0/16~10.240.59.255/16"]),
        ("pipe-b", &["10.241.0.0/16"]),
    ]);
    let at = |ip: &str, v: &Vdc| {
        let i = Instance {
            ip: ip.into(),
            ..instance("5.0", Some(4096), "")
        };
        resolve::base_pipe_id(&i, v)
    };
    assert_eq!(at("10.240.59.7", &two), Ok("pipe-a".into()));
    assert_eq!(at("10.241.200.1", &two), Ok("pipe-b".into()));
    assert_eq!(
        at("192.168.1.1", &two),
        Err(Unresolved::AmbiguousNetwork {
            vdc: "vdc-1".into(),
            ip: "192.168.1.1".into(),
            networks: vec!["pipe-a".into(), "pipe-b".into()],
        })
    );
    let one = vdc(&[("pipe-only", &["10.240.59.0/16~10.240.59.255/16"])]);
    assert_eq!(at("10.240.0.12", &one), Ok("pipe-only".into()));
    assert_eq!(at("", &one), Ok("pipe-only".into()));
    let overlapping = vdc(&[("pipe-a", &["10.0.0.0/8"]), ("pipe-b", &["10.1.0.0/16"])]);
    assert!(matches!(
        at("10.1.2.3", &overlapping),
        Err(Unresolved::AmbiguousNetwork { .. })
    ));
    assert!(matches!(
        at("10.1.2.3", &vdc(&[])),
        Err(Unresolved::AmbiguousNetwork { .. })
    ));
}

#[test]
fn segments_are_ranges_or_cidrs() {
    let ip = |s: &str| s.parse().unwrap();
    for (segment, addr, holds) in [
        ("10.240.59.0/16~10.240.59.255/16", "10.240.59.0", true),
        ("10.240.59.0/16~10.240.59.255/16", "10.240.59.255", true),
        ("10.240.59.0/16~10.240.59.255/16", "10.240.60.0", false),
        ("10.240.59.0 ~ 10.240.59.9", "10.240.59.9", true),
        ("10.241.16.0/16", "10.241.99.1", true),
        ("10.241.16.0/16", "10.242.0.1", false),
        ("10.241.16.5/32", "10.241.16.5", true),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("10.241.16.5", "10.241.16.5", true),
        ("10.241.16.0/33", "10.241.16.0", false),
        ("garbage", "10.0.0.1", false),
        ("", "10.0.0.1", false),
    ] {
        assert_eq!(segment_holds(segment, ip(addr)), holds, "{segment} {addr}");
    }
}

#[test]
fn a_placement_needs_the_vdc_listed() {
    let cfg = beijing();
    let i = instance("5.0", Some(4096), "Redis 主从版");
    let v = vdc(&[("pipe-1", &[])]);
    assert_eq!(
        resolve::placement(&i, &cfg, Some(&v)),
        Ok(Placement {
            paas_goods_id: 12929,
            base_pipe_id: "pipe-1".into(),
        })
    );
    assert_eq!(
        resolve::placement(&i, &cfg, None),
        Err(Unresolved::UnknownVdc("vdc-1".into()))
    );
    let no_vdc = Instance {
        vdc_id: String::new(),
        ..i
    };
    assert_eq!(
        resolve::placement(&no_vdc, &cfg, None),
        Err(Unresolved::Missing("VdcId"))
    );
}

fn policies() -> Policies {
    Policies {
        namespace: "shop".into(),
        management: ManagementPolicy::Full,
        deletion: DeletionPolicy::Retain,
    }
}

/// The documents of a stream, each with the comment lines that precede it.
fn split(stream: &str) -> Vec<&str> {
    stream.split("---\n").skip(1).collect()
}

#[test]
fn the_yaml_has_a_commented_secret_stub_then_the_redis_instance_per_instance() {
    let a = instance("5.0", Some(4096), "Redis 主从版");
    let b = Instance {
        instance_uuid: UUID_B.into(),
        instance_name: "Sessions".into(),
        ..a.clone()
    };
    let entry = |instance, name: &str, pipe: &str| Entry {
        instance,
        name: name.into(),
        placement: Placement {
            paas_goods_id: 12929,
            base_pipe_id: pipe.into(),
        },
    };
    let entries = [entry(&a, "cache", "pipe-1"), entry(&b, "sessions", "pipe-2")];
    let stream = manifest::documents(&entries, &policies());
    assert!(
        stream.starts_with("# 2 existing CDS Redis instance(s) for namespace shop"),
        "{stream}"
    );
    let docs = split(&stream);
    assert_eq!(docs.len(), 4, "{stream}");
    for (doc, (uuid, name)) in docs.chunks(2).zip([(UUID_A, "cache"), (UUID_B, "Sessions")]) {
        let (comment, secret) = doc[0].split_at(doc[0].find("apiVersion").unwrap());
        assert!(comment.lines().all(|l| l.starts_with('#')), "{comment}");
        assert!(
            comment.contains("FILL IN BEFORE APPLYING") && comment.contains("stringData.password"),
            "{comment}"
        );
        assert!(
            !comment.contains(PASSWORD_PLACEHOLDER),
            "only unfilled values match a search for it"
        );
        assert!(
            comment.contains(uuid) && comment.contains(&format!("{name:?}")),
            "{comment}"
        );
        let secret: Value = serde_norway::from_str(secret).unwrap();
        let object: Value = serde_norway::from_str(doc[1]).unwrap();
        let object_name = object["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            secret,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": format!("{object_name}-password"), "namespace": "shop" },
                "stringData": { "password": PASSWORD_PLACEHOLDER },
            })
        );
        assert_eq!(object["spec"]["instanceUuid"], uuid);
    }
    let object: Value = serde_norway::from_str(docs[3]).unwrap();
    assert_eq!(
        object,
        json!({
            "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
            "metadata": { "name": "sessions", "namespace": "shop" },
            "spec": {
                "regionId": "CN_Beijing_A", "vdcId": "vdc-1", "basePipeId": "pipe-2",
                "paasGoodsId": 12929, "instanceUuid": UUID_B,
                "passwordSecretRef": { "name": "sessions-password", "key": "password" },
                "managementPolicy": "Full", "deletionPolicy": "Retain",
            },
        })
    );
    // What the operator reads back.
    let typed: RedisInstance = serde_norway::from_str(docs[1]).unwrap();
    assert_eq!(typed.spec.instance_uuid.as_deref(), Some(UUID_A));
    assert!(typed.status.is_none());
}

#[test]
fn policies_reach_the_spec() {
    let a = instance("5.0", Some(4096), "Redis 主从版");
    let entry = Entry {
        instance: &a,
        name: "cache".into(),
        placement: Placement {
            paas_goods_id: 1,
            base_pipe_id: "p".into(),
        },
    };
    let observe = Policies {
        management: ManagementPolicy::ObserveOnly,
        deletion: DeletionPolicy::Delete,
        ..policies()
    };
    let obj = manifest::redis_instance(&entry, &observe);
    assert_eq!(obj.spec.management_policy, Some(ManagementPolicy::ObserveOnly));
    assert_eq!(obj.spec.deletion_policy, Some(DeletionPolicy::Delete));
    assert_eq!(obj.metadata.namespace.as_deref(), Some("shop"));
}

fn object(ns: &str, name: &str, spec_uuid: Option<&str>, status_uuid: Option<&str>) -> kube::api::DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "cds.capitalonline.net/v1alpha1", "kind": "RedisInstance",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "instanceUuid": spec_uuid },
        "status": { "instanceUuid": status_uuid },
    }))
    .unwrap()
}

#[test]
fn an_instance_recorded_in_spec_or_status_of_any_object_is_reported_with_its_objects() {
    let records = cluster::records(&[
        object("a", "both", Some(UUID_A), Some(UUID_A)),
        object("b", "asks", Some(UUID_A), None),
        object("c", "created", None, Some(UUID_B)),
        object("d", "fresh", None, None),
    ]);
    assert_eq!(records.len(), 2);
    assert_eq!(records[UUID_A], ["a/both", "b/asks"], "one entry per object");
    let selected = [
        instance("5.0", Some(4096), ""),
        Instance {
            instance_uuid: "free".into(),
            ..Instance::default()
        },
    ];
    let taken = cluster::recorded(&selected, &records);
    assert_eq!(
        taken,
        [Recorded {
            uuid: UUID_A.into(),
            name: "cache".into(),
            by: vec!["a/both".into(), "b/asks".into()],
        }]
    );
    let message = ImportError::AlreadyRecorded(taken).to_string();
    assert!(
        message.contains(UUID_A) && message.contains("a/both, b/asks"),
        "{message}"
    );
}

fn parse(args: &[&str]) -> Result<ImportArgs, clap::Error> {
    let cli = Cli::try_parse_from(["cds-redis-operator", "cds", "import"].iter().chain(args))?;
    let Command::Cds(cds) = cli.command else {
        panic!("not cds")
    };
    let CdsCommand::Import(args) = cds.command else {
        panic!("not import")
    };
    Ok(args)
}

#[test]
fn the_command_line_wants_one_selector_and_a_namespace() {
    let a = parse(&["--uuid", "u1", "--uuid", "u2", "-n", "shop"]).unwrap();
    assert_eq!(a.uuid, ["u1", "u2"]);
    assert_eq!(
        (a.management_policy, a.deletion_policy),
        (ManagementPolicy::Full, DeletionPolicy::Retain)
    );
    assert!(!a.no_cluster_check);
    let a = parse(&[
        "--tag",
        "team",
        "--namespace",
        "shop",
        "--management-policy",
        "ObserveOnly",
        "--deletion-policy",
        "Delete",
        "--no-cluster-check",
    ])
    .unwrap();
    assert_eq!(a.tag.as_deref(), Some("team"));
    assert_eq!(
        (a.management_policy, a.deletion_policy),
        (ManagementPolicy::ObserveOnly, DeletionPolicy::Delete)
    );
    assert!(a.no_cluster_check);
    for bad in [
        &["--namespace", "shop"][..],
        &["--all"],
        &["--all", "--name", "x", "-n", "shop"],
        &["--uuid", "u", "--tag", "t", "-n", "shop"],
        &["--all", "-n", "Shop_NS"],
        &["--all", "-n", "shop", "--management-policy", "Delete"],
        &["--all", "-n", "shop", "--deletion-policy", "Orphan"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} was accepted");
    }
}
