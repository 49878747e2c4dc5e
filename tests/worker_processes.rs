//! Worker processes under fire: `kill -9` at random moments, several processes sharing a
//! concurrency cap, against PostgreSQL, the real broker and the simulator over HTTP.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::process::Child;
use std::time::Duration;

use backfill_simulator::{SimConfig, Simulator};
use rand::{Rng, SeedableRng};
use support::process::{run, spawn, text};

struct ProcessFleet {
    env: Vec<(&'static str, String)>,
    sim: backfill_simulator::SimHandle,
    workers: Vec<Child>,
}

impl ProcessFleet {
    async fn new(sim: SimConfig) -> Self {
        let sim = Simulator::spawn(sim).await.unwrap();
        let env = vec![
            ("AMQP_URL", support::amqp_url_string()),
            ("LEDGER_URL", support::postgres_url().await),
            (
                "BACKFILL_NAMESPACE",
                format!("bftest-{}", support::unique()),
            ),
            ("BACKFILL_DELAY_TIERS", support::TEST_TIERS.to_owned()),
            ("DATABRICKS_HOST", sim.url()),
            ("DATABRICKS_TOKEN", "t".to_owned()),
            ("WORKER_CLAIM_LEASE_S", "2".to_owned()),
            ("WORKER_CHECK_GRACE_S", "3".to_owned()),
            ("WORKER_SWEEP_INTERVAL_S", "1".to_owned()),
        ];
        Self {
            env,
            sim,
            workers: Vec::new(),
        }
    }

    fn produce(&self, days: u32, cap: u32) {
        let end = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
            + chrono::Days::new(u64::from(days - 1));
        let out = run(
            &self.env,
            &[
                "produce",
                "--backfill-id",
                "fleet",
                "--job-id",
                "1",
                "--start",
                "2026-01-01",
                "--end",
                &end.to_string(),
                "--concurrency-cap",
                &cap.to_string(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn spawn_worker(&mut self) {
        self.workers
            .push(spawn(&self.env, &["worker", "--concurrency", "8"]));
    }

    fn status(&self) -> serde_json::Value {
        let out = run(&self.env, &["status", "--backfill-id", "fleet", "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("status: {}", text(&out.stderr)))
    }

    async fn wait_succeeded(&self, total: i64, limit: Duration) {
        support::eventually("every partition succeeded", limit, || async {
            let s = self.status();
            assert_eq!(s["states"]["dead_lettered"], 0, "{s}");
            (s["states"]["succeeded"] == total).then_some(())
        })
        .await;
    }

    fn assert_one_run_per_partition(&self, total: usize) {
        let stats = self.sim.sim.stats();
        assert_eq!(stats.runs_per_partition.len(), total);
        let dup: Vec<_> = stats
            .runs_per_partition
            .iter()
            .filter(|(_, n)| **n != 1)
            .collect();
        assert!(dup.is_empty(), "duplicate runs: {dup:?}");
    }

    async fn teardown(mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
        let tiers = support::TEST_TIERS
            .split(',')
            .map(|t| backfill_broker::parse_duration(t).unwrap())
            .collect();
        let topology = backfill_broker::Topology::new(self.env[2].1.clone())
            .unwrap()
            .with_delay_tiers(tiers)
            .unwrap();
        support::teardown(&support::connect(&topology).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_workers_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let mut fleet = ProcessFleet::new(SimConfig {
        pending_ms: 100,
        running_ms: 300,
        running_spread_ms: 400,
        ..SimConfig::default()
    })
    .await;
    fleet.produce(200, 40);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut kills = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        let victim = rng.random_range(0..fleet.workers.len());
        let mut dead = fleet.workers.swap_remove(victim);
        dead.kill().unwrap(); // SIGKILL
        dead.wait().unwrap();
        kills += 1;
        fleet.spawn_worker();
    }
    assert_eq!(kills, 10);
    fleet.wait_succeeded(200, Duration::from_secs(180)).await;
    fleet.assert_one_run_per_partition(200);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_5_holds_across_3_worker_processes() {
    let mut fleet = ProcessFleet::new(SimConfig {
        pending_ms: 100,
        running_ms: 400,
        ..SimConfig::default()
    })
    .await;
    fleet.produce(30, 5);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    fleet.wait_succeeded(30, Duration::from_secs(120)).await;
    let max = fleet.sim.sim.stats().max_active[&1];
    assert!(max <= 5, "{max} runs active at once with a cap of 5");
    assert!(max >= 4, "the cap should be nearly used ({max})");
    fleet.assert_one_run_per_partition(30);
    fleet.teardown().await;
}
