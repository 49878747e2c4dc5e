//! The HTTP surface: the Jobs endpoints under `/api/2.1` and `/api/2.2` (behind the
//! gate), the live pipeline's stand-in, `/sim/stats` and `/healthz`.
//!
//! - `run_now`: starting runs.
//! - `run_reads`: `runs/get` (whole, or in 2.2's task pages) and `runs/get-output`.
//! - `run_control`: `runs/cancel`, `runs/cancel-all`, `runs/repair`.
//! - `list`: `runs/list` with its filters and pages.
//! - `jobs`: `jobs/get` and `jobs/create`.
//! - `request`: reading query parameters and bodies as Databricks does.

mod jobs;
mod list;
mod request;
mod run_control;
mod run_now;
mod run_reads;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

use crate::gate::gate;
use crate::state::Simulator;

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
        get(run_reads::get_run_paged)
    } else {
        get(run_reads::get_run_whole)
    };
    Router::new()
        .route("/jobs/run-now", post(run_now::run_now))
        .route("/jobs/runs/get", get_run)
        .route("/jobs/runs/get-output", get(run_reads::get_output))
        .route("/jobs/runs/cancel", post(run_control::cancel))
        .route("/jobs/runs/cancel-all", post(run_control::cancel_all))
        .route("/jobs/runs/list", get(list::list))
        .route("/jobs/runs/repair", post(run_control::repair))
        .route("/jobs/get", get(jobs::get_job))
        .route("/jobs/create", post(jobs::create_job))
}

async fn stats(State(sim): State<Simulator>) -> Response {
    Json(sim.stats()).into_response()
}
