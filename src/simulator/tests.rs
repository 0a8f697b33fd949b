//! The simulator's own unit tests: access keys, start errors, the write log, the data files.

use std::time::Duration;

use serde_json::Value;

use super::config::{DEFAULT_CATALOGUE, DEFAULT_REGIONS, DEFAULT_VDCS, parse_data};
use super::state::Delays;
use super::*;
use crate::cds::wire::{CreateInstanceRequest, DbConfig, Region, Vdc};

#[test]
fn access_keys_come_from_flags_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "# team keys\nAKID2:secret-two\n\n  AKID3:secret:with:colons  \n").unwrap();
    let mut config = SimulatorConfig::for_tests("AKID1", "secret-one", Duration::ZERO, Duration::ZERO);
    config.access_keys_file = Some(file);
    let keys = config.keys().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&keys["AKID3"]),
        "secret:with:colons"
    );
    config.access_keys = vec!["no-colon".into()];
    assert!(matches!(config.keys(), Err(StartError::MalformedAccessKey)));
    let empty = SimulatorConfig {
        access_keys: vec![],
        ..SimulatorConfig::for_tests("a", "b", Duration::ZERO, Duration::ZERO)
    };
    let e = empty.keys().unwrap_err();
    assert!(matches!(e, StartError::NoAccessKey) && e.to_string().contains("--access-key"));
}

#[tokio::test]
async fn start_errors_are_typed_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let base = || SimulatorConfig::for_tests("a", "b", Duration::ZERO, Duration::ZERO);
    let missing = dir.path().join("absent.json");
    let e = start(SimulatorConfig {
        regions_file: Some(missing.clone()),
        ..base()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(&e, StartError::Read { path, .. } if *path == missing), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
    let garbage = dir.path().join("catalogue.json");
    std::fs::write(&garbage, "not json").unwrap();
    let e = start(SimulatorConfig {
        catalogue_file: Some(garbage),
        ..base()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(e, StartError::Parse { .. }), "{e:?}");
    let e = start(SimulatorConfig {
        fault_errors: vec!["CreateDBInstance=boom:1".into()],
        ..base()
    })
    .await
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .starts_with("bad fault \"CreateDBInstance=boom:1\": unknown error kind"),
        "{e}"
    );
    let e = start(SimulatorConfig {
        redis_backend: true,
        redis_server: dir.path().join("no-redis-server").display().to_string(),
        ..base()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(e, StartError::RedisBackend { .. }), "{e:?}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = start(SimulatorConfig {
        listen: taken.local_addr().unwrap(),
        ..base()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(e, StartError::Listen { .. }), "{e:?}");
}

#[tokio::test]
async fn the_write_log_says_who_wrote_what_to_an_instance_doing_what() {
    crate::cds::client::install_crypto_provider();
    let mut config = SimulatorConfig::for_tests("AKID1", "secret-one", Duration::ZERO, Duration::from_secs(60));
    config.access_keys.push("AKID2:secret-two".into());
    let sim = start(config).await.unwrap();
    let client = |id: &str, secret: &str| {
        let config = crate::cds::ClientConfig {
            endpoint: sim.endpoint(),
            ..Default::default()
        };
        let creds = crate::cds::Credentials::new(id, secret);
        crate::cds::CdsClient::new(config, creds, crate::cds::rate_limiter(100.0, 100)).unwrap()
    };
    let (one, two) = (client("AKID1", "secret-one"), client("AKID2", "secret-two"));
    let request = CreateInstanceRequest {
        region_id: "CN_Beijing_A".into(),
        vdc_id: TEST_VDC.into(),
        base_pipe_id: TEST_NETWORK.into(),
        instance_name: "logged".into(),
        paas_goods_id: Some(12467),
        password: "pw".into(),
        amount: Some(1),
        ..Default::default()
    };
    let uuid = one.create_instance(&request).await.unwrap().instance_uuid;
    one.delete_instance(&uuid).await.unwrap();
    // The instance is being deleted: a second delete is refused as busy.
    assert!(two.delete_instance(&uuid).await.is_err());
    let get = |path: &'static str| {
        let url = format!("{}{path}", sim.endpoint());
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() }
    };
    let writes = get("/admin/writes").await;
    let seen: Vec<(&str, &str, &str, &str, bool)> = writes["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["accessKeyId"].as_str().unwrap(),
                w["action"].as_str().unwrap(),
                w["instanceState"].as_str().unwrap_or("-"),
                w["outcome"].as_str().unwrap(),
                w["executed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("AKID1", "CreateDBInstance", "-", "success", true),
            ("AKID1", "DeleteDBInstance", "running", "success", true),
            ("AKID2", "DeleteDBInstance", "deleting", "ResourceInUse", true),
        ]
    );
    assert!(writes["writes"][0]["instanceName"] == "logged" && writes["writes"][2]["instanceUuid"] == uuid.as_str());
    let calls = get("/admin/calls").await;
    assert_eq!(calls["byAccessKey"]["AKID2"]["DeleteDBInstance"]["ResourceInUse"], 1);
    assert_eq!(calls["byAccessKey"]["AKID1"]["CreateDBInstance"]["success"], 1);
    sim.shutdown().await;
}

/// The default data is the simulator's own copy of the recorded answers the parsing tests
/// use (`tests/fixtures/cds`); it must keep parsing, and say the same.
#[test]
fn default_data_parses_and_matches_the_recorded_answers() {
    let regions: Vec<Region> = parse_data(DEFAULT_REGIONS).unwrap();
    let catalogue: DbConfig = parse_data(DEFAULT_CATALOGUE).unwrap();
    assert_eq!(regions.len(), 25);
    assert_eq!(regions.iter().filter(|r| !r.on_sale()).count(), 3);
    assert!(crate::cds::catalogue::offers(&catalogue).len() > 30);
    let recorded_regions: Vec<Region> =
        parse_data(include_str!("../../tests/fixtures/cds/describe-regins.json")).unwrap();
    let recorded_catalogue: DbConfig = parse_data(include_str!(
        "../../tests/fixtures/cds/describe-available-db-config.CN_Beijing_A.json"
    ))
    .unwrap();
    assert_eq!(regions, recorded_regions);
    assert_eq!(catalogue, recorded_catalogue);
    let vdcs: Vec<Vdc> = parse_data(DEFAULT_VDCS).unwrap();
    let recorded_vdcs: Vec<Vdc> = parse_data(include_str!("../../tests/fixtures/cds/describe-vdc.json")).unwrap();
    assert_eq!(vdcs, recorded_vdcs);
    let cloud = default_cloud(
        Delays {
            create_ms: 0,
            delete_ms: 0,
            backup_ms: 0,
        },
        3,
    );
    assert_eq!(cloud.catalogues.len(), 22, "one catalogue per region on sale");
}
