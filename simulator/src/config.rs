//! Simulator settings: jobs that exist at start, dwell times, the expected token.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Outcome;

/// A job the simulator knows from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub job_id: i64,
    pub name: String,
    pub max_concurrent_runs: i64,
    pub queue_enabled: bool,
}

/// How the simulated workspace behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// When set, only this bearer token is accepted (403 otherwise); when unset, any
    /// non-empty bearer token is. A request without one always gets 401.
    pub token: Option<String>,
    /// How long a run stays PENDING (cluster start).
    pub pending: Duration,
    /// How long a run stays RUNNING.
    pub running: Duration,
    /// The job parameter whose value names a partition in `/sim/stats`.
    pub partition_param: String,
    /// Base of `run_page_url`.
    pub workspace_url: String,
    pub jobs: Vec<JobSpec>,
    /// Scripted outcomes per partition (value of `partition_param`): the n-th run of that
    /// partition ends with the n-th outcome; runs beyond the script succeed.
    pub outcomes: BTreeMap<String, Vec<Outcome>>,
}

impl Default for SimConfig {
    /// Job 1 exists, runs take about a second: a 180-day demo finishes in seconds.
    fn default() -> Self {
        Self {
            token: None,
            pending: Duration::from_millis(300),
            running: Duration::from_millis(700),
            partition_param: "partition_date".into(),
            workspace_url: "https://sim.cloud.databricks.local".into(),
            jobs: vec![JobSpec {
                job_id: 1,
                name: "usage-aggregates-backfill".into(),
                max_concurrent_runs: 1000,
                queue_enabled: true,
            }],
            outcomes: BTreeMap::new(),
        }
    }
}
