//! A refusal in the Jobs API's terms, and the Databricks-shaped error answer every part
//! of the simulator sends.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refusal in the Jobs API's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRefusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiRefusal {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }

    pub fn run_not_found(run_id: i64) -> Self {
        Self::invalid(format!("Run {run_id} does not exist."))
    }
}

/// A Databricks-shaped error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

/// The answer to a refusal.
pub(crate) fn refused(r: ApiRefusal) -> Response {
    error(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        r.code,
        r.message,
    )
}
