//! Unit tests of `plan`.

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
        delete_busy_age: None,
        delete_busy_retry: Duration::from_secs(15),
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
    let busy = |secs| Facts {
        delete_busy_age: Some(Duration::from_secs(secs)),
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
            "a delete refused as busy is not sent again at once",
            busy(1),
            Decision::Act(Step::Wait(Wait::Deletion(Some(running.instance.clone())))),
        ),
        (
            "but again once the busy retry time has passed",
            busy(16),
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
