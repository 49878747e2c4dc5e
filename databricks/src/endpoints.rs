//! The Jobs API endpoints the fleet uses: one request shape each, sent through
//! the client's `send`, with or without request retry.

use reqwest::Method;

use crate::client::Call;
use crate::models::{
    Job, ListRuns, RepairRequest, RepairResponse, Run, RunNowRequest, RunNowResponse, RunOutput,
    RunsPage,
};
use crate::{ApiError, DatabricksClient};

impl DatabricksClient {
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
}
