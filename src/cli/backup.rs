//! `cds backups` and `cds backup create|delete|download`: an instance's backups, for people.
//! `CreateBackup` answers with a task id only, so `create` finds the new backup's id by
//! comparing the listings before and after. `download` fetches the file itself: the download URL
//! is a secret and is never printed.

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Serialize;

use super::cds::{CdsCommandError, Output, Tabular, format_out};
use crate::cds::CdsClient;
use crate::cds::download::{self, Progress};
use crate::cds::wire::Backup;

/// What to do with a backup.
#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Create a backup (a full RDB snapshot) of an instance; prints its id and task id.
    ///
    /// The API answers with a task id only: the backup's id is found by listing the instance's
    /// backups before and after (empty when another backup with the same description appeared
    /// at the same time).
    Create {
        /// The instance's UUID.
        #[arg(long)]
        uuid: String,
        /// Free text stored with the backup (`Desc`), kept exactly as given.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a backup.
    Delete {
        /// The instance's UUID.
        #[arg(long)]
        uuid: String,
        /// The backup's id (`cds backups --uuid U`).
        #[arg(long)]
        backup_id: String,
    },
    /// Download a backup's RDB file and print the number of bytes written.
    ///
    /// The download URL is fetched, never printed. A progress bar is drawn when stderr is a
    /// terminal. The file is written beside FILE first and renamed once complete.
    Download {
        /// The instance's UUID.
        #[arg(long)]
        uuid: String,
        /// The backup's id (`cds backups --uuid U`).
        #[arg(long)]
        backup_id: String,
        /// The file to write.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        file: PathBuf,
        /// Fetch the intranet URL (reachable from inside the cloud's network only).
        #[arg(long)]
        intranet: bool,
        /// Here `-o` names the file: this hidden argument has the id of the global `-o/--output`
        /// format flag, which keeps clap from adding that flag to this command.
        #[arg(id = "output", long = "format", hide = true, value_enum)]
        format: Option<Output>,
    },
}

/// The result of `create` and `delete`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackupTask {
    /// The backup, when known.
    pub backup_id: Option<String>,
    /// The task id the cloud answered with, if any.
    pub task_id: Option<String>,
}

impl Tabular for BackupTask {
    const HEADER: &'static [&'static str] = &["BACKUP ID", "TASK ID"];
    fn row(&self) -> Vec<String> {
        vec![
            self.backup_id.clone().unwrap_or_default(),
            self.task_id.clone().unwrap_or_default(),
        ]
    }
}

impl Tabular for Backup {
    const HEADER: &'static [&'static str] = &["BACKUP ID", "STATUS", "SIZE(B)", "MODE", "START", "END", "DESCRIPTION"];
    fn row(&self) -> Vec<String> {
        vec![
            self.backup_id.clone(),
            self.status.clone(),
            self.backup_size.map(|s| s.to_string()).unwrap_or_default(),
            self.backup_mode.clone(),
            self.start_time.clone(),
            self.end_time.clone(),
            self.desc.clone(),
        ]
    }
}

/// `cds backups --uuid U`.
pub async fn list(client: &CdsClient, uuid: &str, output: Output) -> Result<String, CdsCommandError> {
    Ok(format_out(output, &client.describe_backups(uuid).await?))
}

/// Runs a `cds backup` command; returns what to print.
pub async fn run(client: &CdsClient, command: &BackupCommand, output: Output) -> Result<String, CdsCommandError> {
    match command {
        BackupCommand::Create { uuid, description } => {
            let created = create(client, uuid, description).await?;
            Ok(format_out(output, &[created]))
        }
        BackupCommand::Delete { uuid, backup_id } => {
            let task_id = client.delete_backup(uuid, backup_id).await?;
            let deleted = BackupTask {
                backup_id: Some(backup_id.clone()),
                task_id,
            };
            Ok(format_out(output, &[deleted]))
        }
        BackupCommand::Download {
            uuid,
            backup_id,
            file,
            intranet,
            format: _,
        } => {
            let written = fetch(client, uuid, backup_id, file, *intranet).await?;
            Ok(format!("wrote {written} bytes to {}\n", file.display()))
        }
    }
}

/// `CreateBackup`, and the new backup's id: the one backup with this description that the
/// listing after has and the listing before had not.
async fn create(client: &CdsClient, uuid: &str, description: &str) -> Result<BackupTask, CdsCommandError> {
    let before: HashSet<String> = client
        .describe_backups(uuid)
        .await?
        .into_iter()
        .map(|b| b.backup_id)
        .collect();
    let task_id = client.create_backup(uuid, description).await?;
    let after = client.describe_backups(uuid).await?;
    let mut new = after
        .into_iter()
        .filter(|b| !before.contains(&b.backup_id) && b.desc == description);
    let backup_id = match (new.next(), new.next()) {
        (Some(only), None) => Some(only.backup_id),
        _ => None,
    };
    Ok(BackupTask { backup_id, task_id })
}

/// `DownloadBackup`, then the file from its URL into `file`.
async fn fetch(
    client: &CdsClient,
    uuid: &str,
    backup_id: &str,
    file: &Path,
    intranet: bool,
) -> Result<u64, CdsCommandError> {
    let mut backup = client.download_backup(uuid, backup_id).await?;
    let url = SecretString::from(if intranet {
        std::mem::take(&mut backup.backup_intranet_download_url)
    } else {
        std::mem::take(&mut backup.backup_download_url)
    });
    let written = if std::io::stderr().is_terminal() {
        download::download_to(&url, file, &mut Bar::default()).await
    } else {
        download::download_to(&url, file, &mut ()).await
    };
    Ok(written?)
}

/// A progress bar on stderr (only drawn when it is a terminal).
#[derive(Default)]
struct Bar(Option<indicatif::ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: Option<u64>) {
        let (bar, template) = match total {
            Some(total) => (
                indicatif::ProgressBar::new(total),
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {bytes} {bytes_per_sec}",
            ),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        self.0 = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
