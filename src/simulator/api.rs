//! The signed API on `/redis/`: one call goes through verification, counting, injected faults,
//! the state, a possibly lost answer and persistence.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::LostMode;
use super::log::WriteRecord;
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

pub(super) async fn api(
    State(sim): State<Arc<Sim>>,
    method: HttpMethod,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
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

pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Sim {
    /// Carries out a verified call on the state.
    pub(super) async fn execute(
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
