//! The simulated workspace's memory (jobs, runs, tokens, what it saw) and the shared
//! handle every request uses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::{JobSpec, SimConfig};
use crate::limits::Buckets;
use crate::runs::SimRun;
use crate::spark_engine::{SparkEngine, SparkSettings};

/// What the simulator observed, for tests and benchmarks to assert on (`/sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests per endpoint (`jobs/run-now`, `jobs/runs/get`, ...), refused ones included.
    pub calls: BTreeMap<String, u64>,
    /// The most requests per endpoint in any one calendar second.
    pub peak_per_second: BTreeMap<String, u64>,
    /// Requests answered 429 per endpoint (rate limits and throttle faults).
    pub throttled: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Runs created (a token seen before creates none).
    pub runs_created: u64,
    /// Runs created per value of the partition parameter.
    pub runs_per_partition: BTreeMap<String, u64>,
    /// `run-now` calls answered with an existing run because of its idempotency token.
    pub idempotent_replays: u64,
    /// The most runs of each job active at once.
    pub max_active: BTreeMap<i64, usize>,
    pub repairs: u64,
    pub cancels: u64,
}

pub(crate) struct Inner {
    pub jobs: BTreeMap<i64, JobSpec>,
    pub runs: BTreeMap<i64, SimRun>,
    /// Task run id → parent run id.
    pub tasks: HashMap<i64, i64>,
    pub tokens: HashMap<String, i64>,
    pub next_id: i64,
    pub stats: SimStats,
    pub buckets: Buckets,
    pub rng: StdRng,
    /// Hits per fault rule (by index), for `times`.
    pub fault_hits: Vec<u64>,
    /// The target table's latest Delta version (each promoted partition and each
    /// rollback adds one).
    pub table_version: i64,
    /// Each staging table's latest Delta version (each backfill run's write adds one).
    pub staging_versions: HashMap<String, i64>,
    /// (second, requests in it) per endpoint, for `peak_per_second`.
    pub current_second: HashMap<String, (i64, u64)>,
    /// Runs and repairs started per partition: picks the scripted outcome.
    pub executions: BTreeMap<String, usize>,
    /// Runs waiting for a slot of their job (not refused), in creation order.
    pub queued: BTreeSet<i64>,
    /// Runs holding or having held a slot that may still be active at or after
    /// `watermark`: concurrency is counted over these, not over every run ever made.
    pub live: BTreeSet<i64>,
    pub watermark: i64,
    /// Runs of the bundle's jobs execute for real (set once; stays set when the engine
    /// is gone, so they fail instead of reporting invented numbers).
    pub executing: bool,
    /// The executing engine, while it is up.
    pub engine: Option<SparkEngine>,
    /// Execution key → run id, for executions handed to the engine and not ended.
    pub exec_keys: HashMap<i64, i64>,
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
        let inner = Inner {
            jobs,
            runs: BTreeMap::new(),
            tasks: HashMap::new(),
            tokens: HashMap::new(),
            // Realistic-looking, and distinct from job ids and partition numbers.
            next_id: 100_001,
            stats: SimStats::default(),
            buckets: Buckets::new(&config.rate_limits),
            rng: StdRng::seed_from_u64(config.seed),
            fault_hits: vec![0; config.faults.len()],
            executions: BTreeMap::new(),
            queued: BTreeSet::new(),
            live: BTreeSet::new(),
            watermark: i64::MIN,
            current_second: HashMap::new(),
            table_version: 1_000,
            staging_versions: HashMap::new(),
            executing: false,
            engine: None,
            exec_keys: HashMap::new(),
        };
        Self {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// A simulator whose runs of the bundle's jobs execute the job code on local Spark
    /// with Delta Lake, in one long-lived executor process.
    pub async fn with_spark(config: SimConfig, settings: SparkSettings) -> Result<Self, String> {
        let (engine, events) = SparkEngine::start(settings).await?;
        let sim = Self::new(config);
        {
            let mut inner = sim.lock();
            inner.executing = true;
            inner.engine = Some(engine);
        }
        tokio::spawn(sim.clone().follow_engine(events));
        Ok(sim)
    }

    /// The executing engine, if runs execute for real (and it is still up).
    pub fn engine(&self) -> Option<SparkEngine> {
        self.lock().engine.clone()
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// A snapshot of what the simulator has seen so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats.clone()
    }

    /// Runs holding a concurrency slot now (pending with a slot, queued ones excluded).
    pub fn active_runs(&self) -> usize {
        let now = now_ms();
        self.lock()
            .runs
            .values()
            .filter(|r| r.active_at(now))
            .count()
    }

    /// Counts one request to `endpoint`.
    pub(crate) fn count_call(inner: &mut Inner, endpoint: &str) {
        *inner.stats.calls.entry(endpoint.to_owned()).or_default() += 1;
        let second = now_ms() / 1000;
        let slot = inner
            .current_second
            .entry(endpoint.to_owned())
            .or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
        let count = slot.1;
        let peak = inner
            .stats
            .peak_per_second
            .entry(endpoint.to_owned())
            .or_default();
        *peak = (*peak).max(count);
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
