//! `scripts/soak.sh`: the long soak. Rounds of creates, random cloud faults, SIGKILL + restart of
//! the operator and deletes, mixed with name-collision, secrets-first, namespace-deletion,
//! frozen-leader and no-deleting-status rounds (see `tests/support/soak.rs`), bounded by a round
//! count and a time limit; then the invariants, each with its count of checks and violations.
//!
//!   cargo bench --bench soak -- [--rounds 50] [--minutes 30] [--batch 4] [--seed 7]
//!                               [--converge-seconds 240]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: a test run skips the
    // long benchmark instead of running it.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("a benchmark: run it with cargo bench (see scripts/bench.sh, scripts/soak.sh)");
        return;
    }
    let config = support::soak::SoakConfig {
        rounds: arg("--rounds", 50) as usize,
        max_duration: Duration::from_secs(arg("--minutes", 30) * 60),
        batch: arg("--batch", 4) as usize,
        seed: arg("--seed", 7),
        converge_within: Duration::from_secs(arg("--converge-seconds", 240)),
    };
    eprintln!("soak: {config:?}");
    let started = std::time::Instant::now();
    let report = support::soak::run(config).await;
    println!("{report}");
    println!("wall time: {:.0}s", started.elapsed().as_secs_f64());
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
