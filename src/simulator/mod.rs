//! A local CDS Redis API: `cds-redis-operator simulator`.
//!
//! Speaks the documented API on `/redis/` (and `/redis`) with the documented envelopes, codes and
//! asynchrony, checks signatures like the cloud, injects faults on demand, can back each instance
//! with a real `redis-server`, and exposes its state on an unsigned admin endpoint (`/admin/`,
//! off unless enabled) for tests.
//!
//! Pipeline of one API call: verify the signature ([`auth`]) → count it → injected latency and
//! errors ([`faults`]) → carry it out on the [`state`] → maybe lose the answer → persist.

pub mod auth;
pub mod faults;
pub mod redis;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method as HttpMethod, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};
use tower::ServiceExt as _;

use crate::cds::signer::Method;
use crate::cds::wire::{CreateInstanceRequest, DbConfig, Envelope, Region};
use crate::duration::parse_duration;
use faults::{FaultInjector, Faults, LostMode};
use state::{Cloud, Delays};

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

/// Why the simulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No access key was given.
    #[error("give at least one --access-key ID:SECRET (or --access-keys-file)")]
    NoAccessKey,
    /// An access key is not `ID:SECRET` (the line is not repeated: it may hold a secret).
    #[error("an access key must look like ID:SECRET")]
    MalformedAccessKey,
    /// A file given on the command line cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A regions, catalogue or state file is not what it should be.
    #[error("cannot parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A `--fault-error` or `--fault-lost-response` cannot be understood.
    #[error("bad fault {spec:?}: {problem}")]
    Fault {
        /// The option's value.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `--redis-backend` is asked for, but `--redis-server` cannot be run.
    #[error("cannot run {binary} for --redis-backend")]
    RedisBackend {
        /// The binary.
        binary: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Everything the simulator is started with.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulatorConfig {
    /// Address to listen on.
    #[arg(long, env = "CDS_SIM_LISTEN", default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// An access key the simulator accepts, as ID:SECRET (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET")]
    pub access_keys: Vec<String>,
    /// A file of access keys, one ID:SECRET per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub access_keys_file: Option<PathBuf>,
    /// Time from CreateDBInstance to RUNNING (e.g. 500ms, 5s, 2m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub create_delay: Duration,
    /// Time from DeleteDBInstance to the instance disappearing.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub delete_delay: Duration,
    /// Time from CreateBackup to a finished backup.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub backup_delay: Duration,
    /// Largest clock difference accepted in Timestamp (older or newer requests are refused).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub timestamp_skew: Duration,
    /// Largest Amount accepted by CreateDBInstance (sources say 3 or 10).
    #[arg(long, default_value_t = 3)]
    pub max_amount: i64,
    /// Seed of the fault dice, for repeatable runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Regions file: a DescribeRegins response (or its Data). Default: the recorded regions.
    #[arg(long, value_name = "FILE")]
    pub regions_file: Option<PathBuf>,
    /// Catalogue file: a JSON object from region id to DescribeAvailableDBConfig Data.
    /// Default: the recorded CN_Beijing_A catalogue, served for every region on sale.
    #[arg(long, value_name = "FILE")]
    pub catalogue_file: Option<PathBuf>,
    /// Keep state in this JSON file (read at start, written after every change).
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Serve the unsigned admin endpoint under /admin/ (for tests; never expose it).
    #[arg(long)]
    pub admin: bool,
    /// Back every instance with a real redis-server on 127.0.0.1 (reported as its IP and Port).
    #[arg(long)]
    pub redis_backend: bool,
    /// The redis-server binary for --redis-backend.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// Inject errors: ACTION=KIND:RATE, KIND one of internal (500), in-use (409), throttle
    /// (429); ACTION may be * (repeatable). Example: CreateDBInstance=internal:0.2
    #[arg(long = "fault-error", value_name = "ACTION=KIND:RATE")]
    pub fault_errors: Vec<String>,
    /// Lose the answer of a successful write: ACTION=MODE:RATE, MODE 5xx, drop or undocumented (repeatable).
    #[arg(long = "fault-lost-response", value_name = "ACTION=MODE:RATE")]
    pub fault_lost_responses: Vec<String>,
    /// Latency added to every call.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub fault_latency: Duration,
    /// A new instance shows up in listings only this long after its create.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub fault_visibility_lag: Duration,
}

impl SimulatorConfig {
    /// A configuration for tests: one key, the given delays, admin on, no file, no faults.
    pub fn for_tests(access_key: &str, secret: &str, create_delay: Duration, delete_delay: Duration) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("literal"),
            access_keys: vec![format!("{access_key}:{secret}")],
            access_keys_file: None,
            create_delay,
            delete_delay,
            backup_delay: Duration::from_millis(100),
            timestamp_skew: Duration::from_secs(900),
            max_amount: 3,
            seed: 1,
            regions_file: None,
            catalogue_file: None,
            state_file: None,
            admin: true,
            redis_backend: false,
            redis_server: "redis-server".into(),
            fault_errors: vec![],
            fault_lost_responses: vec![],
            fault_latency: Duration::ZERO,
            fault_visibility_lag: Duration::ZERO,
        }
    }

    fn faults(&self) -> Result<Faults, StartError> {
        let mut f = Faults {
            latency_ms: self.fault_latency.as_millis() as u64,
            visibility_lag_ms: self.fault_visibility_lag.as_millis() as u64,
            ..Default::default()
        };
        let bad = |spec: &str, problem| StartError::Fault {
            spec: spec.to_owned(),
            problem,
        };
        for spec in &self.fault_errors {
            faults::parse_error_rate(&mut f, spec).map_err(|p| bad(spec, p))?;
        }
        for spec in &self.fault_lost_responses {
            faults::parse_lost_response(&mut f, spec).map_err(|p| bad(spec, p))?;
        }
        Ok(f)
    }

    fn keys(&self) -> Result<HashMap<String, SecretString>, StartError> {
        let mut lines: Vec<String> = self.access_keys.clone();
        if let Some(path) = &self.access_keys_file {
            let text = read(path)?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let mut keys = HashMap::new();
        for line in lines {
            let (id, secret) = line
                .split_once(':')
                .filter(|(i, s)| !i.is_empty() && !s.is_empty())
                .ok_or(StartError::MalformedAccessKey)?;
            keys.insert(id.to_owned(), SecretString::from(secret.to_owned()));
        }
        if keys.is_empty() {
            return Err(StartError::NoAccessKey);
        }
        Ok(keys)
    }
}

/// The regions the simulator serves by default: a recorded `DescribeRegins` answer.
const DEFAULT_REGIONS: &str = include_str!("data/regions.json");
/// The catalogue the simulator serves for every region on sale by default: a recorded
/// `DescribeAvailableDBConfig` answer of `CN_Beijing_A`.
const DEFAULT_CATALOGUE: &str = include_str!("data/catalogue.json");

/// An API answer's `Data`, or the text itself when it is not an envelope.
fn parse_data<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    let data = if v.get("Code").is_some() { v["Data"].clone() } else { v };
    serde_json::from_value(data)
}

fn read(path: &std::path::Path) -> Result<String, StartError> {
    std::fs::read_to_string(path).map_err(|source| StartError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_error(path: &std::path::Path) -> impl FnOnce(serde_json::Error) -> StartError + '_ {
    |source| StartError::Parse {
        path: path.to_owned(),
        source,
    }
}

/// The recorded regions and catalogue: the `CN_Beijing_A` catalogue served for every region on
/// sale (with its `RegionId`).
pub fn default_cloud(delays: Delays, max_amount: i64) -> Cloud {
    let regions: Vec<Region> = parse_data(DEFAULT_REGIONS).expect("the recorded regions parse");
    let beijing: DbConfig = parse_data(DEFAULT_CATALOGUE).expect("the recorded catalogue parses");
    let catalogues = regions
        .iter()
        .filter(|r| r.on_sale() && !r.region_id.is_empty())
        .map(|r| {
            (
                r.region_id.clone(),
                DbConfig {
                    region_id: r.region_id.clone(),
                    ..beijing.clone()
                },
            )
        })
        .collect();
    Cloud::new(regions, catalogues, delays, max_amount)
}

/// Calls counted by action and outcome (`success`, or the error code).
pub type CallCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// One `CreateDBInstance` or `DeleteDBInstance` call, as the admin write log shows it: who sent
/// it, when, for which instance, what the instance was doing, and how it ended. Tests use it to
/// count writes per instance and per access key (e.g. the soak's delete and lease invariants).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// When the call arrived (verified), in milliseconds since the epoch.
    pub at_ms: i64,
    /// The access key that signed it.
    pub access_key_id: String,
    /// The action.
    pub action: String,
    /// `InstanceUuid` of a delete.
    pub instance_uuid: Option<String>,
    /// `InstanceName` of a create; the name of the instance a delete is for, if it exists.
    pub instance_name: Option<String>,
    /// What the instance of a delete was doing when the call was carried out: `creating`,
    /// `running`, `deleting` (an earlier delete was accepted) or `absent`.
    pub instance_state: Option<&'static str>,
    /// `success`, `lost_5xx`, `lost_drop`, or the error code (injected errors included).
    pub outcome: String,
    /// Whether the call reached the cloud's state (false: an injected error answered it first).
    pub executed: bool,
}

impl WriteRecord {
    /// A record of `req` if it is a logged write, with its parameters from the JSON `body`.
    fn of(req: &auth::Verified, body: &[u8], at_ms: i64) -> Option<Self> {
        if !matches!(req.action.as_str(), "CreateDBInstance" | "DeleteDBInstance") {
            return None;
        }
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            at_ms,
            access_key_id: req.access_key_id.clone(),
            action: req.action.clone(),
            instance_uuid: field("InstanceUuid"),
            instance_name: field("InstanceName"),
            instance_state: None,
            outcome: String::new(),
            executed: false,
        })
    }

    /// Notes that the call is carried out on `cloud`, and what the instance of a delete is doing.
    fn carried_out(&mut self, cloud: &Cloud, now: i64) {
        self.executed = true;
        let Some(uuid) = &self.instance_uuid else { return };
        let inst = cloud.instances.get(uuid);
        self.instance_state = Some(match inst {
            None => "absent",
            Some(i) if i.gone_at_ms.is_some() => "deleting",
            Some(i) if i.running_at_ms.is_some_and(|t| t > now) => "creating",
            Some(_) => "running",
        });
        if let Some(i) = inst {
            self.instance_name = Some(i.listed.instance_name.clone());
        }
    }
}

struct Sim {
    keys: HashMap<String, SecretString>,
    skew: Duration,
    admin: bool,
    state_file: Option<PathBuf>,
    core: Mutex<Core>,
    redis: Option<Mutex<redis::RedisBackend>>,
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

    /// Stops serving and stops every redis-server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(r) = &self.sim.redis {
            r.lock().await.stop_all().await;
        }
    }

    /// Waits until the server stops (it runs until [`RunningSimulator::shutdown`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts the simulator on `config.listen`.
pub async fn start(config: SimulatorConfig) -> Result<RunningSimulator, StartError> {
    let keys = config.keys()?;
    let delays = Delays {
        create_ms: config.create_delay.as_millis() as i64,
        delete_ms: config.delete_delay.as_millis() as i64,
        backup_ms: config.backup_delay.as_millis() as i64,
    };
    let mut cloud = default_cloud(delays, config.max_amount);
    if let Some(path) = &config.regions_file {
        cloud.regions = parse_data(&read(path)?).map_err(parse_error(path))?;
    }
    if let Some(path) = &config.catalogue_file {
        cloud.catalogues = serde_json::from_str(&read(path)?).map_err(parse_error(path))?;
    }
    let pristine = cloud.clone();
    if let Some(path) = &config.state_file
        && path.exists()
    {
        cloud = serde_json::from_str(&read(path)?).map_err(parse_error(path))?;
        cloud.delays = delays;
    }
    let redis = if config.redis_backend {
        let backend = redis::RedisBackend::new(&config.redis_server);
        backend.check().await.map_err(|source| StartError::RedisBackend {
            binary: config.redis_server.clone(),
            source,
        })?;
        Some(Mutex::new(backend))
    } else {
        None
    };
    let sim = Arc::new(Sim {
        keys,
        skew: config.timestamp_skew,
        admin: config.admin,
        state_file: config.state_file.clone(),
        core: Mutex::new(Core {
            cloud,
            pristine,
            nonces: auth::NonceCache::default(),
            faults: FaultInjector::new(config.faults()?, config.seed),
            calls: BTreeMap::new(),
            calls_by_key: BTreeMap::new(),
            writes: Vec::new(),
        }),
        redis,
    });
    let listen_error = |source| StartError::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
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
    let admin = Router::new()
        .route("/admin/instances", get(admin_instances))
        .route("/admin/instances/{uuid}", delete(admin_vanish).patch(admin_move))
        .route("/admin/calls", get(admin_calls))
        .route("/admin/writes", get(admin_writes))
        .route("/admin/faults", get(admin_faults).put(admin_set_faults))
        .route("/admin/reset", post(admin_reset));
    Router::new()
        .route("/redis", get(api).post(api))
        .route("/redis/", get(api).post(api))
        .merge(admin)
        .with_state(sim)
}

fn envelope_response(status: u16, env: &Envelope) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(env)).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let env = Envelope::failure(&e.code, &e.message, uuid::Uuid::new_v4().to_string());
    envelope_response(e.status, &env)
}

async fn api(State(sim): State<Arc<Sim>>, method: HttpMethod, uri: Uri, body: axum::body::Bytes) -> Response {
    let method = match method {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        _ => return error_response(&ApiError::bad_request("UnsupportedOperation", "use GET or POST")),
    };
    let verified = {
        let query = match auth::parse_query(uri.query().unwrap_or("")) {
            Ok(q) => q,
            Err(e) => return error_response(&e),
        };
        let mut core = sim.core.lock().await;
        match auth::verify(
            method,
            query,
            &sim.keys,
            jiff::Timestamp::now(),
            sim.skew,
            &mut core.nonces,
        ) {
            Ok(v) => v,
            Err(e) => {
                let action = auth::parse_query(uri.query().unwrap_or(""))
                    .ok()
                    .and_then(|q| q.get("Action").cloned())
                    .unwrap_or_default();
                core.count(&action, &e.code);
                return error_response(&e);
            }
        }
    };
    let action = verified.action.clone();
    let mut write = WriteRecord::of(&verified, &body, now_ms());
    let latency = sim.core.lock().await.faults.faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let injected = sim.core.lock().await.faults.error_for(&action);
    if let Some(inj) = injected {
        let mut core = sim.core.lock().await;
        core.count(&action, inj.code);
        core.count_verified(&verified, inj.code, write);
        return error_response(&ApiError::new(inj.status, inj.code, "injected fault"));
    }
    let result = sim.execute(method, &verified, &body, &mut write).await;
    let mut core = sim.core.lock().await;
    match result {
        Err(e) => {
            core.count(&action, &e.code);
            core.count_verified(&verified, &e.code, write);
            error_response(&e)
        }
        Ok(env) => {
            let lost = core.faults.lost_response(&action);
            let outcome = match lost {
                None => "success",
                Some(LostMode::ServerError) => "lost_5xx",
                Some(LostMode::Drop) => "lost_drop",
                Some(LostMode::UndocumentedCode) => "lost_undocumented",
            };
            core.count(&action, outcome);
            core.count_verified(&verified, outcome, write);
            drop(core);
            sim.persist().await;
            match lost {
                None => envelope_response(200, &env),
                Some(LostMode::ServerError) => error_response(&ApiError::new(500, "InternalError", "internal error")),
                Some(LostMode::UndocumentedCode) => {
                    error_response(&ApiError::new(400, "TradeUnknownError", "unknown trade error"))
                }
                Some(LostMode::Drop) => {
                    let mut r = StatusCode::OK.into_response();
                    r.extensions_mut().insert(DropConnection);
                    r
                }
            }
        }
    }
}

impl Core {
    fn count(&mut self, action: &str, outcome: &str) {
        let action = if action.is_empty() { "<none>" } else { action };
        *self
            .calls
            .entry(action.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Counts a verified call by its access key, and logs it if it is a write.
    fn count_verified(&mut self, req: &auth::Verified, outcome: &str, write: Option<WriteRecord>) {
        *self
            .calls_by_key
            .entry(req.access_key_id.clone())
            .or_default()
            .entry(req.action.clone())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
        if let Some(mut w) = write {
            w.outcome = outcome.to_owned();
            self.writes.push(w);
        }
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Sim {
    /// Carries out a verified call on the state.
    async fn execute(
        &self,
        method: Method,
        req: &auth::Verified,
        body: &[u8],
        write: &mut Option<WriteRecord>,
    ) -> Result<Envelope, ApiError> {
        let expected = match req.action.as_str() {
            "DescribeRegins"
            | "DescribeAvailableDBConfig"
            | "DescribeDBInstances"
            | "DescribeBackups"
            | "DownloadBackup" => Method::Get,
            "CreateDBInstance" | "DeleteDBInstance" | "CreateBackup" | "DeleteBackup" => Method::Post,
            other => {
                return Err(ApiError::bad_request(
                    "UnsupportedOperation",
                    format!("unknown action {other:?}"),
                ));
            }
        };
        if method != expected {
            return Err(ApiError::bad_request(
                "UnsupportedOperation",
                format!("{} takes {}", req.action, expected.as_str()),
            ));
        }
        let body: Value = if method == Method::Post {
            if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request("InvalidParameter", format!("the body is not JSON: {e}")))?
            }
        } else {
            Value::Null
        };
        let str_param = |name: &str| -> Option<String> {
            match method {
                Method::Get => req.params.get(name).cloned(),
                Method::Post => match body.get(name) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                },
            }
        };
        let now = now_ms();
        let gone_before;
        let mut to_back: Option<(Vec<String>, String)> = None;
        let result = {
            let mut core = self.core.lock().await;
            gone_before = core.cloud.advance(now);
            if let Some(w) = write.as_mut() {
                w.carried_out(&core.cloud, now);
            }
            let lag = core.faults.faults.visibility_lag_ms as i64;
            let show_deleting = !core.faults.faults.hide_deleting_status;
            let cloud = &mut core.cloud;
            match req.action.as_str() {
                "DescribeRegins" => Ok(Envelope::success(&cloud.regions, "")),
                "DescribeAvailableDBConfig" => cloud
                    .describe_config(str_param("RegionId").as_deref())
                    .map(|c| Envelope::success(c, "")),
                "DescribeDBInstances" => Ok(Envelope::success(cloud.list(&req.params, now), "")),
                "CreateDBInstance" => {
                    let create: CreateInstanceRequest = serde_json::from_value(body.clone())
                        .map_err(|e| ApiError::bad_request("InvalidParameter", format!("bad body: {e}")))?;
                    cloud.create(&create, now, lag).map(|created| {
                        if self.redis.is_some() {
                            to_back = Some((created.uuids.clone(), create.password.clone()));
                        }
                        Envelope::success(json!({ "InstancesUuid": created.uuids }), created.task_id)
                    })
                }
                "DeleteDBInstance" => cloud
                    .delete(str_param("InstanceUuid").as_deref(), now, show_deleting)
                    .map(|t| Envelope::success(json!({}), t)),
                "DescribeBackups" => cloud
                    .backups(str_param("InstanceUuid").as_deref())
                    .map(|b| Envelope::success(b, "")),
                "DownloadBackup" => cloud
                    .download_backup(str_param("InstanceUuid").as_deref(), str_param("BackupId").as_deref())
                    .map(|b| Envelope::success(b, "")),
                "CreateBackup" => cloud
                    .create_backup(
                        str_param("InstanceUuid").as_deref(),
                        &str_param("Desc").unwrap_or_default(),
                        now,
                    )
                    .map(|t| Envelope::success(json!({}), t)),
                "DeleteBackup" => cloud
                    .delete_backup(
                        str_param("InstanceUuid").as_deref(),
                        str_param("BackupId").as_deref(),
                        now,
                    )
                    .map(|t| Envelope::success(json!({}), t)),
                _ => unreachable!("checked above"),
            }
        };
        for uuid in gone_before {
            self.stop_redis(&uuid).await;
        }
        if let (Some((uuids, password)), Some(backend)) = (to_back, &self.redis) {
            for uuid in uuids {
                let port = backend.lock().await.start(&uuid, &password).await;
                let mut core = self.core.lock().await;
                match port {
                    Ok(port) => {
                        if let Some(inst) = core.cloud.instances.get_mut(&uuid) {
                            inst.listed.ip = "127.0.0.1".into();
                            inst.listed.port = Some(i64::from(port));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, %uuid, "cannot start redis-server for the instance"),
                }
            }
        }
        result
    }

    async fn stop_redis(&self, uuid: &str) {
        if let Some(r) = &self.redis {
            r.lock().await.stop(uuid).await;
        }
    }

    async fn persist(&self) {
        let Some(path) = &self.state_file else { return };
        let text = {
            let core = self.core.lock().await;
            serde_json::to_string_pretty(&core.cloud).expect("serialisable")
        };
        let tmp = path.with_extension("tmp");
        if let Err(e) = tokio::fs::write(&tmp, text)
            .await
            .and(tokio::fs::rename(&tmp, path).await)
        {
            tracing::warn!(error = %e, path = %path.display(), "cannot write the simulator state file");
        }
    }
}

/// Full state of an instance for the admin endpoint (no password is kept).
#[derive(Serialize)]
struct AdminInstance<'a> {
    #[serde(flatten)]
    instance: &'a state::SimInstance,
}

/// The admin endpoint answers 404 unless enabled.
fn admin_off(sim: &Sim) -> Option<Response> {
    (!sim.admin).then(|| StatusCode::NOT_FOUND.into_response())
}

async fn admin_instances(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    let gone = sim.core.lock().await.cloud.advance(now_ms());
    for uuid in gone {
        sim.stop_redis(&uuid).await;
    }
    let core = sim.core.lock().await;
    let list: Vec<AdminInstance<'_>> = core
        .cloud
        .instances
        .values()
        .map(|instance| AdminInstance { instance })
        .collect();
    Json(json!({ "instances": list })).into_response()
}

/// Removes an instance at once, as if someone deleted it outside the operator.
async fn admin_vanish(State(sim): State<Arc<Sim>>, Path(uuid): Path<String>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    let removed = sim.core.lock().await.cloud.instances.remove(&uuid).is_some();
    sim.stop_redis(&uuid).await;
    sim.persist().await;
    if removed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Body of `PATCH /admin/instances/{uuid}`: a new address, as after a failover or migration.
#[derive(serde::Deserialize)]
struct MoveRequest {
    #[serde(rename = "IP")]
    ip: Option<String>,
    #[serde(rename = "Port")]
    port: Option<i64>,
}

async fn admin_move(State(sim): State<Arc<Sim>>, Path(uuid): Path<String>, Json(body): Json<MoveRequest>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    {
        let mut core = sim.core.lock().await;
        let Some(inst) = core.cloud.instances.get_mut(&uuid) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if let Some(ip) = body.ip {
            inst.listed.ip = ip;
        }
        if let Some(port) = body.port {
            inst.listed.port = Some(port);
        }
    }
    sim.persist().await;
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_calls(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    let core = sim.core.lock().await;
    Json(json!({ "calls": core.calls, "faultsInjected": core.faults.injected, "byAccessKey": core.calls_by_key }))
        .into_response()
}

/// Every create and delete call so far (see [`WriteRecord`]).
async fn admin_writes(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    Json(json!({ "writes": sim.core.lock().await.writes })).into_response()
}

async fn admin_faults(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    Json(sim.core.lock().await.faults.faults.clone()).into_response()
}

async fn admin_set_faults(State(sim): State<Arc<Sim>>, Json(faults): Json<Faults>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    sim.core.lock().await.faults.faults = faults;
    StatusCode::NO_CONTENT.into_response()
}

/// Forgets every instance, call count and fault.
async fn admin_reset(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    {
        let mut core = sim.core.lock().await;
        core.cloud = core.pristine.clone();
        core.calls.clear();
        core.calls_by_key.clear();
        core.writes.clear();
        core.faults.faults = Faults::default();
        core.faults.injected.clear();
    }
    if let Some(r) = &sim.redis {
        r.lock().await.stop_all().await;
    }
    sim.persist().await;
    StatusCode::NO_CONTENT.into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_come_from_flags_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# team keys\nAKID2:secret-two\n\n  AKID3:secret:with:colons  \n").unwrap();
        let mut config = SimulatorConfig::for_tests("AKID1", "secret-one", Duration::ZERO, Duration::ZERO);
        config.access_keys_file = Some(file);
        let keys = config.keys().unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&keys["AKID3"]),
            "secret:with:colons"
        );
        config.access_keys = vec!["no-colon".into()];
        assert!(matches!(config.keys(), Err(StartError::MalformedAccessKey)));
        let empty = SimulatorConfig {
            access_keys: vec![],
            ..SimulatorConfig::for_tests("a", "b", Duration::ZERO, Duration::ZERO)
        };
        let e = empty.keys().unwrap_err();
        assert!(matches!(e, StartError::NoAccessKey) && e.to_string().contains("--access-key"));
    }

    #[tokio::test]
    async fn start_errors_are_typed_with_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let base = || SimulatorConfig::for_tests("a", "b", Duration::ZERO, Duration::ZERO);
        let missing = dir.path().join("absent.json");
        let e = start(SimulatorConfig {
            regions_file: Some(missing.clone()),
            ..base()
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(&e, StartError::Read { path, .. } if *path == missing), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
        let garbage = dir.path().join("catalogue.json");
        std::fs::write(&garbage, "not json").unwrap();
        let e = start(SimulatorConfig {
            catalogue_file: Some(garbage),
            ..base()
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(e, StartError::Parse { .. }), "{e:?}");
        let e = start(SimulatorConfig {
            fault_errors: vec!["CreateDBInstance=boom:1".into()],
            ..base()
        })
        .await
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .starts_with("bad fault \"CreateDBInstance=boom:1\": unknown error kind"),
            "{e}"
        );
        let e = start(SimulatorConfig {
            redis_backend: true,
            redis_server: dir.path().join("no-redis-server").display().to_string(),
            ..base()
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(e, StartError::RedisBackend { .. }), "{e:?}");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = start(SimulatorConfig {
            listen: taken.local_addr().unwrap(),
            ..base()
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(e, StartError::Listen { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn the_write_log_says_who_wrote_what_to_an_instance_doing_what() {
        crate::cds::client::install_crypto_provider();
        let mut config = SimulatorConfig::for_tests("AKID1", "secret-one", Duration::ZERO, Duration::from_secs(60));
        config.access_keys.push("AKID2:secret-two".into());
        let sim = start(config).await.unwrap();
        let client = |id: &str, secret: &str| {
            let config = crate::cds::ClientConfig {
                endpoint: sim.endpoint(),
                ..Default::default()
            };
            let creds = crate::cds::Credentials::new(id, secret);
            crate::cds::CdsClient::new(config, creds, crate::cds::rate_limiter(100.0, 100)).unwrap()
        };
        let (one, two) = (client("AKID1", "secret-one"), client("AKID2", "secret-two"));
        let request = CreateInstanceRequest {
            region_id: "CN_Beijing_A".into(),
            vdc_id: "v".into(),
            base_pipe_id: "p".into(),
            instance_name: "logged".into(),
            paas_goods_id: Some(12467),
            password: "pw".into(),
            amount: Some(1),
            ..Default::default()
        };
        let uuid = one.create_instance(&request).await.unwrap().instance_uuid;
        one.delete_instance(&uuid).await.unwrap();
        // The instance is being deleted: a second delete is refused as busy.
        assert!(two.delete_instance(&uuid).await.is_err());
        let get = |path: &'static str| {
            let url = format!("{}{path}", sim.endpoint());
            async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() }
        };
        let writes = get("/admin/writes").await;
        let seen: Vec<(&str, &str, &str, &str, bool)> = writes["writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["accessKeyId"].as_str().unwrap(),
                    w["action"].as_str().unwrap(),
                    w["instanceState"].as_str().unwrap_or("-"),
                    w["outcome"].as_str().unwrap(),
                    w["executed"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("AKID1", "CreateDBInstance", "-", "success", true),
                ("AKID1", "DeleteDBInstance", "running", "success", true),
                ("AKID2", "DeleteDBInstance", "deleting", "ResourceInUse", true),
            ]
        );
        assert!(
            writes["writes"][0]["instanceName"] == "logged" && writes["writes"][2]["instanceUuid"] == uuid.as_str()
        );
        let calls = get("/admin/calls").await;
        assert_eq!(calls["byAccessKey"]["AKID2"]["DeleteDBInstance"]["ResourceInUse"], 1);
        assert_eq!(calls["byAccessKey"]["AKID1"]["CreateDBInstance"]["success"], 1);
        sim.shutdown().await;
    }

    /// The default data is the simulator's own copy of the recorded answers the parsing tests
    /// use (`tests/fixtures/cds`); it must keep parsing, and say the same.
    #[test]
    fn default_data_parses_and_matches_the_recorded_answers() {
        let regions: Vec<Region> = parse_data(DEFAULT_REGIONS).unwrap();
        let catalogue: DbConfig = parse_data(DEFAULT_CATALOGUE).unwrap();
        assert_eq!(regions.len(), 25);
        assert_eq!(regions.iter().filter(|r| !r.on_sale()).count(), 3);
        assert!(crate::cds::catalogue::offers(&catalogue).len() > 30);
        let recorded_regions: Vec<Region> =
            parse_data(include_str!("../../tests/fixtures/cds/describe-regins.json")).unwrap();
        let recorded_catalogue: DbConfig = parse_data(include_str!(
            "../../tests/fixtures/cds/describe-available-db-config.CN_Beijing_A.json"
        ))
        .unwrap();
        assert_eq!(regions, recorded_regions);
        assert_eq!(catalogue, recorded_catalogue);
        let cloud = default_cloud(
            Delays {
                create_ms: 0,
                delete_ms: 0,
                backup_ms: 0,
            },
            3,
        );
        assert_eq!(cloud.catalogues.len(), 22, "one catalogue per region on sale");
    }
}
