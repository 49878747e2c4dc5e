//! The retry race (issue 14 point 2): a check publishes the next attempt's trigger before
//! `schedule_retry` commits, so the trigger can arrive while the ledger still shows the
//! old attempt. It must wait for the ledger. It used to inherit the first message's send
//! time and, in a chain older than the catch-up window (a partition that waited long at
//! the cap), be dropped as "never recorded", stranding the partition. The race is played
//! step by step against the real ledger (PostgreSQL), broker and simulator, with the
//! sweep out of the way so that only the fix can heal it.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::sync::Arc;
use std::time::Duration;

use backfill_broker::Lane;
use backfill_contract::{Attempt, Step};
use backfill_ledger::{PartitionState, RunTimes, now_ms};
use backfill_worker::Handled;
use support::fleet::{Fleet, fast_sim, test_worker_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_trigger_that_beats_its_schedule_retry_waits_for_the_ledger() {
    let ledger_url = support::postgres_url().await;
    let mut fleet = Fleet::build(1, 1, fast_sim(), &support::amqp_url(), &ledger_url).await;
    let mut config = test_worker_config("w1");
    config.sweep_interval = Duration::from_secs(3_600);
    let worker = Arc::new(backfill_worker::Worker::new(
        config,
        fleet.ledger.clone(),
        fleet.client.clone(),
    ));
    let publisher = fleet.broker.publisher();

    // A chain that began an hour ago; its first attempt's run starts.
    let mut first = fleet.trigger("2026-01-01").await;
    first.first_sent_ms = Some(now_ms() - 3_600_000);
    let Handled::Triggered { run_id } = worker
        .process(&publisher, Lane::Trigger, &first.encode())
        .await
        .unwrap()
    else {
        panic!("the first trigger starts the run");
    };
    let running = fleet.first_partition().await;
    assert_eq!(running.state, PartitionState::Running);

    // The live check finds the run failed and publishes the retry first, as the worker
    // does; the retry arrives before schedule_retry has committed.
    let check = first.follow_up(
        Attempt::FIRST,
        Step::Check {
            run_id,
            check_seq: running.check_seq,
        },
        "run started",
    );
    let mut retry = check.follow_up(
        Attempt::FIRST.next(),
        Step::Trigger,
        "retry after CLOUD_FAILURE",
    );
    retry.issue_seq = Some(running.check_seq);
    let early = worker
        .process(&publisher, Lane::Trigger, &retry.encode())
        .await
        .unwrap();
    assert!(
        matches!(&early, Handled::Delayed(why) if why.contains("waiting for the ledger")),
        "the early retry waits, it is not dropped: {early:?}"
    );

    // Now the late commit; the waiting retry comes back and runs attempt 2.
    let times = RunTimes {
        run_id,
        run_url: None,
        started_ms: None,
        ended_ms: None,
    };
    assert!(
        fleet
            .ledger
            .schedule_retry(
                &running.key(),
                Attempt::FIRST,
                running.check_seq,
                times,
                now_ms(),
                "CLOUD_FAILURE",
                "check"
            )
            .await
            .unwrap()
    );
    fleet.start_built(worker);
    fleet.wait_all_succeeded(Duration::from_secs(30)).await;
    let done = fleet.first_partition().await;
    assert_eq!(done.attempt.get(), 2, "the retry ran as attempt 2");
    assert_eq!(fleet.sim.sim.stats().runs_created, 2, "one run per attempt");
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "trigger_reissued"),
        "healed by the trigger waiting, not by the sweep"
    );
    fleet.stop().await;
}
