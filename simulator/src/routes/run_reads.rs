//! Reading a run: `runs/get` (whole on 2.1, in task pages on 2.2, with its repair history
//! on request) and `runs/get-output` (what the job reported, or its error).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::engine::fnv;
use crate::refusal::{error, refused};
use crate::routes::request::{Params, id_param};
use crate::runs::{Phase, SimRun};
use crate::state::{Simulator, now_ms};

/// Tasks per `runs/get` page in API 2.2.
const TASK_PAGE: usize = 100;

pub(super) async fn get_run_whole(State(sim): State<Simulator>, Query(q): Params) -> Response {
    get_run(&sim, &q, None)
}

pub(super) async fn get_run_paged(State(sim): State<Simulator>, Query(q): Params) -> Response {
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

pub(super) async fn get_output(State(sim): State<Simulator>, Query(q): Params) -> Response {
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
