//! The next run starts as soon as one ends: a slot freed at a full cap is handed to a
//! waiting trigger at once, and while a backfill has no history of run lengths, the end
//! of one run has the runs started with it looked at. Against the real broker, a SQLite
//! ledger and the simulator over HTTP; timings chosen so that without either mechanism
//! the backfill could not finish within the test's limit.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backfill_broker::Lane;
use backfill_ledger::{PartitionState, now_ms};
use backfill_metrics::{Group, Metrics};
use backfill_worker::Handled;
use backfill_worker::policy::{RunHistory, check_phase, next_check_in};
use backfill_worker::{PollPolicy, Worker};
use support::fleet::{Fleet, fast_sim, test_worker_config};
use support::scrape::Scrape;

fn worker_with_metrics(
    fleet: &Fleet,
    config: backfill_worker::WorkerConfig,
) -> (Arc<Worker>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("worker", &[Group::Worker]));
    let worker = Worker::new(config, fleet.ledger.clone(), fleet.client.clone())
        .with_metrics(metrics.clone());
    (Arc::new(worker), metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_freed_at_the_cap_is_handed_to_a_waiting_trigger_at_once() {
    let sim = backfill_simulator::SimConfig {
        running_ms: 300,
        ..fast_sim()
    };
    let mut fleet = Fleet::new(4, 1, sim).await;
    let mut config = test_worker_config("waker");
    // A trigger at the full cap asks again after six minutes at the soonest: only a
    // woken trigger can take a freed slot within the test.
    config.admission_delay = Duration::from_secs(3600);
    let (worker, metrics) = worker_with_metrics(&fleet, config);
    fleet.publish_all().await;
    fleet.start_built(worker);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak = 0;
    while fleet.count(PartitionState::Succeeded).await < 4 {
        assert!(
            Instant::now() < deadline,
            "the backlog did not drain in 60 s"
        );
        peak = peak.max(fleet.ledger.active_runs(&fleet.backfill_id).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(peak, 1, "runs active at once under a cap of 1");
    fleet.assert_one_run_per_partition();
    let scrape = Scrape::parse(&metrics.encode());
    assert_eq!(scrape.sum("backfill_triggers_woken_total", &[]), 3.0);
    assert!(scrape.sum("backfill_messages_delayed_total", &[("reason", "at_cap")]) >= 3.0);
    // Each woken trigger superseded its partition's waiting one: nothing else claimed.
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "claimed").count(), 4);
    fleet.stop().await;
}

/// Three runs of one length started together, and a polling policy without history
/// whose looks are a hundred times apart: one of them is seen ending soon, another
/// (alone) only more than 20 s later. The first end seen has the others looked at at
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_one_run_has_the_runs_started_with_it_looked_at() {
    let poll = PollPolicy {
        first: Duration::from_millis(200),
        age_fraction: 99.0,
        max: Duration::from_secs(3600),
        min_history: 1000,
        ..PollPolicy::default()
    };
    // When each of the three partitions (2026-01-01 to 03) would see its run's end alone.
    let seen = |run: Duration, day: u32| {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, day).unwrap();
        let mut age = poll.first;
        while age < run {
            age += next_check_in(age, &poll, RunHistory::default(), check_phase(date));
        }
        age
    };
    let run = (10..60u64)
        .map(|tenths| Duration::from_millis(tenths * 100))
        .find(|run| {
            let ages: Vec<Duration> = (1..=3).map(|d| seen(*run, d)).collect();
            let first = ages.iter().min().unwrap();
            *first < *run + Duration::from_secs(1)
                && ages
                    .iter()
                    .filter(|a| **a > *run + Duration::from_secs(30))
                    .count()
                    >= 1
        })
        .expect("a run length one phase sees at once and another only after 30 s");
    let sim = backfill_simulator::SimConfig {
        pending_ms: 0,
        running_ms: run.as_millis() as u64,
        ..fast_sim()
    };
    let mut fleet = Fleet::new(3, 3, sim).await;
    let mut config = test_worker_config("siblings");
    config.poll = poll;
    let (worker, _) = worker_with_metrics(&fleet, config);
    fleet.publish_all().await;
    fleet.start_built(worker);
    fleet.wait_all_succeeded(Duration::from_secs(15)).await;
    fleet.assert_one_run_per_partition();
    let partitions = fleet.ledger.partitions(&fleet.backfill_id).await.unwrap();
    for p in &partitions {
        let late = p.updated_at_ms - p.run_ended_ms.unwrap();
        assert!(late < 10_000, "{}: seen {late} ms after its end", p.date);
    }
    fleet.stop().await;
}

/// A trigger sent round at the cap carries its row's sequence; once a freed slot wakes
/// the partition, that copy dies on arrival, and the woken one claims.
#[tokio::test]
async fn a_trigger_sent_round_at_the_cap_dies_once_a_woken_one_replaces_it() {
    let sim = backfill_simulator::SimConfig {
        running_ms: 60_000,
        ..fast_sim()
    };
    let fleet = Fleet::new(2, 1, sim).await;
    let worker = fleet.worker("w1");
    let publisher = fleet.broker.publisher();
    let first = fleet.trigger("2026-01-01").await;
    let handled = worker
        .process(&publisher, Lane::Trigger, &first.encode())
        .await
        .unwrap();
    assert!(matches!(handled, Handled::Triggered { .. }), "{handled:?}");
    let second = fleet.trigger("2026-01-02").await;
    let handled = worker
        .process(&publisher, Lane::Trigger, &second.encode())
        .await
        .unwrap();
    assert!(matches!(handled, Handled::Delayed(_)), "{handled:?}");
    let key = backfill_ledger::PartitionKey::new(fleet.backfill_id.clone(), second.partition_date);
    let waiting = fleet.ledger.partition(&key).await.unwrap().unwrap();
    assert!(
        waiting.check_due_ms.unwrap() > now_ms(),
        "its due time is recorded"
    );
    let woken = fleet
        .ledger
        .wake_waiting_trigger(&fleet.backfill_id, now_ms())
        .await
        .unwrap()
        .expect("the trigger at the cap is woken");
    assert_eq!(woken.issue_seq, waiting.check_seq.next());
    let mut copy = second.clone();
    copy.issue_seq = Some(waiting.check_seq);
    let handled = worker
        .process(&publisher, Lane::Trigger, &copy.encode())
        .await
        .unwrap();
    assert!(
        matches!(&handled, Handled::Dropped(why) if why.starts_with("superseded trigger")),
        "{handled:?}"
    );
    let mut fresh = second.clone();
    fresh.issue_seq = Some(woken.issue_seq);
    let handled = worker
        .process(&publisher, Lane::Trigger, &fresh.encode())
        .await
        .unwrap();
    // The cap is still full: the woken trigger waits again, the cap holds.
    assert!(matches!(handled, Handled::Delayed(_)), "{handled:?}");
    assert_eq!(
        fleet.ledger.active_runs(&fleet.backfill_id).await.unwrap(),
        1
    );
    fleet.stop().await;
}
