//! A local CDS Redis API: `cds-redis-operator simulator`.
//!
//! Speaks the documented API on `/redis/` (and `/redis`), and `DescribeVdc` on `/network/`, with the documented envelopes, codes and
//! asynchrony, checks signatures like the cloud, injects faults on demand, can back each instance
//! with a real `redis-server` (whose snapshots make real backups, served for download by
//! `backups.rs`), and exposes its state on an unsigned admin endpoint (`/admin/`, off unless
//! enabled) for tests.
//!
//! Pipeline of one API call: verify the signature ([`auth`]) → count it → injected latency and
//! errors ([`faults`]) → carry it out on the [`state`] → maybe lose the answer → persist.

mod admin;
mod api;
pub mod auth;
mod backups;
mod config;
pub mod faults;
mod log;
pub mod network;
pub mod redis;
pub mod state;
#[cfg(test)]
mod tests;

use api::api;
pub use config::{SimulatorConfig, StartError, TEST_NETWORK, TEST_VDC, default_cloud};
pub use log::{CallCounts, WriteRecord};

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use secrecy::SecretString;
use tokio::sync::{Mutex, watch};
use tower::ServiceExt as _;

use faults::FaultInjector;
use state::Cloud;

/// An API error the simulator answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// CDS `Code`.
    pub code: String,
    /// `Message`.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// A 400 error.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
}

struct Sim {
    /// The address it listens on.
    addr: SocketAddr,
    keys: HashMap<String, SecretString>,
    skew: Duration,
    admin: bool,
    state_file: Option<PathBuf>,
    core: Mutex<Core>,
    redis: Option<Mutex<redis::RedisBackend>>,
    /// Where backup files are kept (with `redis`).
    backup_dir: Option<PathBuf>,
}

struct Core {
    cloud: Cloud,
    pristine: Cloud,
    nonces: auth::NonceCache,
    faults: FaultInjector,
    calls: CallCounts,
    /// Verified calls by access key, then action and outcome.
    calls_by_key: BTreeMap<String, CallCounts>,
    /// Every create and delete call, in arrival order.
    writes: Vec<WriteRecord>,
}

/// Marks a response whose connection must be closed without sending it (a lost answer).
#[derive(Clone, Copy)]
struct DropConnection;

/// A running simulator.
pub struct RunningSimulator {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    sim: Arc<Sim>,
}

impl RunningSimulator {
    /// The endpoint to give a CDS client, e.g. `http://127.0.0.1:8790`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, stops every redis-server and removes their working directory (and the
    /// backup directory, when it is the default one inside it).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(r) = &self.sim.redis {
            r.lock().await.shutdown().await;
        }
    }

    /// The directory backup files are kept in (with `--redis-backend`).
    pub fn backup_dir(&self) -> Option<&std::path::Path> {
        self.sim.backup_dir.as_deref()
    }

    /// Waits until the server stops (it runs until [`RunningSimulator::shutdown`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts the simulator on `config.listen`.
pub async fn start(config: SimulatorConfig) -> Result<RunningSimulator, StartError> {
    let keys = config.keys()?;
    let faults = FaultInjector::new(config.faults()?, config.seed);
    let (mut cloud, pristine) = config.clouds()?;
    cloud.fail_pending_snapshots();
    let (redis, backup_dir) = if config.redis_backend {
        let (backend, dir) = redis_backend(&config).await?;
        (Some(Mutex::new(backend)), Some(dir))
    } else {
        (None, None)
    };
    let listen_error = |source| StartError::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let sim = Arc::new(Sim {
        addr,
        keys,
        skew: config.timestamp_skew,
        admin: config.admin,
        state_file: config.state_file.clone(),
        core: Mutex::new(Core {
            cloud,
            pristine,
            nonces: auth::NonceCache::default(),
            faults,
            calls: BTreeMap::new(),
            calls_by_key: BTreeMap::new(),
            writes: Vec::new(),
        }),
        redis,
        backup_dir,
    });
    let router = router(sim.clone());
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let router = router.clone();
                    tokio::spawn(serve_connection(stream, router));
                }
            }
        }
    });
    tracing::info!(%addr, admin = config.admin, redis_backend = config.redis_backend, "CDS simulator listening");
    Ok(RunningSimulator {
        addr,
        shutdown,
        task,
        sim,
    })
}

/// The redis-server backend, checked, and the backup directory, created.
async fn redis_backend(config: &SimulatorConfig) -> Result<(redis::RedisBackend, PathBuf), StartError> {
    let unusable = |source| StartError::RedisBackend {
        binary: config.redis_server.clone(),
        source,
    };
    let backend = redis::RedisBackend::new(&config.redis_server).map_err(unusable)?;
    backend.check().await.map_err(unusable)?;
    let dir = config.backup_dir(backend.work_dir());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|source| StartError::BackupDir {
            path: dir.clone(),
            source,
        })?;
    Ok((backend, dir))
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(req.map(Body::new))
                .await
                .unwrap_or_else(|e: Infallible| match e {});
            if response.extensions().get::<DropConnection>().is_some() {
                // An error from the service makes hyper close the connection unanswered.
                return Err("lost response (injected)");
            }
            Ok(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/redis", get(api).post(api))
        .route("/redis/", get(api).post(api))
        .route("/network", get(api).post(api))
        .route("/network/", get(api).post(api))
        .merge(admin::routes())
        .merge(backups::routes())
        .with_state(sim)
}

/// Runs the simulator until SIGINT or SIGTERM (the `simulator` subcommand).
pub async fn run(config: SimulatorConfig) -> Result<(), StartError> {
    let running = start(config).await?;
    println!(
        "CDS simulator listening on {}  (endpoint for clients: {})",
        running.addr,
        running.endpoint()
    );
    crate::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}
