//! The worker against the real broker, a SQLite ledger and the simulator over HTTP.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_broker::{AmqpUrl, Lane};
use backfill_contract::{Attempt, PartitionMessage, Step};
use backfill_ledger::PartitionState;
use backfill_worker::Handled;
use support::chaos_proxy::ChaosProxy;
use support::fleet::{Fleet, fast_sim};

fn trigger(fleet: &Fleet, date: &str, manifest: &str) -> PartitionMessage {
    PartitionMessage::new(
        fleet.backfill_id.clone(),
        date.parse().unwrap(),
        Attempt::FIRST,
        manifest,
        Step::Trigger,
    )
}

#[tokio::test]
async fn duplicate_trigger_messages_start_exactly_one_run() {
    let mut fleet = Fleet::new(1, 5, fast_sim()).await;
    let manifest = fleet.manifest_id().await;
    for _ in 0..6 {
        let msg = trigger(&fleet, "2026-01-01", &manifest);
        fleet.publish_raw(Lane::Trigger, &msg.encode()).await;
    }
    fleet.start_worker("w1", None);
    fleet.start_worker("w2", None);
    fleet.wait_all_succeeded(Duration::from_secs(30)).await;
    fleet.assert_one_run_per_partition();
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "claimed").count(), 1);
    assert_eq!(events.iter().filter(|e| e.kind == "succeeded").count(), 1);
    fleet.stop().await;
}

#[tokio::test]
async fn two_workers_handed_the_same_message_at_once_trigger_once() {
    let fleet = Fleet::new(1, 5, fast_sim()).await;
    let manifest = fleet.manifest_id().await;
    let body = trigger(&fleet, "2026-01-01", &manifest).encode();
    let (w1, w2) = (fleet.worker("w1"), fleet.worker("w2"));
    let publisher = fleet.broker.publisher();
    let (a, b) = tokio::join!(
        w1.process(&publisher, Lane::Trigger, &body),
        w2.process(&publisher, Lane::Trigger, &body)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let triggered = outcomes
        .iter()
        .filter(|h| matches!(h, Handled::Triggered { .. }))
        .count();
    assert_eq!(triggered, 1, "{outcomes:?}");
    assert_eq!(fleet.sim.sim.stats().runs_created, 1);
    let p = fleet.first_partition().await;
    assert_eq!(p.state, PartitionState::Running);
    fleet.stop().await;
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_with_reasons_and_the_worker_carries_on() {
    let mut fleet = Fleet::new(1, 5, fast_sim()).await;
    let manifest = fleet.manifest_id().await;
    let mut unknown_version: serde_json::Value =
        serde_json::from_slice(&trigger(&fleet, "2026-01-01", &manifest).encode()).unwrap();
    unknown_version["schema_version"] = 99.into();
    let mut unknown_partition = trigger(&fleet, "2026-01-01", &manifest);
    unknown_partition.backfill_id = "no-such-backfill".parse().unwrap();
    let poison: Vec<(Vec<u8>, &str)> = vec![
        (b"\x00\xffgarbage".to_vec(), "not JSON"),
        (
            serde_json::to_vec(&unknown_version).unwrap(),
            "unknown schema_version 99",
        ),
        (vec![b' '; 100_000], "over the"),
        (
            br#"{"schema_version": 1, "backfill_id": "x"}"#.to_vec(),
            "missing field",
        ),
        (unknown_partition.encode(), "no such backfill partition"),
    ];
    for (body, _) in &poison {
        fleet.publish_raw(Lane::Trigger, body).await;
    }
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    fleet.wait_all_succeeded(Duration::from_secs(30)).await;
    let mut reasons = Vec::new();
    let dlq = fleet.topology.dead_letter_queue();
    while reasons.len() < poison.len() {
        let d = support::eventually("dead-lettered poison", Duration::from_secs(10), || async {
            fleet.broker.get(&dlq).await.unwrap()
        })
        .await;
        let h = d.headers();
        assert_eq!(h.get("x-backfill-reason"), Some("invalid_message"));
        reasons.push(h.get("x-backfill-error").unwrap_or_default().to_owned());
    }
    for (_, expected) in &poison {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "no reason mentions {expected:?}: {reasons:?}"
        );
    }
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
}

#[tokio::test]
async fn workers_survive_severed_broker_connections_without_loss_or_duplicates() {
    let mut fleet = Fleet::new(20, 10, fast_sim()).await;
    let proxy = ChaosProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let via_proxy = AmqpUrl::new(format!("amqp://guest:guest@{}/%2f", proxy.addr)).unwrap();
    fleet.publish_all().await;
    fleet.start_worker("w1", Some(via_proxy.clone()));
    fleet.start_worker("w2", Some(via_proxy));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        proxy.sever();
    }
    fleet.ends_with_one_run_each(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn the_concurrency_cap_holds_while_a_backlog_drains() {
    let mut fleet = Fleet::new(12, 3, fast_sim()).await;
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    fleet.start_worker("w2", None);
    let mut peak = 0;
    let total = i64::from(fleet.days);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while fleet.count(PartitionState::Succeeded).await < total {
        assert!(
            std::time::Instant::now() < deadline,
            "backlog did not drain in 60 s"
        );
        peak = peak.max(fleet.ledger.active_runs(&fleet.backfill_id).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peak <= 3, "{peak} runs active with a cap of 3");
    assert!(peak >= 2, "the cap was never used ({peak})");
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
}

fn scripted(outcomes: &[(&str, &[backfill_simulator::Outcome])]) -> backfill_simulator::SimConfig {
    let mut sim = fast_sim();
    for (date, script) in outcomes {
        sim.outcomes.insert((*date).to_owned(), script.to_vec());
    }
    sim
}

#[tokio::test]
async fn each_termination_class_ends_as_its_policy_says() {
    use backfill_simulator::Outcome::*;
    let sim = scripted(&[
        ("2026-01-01", &[CloudFailure]),
        ("2026-01-02", &[PlatformFailure, Skipped]),
        ("2026-01-03", &[TaskFailed]),
        ("2026-01-04", &[TaskFailed, TaskFailed]),
        ("2026-01-05", &[Unauthorized]),
        ("2026-01-06", &[UserCanceled]),
        ("2026-01-07", &[TimedOut]),
    ]);
    let mut fleet = Fleet::new(8, 8, sim).await;
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    fleet.start_worker("w2", None);
    let settled = support::eventually(
        "every partition settled",
        Duration::from_secs(60),
        || async {
            let ps = fleet.ledger.partitions(&fleet.backfill_id).await.unwrap();
            ps.iter().all(|p| p.state.is_terminal()).then_some(ps)
        },
    )
    .await;
    let by_date = |d: &str| {
        settled
            .iter()
            .find(|p| p.date.to_string() == d)
            .unwrap()
            .clone()
    };
    // (date, final state, final attempt, runs started at Databricks)
    let expected = [
        ("2026-01-01", PartitionState::Succeeded, 2, 1 + 1),
        ("2026-01-02", PartitionState::Succeeded, 3, 2 + 1),
        ("2026-01-03", PartitionState::Succeeded, 2, 1 + 1),
        ("2026-01-04", PartitionState::DeadLettered, 2, 2),
        ("2026-01-05", PartitionState::DeadLettered, 1, 1),
        ("2026-01-06", PartitionState::DeadLettered, 1, 1),
        ("2026-01-07", PartitionState::DeadLettered, 1, 1),
        ("2026-01-08", PartitionState::Succeeded, 1, 1),
    ];
    let stats = fleet.sim.sim.stats();
    for (date, state, attempt, runs) in expected {
        let p = by_date(date);
        assert_eq!(
            (p.state, p.attempt.get()),
            (state, attempt),
            "{date}: {:?}",
            p.last_error
        );
        assert_eq!(
            stats.runs_per_partition.get(date).copied(),
            Some(runs),
            "{date}: runs at Databricks"
        );
    }
    assert!(
        by_date("2026-01-05")
            .last_error
            .unwrap()
            .contains("UNAUTHORIZED_ERROR")
    );
    assert!(
        by_date("2026-01-06")
            .last_error
            .unwrap()
            .contains("never retried")
    );

    // Each dead-lettered partition is in the DLQ once, with its run's details.
    let dlq = fleet.topology.dead_letter_queue();
    let mut dead = std::collections::BTreeMap::new();
    while let Some(d) = fleet.broker.get(&dlq).await.unwrap() {
        let h = d.headers();
        assert_eq!(h.get("x-backfill-reason"), Some("run_failed"));
        assert!(
            h.get("x-backfill-run-id").is_some() && h.get("x-backfill-run-url").is_some(),
            "{h:?}"
        );
        let date = h.get("x-backfill-partition").unwrap().to_owned();
        assert_eq!(
            h.get("x-backfill-attempt"),
            Some(by_date(&date).attempt.to_string().as_str())
        );
        *dead.entry(date).or_insert(0) += 1;
    }
    assert_eq!(
        dead.keys().map(String::as_str).collect::<Vec<_>>(),
        ["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"]
    );
    assert!(dead.values().all(|n| *n == 1), "{dead:?}");
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "retry_scheduled")
            .count(),
        5
    );
    fleet.stop().await;
}

fn long_runs() -> backfill_simulator::SimConfig {
    backfill_simulator::SimConfig {
        pending_ms: 100,
        running_ms: 2_500,
        ..fast_sim()
    }
}

#[tokio::test]
async fn a_duplicated_check_dies_instead_of_growing_a_second_chain() {
    let fleet = Fleet::new(1, 5, long_runs()).await;
    let manifest = fleet.manifest_id().await;
    let worker = fleet.worker("w1");
    let publisher = fleet.broker.publisher();
    let Handled::Triggered { run_id } = worker
        .process(
            &publisher,
            Lane::Trigger,
            &trigger(&fleet, "2026-01-01", &manifest).encode(),
        )
        .await
        .unwrap()
    else {
        panic!("not triggered");
    };
    let p = fleet.first_partition().await;
    let check = PartitionMessage::new(
        fleet.backfill_id.clone(),
        p.date,
        p.attempt,
        manifest,
        Step::Check {
            run_id,
            check_seq: p.check_seq,
        },
    );
    let (first, duplicate) = (
        worker
            .process(&publisher, Lane::Check, &check.encode())
            .await
            .unwrap(),
        worker
            .process(&publisher, Lane::Check, &check.encode())
            .await
            .unwrap(),
    );
    assert!(matches!(first, Handled::StillRunning { .. }), "{first:?}");
    assert_eq!(duplicate, Handled::Dropped("superseded check".into()));
    fleet.stop().await;
}

#[tokio::test]
async fn a_lost_check_is_reissued_by_the_sweep() {
    let mut fleet = Fleet::new(1, 5, long_runs()).await;
    let manifest = fleet.manifest_id().await;
    let publisher = fleet.broker.publisher();
    let worker = fleet.worker("crashing");
    worker
        .process(
            &publisher,
            Lane::Trigger,
            &trigger(&fleet, "2026-01-01", &manifest).encode(),
        )
        .await
        .unwrap();
    // A worker hands the chain on and dies before publishing the next check: the check
    // already queued is now superseded and nothing else would look at the run.
    let p = fleet.first_partition().await;
    fleet
        .ledger
        .advance_check(&p.key(), p.attempt, p.check_seq, backfill_ledger::now_ms())
        .await
        .unwrap()
        .unwrap();
    fleet.start_worker("w1", None);
    fleet.wait_all_succeeded(Duration::from_secs(30)).await;
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "checks_restarted"),
        "the sweep re-issued the check"
    );
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
}

#[tokio::test]
async fn a_cancelled_backfill_cancels_its_waiting_partitions_and_starts_nothing() {
    let mut fleet = Fleet::new(5, 5, fast_sim()).await;
    fleet.publish_all().await;
    fleet
        .ledger
        .set_backfill_state(
            &fleet.backfill_id,
            backfill_ledger::BackfillState::Cancelled,
            "op",
            "wrong range",
        )
        .await
        .unwrap();
    fleet.start_worker("w1", None);
    support::eventually(
        "every partition cancelled",
        Duration::from_secs(20),
        || async { (fleet.count(PartitionState::Cancelled).await == 5).then_some(()) },
    )
    .await;
    assert_eq!(fleet.sim.sim.stats().runs_created, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_outage_is_waited_out_with_nothing_lost_or_duplicated() {
    let proxy = ChaosProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct = support::postgres_url().await;
    let via_proxy = direct.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let sim = backfill_simulator::SimConfig {
        running_ms: 800,
        ..fast_sim()
    };
    let mut fleet = Fleet::build(20, 10, sim, &support::amqp_url(), &via_proxy).await;
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    fleet.start_worker("w2", None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let done_before = fleet.count(PartitionState::Succeeded).await;
    assert!(
        done_before < 20,
        "the outage must come mid-backfill ({done_before} done)"
    );
    proxy.take_down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    fleet.ends_with_one_run_each(Duration::from_secs(90)).await;
}

/// The trigger messages of partitions waiting at the cap ask again at a pace set by the
/// cap, not by how many wait: 396 waiting at a cap of 4 with a 200 ms admission delay
/// would ask about 2,000 times a second if each asked every 200 ms (as many as the worker
/// can handle: some hundreds); paced, about 80 (`4 * cap / delay`), and half that in the
/// first round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_waiting_at_the_cap_ask_at_the_caps_pace_not_the_backlogs() {
    let sim = backfill_simulator::SimConfig {
        pending_ms: 0,
        running_ms: 120_000,
        ..backfill_simulator::SimConfig::default()
    };
    let mut fleet = Fleet::new(400, 4, sim).await;
    let metrics = std::sync::Arc::new(backfill_metrics::Metrics::new(
        "worker",
        &[backfill_metrics::Group::Worker],
    ));
    let worker = std::sync::Arc::new(
        backfill_worker::Worker::new(
            support::fleet::test_worker_config("paced"),
            fleet.ledger.clone(),
            fleet.client.clone(),
        )
        .with_metrics(metrics.clone()),
    );
    fleet.publish_all().await;
    fleet.start_built(worker);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fleet.count(PartitionState::Running).await < 4 {
        assert!(std::time::Instant::now() < deadline, "the cap never filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at_cap = || {
        support::scrape::Scrape::parse(&metrics.encode())
            .sum("backfill_messages_delayed_total", &[("reason", "at_cap")])
    };
    // Every waiting trigger meets the full cap once (a slow machine takes longer; the
    // pace is measured after).
    let before = support::eventually(
        "every waiting trigger met the cap",
        Duration::from_secs(30),
        || async {
            let n = at_cap();
            (n >= 396.0).then_some(n)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let rate = (at_cap() - before) / 4.0;
    assert!(rate < 200.0, "{rate:.1} claims a second at the cap");
    assert!(rate > 0.0, "nobody asked for a slot in 4 s");
    assert_eq!(
        fleet.ledger.active_runs(&fleet.backfill_id).await.unwrap(),
        4
    );
    fleet.stop().await;
}
