//! The backup actions: `DescribeBackups`, `DownloadBackup`, `CreateBackup`, `DeleteBackup`.

use serde::{Deserialize, Serialize};

use super::{lenient_i64, lenient_string};

/// One backup of `DescribeBackups` (and, with the download fields, `DownloadBackup`).
///
/// Its download URLs grant access to the data: `Debug` shows whether they are set, never them.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Backup {
    /// Backup id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_id: String,
    /// `manual`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_mode: String,
    /// Size in bytes (documented as a string, a number in examples).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub backup_size: Option<i64>,
    /// `full-backup`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub backup_type: String,
    /// Description.
    #[serde(default, deserialize_with = "lenient_string")]
    pub desc: String,
    /// Start, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub start_time: String,
    /// End, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub end_time: String,
    /// The instance.
    #[serde(default, deserialize_with = "lenient_string")]
    pub instance_id: String,
    /// `finished`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    /// Cluster shard id (`DownloadBackup` only), `""` otherwise.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub shard_id: String,
    /// Public download URL (`DownloadBackup` only).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub backup_download_url: String,
    /// Internal download URL (`DownloadBackup` only).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub backup_intranet_download_url: String,
}

impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |url: &str| if url.is_empty() { "" } else { "***" };
        f.debug_struct("Backup")
            .field("backup_id", &self.backup_id)
            .field("backup_mode", &self.backup_mode)
            .field("backup_size", &self.backup_size)
            .field("backup_type", &self.backup_type)
            .field("desc", &self.desc)
            .field("start_time", &self.start_time)
            .field("end_time", &self.end_time)
            .field("instance_id", &self.instance_id)
            .field("status", &self.status)
            .field("shard_id", &self.shard_id)
            .field("backup_download_url", &redacted(&self.backup_download_url))
            .field(
                "backup_intranet_download_url",
                &redacted(&self.backup_intranet_download_url),
            )
            .finish()
    }
}

/// Body of `CreateBackup`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBackupRequest {
    /// Instance id.
    #[serde(default)]
    pub instance_uuid: String,
    /// Description.
    #[serde(default)]
    pub desc: String,
}

/// Body of `DeleteBackup`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteBackupRequest {
    /// Instance id.
    #[serde(default)]
    pub instance_uuid: String,
    /// Backup id.
    #[serde(default)]
    pub backup_id: String,
}
