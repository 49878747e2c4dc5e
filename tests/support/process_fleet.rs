//! Worker fleets as separate `backfill` processes, against PostgreSQL, a broker and the
//! simulator over HTTP.

use super::process::OwnedChild;
use std::time::Duration;

use backfill_simulator::{SimConfig, Simulator};

use super::namespace::TestNamespace;
use super::process::{run, spawn, text};

/// A simulator whose runs wait `pending_ms`, then run for `running_ms`.
pub fn timed_sim(pending_ms: u64, running_ms: u64) -> SimConfig {
    SimConfig {
        pending_ms,
        running_ms,
        ..SimConfig::default()
    }
}

pub struct ProcessFleet {
    pub env: Vec<(&'static str, String)>,
    pub sim: backfill_simulator::SimHandle,
    pub workers: Vec<OwnedChild>,
    /// Deletes the namespace when the fleet drops (declared last: dropped after the rest).
    namespace: TestNamespace,
}

impl ProcessFleet {
    /// A simulator, a fresh PostgreSQL ledger and a namespace on the broker at `amqp_url`.
    pub async fn new(amqp_url: &str, sim: SimConfig) -> Self {
        Self::on(amqp_url, Simulator::spawn(sim).await.unwrap()).await
    }

    /// [`ProcessFleet::new`] on the test broker, with a [`timed_sim`].
    pub async fn timed(pending_ms: u64, running_ms: u64) -> Self {
        Self::new(&super::amqp_url_string(), timed_sim(pending_ms, running_ms)).await
    }

    /// The same around a simulator already served.
    pub async fn on(amqp_url: &str, sim: backfill_simulator::SimHandle) -> Self {
        let (name, namespace) = super::process_namespace(amqp_url);
        let env = vec![
            ("AMQP_URL", amqp_url.to_owned()),
            ("LEDGER_URL", super::postgres_url().await),
            ("BACKFILL_NAMESPACE", name),
            ("BACKFILL_DELAY_TIERS", super::TEST_TIERS.to_owned()),
            ("DATABRICKS_HOST", sim.url()),
            ("DATABRICKS_TOKEN", "t".to_owned()),
            ("WORKER_CLAIM_LEASE_S", "2".to_owned()),
            ("WORKER_CHECK_GRACE_S", "3".to_owned()),
            ("WORKER_SWEEP_INTERVAL_S", "1".to_owned()),
            (
                "WORKER_API_BUDGET",
                "jobs/run-now=200,jobs/runs/get=400".to_owned(),
            ),
        ];
        Self {
            env,
            sim,
            workers: Vec::new(),
            namespace,
        }
    }

    pub fn produce(&self, days: u32, cap: u32) {
        self.produce_as("fleet", days, cap);
    }

    /// Registers and publishes backfill `id` of `days` partitions from 2026-01-01.
    pub fn produce_as(&self, id: &str, days: u32, cap: u32) {
        self.produce_with(id, days, &["--concurrency-cap", &cap.to_string()]);
    }

    /// The same, with `flags` added to `produce`'s command line.
    pub fn produce_with(&self, id: &str, days: u32, flags: &[&str]) {
        let end = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
            + chrono::Days::new(u64::from(days - 1));
        self.produce_range(id, "2026-01-01", &end.to_string(), flags);
    }

    /// Registers and publishes backfill `id` from `start` to `end` (inclusive), with `flags`
    /// added to `produce`'s command line.
    pub fn produce_range(&self, id: &str, start: &str, end: &str, flags: &[&str]) {
        let mut args = vec![
            "produce",
            "--backfill-id",
            id,
            "--job-id",
            "1",
            "--start",
            start,
            "--end",
            end,
        ];
        args.extend_from_slice(flags);
        let out = run(&self.env, &args);
        assert!(out.status.success(), "produce {id}: {}", text(&out.stderr));
    }

    /// Sets (or replaces) an environment variable of every later command.
    pub fn set_env(&mut self, key: &'static str, value: &str) {
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.to_owned()));
    }

    pub fn spawn_worker(&mut self) {
        self.workers
            .push(spawn(&self.env, &["worker", "--concurrency", "8"]));
    }

    pub fn status(&self) -> serde_json::Value {
        self.status_of("fleet")
    }

    pub fn status_of(&self, id: &str) -> serde_json::Value {
        let out = run(&self.env, &["status", "--backfill-id", id, "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("status: {}", text(&out.stderr)))
    }

    pub async fn wait_succeeded(&self, total: i64, limit: Duration) {
        super::eventually("every partition succeeded", limit, || async {
            let s = self.status();
            assert_eq!(s["states"]["dead_lettered"], 0, "{s}");
            (s["states"]["succeeded"] == total).then_some(())
        })
        .await;
    }

    pub fn assert_one_run_per_partition(&self, total: usize) {
        let stats = self.sim.sim.stats();
        assert_eq!(stats.runs_per_partition.len(), total);
        let dup: Vec<_> = stats
            .runs_per_partition
            .iter()
            .filter(|(_, n)| **n != 1)
            .collect();
        assert!(dup.is_empty(), "duplicate runs: {dup:?}");
    }

    /// Stops the workers and deletes the namespace (what dropping the fleet does too).
    pub async fn teardown(self) {
        drop(self);
    }
}

impl Drop for ProcessFleet {
    /// Workers are killed first, so none re-declares the namespace being deleted.
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}
