//! Two fleets (two ledgers) on one Databricks workspace, with the same backfill id: their
//! idempotency tokens carry each ledger's identity, so the second fleet starts runs of its
//! own instead of taking over the first one's (a reused token silently returns the old run).

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::process_fleet::ProcessFleet;

async fn run_ids(url: &str) -> BTreeMap<String, i64> {
    let ledger = support::ledger(url).await;
    ledger
        .partitions(&"fleet".parse().unwrap())
        .await
        .unwrap()
        .iter()
        .map(|p| (p.date.to_string(), p.run_id.unwrap().get()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgers_with_one_backfill_id_on_one_workspace_never_share_a_run() {
    let mut fleet = ProcessFleet::timed(50, 100).await;
    let first_ledger = fleet
        .env
        .iter()
        .find(|(k, _)| *k == "LEDGER_URL")
        .unwrap()
        .1
        .clone();
    fleet.produce(3, 3);
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(60)).await;
    // The first fleet stops; a second one, on a ledger of its own (SQLite), runs a backfill
    // with the same id on the same workspace.
    fleet.workers.clear();
    let second_ledger = support::sqlite_url();
    fleet.set_env("LEDGER_URL", &second_ledger);
    fleet.produce(3, 3);
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(60)).await;
    let stats = fleet.sim.sim.stats();
    assert!(
        stats.runs_per_partition.values().all(|n| *n == 2),
        "each fleet ran each partition once: {:?}",
        stats.runs_per_partition
    );
    let first = run_ids(&first_ledger).await;
    let second = run_ids(&second_ledger).await;
    assert_eq!(first.len(), 3);
    for (date, run) in &first {
        assert_ne!(
            second[date], *run,
            "{date}: the second fleet took over the first one's run"
        );
    }
    fleet.teardown().await;
}
