//! `jobs/run-now`: a run started (or the run its idempotency token names), refused as
//! Databricks refuses a malformed request.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::refusal::{error, refused};
use crate::routes::request::parse_body;
use crate::state::{Simulator, now_ms};

#[derive(Deserialize)]
struct RunNowBody {
    job_id: Option<i64>,
    #[serde(default)]
    job_parameters: BTreeMap<String, String>,
    #[serde(default)]
    idempotency_token: Option<String>,
    #[serde(default)]
    notebook_params: Option<Value>,
    #[serde(default)]
    python_params: Option<Value>,
}

pub(super) async fn run_now(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let body: RunNowBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let Some(job_id) = body.job_id else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "Missing required field: job_id",
        );
    };
    if body
        .idempotency_token
        .as_ref()
        .is_some_and(|t| t.len() > 64)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "idempotency_token must be at most 64 characters",
        );
    }
    if !body.job_parameters.is_empty()
        && (body.notebook_params.is_some() || body.python_params.is_some())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "job_parameters cannot be used together with legacy task parameters",
        );
    }
    let config = sim.config.clone();
    let result = sim.lock().run_now(
        &config,
        job_id,
        body.job_parameters,
        body.idempotency_token,
        now_ms(),
    );
    match result {
        Ok((run_id, number)) => {
            Json(json!({"run_id": run_id, "number_in_job": number})).into_response()
        }
        Err(r) => refused(r),
    }
}
