//! One reconcile of a `RedisBackup`: observe (the `RedisInstance` from the cache, the backup
//! listing when the planner asks), act on the planned step, and report the status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::DRIFT_CHECK;
use super::plan::{self, Facts, Instance, Seen, Step, WaitReason};
use super::status::{self, FINISHED, Outcome};
use crate::controller::accounts::Account;
use crate::controller::context::Context;
use crate::controller::events::EventType;
use crate::controller::writes;
use crate::crd::backup::{BackupCreateAttempt, BackupPhase, RedisBackup, RedisBackupStatus};
use crate::crd::conditions::SYNCED;
use crate::crd::{FINALIZER, Phase, RedisInstance};
use crate::error::Error;
use crate::failpoint;

/// Planning rounds in one reconcile: the finalizer, a look at the listing, then the step.
const MAX_ROUNDS: usize = 3;

/// The deterministic marker a backup's `Desc` carries: it finds the backup again after a lost
/// answer or a crash (the cloud's `CreateBackup` returns no backup id at all).
pub fn marker(backup: &RedisBackup) -> String {
    format!(
        "[k8s {}/{} {}]",
        backup.namespace().unwrap_or_default(),
        backup.name_any(),
        backup.uid().unwrap_or_default()
    )
}

/// The `Desc` sent with `CreateBackup`: the user's description, then the marker.
pub fn description(backup: &RedisBackup) -> String {
    let marker = marker(backup);
    match backup
        .spec
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => format!("{d} {marker}"),
        None => marker,
    }
}

/// One reconcile of one backup.
pub struct Act<'a> {
    ctx: &'a Context,
    backup: &'a RedisBackup,
    api: Api<RedisBackup>,
    resource_version: Option<String>,
    has_finalizer: bool,
    released: bool,
    status: RedisBackupStatus,
    instance: Option<Arc<RedisInstance>>,
    now: Time,
}

impl<'a> Act<'a> {
    /// A reconcile of `backup`.
    pub fn new(ctx: &'a Context, backup: &'a RedisBackup) -> Self {
        let ns = backup.namespace().unwrap_or_default();
        let instance = ctx
            .objects
            .get(&ObjectRef::new(&backup.spec.instance_ref.name).within(&ns));
        Self {
            ctx,
            backup,
            api: Api::namespaced(ctx.client.clone(), &ns),
            resource_version: backup.resource_version(),
            has_finalizer: backup.finalizers().iter().any(|f| f == FINALIZER),
            released: false,
            status: backup.status.clone().unwrap_or_default(),
            instance,
            now: Time(k8s_openapi::jiff::Timestamp::now()),
        }
    }

    /// Plans and acts, then reports the outcome in status.
    pub async fn run(mut self) -> Result<Action, Error> {
        let result = self.steps().await;
        let uid = self.backup.uid().unwrap_or_default();
        if self.released {
            self.ctx.metrics.set_backup_phase(&uid, None);
            return result.map(|(_, action)| action);
        }
        let deleting = self.backup.meta().deletion_timestamp.is_some();
        let outcome = match &result {
            Ok((step, _)) => Outcome::Step(*step),
            Err(e) => Outcome::Failed(e),
        };
        status::conclude(
            &mut self.status,
            deleting,
            outcome,
            self.backup.meta().generation,
            &self.now,
        );
        if matches!(
            outcome,
            Outcome::Step(Step::WaitForInstance(WaitReason::InstanceNotFound))
        ) && let Some(hint) = self.ctx.config.shard().missing_instance_hint()
            && let Some(synced) = self.status.conditions.iter_mut().find(|c| c.type_ == SYNCED)
        {
            synced.message.push_str(&hint);
        }
        let phase = self.status.phase.map(|p| format!("{p:?}"));
        self.ctx.metrics.set_backup_phase(&uid, phase.as_deref());
        if Some(&self.status) != self.backup.status.as_ref()
            && let Err(e) = self.write_status().await
            && result.is_ok()
        {
            return Err(e);
        }
        result.map(|(_, action)| action)
    }

    async fn steps(&mut self) -> Result<(Step, Action), Error> {
        let mut seen = Seen::NotLooked;
        for _ in 0..MAX_ROUNDS {
            let step = plan::plan(&self.facts(seen));
            let action = match step {
                Step::AddFinalizer => {
                    self.finalizer(true).await?;
                    continue;
                }
                Step::Look => {
                    seen = self.look().await?;
                    continue;
                }
                Step::Nothing => Action::await_change(),
                Step::RemoveFinalizer => {
                    self.finalizer(false).await?;
                    Action::await_change()
                }
                Step::Create => self.create().await?,
                Step::WaitForInstance(_) | Step::WaitForBackup | Step::WaitForVisibility => self.busy(),
                Step::Complete => self.complete().await?,
                Step::Lost => return Err(self.lost()),
                Step::Delete => self.delete().await?,
            };
            return Ok((step, action));
        }
        Err(Error::InvalidSpec(
            "the backup planner asked for more than one look; reported, not looped on".into(),
        ))
    }

    fn facts(&self, seen: Seen) -> Facts {
        let instance = match self.instance.as_deref() {
            None => Instance::Missing,
            Some(i) => match i.status.as_ref() {
                Some(s) if s.phase == Some(Phase::Running) && i.meta().deletion_timestamp.is_none() => {
                    s.instance_uuid.clone().map_or(Instance::NotRunning, Instance::Running)
                }
                _ => Instance::NotRunning,
            },
        };
        Facts {
            deleting: self.backup.meta().deletion_timestamp.is_some(),
            has_finalizer: self.has_finalizer,
            retain: self.backup.deletion_policy() == crate::crd::DeletionPolicy::Retain,
            has_backup_id: self.status.backup_id.is_some(),
            attempt_age: self.attempt_age(),
            accepted: self.status.task_id.is_some(),
            has_instance_uuid: self.status.instance_uuid.is_some(),
            instance,
            seen,
            visibility_grace: self.ctx.config.visibility_grace,
        }
    }

    fn attempt_age(&self) -> Option<Duration> {
        let started = self.status.create_attempt.as_ref()?.started_at.0;
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(started);
        Some(Duration::try_from(age).unwrap_or_default())
    }

    /// The account: the `RedisInstance`'s; once that object is gone, the one the backup was
    /// made with (`status.providerConfigRef`, else the operator's own).
    async fn account(&self) -> Result<Arc<Account>, Error> {
        if let Some(i) = self.instance.as_deref() {
            return self.ctx.account_for(i).await;
        }
        let Some(r) = &self.status.provider_config_ref else {
            return self.ctx.operator_account();
        };
        let id = r.id(&self.backup.namespace().unwrap_or_default());
        let found = self.ctx.configs.settings(&id).ok_or_else(|| {
            Error::ProviderConfigNotFound(format!(
                "{id}, the account this backup was made with, is gone: the cloud backup cannot be deleted without it (recreate it, or set deletionPolicy: Retain)"
            ))
        })?;
        self.ctx.config_account(&id, &found.settings).await
    }

    /// The instance's backup listing, fresh enough for what is known: requested after the create
    /// for a backup found by marker, once an hour for a completed one, else once a busy poll.
    async fn look(&mut self) -> Result<Seen, Error> {
        let Some(uuid) = self.status.instance_uuid.clone() else {
            return Ok(Seen::InstanceGone);
        };
        let max_age = match (self.attempt_age(), self.status.phase) {
            (Some(age), _) if self.status.backup_id.is_none() => age,
            (_, Some(BackupPhase::Completed)) if self.backup.meta().deletion_timestamp.is_none() => DRIFT_CHECK,
            _ => self.ctx.config.busy_poll_interval,
        };
        let not_before = Instant::now().checked_sub(max_age).unwrap_or_else(Instant::now);
        let account = self.account().await?;
        let listing = match account.backups.listing(&account.client, &uuid, not_before).await {
            Ok(l) => l,
            Err(e) if e.is_not_found() => return Ok(Seen::InstanceGone),
            Err(e) => return Err(e.into()),
        };
        let found = match self.status.backup_id.as_deref() {
            Some(id) => listing.by_id(id),
            None => listing.by_marker(&marker(self.backup)).into_iter().next(),
        };
        Ok(match found {
            None => Seen::Absent,
            Some(b) => {
                status::apply_backup(&mut self.status, b);
                Seen::Listed {
                    finished: b.status == FINISHED,
                }
            }
        })
    }

    /// Records the intent, then sends `CreateBackup` once.
    async fn create(&mut self) -> Result<Action, Error> {
        let Some(Instance::Running(uuid)) = Some(self.facts(Seen::NotLooked).instance) else {
            return Ok(self.busy());
        };
        self.ctx.fence()?;
        let mut intent = self.status.clone();
        intent.instance_uuid = Some(uuid.clone());
        intent.task_id = None;
        intent.provider_config_ref = self
            .instance
            .as_deref()
            .and_then(|i| self.ctx.configs.id_of(i).to_ref());
        // Now, not the reconcile's start: a listing requested before this moment cannot show it.
        intent.create_attempt = Some(BackupCreateAttempt {
            marker: marker(self.backup),
            started_at: Time(k8s_openapi::jiff::Timestamp::now()),
        });
        status::conclude(
            &mut intent,
            false,
            Outcome::Step(Step::Create),
            self.backup.meta().generation,
            &self.now,
        );
        self.status = intent;
        self.write_status().await?;
        failpoint::hit("backup-after-intent");
        self.event(
            EventType::Normal,
            "Creating",
            format!("creating a backup of instance {uuid}"),
        )
        .await;
        let account = self.account().await?;
        let sent = account.client.create_backup(&uuid, &description(self.backup)).await;
        account.backups.invalidate(&uuid).await;
        match sent {
            Ok(task) => {
                failpoint::hit("backup-after-create");
                self.status.task_id = Some(task.unwrap_or_default());
                Ok(self.busy())
            }
            // The backup may exist: the marker lookup resolves it before any retry.
            Err(e) if e.outcome_unknown() => Err(e.into()),
            Err(e) => {
                self.status.create_attempt = None;
                Err(e.into())
            }
        }
    }

    /// Reports the finished backup; writes the download Secret if asked (once).
    async fn complete(&mut self) -> Result<Action, Error> {
        if let Some(secret) = self.backup.spec.write_download_secret_to_ref.as_ref() {
            let keys = ["url", "intranetUrl"];
            if !self.ctx.secrets.has_own(self.backup, &secret.name, &keys).await? {
                self.write_download_secret(&secret.name).await?;
            }
        }
        let was = self.backup.status.as_ref().and_then(|s| s.phase);
        if was != Some(BackupPhase::Completed) {
            let size = self
                .status
                .size_bytes
                .map(|s| format!(" ({s} bytes)"))
                .unwrap_or_default();
            let note = format!(
                "backup {} finished{size}",
                self.status.backup_id.clone().unwrap_or_default()
            );
            self.event(EventType::Normal, "Completed", note).await;
        }
        Ok(Action::requeue(DRIFT_CHECK.mul_f64(0.8 + 0.4 * rand::random::<f64>())))
    }

    async fn write_download_secret(&self, name: &str) -> Result<(), Error> {
        let (uuid, id) = (self.status.instance_uuid.clone(), self.status.backup_id.clone());
        let (Some(uuid), Some(id)) = (uuid, id) else {
            return Ok(());
        };
        let account = self.account().await?;
        let found = account.client.download_backup(&uuid, &id).await?;
        // Download URLs grant access to the data: only in the Secret, never logged.
        let data = BTreeMap::from([
            ("url".to_owned(), found.backup_download_url),
            ("intranetUrl".to_owned(), found.backup_intranet_download_url),
            ("backupId".to_owned(), id),
        ]);
        self.ctx.secrets.write_download_secret(self.backup, name, data).await
    }

    fn lost(&self) -> Error {
        let what = self.status.backup_id.clone().unwrap_or_else(|| marker(self.backup));
        Error::BackupNotFound(what)
    }

    /// Sends `DeleteBackup`; a backup or instance the cloud no longer knows is released.
    async fn delete(&mut self) -> Result<Action, Error> {
        let (Some(uuid), Some(id)) = (self.status.instance_uuid.clone(), self.status.backup_id.clone()) else {
            return Ok(self.busy());
        };
        self.ctx.fence()?;
        let account = self.account().await?;
        let sent = account.client.delete_backup(&uuid, &id).await;
        account.backups.invalidate(&uuid).await;
        match sent {
            Ok(_) => {
                failpoint::hit("backup-after-delete");
                self.event(EventType::Normal, "Deleting", format!("deleting backup {id}"))
                    .await;
                Ok(self.busy())
            }
            Err(e) if e.is_not_found() => {
                self.finalizer(false).await?;
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn busy(&self) -> Action {
        Action::requeue(self.ctx.config.busy_poll_interval)
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        if self.ctx.fence().is_err() {
            return;
        }
        let regarding = self.backup.object_ref(&());
        if let Err(e) = self.ctx.events.publish(regarding, type_, reason, &note).await {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    /// Writes the status (server-side apply, conditional on the version read).
    async fn write_status(&mut self) -> Result<(), Error> {
        writes::write_status(
            self.ctx,
            &self.api,
            self.backup,
            &mut self.resource_version,
            &self.status,
        )
        .await?;
        Ok(())
    }

    /// Adds or removes the cleanup finalizer (conditional merge patch, other finalizers kept).
    async fn finalizer(&mut self, present: bool) -> Result<(), Error> {
        writes::write_finalizer(self.ctx, &self.api, self.backup, &mut self.resource_version, present).await?;
        self.has_finalizer = present;
        self.released = !present;
        Ok(())
    }
}
