//! The signed API on `/redis/`: one call goes through verification, counting, injected faults,
//! the state, a possibly lost answer and persistence.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::LostMode;
use super::log::WriteRecord;
use super::state::{Cloud, DownloadRoutes};
use super::{ApiError, DropConnection, Sim, auth};
use crate::cds::signer::Method;
use crate::cds::wire::{CreateInstanceRequest, Envelope};

fn envelope_response(status: u16, env: &Envelope) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(env)).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let env = Envelope::failure(&e.code, &e.message, uuid::Uuid::new_v4().to_string());
    envelope_response(e.status, &env)
}

/// One API call: verify → count → injected latency and errors → carry out → maybe lose the
/// answer → persist.
pub(super) async fn api(
    State(sim): State<Arc<Sim>>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let method = match method {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        _ => return error_response(&ApiError::bad_request("UnsupportedOperation", "use GET or POST")),
    };
    let verified = match verify(&sim, method, uri.query().unwrap_or("")).await {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    let action = verified.action.clone();
    let mut write = WriteRecord::of(&verified, &body, now_ms());
    let latency = sim.core.lock().await.faults.latency_for(&verified.access_key_id);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let injected = sim
        .core
        .lock()
        .await
        .faults
        .error_of(Some(&verified.access_key_id), &action);
    if let Some(inj) = injected {
        let mut core = sim.core.lock().await;
        core.count(&action, inj.code);
        core.count_verified(&verified, inj.code, write);
        return error_response(&ApiError::new(inj.status, inj.code, "injected fault"));
    }
    let service = Service::of(uri.path());
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let result = sim.execute(service, method, &verified, &body, host, &mut write).await;
    let mut core = sim.core.lock().await;
    let env = match result {
        Err(e) => {
            core.count(&action, &e.code);
            core.count_verified(&verified, &e.code, write);
            return error_response(&e);
        }
        Ok(env) => env,
    };
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
    answer(&env, lost)
}

/// Checks the signature like the cloud; a refused call is counted under its action.
async fn verify(sim: &Sim, method: Method, query: &str) -> Result<auth::Verified, ApiError> {
    let params = auth::parse_query(query)?;
    let action = params.get("Action").cloned().unwrap_or_default();
    let mut core = sim.core.lock().await;
    auth::verify(
        method,
        params,
        &sim.keys,
        jiff::Timestamp::now(),
        sim.skew,
        &mut core.nonces,
    )
    .inspect_err(|e| core.count(&action, &e.code))
}

/// The answer to a call carried out, or how it is lost.
fn answer(env: &Envelope, lost: Option<LostMode>) -> Response {
    match lost {
        None => envelope_response(200, env),
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

pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The service a call was sent to, by its path: each action belongs to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Service {
    /// `/redis/`.
    Redis,
    /// `/network/` (VDCs).
    Network,
}

impl Service {
    fn of(path: &str) -> Self {
        if path.starts_with("/network") {
            Self::Network
        } else {
            Self::Redis
        }
    }
}

/// An action the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    DescribeVdc,
    DescribeRegins,
    DescribeAvailableDBConfig,
    DescribeDBInstances,
    DescribeBackups,
    DownloadBackup,
    CreateDBInstance,
    DeleteDBInstance,
    CreateBackup,
    DeleteBackup,
}

impl Action {
    fn parse(name: &str) -> Result<Self, ApiError> {
        Ok(match name {
            "DescribeVdc" => Self::DescribeVdc,
            "DescribeRegins" => Self::DescribeRegins,
            "DescribeAvailableDBConfig" => Self::DescribeAvailableDBConfig,
            "DescribeDBInstances" => Self::DescribeDBInstances,
            "DescribeBackups" => Self::DescribeBackups,
            "DownloadBackup" => Self::DownloadBackup,
            "CreateDBInstance" => Self::CreateDBInstance,
            "DeleteDBInstance" => Self::DeleteDBInstance,
            "CreateBackup" => Self::CreateBackup,
            "DeleteBackup" => Self::DeleteBackup,
            other => {
                return Err(ApiError::bad_request(
                    "UnsupportedOperation",
                    format!("unknown action {other:?}"),
                ));
            }
        })
    }

    /// The service that serves it.
    fn service(self) -> Service {
        match self {
            Self::DescribeVdc => Service::Network,
            _ => Service::Redis,
        }
    }

    /// Reads take GET, writes POST with a JSON body.
    fn method(self) -> Method {
        match self {
            Self::CreateDBInstance | Self::DeleteDBInstance | Self::CreateBackup | Self::DeleteBackup => Method::Post,
            _ => Method::Get,
        }
    }
}

/// The parameters of a call: the query of a GET, the JSON body of a POST.
struct Params<'a> {
    query: &'a std::collections::BTreeMap<String, String>,
    body: Option<Value>,
}

impl Params<'_> {
    /// A parameter as a string (a JSON number is taken as its digits).
    fn str(&self, name: &str) -> Option<String> {
        match &self.body {
            None => self.query.get(name).cloned(),
            Some(body) => match body.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
        }
    }
}

/// What carrying out a call asks of the simulator beyond its answer (with `--redis-backend`).
enum FollowUp {
    /// Nothing.
    None,
    /// New instances to back with a `redis-server`, and their password.
    BackWithRedis(Vec<String>, String),
    /// A new backup to take the snapshot of.
    Snapshot {
        /// The instance.
        uuid: String,
        /// The backup.
        backup_id: String,
    },
}

impl Sim {
    /// Carries out a verified call on the state. `host` is the `Host` the call was sent to, the
    /// authority of the download URLs the simulator gives out.
    pub(super) async fn execute(
        &self,
        service: Service,
        method: Method,
        req: &auth::Verified,
        body: &[u8],
        host: Option<&str>,
        write: &mut Option<WriteRecord>,
    ) -> Result<Envelope, ApiError> {
        let action = Action::parse(&req.action)?;
        if service != action.service() {
            // Another service's action: the cloud's gateway does not know it on this path.
            return Err(ApiError::bad_request(
                "UnsupportedOperation",
                format!("unknown action {:?} for this service", req.action),
            ));
        }
        if method != action.method() {
            return Err(ApiError::bad_request(
                "UnsupportedOperation",
                format!("{} takes {}", req.action, action.method().as_str()),
            ));
        }
        let params = Params {
            query: &req.params,
            body: (method == Method::Post).then(|| parse_body(body)).transpose()?,
        };
        let now = now_ms();
        let authority = self.download_authority(host);
        let (gone_before, result, dropped) = {
            let mut core = self.core.lock().await;
            let gone = core.cloud.advance(now);
            if let Some(w) = write.as_mut() {
                w.carried_out(&core.cloud, now);
            }
            let faults = &core.faults.faults;
            let options = CallOptions {
                now,
                visibility_lag_ms: faults.visibility_lag_ms as i64,
                show_deleting: !faults.hide_deleting_status,
                redis_backed: self.redis.is_some(),
                downloads: authority.as_deref().map(|authority| DownloadRoutes { authority }),
            };
            let result = carry_out(&mut core.cloud, action, &params, &options);
            (gone, result, core.cloud.take_dropped_files())
        };
        for uuid in gone_before {
            self.stop_redis(&uuid).await;
        }
        self.remove_backup_files(dropped).await;
        let (envelope, follow_up) = result?;
        match follow_up {
            FollowUp::None => {}
            FollowUp::BackWithRedis(uuids, password) => self.back_with_redis(uuids, &password).await,
            FollowUp::Snapshot { uuid, backup_id } => self.snapshot_backup(&uuid, &backup_id).await,
        }
        Ok(envelope)
    }

    /// Starts a `redis-server` for each new instance and lists it at that address.
    async fn back_with_redis(&self, uuids: Vec<String>, password: &str) {
        let Some(backend) = &self.redis else { return };
        for uuid in uuids {
            let port = backend.lock().await.start(&uuid, password).await;
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

    pub(super) async fn stop_redis(&self, uuid: &str) {
        if let Some(r) = &self.redis {
            r.lock().await.stop(uuid).await;
        }
    }

    pub(super) async fn persist(&self) {
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

/// The body of a POST as JSON (an empty body is `{}`).
fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("InvalidParameter", format!("the body is not JSON: {e}")))
}

/// How a call is carried out: its time, and the faults that shape what the cloud shows.
struct CallOptions<'a> {
    now: i64,
    visibility_lag_ms: i64,
    show_deleting: bool,
    redis_backed: bool,
    /// Where backup files are served (`--redis-backend`).
    downloads: Option<DownloadRoutes<'a>>,
}

/// Carries out `action` on `cloud`: the answer, and what the simulator must do next.
fn carry_out(
    cloud: &mut Cloud,
    action: Action,
    p: &Params<'_>,
    o: &CallOptions<'_>,
) -> Result<(Envelope, FollowUp), ApiError> {
    let uuid = p.str("InstanceUuid");
    let uuid = uuid.as_deref();
    let done = |task: String| (Envelope::success(json!({}), task), FollowUp::None);
    fn answer(data: impl serde::Serialize) -> (Envelope, FollowUp) {
        (Envelope::success(data, ""), FollowUp::None)
    }
    match action {
        Action::DescribeVdc => cloud.describe_vdcs(p.query).map(|page| {
            let mut env = Envelope::success(&page.vdcs, "");
            (env.page_number, env.page_count) = (Some(page.page_number), Some(page.page_count));
            (env, FollowUp::None)
        }),
        Action::DescribeRegins => Ok(answer(&cloud.regions)),
        Action::DescribeAvailableDBConfig => cloud.describe_config(p.str("RegionId").as_deref()).map(answer),
        Action::DescribeDBInstances => Ok(answer(cloud.list(p.query, o.now))),
        Action::CreateDBInstance => {
            let create: CreateInstanceRequest = serde_json::from_value(p.body.clone().unwrap_or_default())
                .map_err(|e| ApiError::bad_request("InvalidParameter", format!("bad body: {e}")))?;
            let created = cloud.create(&create, o.now, o.visibility_lag_ms)?;
            let env = Envelope::success(json!({ "InstancesUuid": &created.uuids }), created.task_id);
            let follow_up = if o.redis_backed {
                FollowUp::BackWithRedis(created.uuids, create.password)
            } else {
                FollowUp::None
            };
            Ok((env, follow_up))
        }
        Action::DeleteDBInstance => cloud.delete(uuid, o.now, o.show_deleting).map(done),
        Action::DescribeBackups => cloud.backups(uuid).map(answer),
        Action::DownloadBackup => cloud
            .download_backup(uuid, p.str("BackupId").as_deref(), o.downloads)
            .map(answer),
        Action::CreateBackup => {
            let desc = p.str("Desc").unwrap_or_default();
            let created = cloud.create_backup(uuid, &desc, o.now, o.redis_backed)?;
            let follow_up = if o.redis_backed {
                let uuid = uuid.unwrap_or_default().to_owned();
                FollowUp::Snapshot {
                    uuid,
                    backup_id: created.backup_id,
                }
            } else {
                FollowUp::None
            };
            Ok((Envelope::success(json!({}), created.task_id), follow_up))
        }
        Action::DeleteBackup => cloud.delete_backup(uuid, p.str("BackupId").as_deref(), o.now).map(done),
    }
}
