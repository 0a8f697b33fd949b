//! Unit tests of the simulated cloud's rules.

use super::*;
use crate::simulator::default_cloud;

fn cloud() -> Cloud {
    let mut c = default_cloud(
        Delays {
            create_ms: 1000,
            delete_ms: 500,
            backup_ms: 100,
        },
        3,
    );
    c.add_network("vdc", "CN_Beijing_A", "pipe", 100);
    c
}

fn req() -> CreateInstanceRequest {
    CreateInstanceRequest {
        region_id: "CN_Beijing_A".into(),
        vdc_id: "vdc".into(),
        base_pipe_id: "pipe".into(),
        instance_name: "r1".into(),
        paas_goods_id: Some(12467),
        password: "pw".into(),
        amount: Some(1),
        ..Default::default()
    }
}

#[test]
fn instance_goes_creating_running_deleting_gone() {
    let mut c = cloud();
    let created = c.create(&req(), 0, 0).unwrap();
    let uuid = &created.uuids[0];
    let all = BTreeMap::new();
    assert_eq!(c.list(&all, 0)[0].status, "CREATING");
    assert_eq!(c.delete(Some(uuid), 10, true).unwrap_err().code, "ResourceInUse");
    c.advance(999);
    assert_eq!(c.list(&all, 999)[0].status, "CREATING");
    c.advance(1000);
    let i = &c.list(&all, 1000)[0];
    assert_eq!(
        (i.status.as_str(), i.ram, i.version.as_str(), i.port),
        ("RUNNING", Some(4096), "2.8", Some(9736))
    );
    c.delete(Some(uuid), 1000, true).unwrap();
    assert_eq!(c.list(&all, 1000)[0].status, "DELETING");
    assert_eq!(c.delete(Some(uuid), 1001, true).unwrap_err().code, "ResourceInUse");
    assert_eq!(c.advance(1500), vec![uuid.clone()]);
    assert!(c.list(&all, 1500).is_empty());
    assert_eq!(c.delete(Some(uuid), 1600, true).unwrap_err().code, "ResourceNotFound");
}

#[test]
fn create_is_validated_like_the_cloud() {
    let mut c = cloud();
    let code = |c: &mut Cloud, r: CreateInstanceRequest| c.create(&r, 0, 0).unwrap_err().code;
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                password: String::new(),
                ..req()
            }
        ),
        "ArgMissing"
    );
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                paas_goods_id: None,
                ..req()
            }
        ),
        "ArgMissing"
    );
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                paas_goods_id: Some(1),
                ..req()
            }
        ),
        "InvalidParameter"
    );
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                region_id: "US_NewYork_A".into(),
                ..req()
            }
        ),
        "InvalidParameter"
    );
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                region_id: "Mars_A".into(),
                ..req()
            }
        ),
        "InvalidParameter"
    );
    for port in [80, 9100, 9121, 9122, 16379, 70000] {
        assert_eq!(
            code(
                &mut c,
                CreateInstanceRequest {
                    service_port: Some(port),
                    ..req()
                }
            ),
            "InvalidParameter",
            "{port}"
        );
    }
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                amount: Some(0),
                ..req()
            }
        ),
        "InvalidParameter"
    );
    assert_eq!(
        code(
            &mut c,
            CreateInstanceRequest {
                amount: Some(4),
                ..req()
            }
        ),
        "InvalidParameter"
    );
    assert!(c.instances.is_empty());
    assert_eq!(
        c.create(
            &CreateInstanceRequest {
                amount: Some(3),
                ..req()
            },
            0,
            0
        )
        .unwrap()
        .uuids
        .len(),
        3
    );
}

#[test]
fn name_filter_is_loose_and_visibility_lags() {
    let mut c = cloud();
    c.create(
        &CreateInstanceRequest {
            instance_name: "cache".into(),
            ..req()
        },
        0,
        0,
    )
    .unwrap();
    c.create(
        &CreateInstanceRequest {
            instance_name: "cache-2".into(),
            ..req()
        },
        0,
        5000,
    )
    .unwrap();
    let by_name = BTreeMap::from([("InstanceName".to_owned(), "cache".to_owned())]);
    assert_eq!(c.list(&by_name, 0).len(), 1);
    assert_eq!(c.list(&by_name, 5000).len(), 2);
}

#[test]
fn backups_hold_the_instance() {
    let mut c = cloud();
    let uuid = c.create(&req(), 0, 0).unwrap().uuids[0].clone();
    c.advance(1000);
    c.create_backup(Some(&uuid), "nightly", 1000, false).unwrap();
    assert_eq!(c.delete(Some(&uuid), 1050, true).unwrap_err().code, "ResourceInUse");
    c.advance(1100);
    let b = c.backups(Some(&uuid)).unwrap();
    assert_eq!((b.len(), b[0].status.as_str()), (1, "finished"));
    let d = c.download_backup(Some(&uuid), Some(&b[0].backup_id), None).unwrap();
    assert!(!d.backup_download_url.is_empty());
    c.delete_backup(Some(&uuid), Some(&b[0].backup_id), 1100).unwrap();
    assert_eq!(
        c.delete_backup(Some(&uuid), Some(&b[0].backup_id), 1100)
            .unwrap_err()
            .code,
        "ResourceNotFound"
    );
}

fn running_instance(c: &mut Cloud) -> String {
    let uuid = c.create(&req(), 0, 0).unwrap().uuids[0].clone();
    c.advance(1000);
    uuid
}

fn file_of(uuid: &str, backup_id: &str) -> BackupFile {
    BackupFile {
        instance_uuid: uuid.into(),
        backup_id: backup_id.into(),
        file_name: format!("{backup_id}.rdb"),
    }
}

#[test]
fn a_real_backup_finishes_only_with_its_file_and_reports_its_size() {
    let mut c = cloud();
    let uuid = running_instance(&mut c);
    let created = c.create_backup(Some(&uuid), "snap ✓", 1000, true).unwrap();
    c.advance(5000);
    let b = &c.backups(Some(&uuid)).unwrap()[0];
    assert_eq!((b.status.as_str(), b.backup_size), (BACKUP_RUNNING, None));
    let routes = Some(DownloadRoutes {
        authority: "127.0.0.1:1",
    });
    let d = c
        .download_backup(Some(&uuid), Some(&created.backup_id), routes)
        .unwrap();
    assert!(d.backup_download_url.is_empty(), "no file, no URL");
    assert!(c.attach_snapshot(file_of(&uuid, &created.backup_id), 4242, "tok".into()));
    c.advance(5001);
    let b = &c.backups(Some(&uuid)).unwrap()[0];
    assert_eq!(
        (b.status.as_str(), b.backup_size, b.desc.as_str()),
        (BACKUP_FINISHED, Some(4242), "snap ✓")
    );
    let d = c
        .download_backup(Some(&uuid), Some(&created.backup_id), routes)
        .unwrap();
    assert_eq!(d.backup_download_url, "http://127.0.0.1:1/download/tok");
    assert_eq!(
        d.backup_intranet_download_url,
        "http://127.0.0.1:1/download/intranet/tok"
    );
    assert_eq!(
        c.backup_file("tok").map(|f| f.backup_id.as_str()),
        Some(created.backup_id.as_str())
    );
    c.delete_backup(Some(&uuid), Some(&created.backup_id), 5001).unwrap();
    assert!(c.backup_file("tok").is_none());
    assert_eq!(c.take_dropped_files(), vec![format!("{}.rdb", created.backup_id)]);
    assert!(c.take_dropped_files().is_empty(), "handed out once");
}

#[test]
fn a_snapshot_too_late_for_its_backup_is_refused_and_a_failed_one_is_listed() {
    let mut c = cloud();
    let uuid = running_instance(&mut c);
    let gone = c.create_backup(Some(&uuid), "", 1000, true).unwrap().backup_id;
    c.advance(1100);
    c.delete_backup(Some(&uuid), Some(&gone), 1100).unwrap();
    assert!(!c.attach_snapshot(file_of(&uuid, &gone), 1, "t1".into()));
    assert!(c.backup_files.is_empty());
    let failed = c.create_backup(Some(&uuid), "", 1100, true).unwrap().backup_id;
    c.fail_snapshot(&uuid, &failed);
    c.advance(2000);
    assert_eq!(c.backups(Some(&uuid)).unwrap()[0].status, BACKUP_FAILED);
    let lost = c.create_backup(Some(&uuid), "", 2000, true).unwrap().backup_id;
    c.fail_pending_snapshots();
    let listed = c.backups(Some(&uuid)).unwrap();
    assert_eq!(
        listed.iter().find(|b| b.backup_id == lost).unwrap().status,
        BACKUP_FAILED
    );
    assert!(c.pending_snapshots.is_empty());
}

#[test]
fn backup_files_go_with_their_instance_and_on_reset_and_tokens_persist() {
    let mut c = cloud();
    let pristine = c.clone();
    let a = running_instance(&mut c);
    let b = running_instance(&mut c);
    for (uuid, token) in [(&a, "ta"), (&b, "tb")] {
        let id = c.create_backup(Some(uuid), "", 1000, true).unwrap().backup_id;
        assert!(c.attach_snapshot(file_of(uuid, &id), 10, token.into()));
    }
    let text = serde_json::to_string(&c).unwrap();
    let mut restored: Cloud = serde_json::from_str(&text).unwrap();
    assert_eq!(restored.backup_file("tb"), c.backup_file("tb"));
    c.advance(1100);
    c.delete(Some(&a), 1100, true).unwrap();
    c.advance(2000);
    assert!(c.backup_file("ta").is_none() && c.backup_file("tb").is_some());
    assert_eq!(c.take_dropped_files().len(), 1);
    restored.reset_to(&pristine);
    assert_eq!(restored.take_dropped_files().len(), 2);
    assert!(restored.instances.is_empty() && restored.backup_files.is_empty());
}

#[test]
fn tags_given_at_create_are_listed_with_one_id_per_name_and_filter_as_substrings() {
    let mut c = cloud();
    let tagged = |name: &str, tag: Option<&str>| CreateInstanceRequest {
        instance_name: name.into(),
        tag_name: tag.map(str::to_owned),
        ..req()
    };
    c.create(&tagged("a", Some("team-shop")), 0, 0).unwrap();
    c.create(&tagged("b", Some("team-shop")), 0, 0).unwrap();
    c.create(&tagged("c", Some("team")), 0, 0).unwrap();
    c.create(&tagged("d", None), 0, 0).unwrap();
    let all = c.list(&BTreeMap::new(), 0);
    let tags: Vec<_> = all.iter().map(|i| (i.instance_name.as_str(), i.tags.clone())).collect();
    let tag = |id, name: &str| Tag {
        tag_id: Some(id),
        tag_name: name.into(),
    };
    let named = |n: &str| tags.iter().find(|(name, _)| *name == n).unwrap().1.clone();
    assert_eq!(named("a"), vec![tag(1, "team-shop")]);
    assert_eq!(named("b"), vec![tag(1, "team-shop")]);
    assert_eq!(named("c"), vec![tag(2, "team")]);
    assert!(named("d").is_empty());
    let by_tag = BTreeMap::from([("TagName".to_owned(), "team".to_owned())]);
    assert_eq!(c.list(&by_tag, 0).len(), 3, "a substring, like the other name filters");
    assert!(all.iter().filter(|i| i.has_tag("team")).all(|i| i.instance_name == "c"));
}
