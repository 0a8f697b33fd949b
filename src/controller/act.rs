//! Act: carry out the step the planner chose, with at most one cloud write, and say what is
//! left to report. Every write is fenced by the leader lease.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::accounts::Account;
use super::claims::Claim;
use super::context::Context;
use super::events::EventType;
use super::observe;
use super::plan::{Facts, Problem, Release, Step, Wait};
use super::status::{self, Outcome};
use super::writes::ObjectWrites;
use crate::cds::wire::{self, InstanceSummary};
use crate::crd::{ManagementPolicy, Phase, RedisInstance, RedisInstanceStatus};
use crate::error::Error;
use crate::failpoint;

/// What a step leaves to do.
#[derive(Debug)]
pub enum Progress {
    /// The finalizer is gone (or was never ours): nothing more to write.
    Released,
    /// A metadata write (finalizer, account Secret) whose watch event brings the next reconcile.
    AwaitChange,
    /// The status already says everything (a create rejected for good): wait for a change.
    Unchanged,
    /// Report, then reconcile again after `after`.
    Report {
        /// What to report (never a failure: those are errors).
        outcome: Outcome<'static>,
        /// When to look again.
        after: Duration,
    },
}

/// Everything a step acts with.
pub struct Act<'a, 'f> {
    /// The object as read.
    pub obj: &'a RedisInstance,
    /// The shared context.
    pub ctx: &'a Context,
    /// The object's writes.
    pub writes: ObjectWrites<'a>,
    /// The status being built.
    pub status: RedisInstanceStatus,
    /// The account, if the planner needed the cloud.
    pub account: Option<std::sync::Arc<Account>>,
    /// The facts the step was planned on.
    pub facts: &'f Facts,
    /// Now.
    pub now: Time,
}

impl Act<'_, '_> {
    /// Carries `step` out.
    pub async fn run(&mut self, step: Step) -> Result<Progress, Error> {
        tracing::debug!(object = %super::context::key(self.obj), ?step, "acting");
        match step {
            Step::Nothing => Ok(Progress::Released),
            Step::AddFinalizer => {
                self.writes.finalizer(true).await?;
                Ok(Progress::AwaitChange)
            }
            Step::HoldCredentials => {
                self.ctx.hold_account(self.obj).await?;
                Ok(Progress::AwaitChange)
            }
            Step::Release(why) => self.release(why).await,
            Step::Report(problem) => match self.problem(problem) {
                Some(e) => Err(e),
                None => Ok(Progress::Unchanged),
            },
            Step::Create => self.create().await,
            Step::Adopt(instance) => self.adopt(instance).await,
            Step::Observe(instance) => self.observe(instance).await,
            Step::Delete(instance) => self.delete(instance).await,
            Step::Wait(wait) => Ok(self.wait(wait)),
        }
    }

    pub(super) fn busy(&self) -> Duration {
        self.ctx.config.busy_poll_interval
    }

    pub(super) fn account(&self) -> &Account {
        self.account
            .as_deref()
            .expect("the planner looked at the cloud before this step")
    }

    /// The error that reports `problem`; none when the status already reports it.
    fn problem(&self, problem: Problem) -> Option<Error> {
        let name = observe::instance_name(self.obj);
        Some(match problem {
            Problem::Ambiguous(count) => Error::AmbiguousInstance { name, count },
            Problem::NotFound => Error::InstanceNotFound(self.facts.known_uuid().map_or(name, str::to_owned)),
            Problem::ExternallyDeleted => {
                Error::ExternallyDeleted(self.facts.known_uuid().unwrap_or_default().to_owned())
            }
            Problem::InUse { instance, by } => Error::InstanceInUse { instance, by },
            Problem::AdoptionConflict { wanted, recorded } => Error::InvalidSpec(format!(
                "spec.instanceUuid {wanted} differs from {recorded} this object already manages; adopting another instance must be done with a new object"
            )),
            // Reported when the cloud rejected it; nothing changed since.
            Problem::CreateRejected => return None,
        })
    }

    async fn release(&mut self, why: Release) -> Result<Progress, Error> {
        let uuid = self.facts.known_uuid().map(str::to_owned);
        let (reason, note) = match (why, &uuid) {
            (Release::Retained, Some(u)) => (
                "Retained",
                format!("kept cloud instance {u} (deletionPolicy Retain or managementPolicy ObserveOnly)"),
            ),
            (Release::InUseElsewhere, Some(u)) => (
                "Retained",
                format!("kept cloud instance {u}: another RedisInstance records it"),
            ),
            (Release::Deleted, Some(u)) => ("Deleted", format!("cloud instance {u} is gone")),
            (Release::Deleted, None) => ("Deleted", "the instance of the unconfirmed create is gone".to_owned()),
            _ => ("Deleted", "no cloud instance was created".to_owned()),
        };
        self.ctx.event(self.obj, EventType::Normal, reason, note).await;
        self.writes.finalizer(false).await?;
        self.ctx.release_account(self.obj).await?;
        Ok(Progress::Released)
    }

    fn wait(&mut self, wait: Wait) -> Progress {
        let deleting = self.facts.deleting;
        match wait {
            Wait::Visibility => self.status.phase = Some(if deleting { Phase::Deleting } else { Phase::Creating }),
            Wait::Deletion(Some(i)) if deleting => status::apply_instance(&mut self.status, &i, &self.now),
            // An instance with our name is being deleted: ours to create once it is gone.
            Wait::Deletion(_) if !deleting => self.status.phase = Some(Phase::Pending),
            Wait::Deletion(_) | Wait::FreshListing => {}
        }
        Progress::Report {
            outcome: Outcome::Waiting,
            after: self.busy(),
        }
    }

    async fn adopt(&mut self, instance: InstanceSummary) -> Result<Progress, Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        if obj.management_policy() == ManagementPolicy::Full {
            ctx.claims
                .reserve(Claim::Uuid(instance.instance_uuid.clone()), obj)
                .map_err(|by| Error::InstanceInUse {
                    instance: format!("instance {}", instance.instance_uuid),
                    by,
                })?;
            if obj.spec.deletion_policy.is_none() && self.status.deletion_policy.is_none() {
                self.status.deletion_policy = Some(ctx.config.default_deletion_policy);
            }
        }
        let (reason, note) = if self.status.create_attempt.is_some() {
            (
                "Created",
                format!(
                    "found instance {} created by an earlier attempt whose answer was lost",
                    instance.instance_uuid
                ),
            )
        } else {
            (
                "Adopted",
                format!(
                    "adopted existing instance {} ({})",
                    instance.instance_uuid, instance.instance_name
                ),
            )
        };
        ctx.event(obj, EventType::Normal, reason, note).await;
        self.observe(instance).await
    }

    async fn observe(&mut self, instance: InstanceSummary) -> Result<Progress, Error> {
        let newly_ours = self.status.instance_uuid.as_deref() != Some(instance.instance_uuid.as_str());
        let before = self.status.endpoint.clone();
        status::apply_instance(&mut self.status, &instance, &self.now);
        self.status.create_attempt = None;
        if let (Some(from), Some(to)) = (&before, &self.status.endpoint)
            && from != to
            && !newly_ours
        {
            let note = format!(
                "instance {} moved from {}:{} to {}:{}",
                instance.instance_uuid, from.host, from.port, to.host, to.port
            );
            self.ctx
                .event(self.obj, EventType::Normal, "EndpointChanged", note)
                .await;
        }
        let (connection_ok, password_out_of_sync) = self.secrets().await?;
        let after = if self.status.phase == Some(Phase::Running) && connection_ok {
            self.ctx.steady_requeue()
        } else {
            self.busy()
        };
        Ok(Progress::Report {
            outcome: Outcome::Done {
                connection_ok,
                password_out_of_sync,
            },
            after,
        })
    }

    async fn delete(&mut self, instance: InstanceSummary) -> Result<Progress, Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let uuid = instance.instance_uuid.clone();
        status::apply_instance(&mut self.status, &instance, &self.now);
        self.status.phase = Some(Phase::Deleting);
        ctx.fence()?;
        let accepted = match self.account().client.delete_instance(&uuid).await {
            Ok(task) => {
                let task = task.map(|t| format!(" (task {t})")).unwrap_or_default();
                ctx.event(
                    obj,
                    EventType::Normal,
                    "Deleting",
                    format!("deleting instance {uuid}{task}"),
                )
                .await;
                true
            }
            // Gone already: confirmed by a per-UUID query before the finalizer goes.
            Err(e) if e.is_not_found() => true,
            // Still being created: the cloud takes the delete once the create is done.
            Err(e) if e.is_busy() && instance.status == wire::STATUS_CREATING => false,
            // Busy after a delete of ours: one that the cloud accepted and we re-sent after
            // `--delete-resend-after`, or one whose answer was lost. The cloud is deleting it (it
            // documents no status for that): the same as accepted.
            Err(e) if e.is_busy() && (self.facts.delete_requested_age.is_some() || ctx.delete_maybe_sent(obj)) => true,
            // Busy and no delete of ours known: another task holds the instance (a backup, a
            // change), or a process killed before it recorded its delete sent one. Not accepted
            // (no 300 s wait), not retried at once (no hot loop): the planner waits
            // `DELETE_BUSY_RETRY`.
            Err(e) if e.is_busy() => {
                ctx.delete_busy(obj);
                false
            }
            Err(e) => {
                if e.outcome_unknown() {
                    // It may have been carried out: the next listing must be newer, and a 409
                    // on the retry means it was.
                    ctx.wrote_cloud(obj);
                    ctx.delete_unanswered(obj);
                }
                return Err(e.into());
            }
        };
        if accepted {
            ctx.wrote_cloud(obj);
            self.status.delete_requested_at = Some(self.now.clone());
        }
        failpoint::hit("after-delete");
        Ok(Progress::Report {
            outcome: Outcome::Waiting,
            after: self.busy(),
        })
    }

    /// Password record, `PasswordOutOfSync`, and the connection Secret. Returns whether the
    /// connection Secret is in place (or not asked for), and whether the password changed.
    async fn secrets(&mut self) -> Result<(bool, bool), Error> {
        let (obj, ctx) = (self.obj, self.ctx);
        let wants_connection = obj.spec.write_connection_secret_to_ref.is_some();
        if obj.management_policy() == ManagementPolicy::ObserveOnly && !wants_connection {
            return Ok((true, false));
        }
        let recorded = ctx.secrets.recorded_password(obj).await?;
        let source = ctx.secrets.password(obj).await;
        let (password, out_of_sync) = match (recorded, source) {
            (Some(rec), Ok(src)) => {
                let changed = rec != src;
                (Some(rec), changed)
            }
            (Some(rec), Err(_)) => (Some(rec), false),
            (None, Ok(src)) => {
                // An adopted instance: assume the referenced password is its password.
                ctx.fence()?;
                ctx.secrets.write_record(obj, &src).await?;
                (Some(src), false)
            }
            (None, Err(e)) if wants_connection => return Err(e),
            (None, Err(_)) => (None, false),
        };
        let Some(target) = &obj.spec.write_connection_secret_to_ref else {
            return Ok((true, out_of_sync));
        };
        let st = &self.status;
        match (&st.endpoint, password, &st.instance_uuid, st.phase) {
            (Some(endpoint), Some(password), Some(uuid), Some(Phase::Running)) => {
                let data = status::connection_data(endpoint, &password, uuid);
                ctx.fence()?;
                ctx.secrets.ensure_connection_secret(obj, &target.name, data).await?;
                Ok((true, out_of_sync))
            }
            _ => Ok((false, out_of_sync)),
        }
    }
}
