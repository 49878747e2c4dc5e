//! What the sections share: a fleet of `backfill` processes on a fresh namespace and
//! ledger, an in-process simulator, and readings of the ledger and of /proc.

use std::time::{Duration, Instant};

use backfill_ledger::{Ledger, PartitionState};
use backfill_simulator::{JobSpec, SimConfig, SimHandle, Simulator};

use crate::support;
use crate::support::namespace::TestNamespace;
use crate::support::process::OwnedChild;

/// Delay tiers fine enough for compressed clocks.
pub const TIERS: &str = "50ms,100ms,200ms,500ms,1s,5s,30s";

/// A simulator whose job 1 and workspace take `runs` active runs.
pub fn sim_config(pending_ms: u64, running_ms: u64, spread_ms: u64, runs: usize) -> SimConfig {
    let mut c = SimConfig {
        pending_ms,
        running_ms,
        running_spread_ms: spread_ms,
        workspace_run_limit: runs.max(2000) * 2,
        ..SimConfig::default()
    };
    // The backfill job widened; the promotion and rollback jobs kept, since `produce`
    // records them (with their settings hashes) in the backfill's contract.
    c.jobs[0] = JobSpec {
        max_concurrent_runs: (runs as i64).max(1000) * 2,
        ..c.jobs[0].clone()
    };
    c
}

/// `backfill` processes sharing one environment.
pub struct ProcFleet {
    pub env: Vec<(&'static str, String)>,
    pub sim: SimHandle,
    pub ledger: Ledger,
    pub workers: Vec<OwnedChild>,
    pub backfill: String,
    /// Declared last: the namespace is deleted once the workers are gone, also on failure.
    namespace: TestNamespace,
}

impl ProcFleet {
    pub async fn new(sim: SimConfig, ledger_url: String) -> Self {
        let sim = Simulator::spawn(sim).await.unwrap();
        let name = format!("bench-{}", support::unique());
        let namespace = TestNamespace::named(&support::amqp_url_string(), &name, TIERS);
        let env = vec![
            ("AMQP_URL", support::amqp_url_string()),
            ("LEDGER_URL", ledger_url.clone()),
            ("BACKFILL_NAMESPACE", name),
            ("BACKFILL_DELAY_TIERS", TIERS.to_owned()),
            ("DATABRICKS_HOST", sim.url()),
            ("DATABRICKS_TOKEN", "t".to_owned()),
            (
                "WORKER_API_BUDGET",
                "jobs/run-now=100000,jobs/runs/get=100000".to_owned(),
            ),
        ];
        Self {
            env,
            sim,
            ledger: support::ledger(&ledger_url).await,
            workers: Vec::new(),
            backfill: "bench".to_owned(),
            namespace,
        }
    }

    /// Sets an environment variable of later commands; a new broker or new delay tiers
    /// move the namespace's guard along (set them before starting anything).
    pub fn set_env(&mut self, key: &'static str, value: &str) {
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.to_owned()));
        if key == "AMQP_URL" || key == "BACKFILL_DELAY_TIERS" {
            self.namespace = TestNamespace::named(
                self.var("AMQP_URL"),
                self.var("BACKFILL_NAMESPACE"),
                self.var("BACKFILL_DELAY_TIERS"),
            );
        }
    }

    fn var(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn spawn_worker(&mut self, id: &str, concurrency: usize) -> u32 {
        self.spawn_worker_with(id, concurrency, &self.env.clone())
    }

    /// Starts a worker and returns once its `/readyz` answers ready: connected, and
    /// counted in the fleet's API budget (as the peer's pool is timed once it consumes).
    pub async fn spawn_ready_worker(&mut self, id: &str, concurrency: usize) -> u32 {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut env = self.env.clone();
        env.push(("METRICS_ADDR", addr.clone()));
        let pid = self.spawn_worker_with(id, concurrency, &env);
        support::eventually(
            "the worker to report ready",
            Duration::from_secs(60),
            || async {
                let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
        pid
    }

    fn spawn_worker_with(
        &mut self,
        id: &str,
        concurrency: usize,
        env: &[(&'static str, String)],
    ) -> u32 {
        let child = support::process::spawn(
            env,
            &[
                "worker",
                "--worker-id",
                id,
                "--concurrency",
                &concurrency.to_string(),
            ],
        );
        let pid = child.id();
        self.workers.push(child);
        pid
    }

    /// Registers and publishes `n` daily partitions from 2000-01-01 (the producer process).
    pub fn produce(&self, n: u32, cap: u32) {
        let end = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
            + chrono::Days::new(u64::from(n - 1));
        let out = support::process::run(
            &self.env,
            &[
                "produce",
                "--backfill-id",
                &self.backfill,
                "--job-id",
                "1",
                "--start",
                "2000-01-01",
                "--end",
                &end.to_string(),
                "--concurrency-cap",
                &cap.to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            support::process::text(&out.stderr)
        );
    }

    /// `backfill reconcile --once`: every partition proven against the simulator.
    pub fn verify(&self) {
        let out = support::process::run(
            &self.env,
            &["reconcile", "--backfill-id", &self.backfill, "--once"],
        );
        assert!(
            out.status.success(),
            "{}",
            support::process::text(&out.stdout)
        );
    }

    pub async fn count(&self, states: &[PartitionState]) -> i64 {
        let id = self.backfill.parse().unwrap();
        match self.ledger.state_counts(&id).await {
            Ok(c) => states.iter().map(|s| c.get(s).copied().unwrap_or(0)).sum(),
            Err(_) => 0,
        }
    }

    /// Waits until `states` hold `n` partitions, polling every 50 ms.
    pub async fn wait_for(&self, states: &[PartitionState], n: i64, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.count(states).await < n {
            assert!(
                started.elapsed() < limit,
                "timed out waiting for {n} partitions in {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        started.elapsed()
    }

    /// Kills the workers and closes the ledger; the namespace is deleted as the fleet drops.
    pub async fn stop(mut self) {
        self.workers.clear();
        self.ledger.close().await;
    }
}

/// Resident and peak resident memory of a process, in MiB (from /proc).
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let m = Memory::of(pid);
    (m.rss, m.peak)
}

/// A process's memory from `/proc/PID/status`, in MiB.
pub struct Memory {
    /// Resident set.
    pub rss: f64,
    /// Highest resident set so far.
    pub peak: f64,
    /// The anonymous part of the resident set: heap and stacks, without the mapped binary.
    pub anon: f64,
}

impl Memory {
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Self {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
            anon: field("RssAnon:"),
        }
    }
}
