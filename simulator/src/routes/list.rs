//! `runs/list`: newest first, filtered by job, time and activity, in pages of at most 25.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::refusal::error;
use crate::routes::request::Params;
use crate::runs::Phase;
use crate::state::{Simulator, now_ms};

pub(super) async fn list(State(sim): State<Simulator>, Query(q): Params) -> Response {
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
