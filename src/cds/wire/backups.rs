//! The backup actions: `DescribeBackups`, `DownloadBackup`, `CreateBackup`, `DeleteBackup`.

use serde::{Deserialize, Serialize};

use super::{lenient_i64, lenient_string};

/// One backup of `DescribeBackups` (and, with the download fields, `DownloadBackup`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
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
