//! The stand-in for the live pipeline, over HTTP (`POST /sim/live/start`, `POST
//! /sim/live/stop`): while a backfill is promoted, the executing engine keeps appending
//! today's partition to the target, as production's own pipeline would. Only with an
//! executing engine (`backfill sim --engine spark`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Simulator;
use crate::refusal::error;

pub(crate) fn live_routes() -> Router<Simulator> {
    Router::new()
        .route("/sim/live/start", post(start))
        .route("/sim/live/stop", post(stop))
}

/// Body: `{"table": ..., "date": ..., "warehouse_dir": ..., "every_ms": ...}`.
async fn start(State(sim): State<Simulator>, Json(body): Json<Value>) -> Response {
    let Some(engine) = sim.engine() else {
        return no_engine();
    };
    let Value::Object(mut request) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "expected a JSON object",
        );
    };
    request.insert("op".into(), json!("live_start"));
    answer(
        engine
            .call(
                Value::Object(request),
                "live_started",
                Duration::from_secs(60),
            )
            .await,
    )
}

/// Answers the commits the live pipeline made: `{"commits": [{"version", "batch", "rows"}]}`.
async fn stop(State(sim): State<Simulator>) -> Response {
    let Some(engine) = sim.engine() else {
        return no_engine();
    };
    answer(
        engine
            .call(
                json!({"op": "live_stop"}),
                "live_stopped",
                Duration::from_secs(300),
            )
            .await,
    )
}

fn answer(result: Result<Value, String>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, "ENGINE_ERROR", e),
    }
}

fn no_engine() -> Response {
    error(
        StatusCode::CONFLICT,
        "NO_ENGINE",
        "the live pipeline needs an executing engine (the Spark engine)",
    )
}
