//! The HTTP surface: the Jobs endpoints under `/api/2.1` and `/api/2.2`, and `/sim/stats`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::JobSpec;
use crate::engine::{ApiRefusal, fnv};
use crate::gate::gate;
use crate::runs::{Phase, SimRun};
use crate::state::{Simulator, now_ms};

/// Tasks per `runs/get` page in API 2.2.
const TASK_PAGE: usize = 100;

/// The simulator as an axum app.
pub fn router(sim: Simulator) -> Router {
    let v21 = jobs_routes(false).layer(middleware::from_fn_with_state(sim.clone(), gate));
    let v22 = jobs_routes(true).layer(middleware::from_fn_with_state(sim.clone(), gate));
    Router::new()
        .nest("/api/2.1", v21)
        .nest("/api/2.2", v22)
        .route("/sim/stats", get(stats))
        .merge(crate::live_routes::live_routes())
        .route("/healthz", get(|| async { "ok" }))
        .with_state(sim)
}

fn jobs_routes(paged: bool) -> Router<Simulator> {
    let get_run = if paged {
        get(get_run_paged)
    } else {
        get(get_run_whole)
    };
    Router::new()
        .route("/jobs/run-now", post(run_now))
        .route("/jobs/runs/get", get_run)
        .route("/jobs/runs/get-output", get(get_output))
        .route("/jobs/runs/cancel", post(cancel))
        .route("/jobs/runs/cancel-all", post(cancel_all))
        .route("/jobs/runs/list", get(list))
        .route("/jobs/runs/repair", post(repair))
        .route("/jobs/get", get(get_job))
        .route("/jobs/create", post(create_job))
}

/// A Databricks-shaped error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

fn refused(r: ApiRefusal) -> Response {
    error(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        r.code,
        r.message,
    )
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiRefusal> {
    serde_json::from_slice(body).map_err(|e| ApiRefusal {
        status: 400,
        code: "MALFORMED_REQUEST",
        message: format!("Invalid JSON given in the body of the request: {e}"),
    })
}

fn id_param(value: Option<&String>, name: &str) -> Result<i64, ApiRefusal> {
    value
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| ApiRefusal::invalid(format!("{name} must be an integer")))
}

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

async fn run_now(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
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

type Params = Query<BTreeMap<String, String>>;

async fn get_run_whole(State(sim): State<Simulator>, Query(q): Params) -> Response {
    get_run(&sim, &q, None)
}

async fn get_run_paged(State(sim): State<Simulator>, Query(q): Params) -> Response {
    get_run(&sim, &q, Some(TASK_PAGE))
}

/// Brings the workspace up to date and hands the run a `run_id` query names (a run, or a
/// task run with its index) to `answer`; not found and bad ids answer as Databricks does.
fn with_run(
    sim: &Simulator,
    q: &BTreeMap<String, String>,
    answer: impl FnOnce(i64, &SimRun, Option<usize>, i64) -> Response,
) -> Response {
    let run_id = match id_param(q.get("run_id"), "run_id") {
        Ok(id) => id,
        Err(r) => return refused(r),
    };
    let now = now_ms();
    let mut inner = sim.lock();
    inner.advance(now);
    match inner.find(&sim.config, run_id, now) {
        Ok((run, task)) => answer(run_id, run, task, now),
        Err(r) => refused(r),
    }
}

fn get_run(sim: &Simulator, q: &BTreeMap<String, String>, page: Option<usize>) -> Response {
    with_run(sim, q, |run_id, run, task, now| {
        let url = &sim.config.workspace_url;
        if let Some(index) = task {
            return Json(run.task_json(run_id, index, now, url)).into_response();
        }
        let offset: usize = q
            .get("page_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let end = page.map_or(run.task_ids.len(), |p| offset + p);
        let mut body = run.to_json(now, url, offset..end);
        if end < run.task_ids.len() {
            body["next_page_token"] = json!(end.to_string());
        }
        if q.get("include_history").is_some_and(|v| v == "true") {
            let mut history =
                vec![json!({"type": "ORIGINAL", "id": run.run_id, "start_time": run.created_ms})];
            history.extend(
                run.repairs
                    .iter()
                    .map(|r| json!({"type": "REPAIR", "id": r.repair_id, "start_time": r.at_ms})),
            );
            body["repair_history"] = json!(history);
        }
        Json(body).into_response()
    })
}

fn default_metrics(partition: &str) -> BTreeMap<String, Value> {
    let rows = 8_000_000 + (fnv(partition) % 400_000) as i64;
    use backfill_contract::jobs::backfill::result;
    BTreeMap::from([
        (result::ROW_COUNT.to_owned(), json!(rows)),
        (
            result::PRODUCTION_ROW_COUNT.to_owned(),
            json!(rows - (fnv(&format!("p{partition}")) % 20_000) as i64),
        ),
        (result::DUPLICATE_KEYS.to_owned(), json!(0)),
        (result::NULL_CUSTOMER_IDS.to_owned(), json!(0)),
        (result::SCHEMA_HASH.to_owned(), json!("usage_344b193379a8")),
    ])
}

async fn get_output(State(sim): State<Simulator>, Query(q): Params) -> Response {
    with_run(&sim, &q, |run_id, run, task, now| {
        if task.is_none() && run.task_ids.len() > 1 {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.",
            );
        }
        let index = task.unwrap_or(0);
        let task_id = run.task_ids.get(index).copied().unwrap_or(run_id);
        let metadata = run.task_json(task_id, index, now, &sim.config.workspace_url);
        let done = run.phase(now) == Phase::Terminated;
        let last = index + 1 == run.task_ids.len();
        let mut body = json!({"metadata": metadata});
        if let Some(x) = run.executed.as_ref().filter(|x| x.ending.is_some()) {
            // Executed for real: the job's own result or error.
            for (field, value) in x.output_fields() {
                body[field] = value;
            }
        } else if run.executed.is_some() && !done {
            body["notebook_output"] = json!({});
        } else if let (true, Some((before, after))) =
            (done && run.final_outcome().is_success(), run.table_versions)
        {
            use backfill_contract::jobs::promotion::{item, param, result};
            let target = run
                .params
                .get(param::TARGET_TABLE)
                .cloned()
                .unwrap_or_default();
            let partitions: Vec<Value> = run
                .promoted
                .iter()
                .map(|(date, staging, b, a)| {
                    json!({item::PARTITION_DATE: date, item::STAGING_VERSION: staging,
                           item::VERSION_BEFORE: b, item::VERSION_AFTER: a})
                })
                .collect();
            let result = json!({result::TARGET_TABLE: target, result::VERSION_BEFORE: before,
                                result::VERSION_AFTER: after, result::PARTITIONS: partitions});
            body["notebook_output"] = json!({"result": result.to_string(), "truncated": false});
        } else if done && (run.final_outcome().is_success() || !last) && run.refused.is_none() {
            let partition = run.partition.clone().unwrap_or_default();
            use backfill_contract::jobs::backfill::{param, result};
            let mut metrics = default_metrics(&partition);
            metrics.insert(result::PARTITION_DATE.into(), json!(partition));
            if let Some(table) = run.params.get(param::STAGING_TABLE) {
                metrics.insert(result::STAGING_TABLE.into(), json!(table));
            }
            if let Some(version) = run.staging_version {
                metrics.insert(result::STAGING_VERSION.into(), json!(version));
            }
            if let Some(overrides) = sim.config.metrics.get(&partition) {
                metrics.extend(overrides.clone());
            }
            // A scenario removes a field by overriding it with null.
            metrics.retain(|_, v| !v.is_null());
            body["notebook_output"] = json!({"result": Value::from(metrics.into_iter().collect::<serde_json::Map<_, _>>()).to_string(), "truncated": false});
        } else if done {
            body["error"] = json!("AnalysisException: the task failed");
            body["error_trace"] = json!("Traceback (most recent call last): ...");
            body["notebook_output"] = json!({});
        } else {
            body["notebook_output"] = json!({});
        }
        Json(body).into_response()
    })
}

/// A required integer field of a JSON body, refused as Databricks refuses it.
fn required_id(body: &[u8], field: &str) -> Result<i64, ApiRefusal> {
    let value: Value = parse_body(body)?;
    value
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiRefusal::invalid(format!("Missing required field: {field}")))
}

async fn cancel(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
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

async fn cancel_all(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
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

async fn list(State(sim): State<Simulator>, Query(q): Params) -> Response {
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true");
    if flag("active_only") && flag("completed_only") {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "active_only and completed_only cannot both be true",
        );
    }
    let limit: usize = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(l)) if (1..=25).contains(&l) => l,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "limit must be between 1 and 25",
            );
        }
    };
    let offset: usize = q
        .get("page_token")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let job_id: Option<i64> = q.get("job_id").and_then(|j| j.parse().ok());
    let from: Option<i64> = q.get("start_time_from").and_then(|j| j.parse().ok());
    let to: Option<i64> = q.get("start_time_to").and_then(|j| j.parse().ok());
    let now = now_ms();
    let mut inner = sim.lock();
    inner.advance(now);
    let expiry = sim.config.run_expiry_s as i64 * 1000;
    let matching: Vec<Value> = inner
        .runs
        .values()
        .rev()
        .filter(|r| job_id.is_none_or(|j| r.job_id == j))
        .filter(|r| now - r.created_ms <= expiry)
        .filter(|r| from.is_none_or(|f| r.created_ms >= f) && to.is_none_or(|t| r.created_ms < t))
        .filter(|r| {
            let done = r.phase(now) == Phase::Terminated;
            if done {
                !flag("active_only")
            } else {
                !flag("completed_only")
            }
        })
        .skip(offset)
        .take(limit + 1)
        .map(|r| {
            let tasks = if flag("expand_tasks") {
                0..r.task_ids.len()
            } else {
                0..0
            };
            let mut run = r.to_json(now, &sim.config.workspace_url, tasks);
            if let Some(o) = run.as_object_mut().filter(|_| !flag("expand_tasks")) {
                o.remove("tasks");
            }
            run
        })
        .collect();
    let has_more = matching.len() > limit;
    let runs: Vec<Value> = matching.into_iter().take(limit).collect();
    let mut body = json!({"has_more": has_more});
    if !runs.is_empty() {
        body["runs"] = json!(runs);
    }
    if has_more {
        body["next_page_token"] = json!((offset + limit).to_string());
    }
    if offset > 0 {
        body["prev_page_token"] = json!(offset.saturating_sub(limit).to_string());
    }
    Json(body).into_response()
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

async fn repair(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
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

async fn get_job(State(sim): State<Simulator>, Query(q): Params) -> Response {
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

async fn create_job(State(sim): State<Simulator>, body: axum::body::Bytes) -> Response {
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

async fn stats(State(sim): State<Simulator>) -> Response {
    Json(sim.stats()).into_response()
}
