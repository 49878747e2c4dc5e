//! The HTTP surface: `/api/2.1/...` and `/api/2.2/...` Jobs endpoints, and `/sim/stats`.

use std::collections::BTreeMap;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::JobSpec;
use crate::runs::SimRun;
use crate::state::{Simulator, now_ms};

/// The simulator as an axum app.
pub fn router(sim: Simulator) -> Router {
    let jobs = Router::new()
        .route("/jobs/run-now", post(run_now))
        .route("/jobs/runs/get", get(get_run))
        .route("/jobs/get", get(get_job))
        .route("/jobs/create", post(create_job))
        .layer(middleware::from_fn_with_state(sim.clone(), authenticate));
    Router::new()
        .nest("/api/2.1", jobs.clone())
        .nest("/api/2.2", jobs)
        .route("/sim/stats", get(stats))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(sim)
}

/// A Databricks-shaped error answer.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

async fn authenticate(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .uri()
        .path()
        .split_once("/jobs/")
        .map(|(_, rest)| format!("jobs/{rest}"))
        .unwrap_or_default();
    *sim.lock().stats.calls.entry(endpoint).or_default() += 1;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty());
    match (token, &sim.config().token) {
        (None, _) => error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Authorization header with a bearer token is required",
        ),
        (Some(given), Some(expected)) if given != expected => error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Invalid access token",
        ),
        _ => next.run(request).await,
    }
}

#[derive(Deserialize)]
struct RunNowBody {
    job_id: Option<i64>,
    #[serde(default)]
    job_parameters: BTreeMap<String, String>,
    #[serde(default)]
    idempotency_token: Option<String>,
}

async fn run_now(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let body: RunNowBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                format!("Invalid JSON given in the body of the request: {e}"),
            );
        }
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
    let config = sim.config().clone();
    let mut inner = sim.lock();
    if !inner.jobs.contains_key(&job_id) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            format!("Job {job_id} does not exist."),
        );
    }
    if let Some(run_id) = body
        .idempotency_token
        .as_ref()
        .and_then(|t| inner.tokens.get(t).copied())
    {
        inner.stats.idempotent_replays += 1;
        let number = inner.runs.get(&run_id).map_or(0, |r| r.number_in_job);
        return Json(json!({"run_id": run_id, "number_in_job": number})).into_response();
    }
    let run_id = inner.next_run_id;
    inner.next_run_id += 1;
    let created = now_ms();
    let running_from = created + config.pending.as_millis() as i64;
    let partition = body.job_parameters.get(&config.partition_param).cloned();
    let nth = partition.as_ref().map_or(0, |p| {
        inner.stats.runs_per_partition.get(p).copied().unwrap_or(0) as usize
    });
    let outcome = partition
        .as_ref()
        .and_then(|p| config.outcomes.get(p))
        .and_then(|script| script.get(nth))
        .copied()
        .unwrap_or_default();
    let run = SimRun {
        run_id,
        job_id,
        number_in_job: run_id,
        params: body.job_parameters,
        created_ms: created,
        running_from_ms: running_from,
        ends_ms: running_from + config.running.as_millis() as i64,
        outcome,
    };
    if let Some(partition) = run.params.get(&config.partition_param) {
        *inner
            .stats
            .runs_per_partition
            .entry(partition.clone())
            .or_default() += 1;
    }
    inner.stats.runs_created += 1;
    if let Some(token) = body.idempotency_token {
        inner.tokens.insert(token, run_id);
    }
    inner.runs.insert(run_id, run);
    Json(json!({"run_id": run_id, "number_in_job": run_id})).into_response()
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: Option<String>,
}

async fn get_run(State(sim): State<Simulator>, Query(q): Query<RunQuery>) -> Response {
    let Some(run_id) = q.run_id.and_then(|r| r.parse::<i64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "run_id must be an integer",
        );
    };
    let inner = sim.lock();
    match inner.runs.get(&run_id) {
        Some(run) => Json(run.to_json(now_ms(), &sim.config().workspace_url)).into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            format!("Run {run_id} does not exist."),
        ),
    }
}

#[derive(Deserialize)]
struct JobQuery {
    job_id: Option<String>,
}

fn job_json(job: &JobSpec) -> Value {
    json!({
        "job_id": job.job_id,
        "creator_user_name": "simulator@example.com",
        "created_time": 1_700_000_000_000_i64,
        "settings": {
            "name": job.name,
            "max_concurrent_runs": job.max_concurrent_runs,
            "queue": {"enabled": job.queue_enabled},
            "format": "MULTI_TASK",
            "tasks": [{"task_key": "backfill", "notebook_task": {"notebook_path": "/Repos/data/usage/backfill"}}],
            "parameters": [{"name": "partition_date", "default": ""}],
        },
    })
}

async fn get_job(State(sim): State<Simulator>, Query(q): Query<JobQuery>) -> Response {
    let Some(job_id) = q.job_id.and_then(|j| j.parse::<i64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "job_id must be an integer",
        );
    };
    match sim.lock().jobs.get(&job_id) {
        Some(job) => Json(job_json(job)).into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            format!("Job {job_id} does not exist."),
        ),
    }
}

#[derive(Deserialize)]
struct CreateJobBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    max_concurrent_runs: Option<i64>,
    #[serde(default)]
    queue: Option<Value>,
}

async fn create_job(State(sim): State<Simulator>, Json(body): Json<CreateJobBody>) -> Response {
    let mut inner = sim.lock();
    let job_id = inner.jobs.keys().max().copied().unwrap_or(0) + 1;
    inner.jobs.insert(
        job_id,
        JobSpec {
            job_id,
            name: body.name.unwrap_or_else(|| "Untitled".into()),
            max_concurrent_runs: body.max_concurrent_runs.unwrap_or(1),
            queue_enabled: body
                .queue
                .and_then(|q| q.get("enabled").and_then(Value::as_bool))
                .unwrap_or(false),
        },
    );
    Json(json!({"job_id": job_id})).into_response()
}

async fn stats(State(sim): State<Simulator>) -> Response {
    Json(sim.stats()).into_response()
}
