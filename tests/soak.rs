//! A short soak in every test run (the long one is `scripts/soak.sh`): a few rounds of
//! creates, cloud faults, operator kills and deletes, then the invariants.

mod support;

use std::time::Duration;

use crate::support::soak::{SoakConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_keeps_every_invariant() {
    let report = run(SoakConfig {
        rounds: 4,
        max_duration: Duration::from_secs(60),
        batch: 3,
        seed: 42,
    })
    .await;
    eprintln!("{report}");
    assert_eq!(report.rounds, 4);
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.live > 0 && report.kills == 4);
}
