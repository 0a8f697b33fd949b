//! The backups of the simulated cloud: the four backup actions and, with `--redis-backend`, the
//! files holding real snapshots, each found by a download token that is valid while its backup
//! exists. Pure like the rest of the state: taking the snapshot, writing and removing files is
//! the server's part (`simulator::backups`); here a backup waits for its file, and the names of
//! files whose backup is gone are handed out for removal.

use serde::{Deserialize, Serialize};

use super::{Cloud, SimInstance, format_created, required};
use crate::cds::wire::Backup;
use crate::simulator::ApiError;

/// `Status` of a backup being made (a simulator value: the documentation only shows finished ones).
pub const BACKUP_RUNNING: &str = "running";
/// `Status` of a finished backup, as documented.
pub const BACKUP_FINISHED: &str = "finished";
/// `Status` of a backup whose snapshot failed (a simulator value).
pub const BACKUP_FAILED: &str = "failed";

/// The file of a real backup (`--redis-backend`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    /// The instance backed up.
    pub instance_uuid: String,
    /// The backup.
    pub backup_id: String,
    /// The file's name in the simulator's backup directory.
    pub file_name: String,
}

/// What `CreateBackup` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedBackup {
    /// The task id the answer carries (the only id the API returns).
    pub task_id: String,
    /// The new backup's id, as `DescribeBackups` lists it.
    pub backup_id: String,
}

/// Where the simulator serves backup files (`--redis-backend`).
#[derive(Clone, Copy, Debug)]
pub struct DownloadRoutes<'a> {
    /// The authority clients reach the simulator at, e.g. `127.0.0.1:8790`.
    pub authority: &'a str,
}

impl DownloadRoutes<'_> {
    /// The route of public download URLs; a token follows.
    pub const PUBLIC: &'static str = "/download/";
    /// The route of intranet download URLs; a token follows.
    pub const INTRANET: &'static str = "/download/intranet/";

    fn urls(self, token: &str) -> (String, String) {
        let base = format!("http://{}", self.authority);
        (
            format!("{base}{}{token}", Self::PUBLIC),
            format!("{base}{}{token}", Self::INTRANET),
        )
    }
}

impl Cloud {
    /// `DescribeBackups`.
    pub fn backups(&mut self, uuid: Option<&str>) -> Result<Vec<Backup>, ApiError> {
        Ok(self.instance_mut(uuid)?.backups.clone())
    }

    /// `DownloadBackup`: the backup with its download URLs. With `routes` (the redis backend) the
    /// URLs are the simulator's own, for a backup that has its file, and empty for one that has
    /// none (not finished yet, or failed); without, made-up URLs that serve nothing.
    pub fn download_backup(
        &mut self,
        uuid: Option<&str>,
        backup_id: Option<&str>,
        routes: Option<DownloadRoutes<'_>>,
    ) -> Result<Backup, ApiError> {
        let mut b = find_backup(self.instance_mut(uuid)?, backup_id)?.clone();
        match routes {
            Some(routes) => {
                let token = self.backup_files.iter().find(|(_, f)| f.backup_id == b.backup_id);
                if let Some((token, _)) = token {
                    (b.backup_download_url, b.backup_intranet_download_url) = routes.urls(token);
                }
            }
            None => {
                b.backup_download_url = format!("https://backup.example.invalid/{}/{}.rdb", b.instance_id, b.backup_id);
                b.backup_intranet_download_url =
                    format!("http://10.0.0.1/backup/{}/{}.rdb", b.instance_id, b.backup_id);
            }
        }
        Ok(b)
    }

    /// `CreateBackup`: needs a running, idle instance; holds it for the backup delay. With
    /// `snapshot` the backup stays running until it has its file ([`Cloud::attach_snapshot`]),
    /// whose size it then reports; without, it reports a made-up size.
    pub fn create_backup(
        &mut self,
        uuid: Option<&str>,
        desc: &str,
        now: i64,
        snapshot: bool,
    ) -> Result<CreatedBackup, ApiError> {
        let delay = self.delays.backup_ms;
        let inst = self.instance_mut(uuid)?;
        Self::busy_check(inst, now)?;
        inst.busy_until_ms = now + delay;
        let backup = Backup {
            backup_id: uuid::Uuid::new_v4().to_string(),
            backup_mode: "manual".into(),
            backup_size: (!snapshot).then(|| inst.listed.ram.unwrap_or(0) * 1024),
            backup_type: "full-backup".into(),
            desc: desc.into(),
            start_time: format_created(now),
            instance_id: inst.listed.instance_uuid.clone(),
            status: BACKUP_RUNNING.into(),
            ..Default::default()
        };
        let backup_id = backup.backup_id.clone();
        inst.backups.push(backup);
        if snapshot {
            self.pending_snapshots.insert(backup_id.clone());
        }
        let task_id = self.task();
        self.advance(now);
        Ok(CreatedBackup { task_id, backup_id })
    }

    /// `DeleteBackup`: the backup goes, and its file with it.
    pub fn delete_backup(&mut self, uuid: Option<&str>, backup_id: Option<&str>, now: i64) -> Result<String, ApiError> {
        let inst = self.instance_mut(uuid)?;
        let backup_id = required(backup_id, "BackupId")?;
        Self::busy_check(inst, now)?;
        let backup_id = find_backup(inst, Some(backup_id))?.backup_id.clone();
        inst.backups.retain(|b| b.backup_id != backup_id);
        let uuid = inst.listed.instance_uuid.clone();
        self.pending_snapshots.remove(&backup_id);
        self.drop_files(&uuid, Some(&backup_id));
        Ok(self.task())
    }

    /// Gives a backup waiting for its snapshot its file, of `size` bytes, downloadable with
    /// `token`. False if the backup no longer waits for it (it was deleted meanwhile, with its
    /// instance or alone): then the caller removes the file.
    pub fn attach_snapshot(&mut self, file: BackupFile, size: u64, token: String) -> bool {
        if !self.pending_snapshots.remove(&file.backup_id) {
            return false;
        }
        let backup = self
            .instances
            .get_mut(&file.instance_uuid)
            .and_then(|i| i.backups.iter_mut().find(|b| b.backup_id == file.backup_id));
        let Some(backup) = backup else { return false };
        backup.backup_size = Some(i64::try_from(size).unwrap_or(i64::MAX));
        self.backup_files.insert(token, file);
        true
    }

    /// Marks a backup whose snapshot could not be taken as failed.
    pub fn fail_snapshot(&mut self, uuid: &str, backup_id: &str) {
        self.pending_snapshots.remove(backup_id);
        let backup = self
            .instances
            .get_mut(uuid)
            .and_then(|i| i.backups.iter_mut().find(|b| b.backup_id == backup_id));
        if let Some(b) = backup {
            b.status = BACKUP_FAILED.into();
        }
    }

    /// Fails every backup still waiting for its snapshot: after a restart from the state file,
    /// the snapshots that were being taken are lost.
    pub fn fail_pending_snapshots(&mut self) {
        let pending = std::mem::take(&mut self.pending_snapshots);
        for inst in self.instances.values_mut() {
            for b in inst.backups.iter_mut().filter(|b| pending.contains(&b.backup_id)) {
                b.status = BACKUP_FAILED.into();
            }
        }
    }

    /// The file a download token stands for, while its backup exists.
    pub fn backup_file(&self, token: &str) -> Option<&BackupFile> {
        self.backup_files.get(token)
    }

    /// Goes back to `pristine` (the admin reset): every backup file of now is dropped.
    pub fn reset_to(&mut self, pristine: &Cloud) {
        let mut dropped = std::mem::take(&mut self.dropped_files);
        dropped.extend(self.backup_files.values().map(|f| f.file_name.clone()));
        *self = pristine.clone();
        self.dropped_files.extend(dropped);
    }

    /// The files of backups that no longer exist, each handed out once, for removal.
    pub fn take_dropped_files(&mut self) -> Vec<String> {
        std::mem::take(&mut self.dropped_files)
    }

    /// Drops the files of `uuid`'s backups: all of them, or that of `backup_id`.
    pub(super) fn drop_files(&mut self, uuid: &str, backup_id: Option<&str>) {
        let doomed = |f: &BackupFile| f.instance_uuid == uuid && backup_id.is_none_or(|b| f.backup_id == b);
        let tokens: Vec<String> = self
            .backup_files
            .iter()
            .filter(|(_, f)| doomed(f))
            .map(|(t, _)| t.clone())
            .collect();
        for token in tokens {
            if let Some(f) = self.backup_files.remove(&token) {
                self.dropped_files.push(f.file_name);
            }
        }
    }
}

/// The backup `backup_id` of `inst`: `ArgMissing` without an id, `ResourceNotFound` if unknown.
fn find_backup<'a>(inst: &'a SimInstance, backup_id: Option<&str>) -> Result<&'a Backup, ApiError> {
    let backup_id = required(backup_id, "BackupId")?;
    inst.backups
        .iter()
        .find(|b| b.backup_id == backup_id)
        .ok_or_else(|| ApiError::new(404, "ResourceNotFound", format!("backup {backup_id} does not exist")))
}
