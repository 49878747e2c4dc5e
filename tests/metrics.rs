//! The `/metrics` endpoint of a real worker process, scraped while it drives a backfill
//! through the simulator: the families move as partitions complete, retry and
//! dead-letter, and the queue depths come from the broker.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backfill_metrics::{Group, Metrics};
use backfill_simulator::{FaultKind, FaultRule, Outcome, SimConfig};
use support::process::terminate;
use support::process_fleet::{ProcessFleet, timed_sim};
use support::scrape::Scrape;

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_metrics_follow_completions_retries_and_dead_letters() {
    let outcomes = BTreeMap::from([
        // A platform failure: retried once, then fine.
        (
            "2026-01-03".to_owned(),
            vec![Outcome::PlatformFailure, Outcome::Success],
        ),
        // A permission problem: dead-lettered at once.
        ("2026-01-05".to_owned(), vec![Outcome::Unauthorized]),
    ]);
    let throttle = FaultRule {
        endpoint: "jobs/runs/get".into(),
        kind: FaultKind::Throttle,
        partition: None,
        times: Some(3),
        probability: None,
        retry_after_s: 1,
        delay_ms: 0,
    };
    let mut fleet = ProcessFleet::new(
        &support::amqp_url_string(),
        SimConfig {
            outcomes,
            faults: vec![throttle],
            ..timed_sim(100, 1500)
        },
    )
    .await;
    let addr = free_addr();
    fleet.set_env("METRICS_ADDR", &addr);
    fleet.set_env("WORKER_RETRY_BASE_S", "1");
    fleet.spawn_worker();

    support::eventually(
        "the worker to be ready",
        Duration::from_secs(30),
        || async {
            let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (before, _) = Scrape::take(&addr).await;
    assert_eq!(before.sum("backfill_runs_triggered_total", &[]), 0.0);
    assert_eq!(before.sum("backfill_broker_connected", &[]), 1.0);
    assert_eq!(
        before.sum("backfill_build_info", &[("role", "worker")]),
        1.0
    );

    fleet.produce(12, 4);
    let fleet_id = [("backfill", "fleet")];
    // During the run: the collector shows runs against the cap.
    let during = support::eventually("runs in flight", Duration::from_secs(60), || async {
        let (s, _) = Scrape::take(&addr).await;
        (s.sum("backfill_active_runs", &fleet_id) > 0.0).then_some(s)
    })
    .await;
    assert!(during.sum("backfill_active_runs", &fleet_id) <= 4.0);
    assert_eq!(during.sum("backfill_concurrency_cap", &fleet_id), 4.0);
    assert!(during.sum("backfill_runs_triggered_total", &fleet_id) >= 1.0);

    // To the end: 11 succeed, one is dead-lettered; the collector catches up.
    let (after, text) = support::eventually(
        "every partition settled",
        Duration::from_secs(120),
        || async {
            let (s, text) = Scrape::take(&addr).await;
            let done = s.sum(
                "backfill_partitions",
                &[("backfill", "fleet"), ("state", "succeeded")],
            );
            let dead = s.sum(
                "backfill_partitions",
                &[("backfill", "fleet"), ("state", "dead_lettered")],
            );
            let dlq = s.sum("backfill_queue_messages", &[("queue", "dlq")]);
            (done == 11.0 && dead == 1.0 && dlq == 1.0).then_some((s, text))
        },
    )
    .await;

    // Runs: twelve first attempts and one retry, every run-now answered.
    assert_eq!(after.sum("backfill_runs_triggered_total", &fleet_id), 13.0);
    assert_eq!(
        after.sum(
            "backfill_databricks_requests_total",
            &[("endpoint", "jobs/run-now"), ("code", "200")]
        ),
        13.0
    );
    let outcome = |result| after.sum("backfill_run_outcomes_total", &[("result", result)]);
    assert_eq!(outcome("succeeded"), 11.0);
    assert_eq!(outcome("retried"), 1.0);
    assert_eq!(outcome("dead_lettered"), 1.0);
    assert_eq!(
        after.sum(
            "backfill_run_outcomes_total",
            &[("result", "retried"), ("class", "transient")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        after.sum(
            "backfill_messages_dead_lettered_total",
            &[("lane", "check"), ("reason", "run_failed")]
        ),
        1.0
    );
    assert_eq!(
        after.sum(
            "backfill_messages_delayed_total",
            &[("lane", "trigger"), ("reason", "retry_backoff")]
        ),
        1.0
    );
    assert!(
        after.sum(
            "backfill_messages_delayed_total",
            &[("reason", "next_check")]
        ) >= 13.0
    );
    // Every message taken was acknowledged (none requeued in a clean run).
    let consumed = after.sum("backfill_messages_consumed_total", &[]);
    assert!(consumed >= 13.0 * 2.0, "{consumed}");
    assert_eq!(after.sum("backfill_messages_requeued_total", &[]), 0.0);
    // Throttling: the three scripted 429s were seen, counted and retried.
    assert_eq!(
        after.sum(
            "backfill_databricks_throttled_total",
            &[("endpoint", "jobs/runs/get")]
        ),
        3.0
    );
    assert!(
        after.sum(
            "backfill_databricks_request_retries_total",
            &[("endpoint", "jobs/runs/get")]
        ) >= 3.0
    );
    assert_eq!(
        after.sum("backfill_run_duration_seconds_count", &[]),
        13.0,
        "every terminal run observed once"
    );
    assert!(after.sum("backfill_run_duration_seconds_sum", &[]) >= 13.0 * 1.5);
    assert!(after.has("backfill_databricks_request_duration_seconds_bucket"));
    assert!(after.has("backfill_message_queue_wait_seconds_bucket"));
    assert_eq!(after.sum("backfill_partition_retries", &fleet_id), 1.0);
    assert_eq!(after.sum("backfill_ledger_up", &[]), 1.0);
    assert_eq!(after.sum("backfill_guard_held", &fleet_id), 0.0);
    // Bounded labels: no partition dates or run ids anywhere.
    assert!(
        !text.contains("2026-01-"),
        "a partition date leaked into a label"
    );
    assert!(!text.contains("run_id"), "a run id leaked into a label");

    // A sample for `promtool check metrics` in CI.
    let sample = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-sample.txt");
    std::fs::write(&sample, &text).unwrap();

    // Paused: the guard gauges say so.
    let out = support::process::run(
        &fleet.env,
        &[
            "pause",
            "--backfill-id",
            "fleet",
            "--reason",
            "metrics test",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        support::process::text(&out.stderr)
    );
    support::eventually(
        "the pause in the gauges",
        Duration::from_secs(20),
        || async {
            let (s, _) = Scrape::take(&addr).await;
            (s.sum("backfill_paused", &fleet_id) == 1.0
                && s.sum(
                    "backfill_guard_held",
                    &[("backfill", "fleet"), ("reason", "paused")],
                ) == 1.0)
                .then_some(())
        },
    )
    .await;

    for w in &mut fleet.workers {
        assert_eq!(terminate(w), Some(0));
    }
    fleet.workers.clear();
    fleet.teardown().await;
}

/// Every `backfill_*` name in the shipped dashboard and alert rules is one the fleet
/// exports (a renamed family would otherwise leave a silent, empty panel or an alert
/// that can never fire).
#[test]
fn dashboard_and_alerts_use_only_exported_metrics() {
    let all = Metrics::new(
        "all",
        &[
            Group::Worker,
            Group::Api,
            Group::Fleet,
            Group::Reconcile,
            Group::Sim,
        ],
    );
    // Families without samples print nothing: give each one a sample.
    let w = &all.worker;
    w.consumed("check");
    w.acked("check");
    w.requeued("check");
    w.delayed("check", "next_check");
    w.dead_lettered("check", "run_failed");
    w.triggered("b");
    w.run_outcome("succeeded", "none", "SUCCESS", "SUCCESS");
    w.run_times(Some(Duration::from_secs(1)), Some(Duration::from_secs(1)));
    w.message_wait("check", Duration::from_millis(5));
    all.api
        .request("jobs/runs/get", "200", Duration::from_millis(5));
    all.api.retry("jobs/runs/get");
    all.api.throttled("jobs/runs/get");
    all.fleet.record(&backfill_metrics::BackfillSnapshot {
        backfill: "b".into(),
        states: vec![("pending", 1)],
        budget: Some(1.0),
        eta_s: Some(1),
        dq_failing: vec![("rule".into(), 0)],
        actions: vec![("promote", "succeeded", 0)],
        ..Default::default()
    });
    all.queues.set("dlq", 0, 0);
    all.reconcile.pass("complete", 1);
    all.reconcile.set_gaps("b", &["missing"], &[]);
    all.sim.record(&backfill_metrics::SimSnapshot {
        calls: vec![("jobs/runs/get".into(), 1)],
        ..Default::default()
    });
    let families: BTreeSet<String> = all
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert!(families.len() > 30, "{families:?}");
    let exported = |name: &str| {
        families.contains(name)
            || ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| {
                    name.strip_suffix(suffix)
                        .is_some_and(|family| families.contains(family))
                })
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for file in [
        "deploy/grafana/dashboards/backfill.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("backfill_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            assert!(
                exported(&name),
                "{file} uses {name}, which no process exports"
            );
            checked += 1;
            rest = &rest[at + name.len()..];
        }
    }
    assert!(checked > 50, "only {checked} metric references found");
}
