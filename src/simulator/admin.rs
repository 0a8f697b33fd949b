//! The unsigned admin endpoint (`/admin/`, off unless enabled): state, calls, the write log,
//! faults, and the tests' levers (vanish, move, reset).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::api::now_ms;
use super::faults::Faults;
use super::{Core, Sim, state};

/// The admin routes.
pub(super) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/admin/instances", get(admin_instances))
        .route("/admin/instances/{uuid}", delete(admin_vanish).patch(admin_move))
        .route("/admin/calls", get(admin_calls))
        .route("/admin/writes", get(admin_writes))
        .route("/admin/faults", get(admin_faults).put(admin_set_faults))
        .route("/admin/reset", post(admin_reset))
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
    sim.remove_dropped_backup_files().await;
    let core = sim.core.lock().await;
    let list: Vec<AdminInstance<'_>> = core
        .cloud
        .instances
        .values()
        .map(|instance| AdminInstance { instance })
        .collect();
    Json(json!({ "instances": list })).into_response()
}

/// Removes an instance at once, with its backups, as if someone deleted it outside the operator.
async fn admin_vanish(State(sim): State<Arc<Sim>>, Path(uuid): Path<String>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    let removed = sim.core.lock().await.cloud.remove_instance(&uuid).is_some();
    sim.stop_redis(&uuid).await;
    sim.remove_dropped_backup_files().await;
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

/// Forgets every instance (and backup file), call count and fault.
async fn admin_reset(State(sim): State<Arc<Sim>>) -> Response {
    if let Some(r) = admin_off(&sim) {
        return r;
    }
    {
        let mut core = sim.core.lock().await;
        let Core { cloud, pristine, .. } = &mut *core;
        cloud.reset_to(pristine);
        core.calls.clear();
        core.calls_by_key.clear();
        core.writes.clear();
        core.faults.faults = Faults::default();
        core.faults.injected.clear();
    }
    if let Some(r) = &sim.redis {
        r.lock().await.stop_all().await;
    }
    sim.remove_dropped_backup_files().await;
    sim.persist().await;
    StatusCode::NO_CONTENT.into_response()
}
