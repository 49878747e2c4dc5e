//! A handler panic touches only what its message owns (issue 14 point 6): a superseded
//! check leaves a live chain alone; the live check dead-letters its partition and cancels
//! the run nobody follows any more; a stale trigger changes nothing.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use backfill_broker::Lane;
use backfill_contract::{Attempt, CheckSeq, Step};
use backfill_databricks::{RunOutcome, classify};
use backfill_ledger::PartitionState;
use support::fleet::{Fleet, fast_sim};

fn long_runs() -> backfill_simulator::SimConfig {
    backfill_simulator::SimConfig {
        running_ms: 60_000,
        ..fast_sim()
    }
}

#[tokio::test]
async fn a_panic_on_a_superseded_check_spares_the_live_chain_and_the_live_one_ends_it() {
    let fleet = Fleet::new(1, 5, long_runs()).await;
    let trigger = fleet.trigger("2026-01-01").await;
    let worker = fleet.worker("w1");
    let publisher = fleet.broker.publisher();
    worker
        .process(&publisher, Lane::Trigger, &trigger.encode())
        .await
        .unwrap();
    let p = fleet.first_partition().await;
    assert_eq!(p.state, PartitionState::Running);
    let run_id = p.run_id.unwrap();

    let stale = trigger.follow_up(
        Attempt::FIRST,
        Step::Check {
            run_id,
            check_seq: CheckSeq::from(p.check_seq.get() - 1),
        },
        "old chain",
    );
    worker.record_dead_end(&stale, "panicked").await;
    // A stale trigger of the same attempt changes nothing either.
    worker.record_dead_end(&trigger, "panicked").await;
    let after = fleet.first_partition().await;
    assert_eq!(after.state, PartitionState::Running, "live chain untouched");
    assert!(matches!(
        classify(&fleet.client.get_run(run_id.get()).await.unwrap()),
        RunOutcome::InProgress { .. }
    ));

    let live = trigger.follow_up(
        Attempt::FIRST,
        Step::Check {
            run_id,
            check_seq: p.check_seq,
        },
        "live chain",
    );
    worker.record_dead_end(&live, "panicked").await;
    let after = fleet.first_partition().await;
    assert_eq!(after.state, PartitionState::DeadLettered);
    assert!(after.last_error.unwrap().contains("panicked"));
    let run = fleet.client.get_run(run_id.get()).await.unwrap();
    assert!(
        !matches!(classify(&run), RunOutcome::InProgress { .. }),
        "the run nobody follows is cancelled: {run:?}"
    );
    fleet.stop().await;
}

#[tokio::test]
async fn a_panic_on_the_live_trigger_of_a_waiting_partition_dead_letters_it() {
    let fleet = Fleet::new(1, 5, fast_sim()).await;
    let p = fleet.first_partition().await;
    let mut trigger = fleet.trigger("2026-01-01").await;
    trigger.issue_seq = Some(CheckSeq::from(p.check_seq.get() + 7));
    let worker = fleet.worker("w1");
    worker.record_dead_end(&trigger, "panicked").await;
    assert_eq!(
        fleet.count(PartitionState::Pending).await,
        1,
        "a superseded copy"
    );
    trigger.issue_seq = Some(p.check_seq);
    worker.record_dead_end(&trigger, "panicked").await;
    assert_eq!(fleet.count(PartitionState::DeadLettered).await, 1);
    fleet.stop().await;
}
