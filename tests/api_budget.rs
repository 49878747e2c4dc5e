//! The API budget is the whole fleet's (issue 14 point 9): twenty worker processes under
//! `jobs/run-now=10` never make more than ten `run-now` calls in any second at the
//! simulator, though each would otherwise take at least one a second.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use sqlx::Connection;
use support::fleet::fast_sim;
use support::process_fleet::ProcessFleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_workers_share_ten_run_now_calls_a_second() {
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), fast_sim()).await;
    fleet.set_env("WORKER_API_BUDGET", "jobs/run-now=10,jobs/runs/get=50");
    // Twenty processes of ten connections each would exceed PostgreSQL's default 100.
    fleet.set_env("LEDGER_PG_POOL", "2");
    for _ in 0..20 {
        fleet.spawn_worker();
    }
    // Steady membership first: every worker has heartbeated and been seen by the others.
    let ledger_url = fleet
        .env
        .iter()
        .find(|(k, _)| *k == "LEDGER_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    support::eventually("twenty live workers", Duration::from_secs(60), || async {
        let mut db = sqlx::PgConnection::connect(&ledger_url).await.ok()?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workers")
            .fetch_one(&mut db)
            .await
            .ok()?;
        (n == 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    fleet.produce(80, 80);
    fleet.wait_succeeded(80, Duration::from_secs(120)).await;
    fleet.assert_one_run_per_partition(80);
    let stats = fleet.sim.sim.stats();
    let peak = &stats.peak_per_second;
    assert!(
        peak["jobs/run-now"] <= 10,
        "run-now peaked at {} calls in a second: {peak:?}",
        peak["jobs/run-now"]
    );
    assert!(peak["jobs/runs/get"] <= 50, "{peak:?}");
    fleet.teardown().await;
}

/// Not only workers: the reconciler takes its share of the budget too (it proves 16
/// partitions at a time, which would otherwise be 16 `runs/get` calls at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_stays_inside_the_fleet_budget() {
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), fast_sim()).await;
    fleet.set_env("WORKER_API_BUDGET", "jobs/run-now=10,jobs/runs/get=3");
    fleet.produce(12, 12);
    fleet.spawn_worker();
    fleet.wait_succeeded(12, Duration::from_secs(120)).await;
    fleet.workers.clear();
    let out = support::process::run(
        &fleet.env,
        &["reconcile", "--backfill-id", "fleet", "--once", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        support::process::text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], 12);
    let peak = fleet.sim.sim.stats().peak_per_second;
    // The budget is a token bucket holding one second's worth: a full bucket and the next
    // second's refill can both land within one calendar second the simulator counts (and
    // the worker's phase counts too), so twice the budget is the bound; without the budget
    // the reconciler alone would make 16 calls at once.
    assert!(
        peak["jobs/runs/get"] <= 6,
        "runs/get peaked at {} calls in a second: {peak:?}",
        peak["jobs/runs/get"]
    );
    fleet.teardown().await;
}
