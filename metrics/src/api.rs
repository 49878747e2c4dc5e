//! The Databricks client's families: requests by endpoint and answer, request retries,
//! throttling, latency. The client holds a clone of [`ApiMetrics`] (the families are
//! shared), not the whole process's metrics.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::buckets::{HistogramFamily, wait_buckets};
use crate::families;
use crate::labels;

/// Calls to the Databricks API, per endpoint. A clone records into the same families.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    requests: Family<labels::EndpointCode, Counter>,
    retries: Family<labels::Endpoint, Counter>,
    throttled: Family<labels::Endpoint, Counter>,
    latency: HistogramFamily<labels::Endpoint>,
}

impl ApiMetrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Family::default(),
            retries: Family::default(),
            throttled: Family::default(),
            latency: Family::new_with_constructor(wait_buckets),
        }
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_databricks_requests",
                    "HTTP requests to the Jobs API by endpoint and answer (code, timeout, transport)",
                    self.requests.clone(),
                ),
                families::plain(
                    "backfill_databricks_request_retries",
                    "Requests retried in process after a retryable failure",
                    self.retries.clone(),
                ),
                families::plain(
                    "backfill_databricks_throttled",
                    "Answers that throttled us (429, or 503 with Retry-After)",
                    self.throttled.clone(),
                ),
                families::seconds(
                    "backfill_databricks_request_duration",
                    "Latency of Jobs API requests, answer included",
                    self.latency.clone(),
                ),
            ],
        );
    }

    /// One request ended with `code` (an HTTP status label, `timeout` or `transport`).
    pub fn request(&self, endpoint: &'static str, code: &'static str, latency: Duration) {
        self.requests
            .get_or_create(&labels::EndpointCode { endpoint, code })
            .inc();
        self.latency
            .get_or_create(&labels::Endpoint { endpoint })
            .observe(latency.as_secs_f64());
    }

    pub fn retry(&self, endpoint: &'static str) {
        self.retries
            .get_or_create(&labels::Endpoint { endpoint })
            .inc();
    }

    pub fn throttled(&self, endpoint: &'static str) {
        self.throttled
            .get_or_create(&labels::Endpoint { endpoint })
            .inc();
    }
}
