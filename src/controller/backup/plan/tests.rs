//! One row per rule of the backup planner.

use super::*;

const S: Duration = Duration::from_secs(1);

/// A backup with its finalizer, nothing started, its instance running.
fn base() -> Facts {
    Facts {
        deleting: false,
        has_finalizer: true,
        retain: false,
        has_backup_id: false,
        attempt_age: None,
        accepted: false,
        has_instance_uuid: false,
        instance: Instance::Running("u".into()),
        seen: Seen::NotLooked,
        visibility_grace: 10 * S,
    }
}

fn started(age: Duration, accepted: bool) -> Facts {
    Facts {
        attempt_age: Some(age),
        accepted,
        has_instance_uuid: true,
        ..base()
    }
}

fn recorded(seen: Seen) -> Facts {
    Facts {
        has_backup_id: true,
        has_instance_uuid: true,
        seen,
        ..base()
    }
}

fn deleting(f: Facts) -> Facts {
    Facts { deleting: true, ..f }
}

#[test]
fn each_rule() {
    let rows: Vec<(&str, Facts, Step)> = vec![
        (
            "the finalizer first",
            Facts {
                has_finalizer: false,
                ..base()
            },
            Step::AddFinalizer,
        ),
        (
            "no instance object",
            Facts {
                instance: Instance::Missing,
                ..base()
            },
            Step::WaitForInstance(WaitReason::InstanceNotFound),
        ),
        (
            "instance not running",
            Facts {
                instance: Instance::NotRunning,
                ..base()
            },
            Step::WaitForInstance(WaitReason::InstanceNotReady),
        ),
        ("instance running, nothing started", base(), Step::Create),
        ("an intent is looked up first", started(S, false), Step::Look),
        (
            "found by its marker, running",
            Facts {
                seen: Seen::Listed { finished: false },
                ..started(S, true)
            },
            Step::WaitForBackup,
        ),
        (
            "found by its marker, finished",
            Facts {
                seen: Seen::Listed { finished: true },
                ..started(S, true)
            },
            Step::Complete,
        ),
        (
            "unanswered create, unlisted, within the grace",
            Facts {
                seen: Seen::Absent,
                ..started(5 * S, false)
            },
            Step::WaitForVisibility,
        ),
        (
            "unanswered create, unlisted after the grace: sent again",
            Facts {
                seen: Seen::Absent,
                ..started(11 * S, false)
            },
            Step::Create,
        ),
        (
            "unanswered create, unlisted, instance stopped running",
            Facts {
                seen: Seen::Absent,
                instance: Instance::NotRunning,
                ..started(11 * S, false)
            },
            Step::WaitForInstance(WaitReason::InstanceNotReady),
        ),
        (
            "accepted create, unlisted: never a second",
            Facts {
                seen: Seen::Absent,
                ..started(300 * S, true)
            },
            Step::WaitForVisibility,
        ),
        (
            "accepted create, unlisted for 10 minutes: lost",
            Facts {
                seen: Seen::Absent,
                ..started(601 * S, true)
            },
            Step::Lost,
        ),
        ("recorded: look", recorded(Seen::NotLooked), Step::Look),
        (
            "recorded, finished",
            recorded(Seen::Listed { finished: true }),
            Step::Complete,
        ),
        ("recorded, gone from the listing", recorded(Seen::Absent), Step::Lost),
        ("recorded, instance gone", recorded(Seen::InstanceGone), Step::Lost),
        (
            "deleted, finalizer gone",
            deleting(Facts {
                has_finalizer: false,
                ..base()
            }),
            Step::Nothing,
        ),
        ("deleted, never created", deleting(base()), Step::RemoveFinalizer),
        (
            "deleted, retained",
            deleting(Facts {
                retain: true,
                ..recorded(Seen::NotLooked)
            }),
            Step::RemoveFinalizer,
        ),
        (
            "deleted, recorded: look",
            deleting(recorded(Seen::NotLooked)),
            Step::Look,
        ),
        (
            "deleted, listed: delete",
            deleting(recorded(Seen::Listed { finished: true })),
            Step::Delete,
        ),
        (
            "deleted, listed while running: delete (409s are retried)",
            deleting(recorded(Seen::Listed { finished: false })),
            Step::Delete,
        ),
        (
            "deleted, gone: release",
            deleting(recorded(Seen::Absent)),
            Step::RemoveFinalizer,
        ),
        (
            "deleted, instance gone: release",
            deleting(recorded(Seen::InstanceGone)),
            Step::RemoveFinalizer,
        ),
        (
            "deleted right after a create: wait for the listing",
            deleting(Facts {
                seen: Seen::Absent,
                ..started(2 * S, false)
            }),
            Step::WaitForVisibility,
        ),
        (
            "deleted after an accepted create not yet listed: wait",
            deleting(Facts {
                seen: Seen::Absent,
                ..started(60 * S, true)
            }),
            Step::WaitForVisibility,
        ),
        (
            "deleted, unanswered create never listed: release",
            deleting(Facts {
                seen: Seen::Absent,
                ..started(60 * S, false)
            }),
            Step::RemoveFinalizer,
        ),
        (
            "deleted, intent without an instance recorded",
            deleting(Facts {
                has_instance_uuid: false,
                ..started(S, false)
            }),
            Step::RemoveFinalizer,
        ),
    ];
    for (rule, facts, want) in rows {
        assert_eq!(plan(&facts), want, "{rule}: {facts:?}");
    }
}
