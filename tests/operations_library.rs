//! The operations library in-process, against real parts: RabbitMQ on loopback, a SQLite
//! or PostgreSQL ledger, the simulator over HTTP and an in-process worker fleet. Status
//! counts and holds, the dead-letter queue's round trip, cancel, publishing that resumes
//! after a lost connection, and the metrics collector's snapshot.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_broker::{AmqpUrl, Destination, Headers, Lane};
use backfill_ledger::{BackfillState, HoldReason, PartitionState};
use backfill_metrics::{Group, Metrics};
use backfill_operations::cancel::cancel;
use backfill_operations::collector::{collect_ledger, snapshot};
use backfill_operations::dlq::{self, DlqActor, DlqFilter, Replayed};
use backfill_operations::guards::{GuardChange, change_guards};
use backfill_operations::pause::set_paused;
use backfill_operations::produce::{PublishProgress, publish_resuming};
use backfill_operations::status::status_report;
use backfill_operations::{BrokerSource, OperationError, Operator};
use backfill_simulator::{Outcome, SimConfig};
use support::chaos_proxy::ChaosProxy;
use support::fleet::{Fleet, fast_sim};
use support::scrape::Scrape;

const OPERATOR: Operator<'static> = Operator {
    by: "tester",
    reason: "testing",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_partitions_by_state_and_names_a_pause_on_both_ledgers() {
    for (backend, url) in support::ledger_urls().await {
        let fleet = Fleet::build(3, 2, fast_sim(), &support::amqp_url(), &url).await;
        let id = &fleet.backfill_id;
        let report = status_report(&fleet.ledger, id, 0.0).await.unwrap();
        assert_eq!(report.state, BackfillState::Active, "{backend}");
        assert_eq!(report.total, 3, "{backend}");
        assert_eq!(report.states.get(PartitionState::Pending), 3, "{backend}");
        assert_eq!(report.states.get(PartitionState::Running), 0, "{backend}");
        assert_eq!(report.held, None, "{backend}");
        assert_eq!(report.guard, None, "{backend}");

        assert!(set_paused(&fleet.ledger, id, true, OPERATOR).await.unwrap());
        assert!(
            !set_paused(&fleet.ledger, id, true, OPERATOR).await.unwrap(),
            "{backend}: a second pause changes nothing"
        );
        let report = status_report(&fleet.ledger, id, 0.0).await.unwrap();
        assert_eq!(report.state, BackfillState::Paused, "{backend}");
        assert_eq!(report.held, Some(HoldReason::Paused), "{backend}");
        assert_eq!(
            report.guard.as_deref(),
            Some("new runs held: backfill paused")
        );
        // The JSON keeps its words and key order: states by word, the hold as a word.
        let json = serde_json::to_string(&report).unwrap();
        let keys = [
            "\"backfill_id\"",
            "\"state\":\"paused\"",
            "\"states\":{\"cancelled\":0,\"dead_lettered\":0,\"failed\":0,\"pending\":3,\"running\":0,\"succeeded\":0,\"triggering\":0}",
            "\"guard\"",
            "\"held\":\"paused\"",
            "\"promotion\"",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| json.find(k).unwrap_or_else(|| panic!("{k} in {json}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");

        assert!(
            set_paused(&fleet.ledger, id, false, OPERATOR)
                .await
                .unwrap()
        );
        let report = status_report(&fleet.ledger, id, 0.0).await.unwrap();
        assert_eq!(report.held, None, "{backend}: resumed");

        let unknown = "never-registered".parse().unwrap();
        assert!(matches!(
            status_report(&fleet.ledger, &unknown, 0.0).await,
            Err(OperationError::UnknownBackfill(_))
        ));
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_holds_new_runs_until_it_is_raised() {
    let mut fleet = Fleet::new(3, 1, fast_sim()).await;
    let id = fleet.backfill_id.clone();
    let tight = GuardChange {
        price_per_run_hour: Some(1_000.0),
        budget: Some(0.000_1),
        ..GuardChange::default()
    };
    change_guards(&fleet.ledger, &id, &tight, "tester")
        .await
        .unwrap();
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    // The first run is let through (no run length known yet); once it has ended, the
    // projection is over the budget and the rest are held.
    let report = support::eventually("a budget hold", Duration::from_secs(30), || async {
        let r = status_report(&fleet.ledger, &id, 0.0).await.unwrap();
        (r.states.get(PartitionState::Succeeded) == 1 && r.held.is_some()).then_some(r)
    })
    .await;
    assert_eq!(report.held, Some(HoldReason::Budget));
    assert!(
        report.guard.as_deref().unwrap().contains("budget"),
        "{:?}",
        report.guard
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fleet.sim.sim.stats().runs_created,
        1,
        "held runs never start"
    );

    let raised = GuardChange {
        budget: Some(1.0e9),
        ..GuardChange::default()
    };
    let guards = change_guards(&fleet.ledger, &id, &raised, "tester")
        .await
        .unwrap();
    assert_eq!(
        guards.price_per_run_hour,
        Some(1_000.0),
        "unchanged values stay"
    );
    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    let report = status_report(&fleet.ledger, &id, 0.0).await.unwrap();
    assert_eq!(report.held, None);
    assert!(report.spend > 0.0);
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_queue_lists_replays_and_purges_without_losing_a_message() {
    let mut sim = fast_sim();
    sim.outcomes
        .insert("2026-01-01".to_owned(), vec![Outcome::Unauthorized]);
    let mut fleet = Fleet::new(2, 2, sim).await;
    let id = fleet.backfill_id.clone();
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    let dlq_name = fleet.topology.dead_letter_queue();
    let depth = || async { fleet.broker.queue_depth(&dlq_name).await.unwrap() };
    support::eventually("a dead letter", Duration::from_secs(30), || async {
        (fleet.count(PartitionState::DeadLettered).await == 1
            && fleet.count(PartitionState::Succeeded).await == 1
            && depth().await == 1)
            .then_some(())
    })
    .await;
    let junk = Headers::new()
        .with("x-backfill-reason", "invalid_message")
        .with("x-backfill-id", id.as_str());
    fleet
        .broker
        .publisher()
        .publish(Destination::DeadLetter, b"not json", "junk-1", &junk)
        .await
        .unwrap();
    support::eventually("both dead letters", Duration::from_secs(5), || async {
        (depth().await == 2).then_some(())
    })
    .await;

    // Listing puts every message back.
    let listing = dlq::list(&fleet.broker, &DlqFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!((listing.shown.len(), listing.looked_at), (2, 2));
    let failed = listing
        .shown
        .iter()
        .find(|e| e.partition.as_deref() == Some("2026-01-01"))
        .unwrap();
    assert_eq!(failed.backfill_id.as_deref(), Some(id.as_str()));
    let only_junk = DlqFilter {
        reason: Some("invalid_message".into()),
        ..DlqFilter::default()
    };
    let listing = dlq::list(&fleet.broker, &only_junk, 100).await.unwrap();
    assert_eq!(listing.shown.len(), 1);
    assert_eq!(listing.shown[0].id, "junk-1");
    // Put back by requeueing: the broker counts them ready again a moment later.
    support::eventually(
        "listing takes nothing away",
        Duration::from_secs(5),
        || async { (depth().await == 2).then_some(()) },
    )
    .await;
    let shown = dlq::show(&fleet.broker, "junk-1").await.unwrap().unwrap();
    assert_eq!(shown.body, "not json");
    assert!(dlq::show(&fleet.broker, "nope").await.unwrap().is_none());

    // Replaying both: the partition gets a new attempt, the junk stays with the reason.
    let actor = DlqActor {
        by: "tester",
        why: "fixed the token",
    };
    let mut steps = Vec::new();
    let totals = dlq::replay(
        &fleet.ledger,
        &fleet.broker,
        &DlqFilter {
            backfill_id: Some(id.clone()),
            ..DlqFilter::default()
        },
        100,
        &actor,
        |step| steps.push((step.entry.id.clone(), step.outcome.clone())),
    )
    .await
    .unwrap();
    assert_eq!((totals.replayed, totals.skipped), (1, 1), "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|(_, o)| *o == Replayed::Queued { attempt: 2 }),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|(i, o)| i == "junk-1"
            && matches!(o, Replayed::Skipped { why } if why.contains("not a valid partition message"))),
        "{steps:?}"
    );
    support::eventually(
        "the replayed partition",
        Duration::from_secs(30),
        || async { (fleet.count(PartitionState::Succeeded).await == 2).then_some(()) },
    )
    .await;
    assert_eq!(depth().await, 1, "only the junk is left");

    // Purging the junk: gone, and the audit trail says so.
    let purged = dlq::purge(&fleet.ledger, &fleet.broker, &only_junk, 100, &actor)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(depth().await, 0);
    let events = fleet.ledger.events(&id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "dlq_purged" && e.detail.contains("junk-1")),
        "{events:?}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_every_unfinished_partition_and_cancels_its_runs() {
    let sim = SimConfig {
        pending_ms: 50,
        running_ms: 60_000,
        ..SimConfig::default()
    };
    let mut fleet = Fleet::new(4, 2, sim).await;
    let id = fleet.backfill_id.clone();
    fleet.publish_all().await;
    fleet.start_worker("w1", None);
    support::eventually("two running runs", Duration::from_secs(20), || async {
        (fleet.count(PartitionState::Running).await == 2).then_some(())
    })
    .await;
    let mut heard = Vec::new();
    let outcome = cancel(&fleet.ledger, &fleet.client, &id, OPERATOR, |r| {
        heard.push(r.run_id)
    })
    .await
    .unwrap();
    assert_eq!(outcome.partitions, 4, "{outcome:?}");
    assert_eq!(outcome.runs, 2, "{outcome:?}");
    assert!(outcome.failures.is_empty(), "{outcome:?}");
    assert_eq!(heard.len(), 2);
    assert_eq!(fleet.count(PartitionState::Cancelled).await, 4);
    assert_eq!(fleet.sim.sim.stats().cancels, 2);
    let report = status_report(&fleet.ledger, &id, 0.0).await.unwrap();
    assert_eq!(report.state, BackfillState::Cancelled);
    assert_eq!(report.held, Some(HoldReason::Cancelled));
    // A cancelled backfill cannot be resumed.
    assert!(matches!(
        set_paused(&fleet.ledger, &id, false, OPERATOR).await,
        Err(OperationError::Refused(_))
    ));
    // Repeating it is harmless.
    let again = cancel(&fleet.ledger, &fleet.client, &id, OPERATOR, |_| {})
        .await
        .unwrap();
    assert_eq!(again.partitions, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_resumes_from_the_ledger_after_the_connection_is_cut() {
    // Publishing confirms 256 triggers at a time: the cut comes after the first chunk.
    let days = 600;
    let fleet = Fleet::new(days, 5, fast_sim()).await;
    let id = fleet.backfill_id.clone();
    let proxy = Arc::new(ChaosProxy::start("127.0.0.1:5672".parse().unwrap()).await);
    let source = BrokerSource {
        url: AmqpUrl::new(format!("amqp://guest:guest@{}/%2f", proxy.addr)).unwrap(),
        topology: fleet.topology.topology().clone(),
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let (cut, seen) = (proxy.clone(), events.clone());
    let published = publish_resuming(
        &fleet.ledger,
        &source,
        &id,
        backfill_producer::Order::NewestFirst,
        move |step| {
            let mut seen = seen.lock().unwrap();
            if step
                == (PublishProgress::Published {
                    done: 256,
                    total: 600,
                })
                && !seen.contains(&PublishProgress::Interrupted)
            {
                cut.sever();
            }
            seen.push(step);
        },
    )
    .await
    .unwrap();
    let events = events.lock().unwrap().clone();
    assert!(
        events.contains(&PublishProgress::Interrupted),
        "the cut was noticed: {events:?}"
    );
    assert_eq!(published, 600 - 256, "the rest, after the cut");
    // Every partition's trigger is confirmed in the ledger and on its queue.
    let partitions = fleet.ledger.partitions(&id).await.unwrap();
    assert!(partitions.iter().all(|p| p.enqueued), "{partitions:?}");
    let queue = fleet.topology.work_queue(Lane::Trigger);
    let depth = fleet.broker.queue_depth(&queue).await.unwrap();
    assert!(
        depth >= days,
        "{depth} triggers queued for {days} partitions"
    );
    // Nothing is left to publish.
    let again = publish_resuming(
        &fleet.ledger,
        &source,
        &id,
        backfill_producer::Order::NewestFirst,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_snapshot_copies_ledger_state_into_gauges() {
    let fleet = Fleet::new(3, 7, fast_sim()).await;
    let id = fleet.backfill_id.clone();
    let budget = GuardChange {
        budget: Some(42.0),
        ..GuardChange::default()
    };
    change_guards(&fleet.ledger, &id, &budget, "tester")
        .await
        .unwrap();
    set_paused(&fleet.ledger, &id, true, OPERATOR)
        .await
        .unwrap();
    let s = snapshot(&fleet.ledger, &id, 2.0).await.unwrap();
    assert_eq!(s.backfill, id.as_str());
    assert!(s.states.contains(&("pending", 3)), "{:?}", s.states);
    assert_eq!(s.states.len(), PartitionState::ALL.len());
    assert_eq!((s.active_runs, s.cap), (0, 7));
    assert!(s.paused);
    assert_eq!(s.held, Some("paused"));
    assert_eq!(s.budget, Some(42.0));
    assert_eq!(s.actions.len(), 8, "every kind and state: {:?}", s.actions);
    assert!(s.actions.iter().all(|(_, _, n)| *n == 0));

    let metrics = Metrics::new("test", &[Group::Fleet]);
    assert!(collect_ledger(&metrics, &fleet.ledger, 2.0).await);
    let scrape = Scrape::parse(&metrics.encode());
    let b = id.as_str();
    assert_eq!(
        scrape.sum(
            "backfill_partitions",
            &[("backfill", b), ("state", "pending")]
        ),
        3.0
    );
    assert_eq!(scrape.sum("backfill_paused", &[("backfill", b)]), 1.0);
    assert_eq!(
        scrape.sum(
            "backfill_guard_held",
            &[("backfill", b), ("reason", "paused")]
        ),
        1.0
    );
    set_paused(&fleet.ledger, &id, false, OPERATOR)
        .await
        .unwrap();
    assert!(collect_ledger(&metrics, &fleet.ledger, 2.0).await);
    let scrape = Scrape::parse(&metrics.encode());
    assert_eq!(scrape.sum("backfill_paused", &[("backfill", b)]), 0.0);
    fleet.stop().await;
}
