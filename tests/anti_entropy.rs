//! The ledger is the truth, the broker a transport (invariant 9): whatever the broker
//! loses or dead-letters on its own, and whatever a misconfigured worker takes, the
//! fleet's own sweep re-issues from the ledger, with one run per partition and no
//! operator. And re-issuing has an end (invariant 11).

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_broker::Lane;
use backfill_ledger::PartitionState;
use support::fleet::{Fleet, fast_sim};
use support::process::{run, spawn, text};
use support::process_fleet::ProcessFleet;

/// Every trigger message of the fleet's backfill, taken off the queue and thrown away
/// (a broker that lost them).
async fn lose_every_trigger(fleet: &Fleet) -> usize {
    let queue = fleet.topology.work_queue(Lane::Trigger);
    let mut lost = 0;
    while let Some(d) = fleet.broker.get(&queue).await.unwrap() {
        d.ack().await.unwrap();
        lost += 1;
    }
    lost
}

#[tokio::test]
async fn triggers_the_broker_lost_are_reissued_from_the_ledger() {
    let mut fleet = Fleet::new(8, 4, fast_sim()).await;
    fleet.publish_all().await;
    assert_eq!(lose_every_trigger(&fleet).await, 8);
    fleet.start_worker("w1", None);
    fleet.start_worker("w2", None);
    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    fleet.assert_one_run_per_partition();
    let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
    let reissued = events
        .iter()
        .filter(|e| e.kind == "trigger_reissued")
        .count();
    assert_eq!(
        reissued, 8,
        "one re-issue per lost trigger, by one of two sweepers"
    );
    fleet.stop().await;
}

#[tokio::test]
async fn a_trigger_dead_lettered_on_the_delivery_limit_is_healed() {
    let mut fleet = Fleet::new(3, 3, fast_sim()).await;
    fleet.publish_all().await;
    // A crash-looping consumer: every delivery returned unacknowledged until the broker
    // dead-letters it on its delivery limit (x-death reason delivery_limit).
    let queue = fleet.topology.work_queue(Lane::Trigger);
    let dlq = fleet.topology.dead_letter_queue();
    support::eventually(
        "the broker to dead-letter every trigger",
        Duration::from_secs(60),
        || async {
            while let Some(d) = fleet.broker.get(&queue).await.unwrap() {
                d.requeue().await.unwrap();
            }
            (fleet.broker.queue_depth(&dlq).await.unwrap() == 3).then_some(())
        },
    )
    .await;
    let d = fleet.broker.get(&dlq).await.unwrap().unwrap();
    assert!(
        d.death_count("delivery_limit") > 0,
        "dead-lettered by the broker on its delivery limit"
    );
    d.requeue().await.unwrap();
    assert_eq!(
        fleet.count(PartitionState::Pending).await,
        3,
        "the ledger never heard"
    );

    fleet.start_worker("w1", None);
    fleet.ends_with_one_run_each(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_partition_whose_trigger_is_lost_again_and_again_ends_dead_lettered() {
    let mut fleet = Fleet::new(1, 1, fast_sim()).await;
    fleet.publish_all().await;
    let worker = {
        let mut config = support::fleet::test_worker_config("sweeper");
        config.max_trigger_reissues = 2;
        backfill_worker::Worker::new(config, fleet.ledger.clone(), fleet.client.clone())
    };
    let publisher = fleet.broker.publisher();
    // Nothing consumes: every re-issued trigger is lost again.
    let dead = support::eventually(
        "the partition to be dead-lettered",
        Duration::from_secs(60),
        || async {
            lose_every_trigger(&fleet).await;
            worker.sweep_overdue_triggers(&publisher).await.unwrap();
            (fleet.count(PartitionState::DeadLettered).await == 1).then_some(())
        },
    )
    .await;
    let () = dead;
    let p = fleet.first_partition().await;
    assert!(p.last_error.unwrap().contains("trigger lost 2 times"));
    let dlq = fleet.topology.dead_letter_queue();
    assert_eq!(
        fleet.broker.queue_depth(&dlq).await.unwrap(),
        1,
        "operators see it"
    );
    assert_eq!(fleet.sim.sim.stats().runs_created, 0);
    fleet.start_worker("w1", None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fleet.count(PartitionState::DeadLettered).await,
        1,
        "no re-issue after the end"
    );
    fleet.stop().await;
}

/// The reproduction of issue 14 point 1: a worker started without `LEDGER_URL` (its own
/// fresh SQLite file). Today it changes nothing: every message carries the ledger id of
/// its fleet, so the misconfigured worker puts each back undamaged, stops taking work and
/// reports not ready naming the setting; the fleet's own workers finish every partition
/// with one run each, with no operator command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_the_wrong_ledger_changes_nothing_and_says_so() {
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), fast_sim()).await;
    fleet.produce(10, 5);
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut wrong_env = fleet.env.clone();
    wrong_env.retain(|(k, _)| *k != "LEDGER_URL");
    wrong_env.push(("LEDGER_URL", support::sqlite_url()));
    wrong_env.push(("METRICS_ADDR", addr.clone()));
    let mut wrong = spawn(&wrong_env, &["worker", "--concurrency", "8"]);
    let why = support::eventually(
        "the misconfigured worker to report not ready",
        Duration::from_secs(30),
        || async {
            let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
            let status = r.status();
            let body = r.text().await.ok()?;
            (status == 503 && body.contains("misconfigured")).then_some(body)
        },
    )
    .await;
    assert!(why.contains("LEDGER_URL"), "{why}");
    assert!(
        wrong.try_wait().unwrap().is_none(),
        "it stays up, not ready"
    );
    tokio::time::sleep(Duration::from_secs(6)).await; // its deliveries go back
    let out = run(&fleet.env, &["dlq", "list", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]", "nothing dead-lettered");
    assert_eq!(
        fleet.status()["states"]["pending"],
        10,
        "{}",
        fleet.status()
    );
    assert_eq!(fleet.sim.sim.stats().runs_created, 0);

    fleet.spawn_worker();
    fleet.spawn_worker();
    fleet.wait_succeeded(10, Duration::from_secs(90)).await;
    fleet.assert_one_run_per_partition(10);
    let _ = wrong.kill();
    fleet.teardown().await;
}

/// Older messages carry no ledger id: a worker on the wrong ledger dead-letters them as
/// unknown, and the fleet's own sweep re-issues them from the right ledger.
#[tokio::test]
async fn unstamped_triggers_a_stranger_dead_lettered_are_reissued() {
    let mut fleet = Fleet::new(4, 4, fast_sim()).await;
    let stranger = {
        let ledger = support::ledger(&support::sqlite_url()).await;
        backfill_worker::Worker::new(
            support::fleet::test_worker_config("stranger"),
            ledger,
            fleet.client.clone(),
        )
    };
    let publisher = fleet.broker.publisher();
    for p in fleet.ledger.partitions(&fleet.backfill_id).await.unwrap() {
        fleet.ledger.mark_enqueued(&p.key()).await.unwrap();
        let msg = fleet.trigger(&p.date.to_string()).await;
        let handled = stranger
            .process(&publisher, Lane::Trigger, &msg.encode())
            .await
            .unwrap();
        assert!(
            matches!(handled, backfill_worker::Handled::Poisoned(_)),
            "{handled:?}"
        );
    }
    fleet.start_worker("w1", None);
    fleet.ends_with_one_run_each(Duration::from_secs(60)).await;
}

/// A message stamped by another ledger in a namespace whose backfills are in this
/// worker's ledger is the stray (a producer given another ledger), not a sign that the
/// worker is misconfigured: it is dead-lettered with the reason and the fleet carries on.
#[tokio::test]
async fn a_stray_message_from_another_ledger_is_dead_lettered_and_the_fleet_carries_on() {
    let mut fleet = Fleet::new(3, 3, fast_sim()).await;
    fleet.publish_all().await;
    let manifest = fleet.manifest_id().await;
    let mut stray = backfill_contract::PartitionMessage::new(
        "laptop-test".parse().unwrap(),
        "2026-01-01".parse().unwrap(),
        backfill_contract::Attempt::FIRST,
        manifest,
        backfill_contract::Step::Trigger,
    );
    stray.ledger_id = Some("0123456789abcdef0123456789abcdef".into());
    fleet.publish_raw(Lane::Trigger, &stray.encode()).await;
    fleet.start_worker("w1", None);
    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    let dlq = fleet.topology.dead_letter_queue();
    let d = support::eventually("the stray in the DLQ", Duration::from_secs(10), || async {
        fleet.broker.get(&dlq).await.unwrap()
    })
    .await;
    let headers = d.headers();
    assert!(
        headers
            .get("x-backfill-error")
            .unwrap()
            .contains("0123456789abcdef0123456789abcdef"),
        "{headers:?}"
    );
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
}

/// A backfill the ledger cannot read (its row corrupted by hand) does not stop the sweep:
/// the other backfills' lost triggers are still re-issued (invariant 9), and the
/// unreadable one's partition ends dead-lettered with the reason, without a run
/// (invariant 11).
#[tokio::test]
async fn an_unreadable_backfill_does_not_stop_the_sweep_for_the_others() {
    use backfill_producer::{Order, ProduceRequest, publish_pending, register};
    use sqlx::Connection;

    let mut fleet = Fleet::new(4, 4, fast_sim()).await;
    // Registered and published first, so its lost trigger is the first one overdue.
    let other: backfill_contract::BackfillId = format!("bf-{}", support::unique()).parse().unwrap();
    let day: backfill_contract::PartitionDate = "2026-02-01".parse().unwrap();
    let request = ProduceRequest {
        backfill_id: other.clone(),
        job_id: 1,
        start: day,
        end: day,
        params: std::collections::BTreeMap::new(),
        concurrency_cap: 1,
        order: Order::NewestFirst,
        created_by: "test".into(),
        contract: None,
    };
    register(&fleet.ledger, &fleet.client, &request)
        .await
        .unwrap();
    let publisher = fleet.broker.publisher();
    publish_pending(
        &fleet.ledger,
        &publisher,
        &other,
        Order::NewestFirst,
        |_, _| {},
    )
    .await
    .unwrap();
    fleet.publish_all().await;
    assert_eq!(lose_every_trigger(&fleet).await, 5);
    let mut conn = sqlx::AnyConnection::connect(&fleet.ledger_url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE backfills SET protected_windows = 'not a window' WHERE backfill_id = '{other}'"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(
        fleet.ledger.backfill(&other).await.is_err(),
        "the corrupted row does not read"
    );
    fleet.start_worker("w1", None);
    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    fleet.assert_one_run_per_partition();
    // Its own lost trigger is re-issued too, and the worker that cannot read its backfill
    // dead-letters it with the reason: an end, not a partition pending for ever.
    let ended = support::eventually(
        "the unreadable backfill's partition to end",
        Duration::from_secs(60),
        || async {
            let ps = fleet.ledger.partitions(&other).await.unwrap();
            (ps[0].state == PartitionState::DeadLettered).then(|| ps[0].clone())
        },
    )
    .await;
    let why = ended.last_error.unwrap_or_default();
    assert!(
        why.contains("not a window"),
        "the reason names the bad value: {why}"
    );
    assert_eq!(fleet.sim.sim.stats().runs_created, 4, "no run for it");
    fleet.stop().await;
}
