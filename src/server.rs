//! The HTTP endpoints of the operator: `/metrics` (Prometheus), `/healthz` (the process
//! answers) and `/readyz` (a standby replica, or a leader whose watches are synced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What `/readyz` reports.
#[derive(Default)]
pub struct Readiness(AtomicU8);

const STANDBY: u8 = 1;
const SYNCING: u8 = 2;
const READY: u8 = 3;

impl Readiness {
    /// Waiting for the leader lease (ready: a standby replica is healthy).
    pub fn standby(&self) {
        self.0.store(STANDBY, Ordering::SeqCst);
    }
    /// Leading, watches not synced yet (not ready).
    pub fn syncing(&self) {
        self.0.store(SYNCING, Ordering::SeqCst);
    }
    /// Leading with synced watches (ready).
    pub fn ready(&self) {
        self.0.store(READY, Ordering::SeqCst);
    }
    fn is_ready(&self) -> (bool, &'static str) {
        match self.0.load(Ordering::SeqCst) {
            STANDBY => (true, "standby"),
            READY => (true, "ok"),
            SYNCING => (false, "watches not synced yet"),
            _ => (false, "starting"), // 0: nothing reported yet
        }
    }
}

struct Shared {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// Serves the endpoints on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Result<(), String> {
    let shared = Arc::new(Shared { metrics, readiness });
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    match s.readiness.is_ready() {
        (true, msg) => (StatusCode::OK, msg),
        (false, msg) => (StatusCode::SERVICE_UNAVAILABLE, msg),
    }
}
