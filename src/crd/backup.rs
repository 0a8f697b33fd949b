//! The backup API (`cds.capitalonline.net/v1alpha1`, `../shared/spec/redisbackup.md`): a
//! `RedisBackup` is one backup of a `RedisInstance`'s cloud instance, a `RedisBackupSchedule`
//! makes them on a cron schedule and prunes the old ones.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DeletionPolicy, SecretRef};

/// Label on the backups a schedule makes: the schedule's name.
pub const SCHEDULE_LABEL: &str = "cds.capitalonline.net/schedule";

/// A backup of a `RedisInstance`'s cloud instance, created exactly once by the operator, followed
/// until the cloud reports it finished, and deleted (or kept) with this object.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cds.capitalonline.net",
    version = "v1alpha1",
    kind = "RedisBackup",
    plural = "redisbackups",
    shortname = "cdsbackup",
    category = "cds",
    namespaced,
    status = "RedisBackupStatus",
    doc = "A backup (a full RDB file) of a RedisInstance's cloud instance on CapitalOnline cloud \
           (CDS). The operator creates it exactly once, follows it until the cloud reports it \
           finished, optionally writes its download URLs into a Secret, and deletes it (or keeps \
           it, see deletionPolicy) when this object is deleted.",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Instance", "type": "string", "jsonPath": ".spec.instanceRef.name"}"#,
    printcolumn = r#"{"name": "Size", "type": "integer", "jsonPath": ".status.sizeBytes"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "BackupId", "type": "string", "jsonPath": ".status.backupId", "priority": 1}"#,
    printcolumn = r#"{"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Synced\")].reason", "priority": 1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisBackupSpec {
    /// The `RedisInstance` (in this namespace) whose cloud instance is backed up. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("instanceRef is immutable"))]
    pub instance_ref: InstanceRef,

    /// Free text stored with the backup in the cloud (its `Desc`); the operator appends its own
    /// marker, by which it finds the backup again. Immutable; at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("description is immutable"))]
    #[schemars(length(max = 128))]
    pub description: Option<String>,

    /// What deleting this object does to the cloud backup: `Delete` it (default) or `Retain` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// A Secret (in this namespace) the operator writes, and owns, once the backup is finished:
    /// `url` and `intranetUrl`, the download URLs of `DownloadBackup`. Download URLs grant access
    /// to the data: they are never put in status, events or logs. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("writeDownloadSecretToRef is immutable"))]
    pub write_download_secret_to_ref: Option<SecretRef>,
}

/// A `RedisInstance` in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRef {
    /// Its name (a `RedisInstance` of another namespace cannot be named: backups stay with
    /// their instance's namespace).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
}

/// What the operator observed and did with a backup; written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = { "observedGeneration": 0, "phase": "Pending" }))]
pub struct RedisBackupStatus {
    /// The account the backup is made with: the config its instance used when the create was
    /// sent (`{kind, name}`; absent: the operator's own credentials). The backup is deleted with
    /// it once its `RedisInstance` object is gone, and holds it (with its Secret) until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_config_ref: Option<super::account::ProviderConfigRef>,
    /// The cloud's `BackupId`, once the backup is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The `TaskId` the cloud returned for `CreateBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The cloud instance backed up (the `RedisInstance`'s `status.instanceUuid` at the time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_uuid: Option<String>,
    /// `Pending`, `Creating`, `Completed`, `Deleting` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// The cloud's `Status` of the backup, verbatim (e.g. `finished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_status: Option<String>,
    /// Size of the RDB file in bytes, as the cloud reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Start of the backup as the cloud reports it (`YYYY-MM-DD HH:MM:SS`, cloud time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// End of the backup as the cloud reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The cloud's `BackupMode` (e.g. `manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The cloud's `BackupType` (e.g. `full-backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The `metadata.generation` the status was last computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// A `CreateBackup` the operator started; kept until the backup is found by its marker, so a
    /// crash or a lost answer never makes a second backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_attempt: Option<BackupCreateAttempt>,
    /// `Ready` (True once finished), `Synced`, `Reconciling` and `Stalled`, as for `RedisInstance`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The intent marker written before `CreateBackup` is called.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCreateAttempt {
    /// The marker sent in `Desc`.
    pub marker: String,
    /// When the create was started.
    pub started_at: Time,
}

/// Lifecycle phase of a `RedisBackup`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(description = "")]
pub enum BackupPhase {
    /// Not started: waiting for the instance to run, or for input.
    Pending,
    /// The cloud is making the backup (or a create's outcome is being resolved).
    Creating,
    /// The cloud reports the backup finished.
    Completed,
    /// The backup is being deleted.
    Deleting,
    /// A terminal error stops progress until the object changes.
    Failed,
}

/// Backups of a `RedisInstance` on a cron schedule: one `RedisBackup` per slot (never two, even
/// across operator restarts), at most one catch-up after downtime, the oldest completed backups
/// pruned beyond `keep`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cds.capitalonline.net",
    version = "v1alpha1",
    kind = "RedisBackupSchedule",
    plural = "redisbackupschedules",
    shortname = "cdsbackupschedule",
    category = "cds",
    namespaced,
    status = "RedisBackupScheduleStatus",
    doc = "Backups of a RedisInstance on a cron schedule. Each slot makes one RedisBackup named \
           <schedule>-<yyyymmddhhmm of the slot, UTC>, owned by the schedule; beyond keep \
           completed backups the oldest are deleted.",
    printcolumn = r#"{"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"}"#,
    printcolumn = r#"{"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"}"#,
    printcolumn = r#"{"name": "Last", "type": "date", "jsonPath": ".status.lastScheduleTime"}"#,
    printcolumn = r#"{"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisBackupScheduleSpec {
    /// The `RedisInstance` (in this namespace) to back up.
    pub instance_ref: InstanceRef,
    /// A five-field cron expression (minute hour day-of-month month day-of-week), e.g.
    /// `0 3 * * *` for every day at 03:00.
    #[schemars(length(min = 9))]
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `Asia/Shanghai`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// How many completed backups to keep (the oldest beyond are deleted); 1 or more.
    #[schemars(range(min = 1))]
    pub keep: u32,
    /// While true no new backup is made; existing ones are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// What the backups it makes are given.
    #[serde(default)]
    pub backup_template: BackupTemplate,
}

/// What a schedule gives the backups it makes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupTemplate {
    /// Their `deletionPolicy` (default `Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Whether each writes a download Secret named like the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_download_secret: Option<bool>,
}

/// What the operator observed and did with a schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = { "observedGeneration": 0 }))]
pub struct RedisBackupScheduleStatus {
    /// The slot of the latest backup made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The next slot (absent while suspended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// Name of the latest `RedisBackup` that completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup: Option<String>,
    /// The `metadata.generation` the status was last computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (True while the schedule runs: valid, instance found), `Synced`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

impl RedisBackup {
    /// The effective deletion policy (`Delete` unless the spec says otherwise).
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or_default()
    }
}
