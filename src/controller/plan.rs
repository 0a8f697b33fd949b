//! The pure core of a reconcile: from what is known about the object and what the cloud says,
//! the one next step. No IO, no clock (ages are inputs), table-tested rule by rule.
//!
//! Every decision of a reconcile is made here, including what to look at: when a decision needs
//! the cloud, the planner asks for a listing ([`Decision::Look`]) and is called again with the
//! answer; when an irreversible decision rests on an absence seen in a shared listing, it asks
//! for that absence to be confirmed by a per-UUID query first.
//!
//! The create protocol (contract, Behaviour 1) and the ownership rules (contract, Ownership):
//! - a known UUID (status, or `spec.instanceUuid`) is observed, never re-created;
//! - without one, the instance name is looked up first: one match is adopted, several are
//!   ambiguous, none leads to a create;
//! - a create whose outcome is unknown (`status.createAttempt` present, name not listed yet) is
//!   waited for during the visibility grace period before another create is allowed;
//! - an instance another object records is never adopted, recorded or deleted (rule 1), one the
//!   cloud is deleting is never adopted;
//! - a create the cloud rejected for good is not tried again until its inputs change;
//! - an accepted delete is not sent again while the instance is still listed (rule 5);
//! - `spec.instanceUuid` set after another instance was recorded or attempted is refused (rule 8).

use std::time::Duration;

use crate::cds::wire::{self, InstanceSummary};
use crate::crd::{DeletionPolicy, ManagementPolicy};

/// What the cloud says about the object's instance, as far as it was asked.
// One value per reconcile, never stored in bulk: boxing the found instance would only add noise
// to the table tests.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Cloud {
    /// Not asked yet.
    NotAsked,
    /// Looked up by a known UUID.
    ByUuid {
        /// The instance, if found.
        found: Option<Found>,
        /// The answer comes from a per-UUID query, not from the shared listing.
        confirmed: bool,
    },
    /// Looked up by the instance name (exact matches) in the shared listing.
    ByName(Vec<Found>),
}

/// An instance the cloud lists, and who else in the cluster claims it.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// What the cloud says.
    pub instance: InstanceSummary,
    /// Another `RedisInstance` (`namespace/name`) that records or is adopting this instance.
    pub claimed_by: Option<String>,
}

/// Everything the planner needs to know.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The object is being deleted.
    pub deleting: bool,
    /// The object carries the cleanup finalizer.
    pub has_finalizer: bool,
    /// `Full` or `ObserveOnly`.
    pub management: ManagementPolicy,
    /// The deletion policy in force (spec, else recorded at creation, else the operator default).
    pub deletion_policy: DeletionPolicy,
    /// UUID recorded in status.
    pub recorded_uuid: Option<String>,
    /// UUID to adopt, from `spec.instanceUuid`.
    pub spec_uuid: Option<String>,
    /// Time since a create was started whose outcome is not confirmed yet, if any.
    pub create_attempt_age: Option<Duration>,
    /// Time since the cloud accepted our `DeleteDBInstance`, if it did.
    pub delete_requested_age: Option<Duration>,
    /// The cloud rejected a create for good, and neither the object nor its Secrets changed since.
    pub create_rejected: bool,
    /// Another object records or is creating an instance with this object's instance name.
    pub name_claimed_by: Option<String>,
    /// The object references an account Secret that does not carry our in-use finalizer yet.
    pub credentials_unheld: bool,
    /// The shared listing was requested before our own last create or delete of this object's
    /// instance, so it cannot show that write's effect.
    pub listing_stale: bool,
    /// The cloud's answer so far.
    pub cloud: Cloud,
    /// How long a created instance may take to appear in listings (including the longest wait
    /// for the rate limiter between the intent marker and the call).
    pub visibility_grace: Duration,
    /// How long an accepted delete may leave the instance listed before it is sent once more.
    pub delete_resend_after: Duration,
    /// Time since the cloud refused our delete as busy (409) with no delete of ours known, if
    /// this process saw that.
    pub delete_busy_age: Option<Duration>,
    /// How long after such a refusal the delete is tried again.
    pub delete_busy_retry: Duration,
}

/// What to look at before deciding.
#[derive(Clone, Debug, PartialEq)]
pub enum Look {
    /// The shared listing: by UUID if one is known, else by name.
    Listing,
    /// A per-UUID query, to confirm an absence before acting on it.
    Confirm(String),
}

/// Why the finalizer is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The instance is kept (`Retain`, or `ObserveOnly`).
    Retained,
    /// The instance is gone.
    Deleted,
    /// No instance was ever created.
    NeverCreated,
    /// Another object records the instance: it is left to that object.
    InUseElsewhere,
}

/// Why the reconcile waits for the cloud.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    /// A create's outcome is not visible yet.
    Visibility,
    /// The cloud is deleting the instance (ours, or one with our name before we may create).
    Deletion(Option<InstanceSummary>),
    /// The listing predates our own last write: wait for a newer one.
    FreshListing,
}

/// A state that needs a person (reported as a terminal error).
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// Several instances carry the name.
    Ambiguous(usize),
    /// The instance to adopt or observe does not exist (or is being deleted).
    NotFound,
    /// A recorded instance vanished: never re-created silently.
    ExternallyDeleted,
    /// Another object records the instance, or is creating one with the same name.
    InUse {
        /// The instance (`instance UUID`) or the name (`instance name NAME`).
        instance: String,
        /// The other object, `namespace/name`.
        by: String,
    },
    /// `spec.instanceUuid` names another instance than the one recorded or being created.
    AdoptionConflict {
        /// What spec asks for.
        wanted: String,
        /// What the object recorded (or the pending create).
        recorded: String,
    },
    /// The cloud rejected the create for good; nothing changed since.
    CreateRejected,
}

/// What the planner decides: to learn more first, or the one next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Learn more, then plan again.
    Look(Look),
    /// Act.
    Act(Step),
}

impl From<Step> for Decision {
    fn from(step: Step) -> Self {
        Self::Act(step)
    }
}

/// The one next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing to do: the object is deleted and not ours any more.
    Nothing,
    /// Add the cleanup finalizer before anything is created.
    AddFinalizer,
    /// Put the in-use finalizer on the account Secret, so it outlives the deletion.
    HoldCredentials,
    /// Remove the finalizer.
    Release(Release),
    /// Write the intent marker, then call `CreateDBInstance`.
    Create,
    /// Record an instance found by name or by `spec.instanceUuid` as ours.
    Adopt(InstanceSummary),
    /// Report the recorded instance.
    Observe(InstanceSummary),
    /// Call `DeleteDBInstance` for this instance.
    Delete(InstanceSummary),
    /// Wait for the cloud.
    Wait(Wait),
    /// Report a problem that needs a person; act on nothing.
    Report(Problem),
}

impl Facts {
    /// The UUID the object is about: the recorded one, else the one spec asks to adopt.
    pub fn known_uuid(&self) -> Option<&str> {
        self.recorded_uuid.as_deref().or(self.spec_uuid.as_deref())
    }

    fn within_grace(&self) -> bool {
        self.create_attempt_age.is_some_and(|age| age < self.visibility_grace)
    }
}

/// What to do next, given `facts`.
pub fn plan(facts: &Facts) -> Decision {
    match step_for(facts) {
        Ok(step) => Decision::Act(step),
        Err(look) => Decision::Look(look),
    }
}

/// The step for `facts`, or (as the error) what to look at first.
fn step_for(facts: &Facts) -> Result<Step, Look> {
    if facts.deleting {
        return plan_deletion(facts);
    }
    if let Some(problem) = adoption_conflict(facts) {
        return Ok(Step::Report(problem));
    }
    if facts.management == ManagementPolicy::Full {
        if !facts.has_finalizer {
            return Ok(Step::AddFinalizer);
        }
        if facts.credentials_unheld {
            return Ok(Step::HoldCredentials);
        }
    }
    match &facts.cloud {
        Cloud::NotAsked => Err(Look::Listing),
        Cloud::ByUuid { found: Some(f), .. } => Ok(plan_found_by_uuid(facts, f)),
        Cloud::ByUuid { found: None, confirmed } => match facts.recorded_uuid.as_deref() {
            _ if facts.within_grace() => Ok(Step::Wait(Wait::Visibility)),
            _ if facts.listing_stale => Ok(Step::Wait(Wait::FreshListing)),
            Some(uuid) if !confirmed => Err(Look::Confirm(uuid.to_owned())),
            Some(_) => Ok(Step::Report(Problem::ExternallyDeleted)),
            None => Ok(Step::Report(Problem::NotFound)),
        },
        Cloud::ByName(found) => Ok(plan_found_by_name(facts, found)),
    }
}

/// `spec.instanceUuid` may only name what the object already records or has never attempted.
fn adoption_conflict(facts: &Facts) -> Option<Problem> {
    let wanted = facts.spec_uuid.as_deref()?;
    let recorded = match (&facts.recorded_uuid, facts.create_attempt_age) {
        (Some(uuid), _) if uuid != wanted => uuid.clone(),
        (None, Some(_)) => "a create in progress".to_owned(),
        _ => return None,
    };
    Some(Problem::AdoptionConflict {
        wanted: wanted.to_owned(),
        recorded,
    })
}

fn plan_found_by_uuid(facts: &Facts, f: &Found) -> Step {
    let i = &f.instance;
    match &f.claimed_by {
        Some(by) if facts.management == ManagementPolicy::Full => {
            return Step::Report(in_use(i, by));
        }
        _ => {}
    }
    if facts.recorded_uuid.is_some() {
        return Step::Observe(i.clone());
    }
    if i.status == wire::STATUS_DELETING {
        return Step::Report(Problem::NotFound);
    }
    Step::Adopt(i.clone())
}

fn plan_found_by_name(facts: &Facts, found: &[Found]) -> Step {
    match found {
        [f] if f.instance.status == wire::STATUS_DELETING => Step::Wait(Wait::Deletion(Some(f.instance.clone()))),
        [f] => match &f.claimed_by {
            Some(by) if facts.management == ManagementPolicy::Full => Step::Report(in_use(&f.instance, by)),
            _ => Step::Adopt(f.instance.clone()),
        },
        [] if facts.management == ManagementPolicy::ObserveOnly => Step::Report(Problem::NotFound),
        [] if facts.within_grace() => Step::Wait(Wait::Visibility),
        [] if facts.listing_stale => Step::Wait(Wait::FreshListing),
        [] if facts.create_rejected => Step::Report(Problem::CreateRejected),
        [] if let Some(by) = &facts.name_claimed_by => Step::Report(Problem::InUse {
            instance: "the instance name".to_owned(),
            by: by.clone(),
        }),
        [] => Step::Create,
        many => Step::Report(Problem::Ambiguous(many.len())),
    }
}

fn in_use(i: &InstanceSummary, by: &str) -> Problem {
    Problem::InUse {
        instance: format!("instance {}", i.instance_uuid),
        by: by.to_owned(),
    }
}

fn plan_deletion(facts: &Facts) -> Result<Step, Look> {
    if !facts.has_finalizer {
        return Ok(Step::Nothing);
    }
    // Deletions that need no cloud call never wait for one (a broken account must not hold them).
    if facts.management == ManagementPolicy::ObserveOnly || facts.deletion_policy == DeletionPolicy::Retain {
        return Ok(Step::Release(Release::Retained));
    }
    if facts.known_uuid().is_none() && facts.create_attempt_age.is_none() {
        return Ok(Step::Release(Release::NeverCreated));
    }
    match &facts.cloud {
        Cloud::NotAsked => Err(Look::Listing),
        Cloud::ByUuid { found: Some(f), .. } => Ok(delete_found(facts, f)),
        Cloud::ByUuid { found: None, confirmed } => {
            if facts.within_grace() {
                // Just created and not listed yet: it may appear any moment; releasing now would
                // orphan it (found by the soak).
                return Ok(Step::Wait(Wait::Visibility));
            }
            if facts.listing_stale {
                return Ok(Step::Wait(Wait::FreshListing));
            }
            match (confirmed, facts.known_uuid()) {
                (false, Some(uuid)) => Err(Look::Confirm(uuid.to_owned())),
                _ => Ok(Step::Release(Release::Deleted)),
            }
        }
        Cloud::ByName(found) => match found.as_slice() {
            [f] => Ok(delete_found(facts, f)),
            [] if facts.within_grace() => Ok(Step::Wait(Wait::Visibility)),
            [] if facts.listing_stale => Ok(Step::Wait(Wait::FreshListing)),
            [] => Ok(Step::Release(Release::Deleted)),
            many => Ok(Step::Report(Problem::Ambiguous(many.len()))),
        },
    }
}

fn delete_found(facts: &Facts, f: &Found) -> Step {
    let i = &f.instance;
    if f.claimed_by.is_some() {
        // Another object records this instance: deleting it would take it from under that
        // object's users. The instance is left to it.
        return Step::Release(Release::InUseElsewhere);
    }
    if i.status == wire::STATUS_DELETING {
        return Step::Wait(Wait::Deletion(Some(i.clone())));
    }
    if facts.listing_stale {
        // A listing older than our own last delete cannot show it: asking again would only
        // earn a 409.
        return Step::Wait(Wait::FreshListing);
    }
    if facts.delete_busy_age.is_some_and(|age| age < facts.delete_busy_retry) {
        // Refused as busy: either another task holds the instance, or a delete of ours that a
        // killed process sent is under way. Neither is helped by asking again at once.
        return Step::Wait(Wait::Deletion(Some(i.clone())));
    }
    match facts.delete_requested_age {
        // The cloud documents no status for an instance being deleted (rule 5): an accepted
        // delete is waited for, not repeated, unless the instance stays listed for a long time.
        Some(age) if age < facts.delete_resend_after => Step::Wait(Wait::Deletion(Some(i.clone()))),
        _ => Step::Delete(i.clone()),
    }
}

#[cfg(test)]
mod tests;
