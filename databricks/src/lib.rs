//! Speaking to Databricks Jobs API 2.1/2.2, knowing nothing of brokers or ledgers.
//!
//! - [`models`]: typed requests and responses that tolerate unknown fields and enum values.
//! - [`DatabricksClient`]: bearer-token auth, per-request timeout, request retry (in
//!   process, with backoff, jitter and `Retry-After`) for transport errors, 429 and 5xx;
//!   `run-now` is retried only when it carries an idempotency token.
//! - [`ApiError`]: status and `error_code` mapped to meaning, with predicates.
//! - [`classify`]: the one pure function that turns a run into a [`RunOutcome`].

mod classify;
mod client;
mod config;
mod endpoints;
mod error;
mod gate;
pub mod models;

#[cfg(test)]
mod parse_property_tests;

pub use classify::{Failure, FailureClass, RunOutcome, classify};
pub use client::DatabricksClient;
pub use config::{ClientConfig, MAX_RETRY_AFTER, RequestRetry};
pub use error::ApiError;
pub use gate::CallGate;
