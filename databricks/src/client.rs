//! The HTTP client: construction, the budget gate and metrics it reports to, and sending
//! a request with request retry in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backfill_metrics::{ApiMetrics, status_code_label};

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::config::IN_REQUEST_RETRY_AFTER;
use crate::error::parse_error_body;
use crate::{ApiError, CallGate, ClientConfig};

/// A Jobs API client; cheap to clone.
#[derive(Clone)]
pub struct DatabricksClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
    gate: Option<Arc<dyn CallGate>>,
    metrics: Option<ApiMetrics>,
}

impl std::fmt::Debug for DatabricksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabricksClient")
            .field("base", &self.base)
            .finish()
    }
}

/// One request, re-buildable for each try.
pub(crate) struct Call<'a> {
    pub(crate) endpoint: &'static str,
    pub(crate) method: Method,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<&'a serde_json::Value>,
}

impl DatabricksClient {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base = config.host.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ApiError::Config(format!(
                "the workspace host {base:?} must start with https:// (or http:// for the simulator)"
            )));
        }
        if config.token.expose_secret().is_empty() {
            return Err(ApiError::Config("the token is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Bursts open many connections; keeping them all idle afterwards would hold
            // their buffers for nothing.
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(Self {
            http,
            base,
            config,
            gate: None,
            metrics: None,
        })
    }

    /// The longest `Retry-After` this client honours.
    pub fn max_retry_after(&self) -> Duration {
        self.config.max_retry_after
    }

    /// Sends every attempt through `gate` (a shared API budget).
    pub fn with_gate(mut self, gate: Arc<dyn CallGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Counts requests, retries, throttling and latency per endpoint into `metrics` (a
    /// clone of the process's `metrics.api`: it records into the same families).
    pub fn with_metrics(mut self, metrics: ApiMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn host(&self) -> &str {
        &self.base
    }

    /// Sends with request retry: transport errors, timeouts, 429 and 5xx, exponential
    /// backoff with jitter, never sooner than a `Retry-After`.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        retry: bool,
    ) -> Result<T, ApiError> {
        let policy = self.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_jitter()
            .with_max_times(policy.max_tries.saturating_sub(1));
        (|| self.send_once::<T>(call))
            .retry(backoff)
            .when(|e: &ApiError| {
                retry
                    && e.is_retryable()
                    && e.retry_after().is_none_or(|after| after <= IN_REQUEST_RETRY_AFTER)
            })
            // Never sooner than the server asks, never longer than the policy allows:
            // a caller holding a broker delivery must not wait on one request for minutes.
            .adjust(|e: &ApiError, wait: Option<Duration>| match (e.retry_after(), wait) {
                (Some(after), Some(wait)) => Some(after.max(wait).min(policy.max_delay)),
                (_, wait) => wait,
            })
            .notify(|e: &ApiError, wait: Duration| {
                if let Some(m) = &self.metrics {
                    m.retry(call.endpoint);
                }
                tracing::debug!(endpoint = call.endpoint, error = %e, retry_in_ms = wait.as_millis() as u64, "retrying Databricks request");
            })
            .await
    }

    async fn send_once<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, ApiError> {
        let endpoint = call.endpoint;
        if let Some(gate) = &self.gate
            && let Err(wait) = gate.acquire(endpoint).await
        {
            return Err(ApiError::Paused {
                endpoint,
                retry_after: wait,
            });
        }
        let started = Instant::now();
        let result = self.exchange(call).await;
        if let Some(m) = &self.metrics {
            let code = match &result {
                Ok(_) => "200",
                Err(ApiError::Http { status, .. }) => status_code_label(*status),
                Err(ApiError::Timeout { .. }) => "timeout",
                Err(ApiError::Decode { .. }) => "undecodable",
                Err(_) => "transport",
            };
            m.request(endpoint, code, started.elapsed());
            if result.as_ref().is_err_and(ApiError::is_throttled) {
                m.throttled(endpoint);
            }
        }
        result
    }

    /// One HTTP exchange: the request, its answer read and decoded.
    async fn exchange<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, ApiError> {
        let endpoint = call.endpoint;
        let url = format!("{}/api/2.2/{}", self.base, call.endpoint);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(self.config.token.expose_secret())
            .timeout(self.config.timeout);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(endpoint, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(self.config.max_retry_after));
        let body = response
            .text()
            .await
            .map_err(|e| self.transport(endpoint, e))?;
        if status != StatusCode::OK {
            let throttled = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
            if let (true, Some(gate)) = (throttled, &self.gate) {
                gate.throttled(endpoint, retry_after);
            }
            let (error_code, message) = parse_error_body(status.as_u16(), &body);
            return Err(ApiError::Http {
                endpoint,
                status: status.as_u16(),
                error_code,
                message,
                retry_after,
            });
        }
        serde_json::from_str(&body).map_err(|e| ApiError::Decode {
            endpoint,
            detail: e.to_string(),
        })
    }

    fn transport(&self, endpoint: &'static str, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout {
                endpoint,
                seconds: self.config.timeout.as_secs(),
            }
        } else {
            ApiError::Transport {
                endpoint,
                detail: e.without_url().to_string(),
            }
        }
    }
}
