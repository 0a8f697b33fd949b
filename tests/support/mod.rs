//! Test support: the real control plane and helpers shared by the integration test binaries
//! (each declares `mod support;`) and the benchmarks.
#![allow(dead_code)] // each test binary uses a different part of the support code

pub mod control_plane;
pub mod env;
pub mod operator;
pub mod redis;
pub mod sim;
pub mod soak;

/// The repository's root (the crate's manifest directory).
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The stdout of a finished command, after asserting that it succeeded (else both its outputs
/// are shown, under `what`).
pub fn stdout_ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
