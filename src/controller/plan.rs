//! The pure core of a reconcile: from what is known about the object and what the cloud lists,
//! the one next step. No IO, no clock (the time is an input), table-tested.
//!
//! The create protocol (contract, Behaviour 1) lives here:
//! - a known UUID (status, or `spec.instanceUuid`) is observed, never re-created;
//! - without one, the instance name is looked up first: one match is adopted, several are
//!   ambiguous, none leads to a create;
//! - a create whose outcome is unknown (`status.createAttempt` present, name not listed yet) is
//!   waited for during the visibility grace period before another create is allowed;
//! - the create itself happens only after the intent marker was written (the act step does that
//!   with optimistic concurrency).

use std::time::Duration;

use crate::cds::wire::{self, InstanceSummary};
use crate::crd::{DeletionPolicy, ManagementPolicy};

/// What the cloud listing says about the object's instance.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// Looked up by a known UUID (exact match), found or not.
    ByUuid(Option<Box<InstanceSummary>>),
    /// Looked up by the instance name (exact matches).
    ByName(Vec<InstanceSummary>),
}

/// Everything the planner needs to know.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The object is being deleted.
    pub deleting: bool,
    /// The object carries our finalizer.
    pub has_finalizer: bool,
    /// `Full` or `ObserveOnly`.
    pub management: ManagementPolicy,
    /// `Delete` or `Retain` (spec, or the operator default).
    pub deletion_policy: DeletionPolicy,
    /// UUID recorded in status.
    pub status_uuid: Option<String>,
    /// Milliseconds since a create was started whose outcome is not confirmed yet, if any.
    pub create_attempt_age: Option<Duration>,
    /// The cloud's answer.
    pub lookup: Lookup,
    /// How long a created instance may take to appear in listings.
    pub visibility_grace: Duration,
}

/// The one next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Add the finalizer before anything is created.
    AddFinalizer,
    /// Nothing to do for a deleted object that is not ours any more.
    Nothing,
    /// Release the object: remove the finalizer.
    RemoveFinalizer,
    /// Report the instance (and, if not recorded yet, record its UUID).
    Observe(InstanceSummary),
    /// Record an instance found by name or by `spec.instanceUuid` as ours.
    Adopt(InstanceSummary),
    /// Several instances carry the name: stop and say so.
    Ambiguous(usize),
    /// The instance to adopt or observe does not exist.
    NotFound,
    /// A known instance vanished: report it, never re-create silently.
    ExternallyDeleted,
    /// A create's outcome is not known yet: wait for the listing to show it.
    WaitForVisibility,
    /// Write the intent marker, then call `CreateDBInstance`.
    Create,
    /// Call `DeleteDBInstance` for this UUID.
    Delete(String),
    /// The cloud is deleting the instance: wait until it is gone.
    WaitForDeletion(InstanceSummary),
}

/// The next step for `facts`.
pub fn plan(facts: &Facts) -> Step {
    let within_grace = facts.create_attempt_age.is_some_and(|age| age < facts.visibility_grace);
    if facts.deleting {
        if !facts.has_finalizer {
            return Step::Nothing;
        }
        if facts.management == ManagementPolicy::ObserveOnly || facts.deletion_policy == DeletionPolicy::Retain {
            return Step::RemoveFinalizer;
        }
        return match &facts.lookup {
            Lookup::ByUuid(Some(i)) if i.status == wire::STATUS_DELETING => Step::WaitForDeletion((**i).clone()),
            Lookup::ByUuid(Some(i)) => Step::Delete(i.instance_uuid.clone()),
            // Just created and not listed yet: it may appear any moment; releasing now would
            // orphan it (found by the soak).
            Lookup::ByUuid(None) if within_grace => Step::WaitForVisibility,
            Lookup::ByUuid(None) => Step::RemoveFinalizer,
            Lookup::ByName(found) => match found.as_slice() {
                [i] if i.status == wire::STATUS_DELETING => Step::WaitForDeletion(i.clone()),
                [i] => Step::Delete(i.instance_uuid.clone()),
                [] if within_grace => Step::WaitForVisibility,
                [] => Step::RemoveFinalizer,
                many => Step::Ambiguous(many.len()),
            },
        };
    }
    if facts.management == ManagementPolicy::Full && !facts.has_finalizer {
        return Step::AddFinalizer;
    }
    match &facts.lookup {
        Lookup::ByUuid(Some(i)) if facts.status_uuid.is_none() => Step::Adopt((**i).clone()),
        Lookup::ByUuid(Some(i)) => Step::Observe((**i).clone()),
        Lookup::ByUuid(None) if facts.status_uuid.is_none() => Step::NotFound,
        Lookup::ByUuid(None) if within_grace => Step::WaitForVisibility,
        Lookup::ByUuid(None) => Step::ExternallyDeleted,
        Lookup::ByName(found) => match found.as_slice() {
            [i] => Step::Adopt(i.clone()),
            [] if facts.management == ManagementPolicy::ObserveOnly => Step::NotFound,
            [] if within_grace => Step::WaitForVisibility,
            [] => Step::Create,
            many => Step::Ambiguous(many.len()),
        },
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

    fn base() -> Facts {
        Facts {
            deleting: false,
            has_finalizer: true,
            management: ManagementPolicy::Full,
            deletion_policy: DeletionPolicy::Delete,
            status_uuid: None,
            create_attempt_age: None,
            lookup: Lookup::ByName(vec![]),
            visibility_grace: Duration::from_secs(60),
        }
    }

    const SECS: fn(u64) -> Option<Duration> = |s| Some(Duration::from_secs(s));

    #[test]
    fn table() {
        let running = inst("u1", "RUNNING");
        let deleting = inst("u1", "DELETING");
        #[rustfmt::skip]
        let cases: Vec<(&str, Facts, Step)> = vec![
            ("new object gets the finalizer first",
                Facts { has_finalizer: false, ..base() }, Step::AddFinalizer),
            ("observe-only objects get no finalizer",
                Facts { has_finalizer: false, management: ManagementPolicy::ObserveOnly, lookup: Lookup::ByName(vec![running.clone()]), ..base() }, Step::Adopt(running.clone())),
            ("nothing exists, no attempt: create",
                base(), Step::Create),
            ("lost create response, within grace: wait, do not create again",
                Facts { create_attempt_age: SECS(10), ..base() }, Step::WaitForVisibility),
            ("attempt older than the grace and still nothing listed: create again",
                Facts { create_attempt_age: SECS(61), ..base() }, Step::Create),
            ("lost create response, name now listed: adopt it",
                Facts { create_attempt_age: SECS(10), lookup: Lookup::ByName(vec![running.clone()]), ..base() }, Step::Adopt(running.clone())),
            ("two instances with our name: ambiguous, never a third",
                Facts { lookup: Lookup::ByName(vec![running.clone(), inst("u2", "RUNNING")]), ..base() }, Step::Ambiguous(2)),
            ("known uuid listed: observe",
                Facts { status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(Some(Box::new(running.clone()))), ..base() }, Step::Observe(running.clone())),
            ("known uuid just created, not listed yet: wait",
                Facts { status_uuid: Some("u1".into()), create_attempt_age: SECS(5), lookup: Lookup::ByUuid(None), ..base() }, Step::WaitForVisibility),
            ("known uuid vanished: externally deleted, no re-create",
                Facts { status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(None), ..base() }, Step::ExternallyDeleted),
            ("adopt from spec",
                Facts { lookup: Lookup::ByUuid(Some(Box::new(running.clone()))), ..base() }, Step::Adopt(running.clone())),
            ("adopt from spec, missing",
                Facts { lookup: Lookup::ByUuid(None), ..base() }, Step::NotFound),
            ("observe-only never creates",
                Facts { management: ManagementPolicy::ObserveOnly, ..base() }, Step::NotFound),
            ("deleted without finalizer: nothing",
                Facts { deleting: true, has_finalizer: false, ..base() }, Step::Nothing),
            ("delete a listed instance",
                Facts { deleting: true, status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(Some(Box::new(running.clone()))), ..base() }, Step::Delete("u1".into())),
            ("delete in progress: wait",
                Facts { deleting: true, status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(Some(Box::new(deleting.clone()))), ..base() }, Step::WaitForDeletion(deleting.clone())),
            ("deleted right after a create, not listed yet: wait, do not orphan it",
                Facts { deleting: true, status_uuid: Some("u1".into()), create_attempt_age: SECS(1), lookup: Lookup::ByUuid(None), ..base() }, Step::WaitForVisibility),
            ("instance gone: release",
                Facts { deleting: true, status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(None), ..base() }, Step::RemoveFinalizer),
            ("never created: release at once",
                Facts { deleting: true, ..base() }, Step::RemoveFinalizer),
            ("deleted while a create's outcome is unknown: wait for it, then delete it",
                Facts { deleting: true, create_attempt_age: SECS(3), ..base() }, Step::WaitForVisibility),
            ("deleted after a lost create response: delete what the name finds",
                Facts { deleting: true, create_attempt_age: SECS(3), lookup: Lookup::ByName(vec![running.clone()]), ..base() }, Step::Delete("u1".into())),
            ("retain: release without deleting",
                Facts { deleting: true, deletion_policy: DeletionPolicy::Retain, status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(Some(Box::new(running.clone()))), ..base() }, Step::RemoveFinalizer),
            ("observe-only: release without deleting",
                Facts { deleting: true, management: ManagementPolicy::ObserveOnly, status_uuid: Some("u1".into()), lookup: Lookup::ByUuid(Some(Box::new(running.clone()))), ..base() }, Step::RemoveFinalizer),
            ("ambiguous at deletion: keep the finalizer and say why",
                Facts { deleting: true, lookup: Lookup::ByName(vec![running.clone(), inst("u2", "RUNNING")]), ..base() }, Step::Ambiguous(2)),
        ];
        for (name, facts, want) in cases {
            assert_eq!(plan(&facts), want, "{name}");
        }
    }
}
