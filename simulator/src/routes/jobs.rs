//! Jobs: `jobs/get` (a job's settings as Databricks shows them) and `jobs/create`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::JobSpec;
use crate::refusal::{error, refused};
use crate::routes::request::{Params, id_param, parse_body};
use crate::state::Simulator;

fn job_json(job: &JobSpec) -> Value {
    let mut parameters = vec![json!({"name": "partition_date", "default": ""})];
    parameters.extend(
        job.parameters
            .iter()
            .map(|(name, default)| json!({"name": name, "default": default})),
    );
    json!({
        "job_id": job.job_id,
        "creator_user_name": "simulator@example.com",
        "created_time": 1_700_000_000_000_i64,
        "settings": {
            "name": job.name,
            "max_concurrent_runs": job.max_concurrent_runs,
            "queue": {"enabled": job.queue},
            "format": "MULTI_TASK",
            "tasks": [{"task_key": "task_1", "notebook_task": {"notebook_path": "/Repos/data/usage/backfill"}}],
            "parameters": parameters,
        },
    })
}

pub(super) async fn get_job(State(sim): State<Simulator>, Query(q): Params) -> Response {
    let job_id = match id_param(q.get("job_id"), "job_id") {
        Ok(id) => id,
        Err(r) => return refused(r),
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

pub(super) async fn create_job(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
    let body: CreateJobBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let max = body.max_concurrent_runs.unwrap_or(1);
    if !(0..=1000).contains(&max) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "max_concurrent_runs must be between 0 and 1000",
        );
    }
    let mut inner = sim.lock();
    let job_id = inner.jobs.keys().max().copied().unwrap_or(0) + 1;
    let queue = body
        .queue
        .and_then(|q| q.get("enabled").and_then(Value::as_bool))
        .unwrap_or(false);
    let name = body.name.unwrap_or_else(|| "Untitled".into());
    inner.jobs.insert(
        job_id,
        JobSpec {
            job_id,
            name,
            max_concurrent_runs: max,
            queue,
            output: Default::default(),
            task: None,
            parameters: Default::default(),
        },
    );
    Json(json!({"job_id": job_id})).into_response()
}
