//! The HTTP client: one request shape per endpoint, request retry in one place.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::error::parse_error_body;
use crate::models::{Job, Run, RunNowRequest, RunNowResponse};

/// How one request is retried in process (not to be confused with a partition's
/// redelivery through the broker, which the worker decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRetry {
    /// Tries in all, the first included.
    pub max_tries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RequestRetry {
    fn default() -> Self {
        Self {
            max_tries: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Where and how to reach a workspace.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://<workspace>` (or the simulator's `http://127.0.0.1:PORT`).
    pub host: String,
    pub token: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RequestRetry,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("token", &"***")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientConfig {
    pub fn new(host: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            token: SecretString::from(token.into()),
            timeout: Duration::from_secs(30),
            retry: RequestRetry::default(),
        }
    }
}

/// A Jobs API client; cheap to clone.
#[derive(Clone)]
pub struct DatabricksClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
}

impl std::fmt::Debug for DatabricksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabricksClient")
            .field("base", &self.base)
            .finish()
    }
}

/// One request, re-buildable for each try.
struct Call<'a> {
    endpoint: &'static str,
    method: Method,
    query: Vec<(&'static str, String)>,
    body: Option<&'a serde_json::Value>,
}

impl DatabricksClient {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base = config.host.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ApiError::Config(format!(
                "DATABRICKS_HOST {base:?} must start with https:// (or http:// for the simulator)"
            )));
        }
        if config.token.expose_secret().is_empty() {
            return Err(ApiError::Config("DATABRICKS_TOKEN is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(Self { http, base, config })
    }

    pub fn host(&self) -> &str {
        &self.base
    }

    /// `POST /jobs/run-now`. Retried only when the request carries an idempotency token,
    /// since without one a retry after a lost response would start a second run.
    pub async fn run_now(&self, request: &RunNowRequest) -> Result<RunNowResponse, ApiError> {
        if let Some(token) = request.idempotency_token.as_ref().filter(|t| t.len() > 64) {
            return Err(ApiError::Config(format!(
                "idempotency token is {} characters; Databricks allows 64",
                token.len()
            )));
        }
        let body = serde_json::to_value(request).map_err(|e| ApiError::Config(e.to_string()))?;
        let call = Call {
            endpoint: "jobs/run-now",
            method: Method::POST,
            query: Vec::new(),
            body: Some(&body),
        };
        self.send(&call, request.idempotency_token.is_some()).await
    }

    /// `GET /jobs/runs/get`.
    pub async fn get_run(&self, run_id: i64) -> Result<Run, ApiError> {
        let call = Call {
            endpoint: "jobs/runs/get",
            method: Method::GET,
            query: vec![("run_id", run_id.to_string())],
            body: None,
        };
        self.send(&call, true).await
    }

    /// `GET /jobs/get`.
    pub async fn get_job(&self, job_id: i64) -> Result<Job, ApiError> {
        let call = Call {
            endpoint: "jobs/get",
            method: Method::GET,
            query: vec![("job_id", job_id.to_string())],
            body: None,
        };
        self.send(&call, true).await
    }

    /// Sends with request retry: transport errors, timeouts, 429 and 5xx, exponential
    /// backoff with jitter, never sooner than a `Retry-After`.
    async fn send<T: DeserializeOwned>(&self, call: &Call<'_>, retry: bool) -> Result<T, ApiError> {
        let policy = self.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_jitter()
            .with_max_times(policy.max_tries.saturating_sub(1));
        (|| self.send_once::<T>(call))
            .retry(backoff)
            .when(|e: &ApiError| retry && e.is_retryable())
            .adjust(|e: &ApiError, wait: Option<Duration>| match (e.retry_after(), wait) {
                (Some(after), Some(wait)) => Some(after.max(wait)),
                (_, wait) => wait,
            })
            .notify(|e: &ApiError, wait: Duration| {
                tracing::debug!(endpoint = call.endpoint, error = %e, retry_in_ms = wait.as_millis() as u64, "retrying Databricks request");
            })
            .await
    }

    async fn send_once<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, ApiError> {
        let endpoint = call.endpoint;
        let url = format!("{}/api/2.1/{}", self.base, call.endpoint);
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
            .map(Duration::from_secs);
        let body = response
            .text()
            .await
            .map_err(|e| self.transport(endpoint, e))?;
        if status != StatusCode::OK {
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
