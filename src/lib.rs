//! cds-redis-operator: a Kubernetes operator for Redis instances on CapitalOnline cloud (CDS).
//!
//! - [`crd`]: the `RedisInstance` API (spec, status, conditions);
//! - [`cds`]: the signed CDS Redis API client;
//! - [`controller`]: the `RedisInstance` controller (observe → plan → act → report);
//! - [`simulator`]: a local CDS Redis API for tests, demos and dry runs;
//! - [`cli`]: the binary's command line, and the `cds` command;
//! - [`error`], [`metrics`], [`server`], [`leader`], [`config`], [`duration`],
//!   [`encoding`], [`backoff`]: the operator's plumbing.

pub mod backoff;
pub mod cds;
pub mod cli;
pub mod config;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod encoding;
pub mod error;
pub mod failpoint;
pub mod leader;
pub mod metrics;
pub mod server;
pub mod simulator;

/// An error and its sources, joined by `: ` (e.g. `cannot read /creds/accessKeyId: No such file
/// or directory (os error 2)`), for a person to read.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
