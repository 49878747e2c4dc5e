//! Every error has an end (invariant 11), with worker processes on PostgreSQL: a permanent
//! refusal is dead-lettered at once with its reason, an outage is retried only within the
//! outage budget, and the partitions not concerned finish with one run each.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_simulator::{FaultKind, FaultRule, SimConfig};
use support::fleet::fast_sim;
use support::process::run;
use support::process_fleet::ProcessFleet;

fn on_runs_get(kind: FaultKind, partition: &str) -> FaultRule {
    FaultRule {
        endpoint: "jobs/runs/get".into(),
        kind,
        partition: Some(partition.into()),
        times: None,
        probability: None,
        retry_after_s: 1,
        delay_ms: 0,
    }
}

fn dead_letters(fleet: &ProcessFleet) -> Vec<serde_json::Value> {
    let out = run(&fleet.env, &["dlq", "list", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap_or_default()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Runs a fleet of four partitions whose day 2 meets `fault` on every `runs/get`, with an
/// outage budget of `budget_s`, and checks that day 2 ends dead-lettered for `reason`
/// with `error` on record.
async fn ends_dead_lettered(fault: FaultKind, budget_s: &str, reason: &str, error: &str) {
    let sim = SimConfig {
        faults: vec![on_runs_get(fault, "2026-01-02")],
        ..fast_sim()
    };
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), sim).await;
    fleet.set_env("WORKER_OUTAGE_BUDGET_S", budget_s);
    // Longer than a request's own retries (about 6 s against a failing endpoint), as the
    // default 60 s is: the sweep does not replace a check that is still being handled.
    fleet.set_env("WORKER_CHECK_GRACE_S", "30");
    fleet.produce(4, 4);
    fleet.spawn_worker();
    support::eventually(
        "three successes and one dead letter",
        Duration::from_secs(90),
        || async {
            let s = fleet.status();
            (s["states"]["succeeded"] == 3 && s["states"]["dead_lettered"] == 1).then_some(())
        },
    )
    .await;
    let dead = dead_letters(&fleet);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["partition"], "2026-01-02");
    assert_eq!(dead[0]["reason"], reason, "{dead:?}");
    assert!(
        dead[0]["error"].as_str().unwrap().contains(error),
        "{dead:?}"
    );
    let audit = run(
        &fleet.env,
        &["audit", "--backfill-id", "fleet", "--format", "json"],
    );
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("dead_lettered") && audit.contains(error),
        "the ledger records the dead end with its reason: {audit}"
    );
    fleet.assert_one_run_per_partition(4);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_on_runs_get_is_dead_lettered_at_once_with_its_reason() {
    // A budget of an hour: the dead letter cannot come from the budget.
    ends_dead_lettered(
        FaultKind::BadRequest,
        "3600",
        "permanent_error",
        "INVALID_PARAMETER_VALUE",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_runs_get_ends_in_the_dlq_within_the_outage_budget() {
    // Refused credentials may be rotated: retried within the budget, then dead-lettered.
    ends_dead_lettered(
        FaultKind::Forbidden,
        "5",
        "outage_budget_spent",
        "PERMISSION_DENIED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_login_page_with_200_is_dead_lettered_not_looped() {
    ends_dead_lettered(
        FaultKind::LoginPage,
        "5",
        "outage_budget_spent",
        "unreadable response",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_budget_is_dead_lettered_with_the_last_error() {
    ends_dead_lettered(
        FaultKind::Internal,
        "5",
        "outage_budget_spent",
        "INTERNAL_ERROR",
    )
    .await;
}

/// A `Retry-After: 3600` against a broker whose `consumer_timeout` is 5 s: the answer is
/// capped (here at 6 s), the throttled check waits in the delay tiers rather than in a
/// delivery, the broker closes no channel, and every partition ends with one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_long_retry_after_is_never_waited_out_in_a_delivery() {
    let node = tokio::task::spawn_blocking(support::private_broker::PrivateBroker::start)
        .await
        .unwrap();
    node.set_consumer_timeout(5_000);
    let mut throttle = on_runs_get(FaultKind::Throttle, "2026-01-02");
    throttle.retry_after_s = 3_600;
    throttle.times = Some(2);
    let sim = SimConfig {
        faults: vec![throttle],
        ..fast_sim()
    };
    let mut fleet = ProcessFleet::new(&node.url(), sim).await;
    fleet.set_env("DATABRICKS_MAX_RETRY_AFTER_S", "6");
    fleet.produce(3, 3);
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(120)).await;
    fleet.assert_one_run_per_partition(3);
    assert_eq!(fleet.sim.sim.stats().throttled["jobs/runs/get"], 2);
    let log = std::fs::read_to_string(node.log_file()).unwrap_or_default();
    assert_eq!(
        log.matches("timed out waiting for delivery acknowledgement")
            .count(),
        0,
        "no delivery was held past the consumer timeout:\n{log}"
    );
    fleet.teardown().await;
}

#[test]
fn an_operator_clears_a_fleet_wide_pause() {
    let env = vec![("LEDGER_URL", support::sqlite_url())];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let until = backfill_ledger::now_ms() + 3_600_000;
    rt.block_on(async {
        let ledger = support::ledger(&env[0].1).await;
        ledger.pause_endpoint("jobs/runs/get", until).await.unwrap();
        ledger.close().await;
    });
    let shown = run(&env, &["throttle", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("jobs/runs/get paused"));
    let cleared = run(&env, &["throttle", "clear", "--endpoint", "jobs/runs/get"]);
    assert!(cleared.status.success());
    assert!(String::from_utf8_lossy(&cleared.stdout).starts_with("1 pauses cleared"));
    let shown = run(&env, &["throttle", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("no endpoint is paused"));
}

/// Issue 14 point 7: a 404 that is not the documented not-found (`ENDPOINT_NOT_FOUND`
/// from a proxy or a wrong path, for a while) says nothing about the run: the running
/// partition is not abandoned, it succeeds once the endpoint answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_endpoint_not_found_abandons_no_running_partition() {
    let mut missing = on_runs_get(FaultKind::EndpointNotFound, "2026-01-02");
    missing.times = Some(3);
    let sim = SimConfig {
        faults: vec![missing],
        ..fast_sim()
    };
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), sim).await;
    fleet.produce(3, 3);
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(60)).await;
    fleet.assert_one_run_per_partition(3);
    assert_eq!(fleet.sim.sim.stats().faults["EndpointNotFound"], 3);
    assert!(dead_letters(&fleet).is_empty());
    fleet.teardown().await;
}
