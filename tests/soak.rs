//! A short soak in every test run (the long one is `scripts/soak.sh`): every round kind once
//! (creates, cloud faults, operator kills and deletes; name collisions, Secrets deleted first,
//! a frozen leader, no `DELETING` status, namespace deletion),
//! then every invariant.

mod support;

use std::time::Duration;

use crate::support::soak::{RoundKind, SoakConfig, invariant, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_keeps_every_invariant() {
    let report = run(SoakConfig {
        rounds: 6,
        max_duration: Duration::from_secs(150),
        batch: 3,
        seed: 42,
        converge_within: Duration::from_secs(120),
    })
    .await;
    eprintln!("{report}");
    assert_eq!(report.rounds, 6);
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.live > 0 && report.kills == 6, "{report}");
    for kind in RoundKind::ALL {
        assert!(
            report.kinds.get(kind.label()).is_some_and(|n| *n > 0),
            "no {} round:\n{report}",
            kind.label()
        );
    }
    for name in invariant::ALL {
        assert!(report.invariant(name).checked > 0, "never checked: {name}\n{report}");
    }
}
