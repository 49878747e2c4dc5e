//! Acting on runs: `runs/cancel`, `runs/cancel-all` and `runs/repair`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::refusal::{error, refused};
use crate::routes::request::{parse_body, required_id};
use crate::state::{Simulator, now_ms};

pub(super) async fn cancel(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let run_id = match required_id(&body, "run_id") {
        Ok(id) => id,
        Err(r) => return refused(r),
    };
    let config = sim.config.clone();
    match sim.lock().cancel(&config, run_id, now_ms()) {
        Ok(()) => Json(json!({})).into_response(),
        Err(r) => refused(r),
    }
}

pub(super) async fn cancel_all(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let job_id = match required_id(&body, "job_id") {
        Ok(id) => id,
        Err(r) => return refused(r),
    };
    let config = sim.config.clone();
    let now = now_ms();
    let mut inner = sim.lock();
    let ids: Vec<i64> = inner
        .runs
        .values()
        .filter(|r| r.job_id == job_id)
        .map(|r| r.run_id)
        .collect();
    for id in ids {
        let _ = inner.cancel(&config, id, now);
    }
    Json(json!({})).into_response()
}

#[derive(Deserialize)]
struct RepairBody {
    run_id: Option<i64>,
    #[serde(default)]
    latest_repair_id: Option<i64>,
    #[serde(default)]
    rerun_all_failed_tasks: Option<bool>,
    #[serde(default)]
    rerun_tasks: Option<Vec<String>>,
}

pub(super) async fn repair(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let body: RepairBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let Some(run_id) = body.run_id else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Missing required field: run_id",
        );
    };
    if body.rerun_all_failed_tasks != Some(true)
        && body.rerun_tasks.as_ref().is_none_or(Vec::is_empty)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Either rerun_tasks or rerun_all_failed_tasks must be set",
        );
    }
    let config = sim.config.clone();
    match sim
        .lock()
        .repair(&config, run_id, body.latest_repair_id, now_ms())
    {
        Ok(repair_id) => Json(json!({"repair_id": repair_id})).into_response(),
        Err(r) => refused(r),
    }
}
