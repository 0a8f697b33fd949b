//! Real backups with the simulator's redis-server backend: `CreateBackup` snapshots the
//! instance, `DescribeBackups` reports the file's size, `DownloadBackup` gives URLs the simulator
//! serves, the file loads into a fresh `redis-server` with the keys written before the backup;
//! files go with their backup or instance, and survive a restart with the state file. And the
//! `cds backups` / `cds backup create|delete|download` commands, run as the binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cds_redis_operator::cds::CdsClient;
use cds_redis_operator::cds::download::download_to;
use cds_redis_operator::cds::wire::Backup;
use cds_redis_operator::simulator::{RunningSimulator, SimulatorConfig};
use secrecy::SecretString;

use crate::support::redis::{self, Resp};
use crate::support::sim::{self, KEY_ID, KEY_SECRET};
use crate::{PASSWORD, create_request, wait_status};

/// A description with quotes, spaces at both ends and characters beyond ASCII, which must come
/// back exactly (the operator finds its backups by a marker in it).
const DESC: &str = "  测试Redis备份 \"nightly\" ✓ 🦀 ";

/// The test configuration with the redis backend, backups in `backup_dir` unless `None`.
fn redis_config(backup_dir: Option<&Path>) -> SimulatorConfig {
    let mut cfg = SimulatorConfig::for_tests(KEY_ID, KEY_SECRET, Duration::from_millis(50), Duration::from_millis(50));
    cfg.redis_backend = true;
    cfg.backup_dir = backup_dir.map(Path::to_owned);
    cfg
}

/// A new running instance with `keys` written through its endpoint; its UUID and port.
async fn instance_with_keys(c: &CdsClient, name: &str, keys: &[(&str, &str)]) -> (String, u16) {
    let uuid = c.create_instance(&create_request(name)).await.unwrap().instance_uuid;
    wait_status(c, &uuid, Some("RUNNING")).await;
    let port = c.describe_instance(&uuid).await.unwrap().unwrap().port.unwrap() as u16;
    let mut resp = Resp::connect_with_password(port, PASSWORD).await;
    for (k, v) in keys {
        resp.set(k, v).await;
    }
    (uuid, port)
}

/// The backup `backup_id` of `uuid` once `DescribeBackups` says it is finished.
async fn finished(c: &CdsClient, uuid: &str, backup_id: &str) -> Backup {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = c.describe_backups(uuid).await.unwrap();
        let b = listed.into_iter().find(|b| b.backup_id == backup_id).expect("listed");
        if b.status == "finished" {
            return b;
        }
        assert!(Instant::now() < deadline, "backup never finished: {b:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `CreateBackup` answers with a task id only: the new backup is the one listed with `desc`.
async fn create_backup(c: &CdsClient, uuid: &str, desc: &str) -> Backup {
    let task = c.create_backup(uuid, desc).await.unwrap();
    assert!(task.is_some_and(|t| !t.is_empty()));
    let listed = c.describe_backups(uuid).await.unwrap();
    let b = listed.into_iter().last().expect("the new backup is listed");
    assert_eq!(b.desc, desc, "Desc round-trips exactly");
    finished(c, uuid, &b.backup_id).await
}

/// Until `path` is gone (files are removed right after the call that dropped them).
async fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while path.exists() {
        assert!(Instant::now() < deadline, "{} was not removed", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw GET of a download URL: status, `Content-Length`, body.
async fn get(url: &str) -> (u16, Option<u64>, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let len = r
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, len, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_backup_is_a_snapshot_of_the_instance_that_downloads_and_loads_into_a_fresh_redis() {
    if !redis::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let s = sim::start_with(redis_config(Some(&backups))).await;
    let c = sim::client(&s);
    let keys = [("user:1", "ada"), ("greeting", "你好 ✓")];
    let (uuid, port) = instance_with_keys(&c, "backed-up", &keys).await;
    let b = create_backup(&c, &uuid, DESC).await;
    // Written after the snapshot: not in the backup.
    Resp::connect_with_password(port, PASSWORD)
        .await
        .set("later", "x")
        .await;
    let file = backups.join(format!("{}.rdb", b.backup_id));
    let on_disk = std::fs::read(&file).unwrap();
    assert!(!on_disk.is_empty() && on_disk.starts_with(b"REDIS"));
    assert_eq!(
        b.backup_size,
        Some(on_disk.len() as i64),
        "BackupSize is the file's size"
    );

    let dl = c.download_backup(&uuid, &b.backup_id).await.unwrap();
    assert_eq!(dl.desc, DESC);
    let base = format!("{}/download/", s.endpoint());
    assert!(
        dl.backup_download_url.starts_with(&base),
        "served by the simulator itself"
    );
    assert_ne!(dl.backup_download_url, dl.backup_intranet_download_url);
    let (status, len, body) = get(&dl.backup_intranet_download_url).await;
    assert_eq!((status, len, &body), (200, Some(on_disk.len() as u64), &on_disk));
    let fetched = dir.path().join("fetched").join("backup.rdb");
    std::fs::create_dir(fetched.parent().unwrap()).unwrap();
    let url = SecretString::from(dl.backup_download_url.clone());
    assert_eq!(
        download_to(&url, &fetched, &mut ()).await.unwrap(),
        on_disk.len() as u64
    );
    assert_eq!(std::fs::read(&fetched).unwrap(), on_disk);

    let loaded = redis::load_rdb(&fetched).await;
    let mut fresh = Resp::connect(loaded.port).await;
    for (k, v) in keys {
        assert_eq!(fresh.get(k).await.as_deref(), Some(v), "{k}");
    }
    assert_eq!(
        fresh.get("later").await,
        None,
        "the backup is the instance at CreateBackup"
    );

    let (status, _, _) = get(&format!("{base}not-a-token")).await;
    assert_eq!(status, 404);
    deleting_the_backup_or_its_instance_removes_the_file(&c, &uuid, &b, &file, &dl).await;
    s.shutdown().await;
}

/// `DeleteBackup` removes the file and ends the URL; a backup still there when its instance goes
/// loses its file with it.
async fn deleting_the_backup_or_its_instance_removes_the_file(
    c: &CdsClient,
    uuid: &str,
    b: &Backup,
    file: &Path,
    dl: &Backup,
) {
    c.delete_backup(uuid, &b.backup_id).await.unwrap();
    wait_gone(file).await;
    assert_eq!(
        get(&dl.backup_download_url).await.0,
        404,
        "the token ends with its backup"
    );
    assert!(c.describe_backups(uuid).await.unwrap().is_empty());
    let other = create_backup(c, uuid, "").await;
    let other_file = file.with_file_name(format!("{}.rdb", other.backup_id));
    assert!(other_file.exists());
    c.delete_instance(uuid).await.unwrap();
    wait_status(c, uuid, None).await;
    wait_gone(&other_file).await;
}

#[tokio::test]
async fn backup_files_and_their_tokens_survive_a_restart_with_the_state_file() {
    if !redis::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = redis_config(None);
    cfg.state_file = Some(dir.path().join("state.json"));
    let s = sim::start_with(cfg.clone()).await;
    let c = sim::client(&s);
    let (uuid, _) = instance_with_keys(&c, "persisted-backup", &[("k", "v")]).await;
    let b = create_backup(&c, &uuid, DESC).await;
    let before = c.download_backup(&uuid, &b.backup_id).await.unwrap();
    s.shutdown().await;
    let file = dir.path().join("state.backups").join(format!("{}.rdb", b.backup_id));
    let on_disk = std::fs::read(&file).expect("kept beside the state file");

    let s = sim::start_with(cfg).await;
    let c = sim::client(&s);
    let listed = c.describe_backups(&uuid).await.unwrap();
    assert_eq!((listed[0].desc.as_str(), listed[0].backup_size), (DESC, b.backup_size));
    let after = c.download_backup(&uuid, &b.backup_id).await.unwrap();
    let token = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token(&after.backup_download_url), token(&before.backup_download_url));
    assert_eq!(get(&after.backup_download_url).await.2, on_disk);
    c.delete_instance(&uuid).await.unwrap();
    wait_status(&c, &uuid, None).await;
    wait_gone(&file).await;
    s.shutdown().await;
}

/// Runs the binary's `cds` command against `s`; success, stdout, and stdout + stderr.
async fn cds(s: &RunningSimulator, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cds-redis-operator"))
        .arg("cds")
        .args(args)
        .env("CDS_ENDPOINT", s.endpoint())
        .env("CDS_ACCESS_KEY_ID", KEY_ID)
        .env("CDS_ACCESS_KEY_SECRET", KEY_SECRET)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains(KEY_SECRET) && !all.contains("/download/"), "{all}");
    (out.status.success(), stdout, all)
}

#[tokio::test]
async fn cli_creates_lists_downloads_and_deletes_backups() {
    if !redis::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let s = sim::start_with(redis_config(Some(&backups))).await;
    let c = sim::client(&s);
    let (uuid, _) = instance_with_keys(&c, "cli-backup", &[("k", "v")]).await;

    let (ok, out, all) = cds(
        &s,
        &["backup", "create", "--uuid", &uuid, "--description", DESC, "-o", "json"],
    )
    .await;
    assert!(ok, "{all}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let backup_id = created[0]["BackupId"].as_str().expect("the new backup's id").to_owned();
    assert!(created[0]["TaskId"].as_str().is_some_and(|t| !t.is_empty()), "{out}");
    let b = finished(&c, &uuid, &backup_id).await;
    let file = backups.join(format!("{backup_id}.rdb"));
    let on_disk = std::fs::read(&file).unwrap();

    let (ok, table, all) = cds(&s, &["backups", "--uuid", &uuid]).await;
    let row = table.lines().find(|l| l.starts_with(&backup_id)).unwrap_or_default();
    assert!(
        ok && table.starts_with("BACKUP ID") && row.contains("finished"),
        "{all}"
    );
    assert!(
        row.contains(&on_disk.len().to_string()) && row.ends_with(DESC.trim_end()),
        "{row}"
    );
    let (ok, yaml, all) = cds(&s, &["backups", "--uuid", &uuid, "-o", "yaml"]).await;
    let parsed: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    assert!(
        ok && parsed[0]["Desc"] == DESC && parsed[0]["BackupSize"] == on_disk.len(),
        "{all}"
    );

    cli_downloads(&s, &uuid, &b, &on_disk, dir.path()).await;

    let (ok, out, all) = cds(&s, &["backup", "delete", "--uuid", &uuid, "--backup-id", &backup_id]).await;
    assert!(ok && out.contains(&backup_id), "{all}");
    wait_gone(&file).await;
    let (ok, table, all) = cds(&s, &["backups", "--uuid", &uuid]).await;
    assert!(ok && table.lines().count() == 1, "only the header is left: {all}");
    let to = dir.path().join("gone.rdb");
    let args = ["backup", "download", "--uuid", &uuid, "--backup-id", &backup_id, "-o"];
    let (ok, _, all) = cds(&s, &[&args[..], &[to.to_str().unwrap()]].concat()).await;
    assert!(!ok && all.contains("ResourceNotFound") && !to.exists(), "{all}");
    s.shutdown().await;
}

/// `cds backup download`, public and intranet: the simulator's file, byte for byte, and the
/// count of bytes printed; never the URL (checked by [`cds`] on every output).
async fn cli_downloads(s: &RunningSimulator, uuid: &str, b: &Backup, on_disk: &[u8], dir: &Path) {
    for (name, extra) in [("public.rdb", None), ("intranet.rdb", Some("--intranet"))] {
        let to: PathBuf = dir.join(name);
        let mut args = vec!["backup", "download", "--uuid", uuid, "--backup-id", &b.backup_id];
        args.extend(["-o", to.to_str().unwrap()]);
        args.extend(extra);
        let (ok, out, all) = cds(s, &args).await;
        assert!(ok, "{all}");
        assert_eq!(out, format!("wrote {} bytes to {}\n", on_disk.len(), to.display()));
        assert_eq!(std::fs::read(&to).unwrap(), on_disk, "{name}");
    }
}
