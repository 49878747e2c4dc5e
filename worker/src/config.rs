//! Worker settings with defaults fit for real Databricks runs.

use std::time::Duration;

/// Per-failure-class retry budgets and the backoff between attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all for platform, cloud and capacity failures.
    pub transient_attempts: u32,
    /// Attempts in all when the job's own code failed.
    pub user_code_attempts: u32,
    /// Delay before the second attempt; doubles per attempt.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Fraction of the delay added or removed at random (0.2 = ±20%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            transient_attempts: 5,
            user_code_attempts: 2,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30 * 60),
            jitter: 0.2,
        }
    }
}

/// How often a running run is looked at.
///
/// Without a history of this backfill's runs: soon after it starts, then less often as it
/// ages (`age_fraction` of its age), so completion is seen within that fraction of the
/// run's length (each partition on a grid of its own phase, so the first of a wave
/// started together is seen far sooner, and has the others looked at). Once `min_history` runs have finished, their lengths say when runs end:
/// sparse checks (each `early_growth` times the age of the last) until the shortest
/// length seen (or `window_start` of the mean, if sooner), then every `close_fraction`
/// of the age, so completion is seen within that fraction of the run's length at a
/// fraction of the calls. Never less often than `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    pub first: Duration,
    pub age_fraction: f64,
    pub max: Duration,
    pub min_history: u32,
    pub early_growth: f64,
    pub window_start: f64,
    pub close_fraction: f64,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            age_fraction: 0.5,
            max: Duration::from_secs(600),
            min_history: 5,
            early_growth: 8.0,
            window_start: 0.8,
            close_fraction: 0.04,
        }
    }
}

impl PollPolicy {
    /// The same policy on a clock `factor` times faster (benchmarks and tests that
    /// compress minutes into seconds).
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            first: self.first.div_f64(factor),
            max: self.max.div_f64(factor),
            ..self.clone()
        }
    }
}

/// Everything a worker process needs to know besides its connections.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process; recorded as the owner of claims and the actor of events.
    pub worker_id: String,
    /// Messages processed at once per lane (triggers and checks each).
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
    /// How long a claim in `triggering` is left to its owner before another worker
    /// re-attaches (with the same token, so at worst a repeated `run-now`).
    pub claim_lease: Duration,
    /// Wait before looking again when the backfill is at its cap or paused.
    pub admission_delay: Duration,
    /// Wait before retrying a message whose handling hit an outage (ledger, Databricks).
    pub outage_delay: Duration,
    /// Time allowed for in-flight messages after SIGTERM.
    pub shutdown_grace: Duration,
    /// How often each worker looks for overdue checks.
    pub sweep_interval: Duration,
    /// How late a check may be before it is re-issued (tiers and busy workers make
    /// checks a little late; a lost one is late forever).
    pub check_grace: Duration,
    /// How many times in a row the sweep re-issues a waiting partition's trigger without
    /// progress (a claim turning into a run) before it dead-letters the partition.
    pub max_trigger_reissues: u32,
    /// How long one step of a partition may keep failing for outages (Databricks or the
    /// ledger unreachable, throttled) before it is dead-lettered with the last error.
    pub outage_budget: Duration,
    /// The settings that decide which fleet a worker serves, in the words its operator
    /// uses (the command line gives its flags and variables); named when a message of
    /// another fleet shows them wrong.
    pub fleet_settings: String,
}

impl WorkerConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            concurrency: 16,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            claim_lease: Duration::from_secs(15),
            admission_delay: Duration::from_secs(5),
            outage_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            sweep_interval: Duration::from_secs(15),
            check_grace: Duration::from_secs(60),
            max_trigger_reissues: 5,
            outage_budget: Duration::from_secs(3600),
            fleet_settings: "the ledger or the namespace setting".into(),
        }
    }
}
