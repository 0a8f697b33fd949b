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
    match facts.delete_requested_age {
        // The cloud documents no status for an instance being deleted (rule 5): an accepted
        // delete is waited for, not repeated, unless the instance stays listed for a long time.
        Some(age) if age < facts.delete_resend_after => Step::Wait(Wait::Deletion(Some(i.clone()))),
        _ => Step::Delete(i.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(uuid: &str, status: &str) -> InstanceSummary {
        InstanceSummary {
            instance_uuid: uuid.into(),
            instance_name: "n".into(),
            status: status.into(),
            ..Default::default()
        }
    }

    fn found(uuid: &str, status: &str) -> Found {
        Found {
            instance: inst(uuid, status),
            claimed_by: None,
        }
    }

    fn claimed(uuid: &str) -> Found {
        Found {
            claimed_by: Some("ns/other".into()),
            ..found(uuid, "RUNNING")
        }
    }

    /// A new `Full` object with its finalizer, nothing recorded, nothing looked up.
    fn facts() -> Facts {
        Facts {
            deleting: false,
            has_finalizer: true,
            management: ManagementPolicy::Full,
            deletion_policy: DeletionPolicy::Delete,
            recorded_uuid: None,
            spec_uuid: None,
            create_attempt_age: None,
            delete_requested_age: None,
            create_rejected: false,
            name_claimed_by: None,
            credentials_unheld: false,
            listing_stale: false,
            cloud: Cloud::NotAsked,
            visibility_grace: Duration::from_secs(60),
            delete_resend_after: Duration::from_secs(300),
        }
    }

    /// Small builders: each says what differs from [`facts`].
    impl Facts {
        fn deleting(self) -> Self {
            Self { deleting: true, ..self }
        }
        fn recorded(self, uuid: &str) -> Self {
            Self {
                recorded_uuid: Some(uuid.into()),
                ..self
            }
        }
        fn adopting(self, uuid: &str) -> Self {
            Self {
                spec_uuid: Some(uuid.into()),
                ..self
            }
        }
        fn attempt(self, secs: u64) -> Self {
            Self {
                create_attempt_age: Some(Duration::from_secs(secs)),
                ..self
            }
        }
        fn by_name(self, found: Vec<Found>) -> Self {
            Self {
                cloud: Cloud::ByName(found),
                ..self
            }
        }
        fn by_uuid(self, found: Option<Found>, confirmed: bool) -> Self {
            Self {
                cloud: Cloud::ByUuid { found, confirmed },
                ..self
            }
        }
        fn observe_only(self) -> Self {
            Self {
                management: ManagementPolicy::ObserveOnly,
                ..self
            }
        }
        fn stale(self) -> Self {
            Self {
                listing_stale: true,
                ..self
            }
        }
    }

    fn check(cases: Vec<(&str, Facts, Decision)>) {
        for (name, facts, want) in cases {
            assert_eq!(plan(&facts), want, "{name}");
        }
    }

    #[test]
    fn finalizer_and_account_secret_come_before_anything_else() {
        check(vec![
            (
                "a new object gets the finalizer first",
                Facts {
                    has_finalizer: false,
                    ..facts()
                },
                Decision::Act(Step::AddFinalizer),
            ),
            (
                "observe-only objects get no finalizer",
                Facts {
                    has_finalizer: false,
                    ..facts().observe_only()
                },
                Decision::Look(Look::Listing),
            ),
            (
                "the account Secret is held before any create",
                Facts {
                    credentials_unheld: true,
                    ..facts()
                },
                Decision::Act(Step::HoldCredentials),
            ),
            (
                "deleted and not ours any more: nothing",
                Facts {
                    has_finalizer: false,
                    ..facts().deleting()
                },
                Decision::Act(Step::Nothing),
            ),
        ]);
    }

    #[test]
    fn create_exactly_once() {
        let running = found("u1", "RUNNING");
        check(vec![
            ("nothing known: look first", facts(), Decision::Look(Look::Listing)),
            (
                "nothing listed, no attempt: create",
                facts().by_name(vec![]),
                Decision::Act(Step::Create),
            ),
            (
                "lost create response, within grace: wait, do not create again",
                facts().attempt(10).by_name(vec![]),
                Decision::Act(Step::Wait(Wait::Visibility)),
            ),
            (
                "attempt older than the grace and still nothing listed: create again",
                facts().attempt(61).by_name(vec![]),
                Decision::Act(Step::Create),
            ),
            (
                "lost create response, name now listed: adopt it",
                facts().attempt(10).by_name(vec![running.clone()]),
                Decision::Act(Step::Adopt(running.instance.clone())),
            ),
            (
                "two instances with our name: ambiguous, never a third",
                facts().by_name(vec![running.clone(), found("u2", "RUNNING")]),
                Decision::Act(Step::Report(Problem::Ambiguous(2))),
            ),
            (
                "a listing older than our own create: wait for a newer one",
                facts().stale().attempt(70).by_name(vec![]),
                Decision::Act(Step::Wait(Wait::FreshListing)),
            ),
            (
                "a create rejected for good is not repeated until something changes",
                Facts {
                    create_rejected: true,
                    ..facts().by_name(vec![])
                },
                Decision::Act(Step::Report(Problem::CreateRejected)),
            ),
            (
                "an instance with our name being deleted is waited for, not adopted",
                facts().by_name(vec![found("u1", "DELETING")]),
                Decision::Act(Step::Wait(Wait::Deletion(Some(inst("u1", "DELETING"))))),
            ),
        ]);
    }

    #[test]
    fn observe_and_adopt() {
        let running = found("u1", "RUNNING");
        check(vec![
            (
                "known uuid listed: observe",
                facts().recorded("u1").by_uuid(Some(running.clone()), false),
                Decision::Act(Step::Observe(running.instance.clone())),
            ),
            (
                "known uuid just created, not listed yet: wait",
                facts().recorded("u1").attempt(5).by_uuid(None, false),
                Decision::Act(Step::Wait(Wait::Visibility)),
            ),
            (
                "known uuid absent from the listing: confirm before concluding",
                facts().recorded("u1").by_uuid(None, false),
                Decision::Look(Look::Confirm("u1".into())),
            ),
            (
                "known uuid confirmed absent: externally deleted, no re-create",
                facts().recorded("u1").by_uuid(None, true),
                Decision::Act(Step::Report(Problem::ExternallyDeleted)),
            ),
            (
                "adopt from spec",
                facts().adopting("u1").by_uuid(Some(running.clone()), false),
                Decision::Act(Step::Adopt(running.instance.clone())),
            ),
            (
                "adopt from spec, missing",
                facts().adopting("u1").by_uuid(None, false),
                Decision::Act(Step::Report(Problem::NotFound)),
            ),
            (
                "an instance the cloud is deleting is never adopted",
                facts().adopting("u1").by_uuid(Some(found("u1", "DELETING")), false),
                Decision::Act(Step::Report(Problem::NotFound)),
            ),
            (
                "observe-only never creates",
                facts().observe_only().by_name(vec![]),
                Decision::Act(Step::Report(Problem::NotFound)),
            ),
        ]);
    }

    #[test]
    fn one_instance_one_object() {
        check(vec![
            (
                "an instance another object records is not adopted by name",
                facts().by_name(vec![claimed("u1")]),
                Decision::Act(Step::Report(Problem::InUse {
                    instance: "instance u1".into(),
                    by: "ns/other".into(),
                })),
            ),
            (
                "nor by spec.instanceUuid",
                facts().adopting("u1").by_uuid(Some(claimed("u1")), false),
                Decision::Act(Step::Report(Problem::InUse {
                    instance: "instance u1".into(),
                    by: "ns/other".into(),
                })),
            ),
            (
                "nor observed as ours when both recorded it",
                facts().recorded("u1").by_uuid(Some(claimed("u1")), false),
                Decision::Act(Step::Report(Problem::InUse {
                    instance: "instance u1".into(),
                    by: "ns/other".into(),
                })),
            ),
            (
                "a name another object is creating with is not created twice",
                Facts {
                    name_claimed_by: Some("ns/other".into()),
                    ..facts().by_name(vec![])
                },
                Decision::Act(Step::Report(Problem::InUse {
                    instance: "the instance name".into(),
                    by: "ns/other".into(),
                })),
            ),
            (
                "an observe-only object may observe it",
                facts()
                    .observe_only()
                    .adopting("u1")
                    .by_uuid(Some(claimed("u1")), false),
                Decision::Act(Step::Adopt(inst("u1", "RUNNING"))),
            ),
            (
                "deleting never deletes an instance another object records",
                facts().deleting().recorded("u1").by_uuid(Some(claimed("u1")), false),
                Decision::Act(Step::Release(Release::InUseElsewhere)),
            ),
        ]);
    }

    #[test]
    fn adoption_is_explicit() {
        check(vec![
            (
                "spec.instanceUuid added after another instance was recorded",
                facts().recorded("u1").adopting("u2"),
                Decision::Act(Step::Report(Problem::AdoptionConflict {
                    wanted: "u2".into(),
                    recorded: "u1".into(),
                })),
            ),
            (
                "spec.instanceUuid added while a create is pending",
                facts().attempt(3).adopting("u2"),
                Decision::Act(Step::Report(Problem::AdoptionConflict {
                    wanted: "u2".into(),
                    recorded: "a create in progress".into(),
                })),
            ),
            (
                "spec.instanceUuid equal to the recorded one is fine",
                facts().recorded("u1").adopting("u1"),
                Decision::Look(Look::Listing),
            ),
        ]);
    }

    #[test]
    fn deletion() {
        let running = found("u1", "RUNNING");
        let requested = |secs| Facts {
            delete_requested_age: Some(Duration::from_secs(secs)),
            ..facts().deleting().recorded("u1").by_uuid(Some(running.clone()), false)
        };
        check(vec![
            (
                "look before deleting",
                facts().deleting().recorded("u1"),
                Decision::Look(Look::Listing),
            ),
            (
                "delete a listed instance",
                facts().deleting().recorded("u1").by_uuid(Some(running.clone()), false),
                Decision::Act(Step::Delete(running.instance.clone())),
            ),
            (
                "an accepted delete is not sent again while the instance is listed",
                requested(30),
                Decision::Act(Step::Wait(Wait::Deletion(Some(running.instance.clone())))),
            ),
            (
                "unless it stays listed past the resend time",
                requested(301),
                Decision::Act(Step::Delete(running.instance.clone())),
            ),
            (
                "a listing older than our own delete: wait",
                facts()
                    .deleting()
                    .recorded("u1")
                    .stale()
                    .by_uuid(Some(running.clone()), false),
                Decision::Act(Step::Wait(Wait::FreshListing)),
            ),
            (
                "the cloud deleting: wait",
                facts()
                    .deleting()
                    .recorded("u1")
                    .by_uuid(Some(found("u1", "DELETING")), false),
                Decision::Act(Step::Wait(Wait::Deletion(Some(inst("u1", "DELETING"))))),
            ),
            (
                "deleted right after a create, not listed yet: wait, do not orphan it",
                facts().deleting().recorded("u1").attempt(1).by_uuid(None, false),
                Decision::Act(Step::Wait(Wait::Visibility)),
            ),
            (
                "absent from the listing: confirm before releasing",
                facts().deleting().recorded("u1").by_uuid(None, false),
                Decision::Look(Look::Confirm("u1".into())),
            ),
            (
                "confirmed gone: release",
                facts().deleting().recorded("u1").by_uuid(None, true),
                Decision::Act(Step::Release(Release::Deleted)),
            ),
            (
                "never created: release at once, without asking the cloud",
                facts().deleting(),
                Decision::Act(Step::Release(Release::NeverCreated)),
            ),
            (
                "deleted while a create's outcome is unknown: look",
                facts().deleting().attempt(3),
                Decision::Look(Look::Listing),
            ),
            (
                "and wait for it",
                facts().deleting().attempt(3).by_name(vec![]),
                Decision::Act(Step::Wait(Wait::Visibility)),
            ),
            (
                "deleted after a lost create response: delete what the name finds",
                facts().deleting().attempt(3).by_name(vec![running.clone()]),
                Decision::Act(Step::Delete(running.instance.clone())),
            ),
            (
                "retain: release without asking the cloud",
                Facts {
                    deletion_policy: DeletionPolicy::Retain,
                    ..facts().deleting().recorded("u1")
                },
                Decision::Act(Step::Release(Release::Retained)),
            ),
            (
                "observe-only: release without asking the cloud",
                facts().deleting().observe_only().recorded("u1"),
                Decision::Act(Step::Release(Release::Retained)),
            ),
            (
                "ambiguous at deletion: keep the finalizer and say why",
                facts()
                    .deleting()
                    .attempt(100)
                    .by_name(vec![running.clone(), found("u2", "RUNNING")]),
                Decision::Act(Step::Report(Problem::Ambiguous(2))),
            ),
        ]);
    }
}
