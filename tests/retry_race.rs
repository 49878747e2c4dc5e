//! The retry race (issue 14 point 2): a check publishes the next attempt's trigger before
//! `schedule_retry` commits. When the commit is late (its row held by another
//! transaction), the trigger arrives first and must wait for the ledger; it used to
//! inherit the first message's send time and, on a chain older than the catch-up window,
//! be dropped as "never recorded", stranding the partition. On PostgreSQL, with the sweep
//! out of the way so that only the fix can heal it.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::sync::Arc;
use std::time::Duration;

use backfill_broker::Lane;
use backfill_contract::{Attempt, PartitionMessage, Step};
use backfill_ledger::{PartitionState, now_ms};
use backfill_simulator::Outcome;
use sqlx::Connection;
use support::fleet::{Fleet, fast_sim, test_worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_trigger_that_beats_its_schedule_retry_waits_for_the_ledger() {
    let mut sim = fast_sim();
    sim.running_ms = 3_000;
    sim.outcomes
        .insert("2026-01-01".into(), vec![Outcome::CloudFailure]);
    let ledger_url = support::postgres_url().await;
    let mut fleet = Fleet::build(1, 1, sim, &support::amqp_url(), &ledger_url).await;
    let backfill = fleet
        .ledger
        .backfill(&fleet.backfill_id)
        .await
        .unwrap()
        .unwrap();
    let p = fleet
        .ledger
        .partitions(&fleet.backfill_id)
        .await
        .unwrap()
        .remove(0);
    fleet.ledger.mark_enqueued(&p.key()).await.unwrap();
    // A chain that began an hour ago (a partition that waited long at the cap, say).
    let mut first = PartitionMessage::new(
        fleet.backfill_id.clone(),
        p.date,
        Attempt::FIRST,
        backfill.manifest_id,
        Step::Trigger,
    );
    first.first_sent_ms = Some(now_ms() - 3_600_000);
    fleet.publish_raw(Lane::Trigger, &first.encode()).await;

    let mut config = test_worker_config("w1");
    config.sweep_interval = Duration::from_secs(3_600);
    let worker = Arc::new(backfill_worker::Worker::new(
        config,
        fleet.ledger.clone(),
        fleet.client.clone(),
    ));
    fleet.start_built(worker);
    support::eventually(
        "the first run to be running",
        Duration::from_secs(30),
        || async { (fleet.count(PartitionState::Running).await == 1).then_some(()) },
    )
    .await;
    // Hold the partition's row past the run's failure, so schedule_retry commits late.
    let mut holder = sqlx::PgConnection::connect(&ledger_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM partitions FOR UPDATE")
        .execute(&mut holder)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    let p = fleet
        .ledger
        .partitions(&fleet.backfill_id)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(p.attempt.get(), 2, "the retry ran as attempt 2");
    let stats = fleet.sim.sim.stats();
    assert_eq!(stats.runs_created, 2, "one run per attempt: {stats:?}");
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "trigger_reissued"),
        "healed by the trigger waiting, not by the sweep"
    );
    fleet.stop().await;
}
