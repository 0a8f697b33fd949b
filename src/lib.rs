//! cds-redis-operator: a Kubernetes operator for Redis instances on CapitalOnline cloud (CDS).
//!
//! - [`crd`]: the `RedisInstance` API (spec, status, conditions);
//! - [`cds`]: the signed CDS Redis API client;
//! - [`simulator`]: a local CDS Redis API for tests, demos and dry runs.

pub mod cds;
pub mod config;
pub mod crd;
pub mod simulator;

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
