//! Reading a request as Databricks does: query parameters and JSON bodies, refused with
//! its words.

use std::collections::BTreeMap;

use axum::extract::Query;
use serde_json::Value;

use crate::refusal::ApiRefusal;

/// A request's query parameters.
pub(super) type Params = Query<BTreeMap<String, String>>;

/// A JSON body, refused as Databricks refuses malformed JSON.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiRefusal> {
    serde_json::from_slice(body).map_err(|e| ApiRefusal {
        status: 400,
        code: "MALFORMED_REQUEST",
        message: format!("Invalid JSON given in the body of the request: {e}"),
    })
}

/// An integer query parameter, refused as Databricks refuses a bad one.
pub(super) fn id_param(value: Option<&String>, name: &str) -> Result<i64, ApiRefusal> {
    value
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| ApiRefusal::invalid(format!("{name} must be an integer")))
}

/// A required integer field of a JSON body, refused as Databricks refuses it.
pub(super) fn required_id(body: &[u8], field: &str) -> Result<i64, ApiRefusal> {
    let value: Value = parse_body(body)?;
    value
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiRefusal::invalid(format!("Missing required field: {field}")))
}
