//! The HTTP client: one request shape per endpoint, request retry in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backfill_metrics::{Metrics, status_code_label};

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::error::parse_error_body;
use crate::models::{
    Job, ListRuns, RepairRequest, RepairResponse, Run, RunNowRequest, RunNowResponse, RunOutput,
    RunsPage,
};
use crate::{ApiError, CallGate};

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

/// The longest `Retry-After` honoured by default: a server asking for an hour (or a
/// garbled huge value) would otherwise pause every worker for that long. After this the
/// request is tried again and, if still throttled, paused again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The longest `Retry-After` waited out inside one request's own retries; a longer one is
/// returned to the caller, who sends its message round the delay tiers instead of
/// holding a broker delivery.
pub const IN_REQUEST_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where and how to reach a workspace.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://<workspace>` (or the simulator's `http://127.0.0.1:PORT`).
    pub host: String,
    pub token: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RequestRetry,
    /// The longest `Retry-After` honoured (longer ones are cut to this).
    pub max_retry_after: Duration,
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
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

/// A Jobs API client; cheap to clone.
#[derive(Clone)]
pub struct DatabricksClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
    gate: Option<Arc<dyn CallGate>>,
    metrics: Option<Arc<Metrics>>,
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

    /// Counts requests, retries, throttling and latency per endpoint into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
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

    /// `GET /jobs/runs/get`, following 2.2's task pages so `tasks` is complete.
    pub async fn get_run(&self, run_id: i64) -> Result<Run, ApiError> {
        self.get_run_with(run_id, false).await
    }

    /// `GET /jobs/runs/get?include_history=true`: with `repair_history`.
    pub async fn get_run_with_history(&self, run_id: i64) -> Result<Run, ApiError> {
        self.get_run_with(run_id, true).await
    }

    async fn get_run_with(&self, run_id: i64, history: bool) -> Result<Run, ApiError> {
        let mut query = vec![("run_id", run_id.to_string())];
        if history {
            query.push(("include_history", "true".into()));
        }
        let call = Call {
            endpoint: "jobs/runs/get",
            method: Method::GET,
            query,
            body: None,
        };
        let mut run: Run = self.send(&call, true).await?;
        // Bounded: a run has at most a few thousand tasks, 100 per page.
        for _ in 0..1000 {
            let Some(token) = run.next_page_token.take() else {
                break;
            };
            let mut query = call.query.clone();
            query.push(("page_token", token));
            let page_call = Call {
                query,
                ..Call {
                    endpoint: call.endpoint,
                    method: Method::GET,
                    query: Vec::new(),
                    body: None,
                }
            };
            let page: Run = self.send(&page_call, true).await?;
            run.tasks.extend(page.tasks);
            run.next_page_token = page.next_page_token;
        }
        Ok(run)
    }

    /// `GET /jobs/runs/get-output`. Call it with a task's run id: on the parent of a
    /// multi-task run Databricks answers 400.
    pub async fn get_run_output(&self, run_id: i64) -> Result<RunOutput, ApiError> {
        let call = Call {
            endpoint: "jobs/runs/get-output",
            method: Method::GET,
            query: vec![("run_id", run_id.to_string())],
            body: None,
        };
        self.send(&call, true).await
    }

    /// `POST /jobs/runs/cancel`: asynchronous (the run passes through TERMINATING);
    /// cancelling a terminal run changes nothing, so it is safe to retry.
    pub async fn cancel_run(&self, run_id: i64) -> Result<(), ApiError> {
        let body = serde_json::json!({ "run_id": run_id });
        let call = Call {
            endpoint: "jobs/runs/cancel",
            method: Method::POST,
            query: Vec::new(),
            body: Some(&body),
        };
        let _: serde_json::Value = self.send(&call, true).await?;
        Ok(())
    }

    /// One page of `GET /jobs/runs/list`, newest first.
    pub async fn list_runs_page(
        &self,
        filter: &ListRuns,
        page_token: Option<&str>,
    ) -> Result<RunsPage, ApiError> {
        let mut query: Vec<(&'static str, String)> = Vec::new();
        if let Some(j) = filter.job_id {
            query.push(("job_id", j.to_string()));
        }
        if filter.active_only {
            query.push(("active_only", "true".into()));
        }
        if filter.completed_only {
            query.push(("completed_only", "true".into()));
        }
        if let Some(t) = filter.start_time_from {
            query.push(("start_time_from", t.to_string()));
        }
        if let Some(t) = filter.start_time_to {
            query.push(("start_time_to", t.to_string()));
        }
        if let Some(l) = filter.limit {
            query.push(("limit", l.to_string()));
        }
        if filter.expand_tasks {
            query.push(("expand_tasks", "true".into()));
        }
        if let Some(p) = page_token {
            query.push(("page_token", p.to_owned()));
        }
        let call = Call {
            endpoint: "jobs/runs/list",
            method: Method::GET,
            query,
            body: None,
        };
        self.send(&call, true).await
    }

    /// Every run matching `filter`, following `next_page_token`, up to `max_runs`.
    pub async fn list_runs(
        &self,
        filter: &ListRuns,
        max_runs: usize,
    ) -> Result<Vec<Run>, ApiError> {
        let mut runs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_runs_page(filter, token.as_deref()).await?;
            runs.extend(page.runs);
            match page
                .next_page_token
                .filter(|_| page.has_more && runs.len() < max_runs)
            {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        runs.truncate(max_runs);
        Ok(runs)
    }

    /// `POST /jobs/runs/repair`. Not retried on its own: a lost response may have started
    /// the repair, and the next one must name it (`latest_repair_id`).
    pub async fn repair_run(&self, request: &RepairRequest) -> Result<RepairResponse, ApiError> {
        let body = serde_json::to_value(request).map_err(|e| ApiError::Config(e.to_string()))?;
        let call = Call {
            endpoint: "jobs/runs/repair",
            method: Method::POST,
            query: Vec::new(),
            body: Some(&body),
        };
        self.send(&call, false).await
    }

    /// `POST /jobs/create` with raw settings; returns the job id. Not retried.
    pub async fn create_job(&self, settings: &serde_json::Value) -> Result<i64, ApiError> {
        let call = Call {
            endpoint: "jobs/create",
            method: Method::POST,
            query: Vec::new(),
            body: Some(settings),
        };
        let created: serde_json::Value = self.send(&call, false).await?;
        created["job_id"].as_i64().ok_or_else(|| ApiError::Decode {
            endpoint: "jobs/create",
            detail: "no job_id in the answer".into(),
        })
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
                    m.api.retry(call.endpoint);
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
            m.api.request(endpoint, code, started.elapsed());
            if result.as_ref().is_err_and(ApiError::is_throttled) {
                m.api.throttled(endpoint);
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
