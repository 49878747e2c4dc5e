//! The simulated workspace's memory: jobs, runs, idempotency tokens, and what it saw.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{JobSpec, SimConfig};
use crate::runs::SimRun;

/// What the simulator observed, for tests and benchmarks to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SimStats {
    /// Requests per endpoint (`jobs/run-now`, `jobs/runs/get`, ...), refused ones included.
    pub calls: BTreeMap<String, u64>,
    /// Runs created (a token seen before creates none).
    pub runs_created: u64,
    /// Runs created per value of the partition parameter.
    pub runs_per_partition: BTreeMap<String, u64>,
    /// `run-now` calls answered with an existing run because of its idempotency token.
    pub idempotent_replays: u64,
}

pub(crate) struct Inner {
    pub jobs: BTreeMap<i64, JobSpec>,
    pub runs: BTreeMap<i64, SimRun>,
    pub tokens: HashMap<String, i64>,
    pub next_run_id: i64,
    pub stats: SimStats,
}

/// A handle on one simulated workspace; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) config: Arc<SimConfig>,
    pub(crate) inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        let jobs = config.jobs.iter().map(|j| (j.job_id, j.clone())).collect();
        Self {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(Inner {
                jobs,
                runs: BTreeMap::new(),
                tokens: HashMap::new(),
                // Realistic-looking, and distinct from job ids and partition numbers.
                next_run_id: 100_001,
                stats: SimStats::default(),
            })),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// A snapshot of what the simulator has seen so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats.clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
