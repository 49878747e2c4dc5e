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
    fleet.set_env("LEDGER_PG_POOL", "3");
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
