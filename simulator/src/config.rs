//! Simulator settings, in code or from a TOML scenario file (`backfill sim --scenario`).
//! Every field has a default; a scenario names only what it changes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Outcome;

/// A job the simulator knows from the start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub job_id: i64,
    #[serde(default = "default_job_name")]
    pub name: String,
    /// Databricks' default is 1; 0 skips every run.
    #[serde(default = "one")]
    pub max_concurrent_runs: i64,
    /// Runs over the cap wait QUEUED when on, end SKIPPED when off.
    #[serde(default)]
    pub queue: bool,
    /// What the job's task reports in its output.
    #[serde(default)]
    pub output: JobOutput,
    /// Which of the bundle's jobs an executing engine runs for it (`backfill sim --engine
    /// spark`); the instant engine ignores it.
    #[serde(default)]
    pub task: Option<JobTask>,
    /// The job's own parameters with their defaults, as a job definition carries them:
    /// an executed run receives these, overridden by the `run-now` request's.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// The bundle's job a simulated job stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobTask {
    BackfillPartition,
    Promotion,
    Rollback,
}

impl JobTask {
    /// The name the bundle's executor knows the job by.
    pub fn name(self) -> &'static str {
        match self {
            Self::BackfillPartition => "backfill-partition",
            Self::Promotion => "promotion",
            Self::Rollback => "rollback",
        }
    }
}

/// What a job's task passes to `dbutils.notebook.exit()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutput {
    /// A backfill job: the partition's data-quality metrics.
    #[default]
    DqMetrics,
    /// A promotion or rollback job: the target table's Delta versions before and after.
    TableVersions,
}

fn default_job_name() -> String {
    "Untitled".into()
}

fn one() -> i64 {
    1
}

/// What a fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After: retry_after_s`.
    Throttle,
    /// 429 without `Retry-After`.
    ThrottleNoRetryAfter,
    /// 503 `TEMPORARILY_UNAVAILABLE` with `Retry-After: retry_after_s`.
    Unavailable,
    /// 500 `INTERNAL_ERROR`.
    Internal,
    /// 502 with an HTML page from a "gateway".
    Html,
    /// Waits `delay_ms` before handling (longer than a client's timeout, for example).
    Slow,
    /// Handles the request (a run is created, a cancel happens), then answers 504 with an
    /// HTML page: the response is lost after the server acted.
    LostResponse,
    /// 403 `PERMISSION_DENIED` (a token without rights on the job, or revoked).
    Forbidden,
    /// 400 `INVALID_PARAMETER_VALUE` that is not "does not exist" (a refused request).
    BadRequest,
    /// 404 `ENDPOINT_NOT_FOUND` (a wrong path or host, or a proxy): nothing about the run.
    EndpointNotFound,
    /// 200 with an HTML single-sign-on login page instead of JSON (a proxy in the way).
    LoginPage,
}

/// One fault rule: which requests it hits and what it does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// `jobs/run-now`, `jobs/runs/get`, ... or `*` for every endpoint.
    pub endpoint: String,
    pub kind: FaultKind,
    /// Only requests about this partition (value of the partition parameter).
    #[serde(default)]
    pub partition: Option<String>,
    /// Only the first `times` matching requests (default: every one).
    #[serde(default)]
    pub times: Option<u64>,
    /// Each matching request is hit with this probability (seeded by `seed`).
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(default = "default_retry_after")]
    pub retry_after_s: u64,
    #[serde(default = "default_delay")]
    pub delay_ms: u64,
}

fn default_retry_after() -> u64 {
    1
}

fn default_delay() -> u64 {
    2_000
}

/// How the simulated workspace behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// When set, only this bearer token is accepted (403 otherwise); when unset, any
    /// non-empty bearer token is. A request without one always gets 401.
    pub token: Option<String>,
    /// Dwell per state, in milliseconds.
    pub pending_ms: u64,
    pub running_ms: u64,
    pub terminating_ms: u64,
    /// Extra milliseconds of running time per partition, spread by a hash of the
    /// partition value (0 to this), so runs do not all end together.
    pub running_spread_ms: u64,
    /// Most active runs in the whole workspace; runs beyond end with
    /// `WORKSPACE_RUN_LIMIT_EXCEEDED`.
    pub workspace_run_limit: usize,
    /// Runs are forgotten (not found) this long after they were created.
    pub run_expiry_s: u64,
    /// Tasks per run; with more than one, `get-output` on the parent run fails.
    pub tasks_per_run: usize,
    /// The job parameter whose value names a partition.
    pub partition_param: String,
    /// Base of `run_page_url`.
    pub workspace_url: String,
    /// Requests per second per endpoint (token buckets, burst of one second's worth).
    pub rate_limits: BTreeMap<String, f64>,
    /// Seed of every random choice.
    pub seed: u64,
    pub jobs: Vec<JobSpec>,
    /// The n-th run (or repair) of a partition ends with the n-th outcome; runs beyond
    /// the script succeed. Runs without a partition (promotions, rollbacks) are scripted
    /// under `job:N`, N their job id.
    pub outcomes: BTreeMap<String, Vec<Outcome>>,
    /// Partitions whose runs pass through a lifecycle state this API has never had.
    pub unknown_state_partitions: Vec<String>,
    /// Data-quality metrics put in the task output, per partition, over the defaults.
    pub metrics: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    pub faults: Vec<FaultRule>,
}

impl Default for SimConfig {
    /// Job 1 exists (1000 concurrent runs, queueing on); runs take about a second, so a
    /// 180-day demo finishes in seconds; limits as reported for real workspaces.
    fn default() -> Self {
        Self {
            token: None,
            pending_ms: 300,
            running_ms: 700,
            terminating_ms: 0,
            running_spread_ms: 0,
            workspace_run_limit: 2000,
            run_expiry_s: 60 * 24 * 3600,
            tasks_per_run: 1,
            partition_param: "partition_date".into(),
            workspace_url: "https://sim.cloud.databricks.local".into(),
            rate_limits: BTreeMap::new(),
            seed: 42,
            jobs: vec![
                JobSpec {
                    job_id: 1,
                    name: "usage-aggregates-backfill".into(),
                    max_concurrent_runs: 1000,
                    queue: true,
                    output: JobOutput::DqMetrics,
                    task: Some(JobTask::BackfillPartition),
                    parameters: BTreeMap::new(),
                },
                JobSpec {
                    job_id: 2,
                    name: "usage-aggregates-promote".into(),
                    max_concurrent_runs: 1,
                    queue: true,
                    output: JobOutput::TableVersions,
                    task: Some(JobTask::Promotion),
                    parameters: BTreeMap::new(),
                },
                JobSpec {
                    job_id: 3,
                    name: "usage-aggregates-rollback".into(),
                    max_concurrent_runs: 10,
                    queue: true,
                    output: JobOutput::TableVersions,
                    task: Some(JobTask::Rollback),
                    parameters: BTreeMap::new(),
                },
            ],
            outcomes: BTreeMap::new(),
            unknown_state_partitions: Vec::new(),
            metrics: BTreeMap::new(),
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Reads a scenario file, naming the file and the problem on error.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
