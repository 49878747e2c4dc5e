//! The Jobs API client against the simulator over real HTTP: every fault the notes list,
//! each test asserting what the client does about it.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backfill_databricks::models::{ListRuns, RepairRequest, Run, RunNowRequest, RunNowResponse};
use backfill_databricks::{
    ClientConfig, DatabricksClient, FailureClass, RequestRetry, RunOutcome, classify,
};
use backfill_simulator::{FaultKind, FaultRule, JobSpec, Outcome, SimConfig, SimHandle, Simulator};

fn rule(endpoint: &str, kind: FaultKind, times: u64) -> FaultRule {
    FaultRule {
        endpoint: endpoint.into(),
        kind,
        partition: None,
        times: Some(times),
        probability: None,
        retry_after_s: 1,
        delay_ms: 1_500,
    }
}

async fn sim(config: SimConfig) -> (SimHandle, DatabricksClient) {
    let sim = Simulator::spawn(config).await.unwrap();
    let mut c = ClientConfig::new(sim.url(), "dapi-test-secret");
    c.timeout = Duration::from_millis(800);
    c.retry = RequestRetry {
        max_tries: 4,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(3),
    };
    let client = DatabricksClient::new(c).unwrap();
    (sim, client)
}

fn fast() -> SimConfig {
    SimConfig {
        pending_ms: 50,
        running_ms: 150,
        ..SimConfig::default()
    }
}

/// [`fast`] with one setting changed.
fn fast_with(change: impl FnOnce(&mut SimConfig)) -> SimConfig {
    let mut config = fast();
    change(&mut config);
    config
}

/// [`fast`] with one fault injected `times` times.
fn with_fault(endpoint: &str, kind: FaultKind, times: u64) -> SimConfig {
    let faults = vec![rule(endpoint, kind, times)];
    SimConfig { faults, ..fast() }
}

/// Starts a run of job 1 for `date` under an idempotency token.
async fn start(client: &DatabricksClient, date: &str, token: &str) -> RunNowResponse {
    client.run_now(&run_now(date, Some(token))).await.unwrap()
}

fn run_now(date: &str, token: Option<&str>) -> RunNowRequest {
    RunNowRequest {
        job_id: 1,
        job_parameters: BTreeMap::from([("partition_date".to_owned(), date.to_owned())]),
        idempotency_token: token.map(str::to_owned),
    }
}

async fn wait_terminal(client: &DatabricksClient, run_id: i64) -> (Run, Vec<RunOutcome>) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = client.get_run(run_id).await.unwrap();
        let outcome = classify(&run);
        let done = !matches!(outcome, RunOutcome::InProgress { .. });
        seen.push(outcome);
        if done {
            return (run, seen);
        }
        assert!(Instant::now() < deadline, "run {run_id} never ended");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn a_response_lost_after_run_now_acted_is_retried_into_the_same_run() {
    let (sim, client) = sim(with_fault("jobs/run-now", FaultKind::LostResponse, 1)).await;
    let first = start(&client, "2026-01-01", "bf-x-20260101-a1").await;
    let again = start(&client, "2026-01-01", "bf-x-20260101-a1").await;
    assert_eq!(first.run_id, again.run_id);
    let stats = sim.sim.stats();
    assert_eq!(stats.runs_created, 1, "{stats:?}");
    assert_eq!(stats.faults.get("LostResponse"), Some(&1));
    assert_eq!(stats.calls["jobs/run-now"], 3, "lost, retried, repeated");
}

#[tokio::test]
async fn run_now_without_a_token_is_never_retried() {
    let (sim, client) = sim(with_fault("jobs/run-now", FaultKind::LostResponse, 1)).await;
    let err = client
        .run_now(&run_now("2026-01-01", None))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert!(
        err.to_string()
            .contains("HTML error page: 504 Gateway Time-out"),
        "{err}"
    );
    assert_eq!(sim.sim.stats().calls["jobs/run-now"], 1);
    assert_eq!(
        sim.sim.stats().runs_created,
        1,
        "the server acted although the answer was lost"
    );
}

#[tokio::test]
async fn a_slow_response_times_out_and_the_retry_returns_the_same_run() {
    let (sim, client) = sim(with_fault("jobs/run-now", FaultKind::Slow, 1)).await;
    let run = start(&client, "2026-01-01", "tok-slow").await;
    // The slow request still acts later, with the same token: no second run.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let stats = sim.sim.stats();
    assert_eq!(stats.runs_created, 1, "{stats:?}");
    assert_eq!(stats.idempotent_replays, 1);
    assert_eq!(client.get_run(run.run_id).await.unwrap().run_id, run.run_id);
}

#[tokio::test]
async fn throttling_waits_at_least_retry_after() {
    let (sim, client) = sim(with_fault("jobs/get", FaultKind::Throttle, 2)).await;
    let started = Instant::now();
    client.get_job(1).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited only {:?} after two Retry-After: 1",
        started.elapsed()
    );
    assert_eq!(sim.sim.stats().throttled["jobs/get"], 2);
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_and_never_overflows() {
    for asked in [3_600, u64::MAX / 1_000] {
        let mut throttle = rule("jobs/get", FaultKind::Throttle, 1);
        throttle.retry_after_s = asked;
        let sim = Simulator::spawn(SimConfig {
            faults: vec![throttle],
            ..fast()
        })
        .await
        .unwrap();
        let mut c = ClientConfig::new(sim.url(), "dapi-test-secret");
        c.retry.max_tries = 1;
        let client = DatabricksClient::new(c).unwrap();
        let err = client.get_job(1).await.unwrap_err();
        assert!(err.is_throttled(), "{err}");
        assert_eq!(
            err.retry_after(),
            Some(backfill_databricks::MAX_RETRY_AFTER),
            "asked {asked}"
        );
    }
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off_and_succeeds() {
    let (sim, client) = sim(with_fault("jobs/get", FaultKind::ThrottleNoRetryAfter, 2)).await;
    client.get_job(1).await.unwrap();
    assert_eq!(sim.sim.stats().calls["jobs/get"], 3);
}

#[tokio::test]
async fn unavailable_internal_errors_and_html_pages_are_retried() {
    let faults = vec![
        rule("jobs/get", FaultKind::Unavailable, 1),
        rule("jobs/get", FaultKind::Internal, 1),
        rule("jobs/get", FaultKind::Html, 1),
    ];
    let (sim, client) = sim(SimConfig { faults, ..fast() }).await;
    let job = client.get_job(1).await.unwrap();
    assert_eq!(job.settings.max_concurrent_runs, Some(1000));
    assert_eq!(sim.sim.stats().calls["jobs/get"], 4);
}

#[tokio::test]
async fn gives_up_after_its_budget_with_a_readable_error() {
    let (sim, client) = sim(with_fault("jobs/get", FaultKind::Internal, 100)).await;
    let err = client.get_job(1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Databricks jobs/get: HTTP 500 INTERNAL_ERROR: Internal error"
    );
    assert_eq!(sim.sim.stats().calls["jobs/get"], 4, "max_tries");
}

#[tokio::test]
async fn rate_limits_throttle_and_the_client_stays_under_them() {
    let limits = BTreeMap::from([("jobs/runs/get".to_owned(), 5.0)]);
    let (sim, client) = sim(fast_with(|c| c.rate_limits = limits)).await;
    let run = start(&client, "2026-01-01", "t").await;
    let started = Instant::now();
    for _ in 0..12 {
        client.get_run(run.run_id).await.unwrap();
    }
    let stats = sim.sim.stats();
    assert!(
        stats.throttled.get("jobs/runs/get").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    // 5 at once, then 5 per second: 12 successful reads take at least 1.4 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1_300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn not_found_runs_and_jobs_are_recognised() {
    let (_sim, client) = sim(fast()).await;
    let err = client.get_run(424_242).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!err.is_retryable());
    assert!(client.get_job(77).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn runs_expire_and_are_then_not_found() {
    let (_sim, client) = sim(fast_with(|c| c.run_expiry_s = 1)).await;
    let run = start(&client, "2026-01-01", "t").await;
    client.get_run(run.run_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(client.get_run(run.run_id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn an_unknown_lifecycle_state_is_polled_on_until_the_run_ends() {
    let config = SimConfig {
        running_ms: 600,
        unknown_state_partitions: vec!["2026-01-01".into()],
        ..fast()
    };
    let (_sim, client) = sim(config).await;
    let run = start(&client, "2026-01-01", "t").await;
    let (_, seen) = wait_terminal(&client, run.run_id).await;
    assert!(
        seen.iter()
            .any(|o| matches!(o, RunOutcome::InProgress { known: false, .. })),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&RunOutcome::Succeeded));
}

#[tokio::test]
async fn every_terminal_shape_is_classified_as_the_table_says() {
    let cases = [
        ("2026-01-01", Outcome::Success, None),
        (
            "2026-01-02",
            Outcome::TaskFailed,
            Some(FailureClass::UserCode),
        ),
        (
            "2026-01-03",
            Outcome::PlatformFailure,
            Some(FailureClass::Transient),
        ),
        (
            "2026-01-04",
            Outcome::CloudFailure,
            Some(FailureClass::Transient),
        ),
        (
            "2026-01-05",
            Outcome::UserCanceled,
            Some(FailureClass::Cancelled),
        ),
        (
            "2026-01-06",
            Outcome::TimedOut,
            Some(FailureClass::Cancelled),
        ),
        (
            "2026-01-07",
            Outcome::Skipped,
            Some(FailureClass::Transient),
        ),
        (
            "2026-01-08",
            Outcome::Unauthorized,
            Some(FailureClass::Configuration),
        ),
    ];
    let outcomes = cases
        .iter()
        .map(|(d, o, _)| ((*d).to_owned(), vec![*o]))
        .collect();
    let (_sim, client) = sim(SimConfig { outcomes, ..fast() }).await;
    for (date, _, want) in cases {
        let run = client.run_now(&run_now(date, Some(date))).await.unwrap();
        let (run, seen) = wait_terminal(&client, run.run_id).await;
        assert!(
            run.ended_at().is_some(),
            "{date}: end_time set once terminal"
        );
        match (seen.last().unwrap(), want) {
            (RunOutcome::Succeeded, None) => {}
            (RunOutcome::Failed(f), Some(class)) => assert_eq!(f.class, class, "{date}"),
            (other, want) => panic!("{date}: {other:?}, wanted {want:?}"),
        }
    }
}

#[tokio::test]
async fn job_concurrency_queues_with_queueing_on_and_skips_with_it_off() {
    let jobs = vec![
        JobSpec {
            job_id: 1,
            name: "queued".into(),
            max_concurrent_runs: 1,
            queue: true,
            output: Default::default(),
            task: None,
            parameters: Default::default(),
        },
        JobSpec {
            job_id: 2,
            name: "skipping".into(),
            max_concurrent_runs: 1,
            queue: false,
            output: Default::default(),
            task: None,
            parameters: Default::default(),
        },
    ];
    let (sim, client) = sim(SimConfig { jobs, ..fast() }).await;
    let a = start(&client, "2026-01-01", "a").await;
    let b = start(&client, "2026-01-02", "b").await;
    let queued = client.get_run(b.run_id).await.unwrap();
    assert_eq!(queued.status.unwrap().state.unwrap().as_str(), "QUEUED");
    assert_eq!(
        wait_terminal(&client, a.run_id).await.1.last(),
        Some(&RunOutcome::Succeeded)
    );
    assert_eq!(
        wait_terminal(&client, b.run_id).await.1.last(),
        Some(&RunOutcome::Succeeded)
    );
    let mut skip = run_now("2026-01-03", Some("c"));
    skip.job_id = 2;
    client.run_now(&skip).await.unwrap();
    let mut skipped = run_now("2026-01-04", Some("d"));
    skipped.job_id = 2;
    let d = client.run_now(&skipped).await.unwrap();
    let run = client.get_run(d.run_id).await.unwrap();
    assert_eq!(
        run.state
            .as_ref()
            .unwrap()
            .life_cycle_state
            .as_ref()
            .unwrap()
            .as_str(),
        "SKIPPED"
    );
    assert!(matches!(classify(&run), RunOutcome::Failed(f) if f.class == FailureClass::Transient));
    assert_eq!(
        sim.sim.stats().max_active[&1],
        1,
        "never more than the job's cap"
    );
}

#[tokio::test]
async fn the_workspace_run_limit_ends_extra_runs() {
    let (_sim, client) = sim(SimConfig {
        workspace_run_limit: 1,
        running_ms: 2_000,
        ..fast()
    })
    .await;
    start(&client, "2026-01-01", "a").await;
    let b = start(&client, "2026-01-02", "b").await;
    let run = client.get_run(b.run_id).await.unwrap();
    match classify(&run) {
        RunOutcome::Failed(f) => assert_eq!(
            (f.code.as_str(), f.class),
            ("WORKSPACE_RUN_LIMIT_EXCEEDED", FailureClass::Transient)
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn data_quality_metrics_come_from_the_task_run_not_the_multi_task_parent() {
    let metrics = BTreeMap::from([(
        "2026-01-01".to_owned(),
        BTreeMap::from([("duplicate_keys".to_owned(), serde_json::json!(12))]),
    )]);
    let (_sim, client) = sim(SimConfig {
        tasks_per_run: 2,
        metrics,
        ..fast()
    })
    .await;
    let started = start(&client, "2026-01-01", "t").await;
    let (run, _) = wait_terminal(&client, started.run_id).await;
    assert_eq!(run.tasks.len(), 2);
    assert_eq!(
        (run.setup_duration, run.execution_duration),
        (Some(0), Some(0)),
        "0 for multi-task runs"
    );
    let err = client.get_run_output(run.run_id).await.unwrap_err();
    assert!(err.to_string().contains("multiple tasks"), "{err}");
    let task = run.tasks.last().unwrap().run_id.unwrap();
    let output = client.get_run_output(task).await.unwrap();
    let result: serde_json::Value =
        serde_json::from_str(output.notebook_output.unwrap().result.as_deref().unwrap()).unwrap();
    assert_eq!(result["duplicate_keys"], 12);
    assert_eq!(result["partition_date"], "2026-01-01");
    assert!(result["row_count"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn runs_list_pages_newest_first() {
    let (_sim, client) = sim(fast()).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            client
                .run_now(&run_now(
                    &format!("2026-02-{:02}", i % 28 + 1),
                    Some(&format!("t{i}")),
                ))
                .await
                .unwrap()
                .run_id,
        );
    }
    let filter = ListRuns {
        job_id: Some(1),
        limit: Some(7),
        ..ListRuns::default()
    };
    let runs = client.list_runs(&filter, 1000).await.unwrap();
    let listed: Vec<i64> = runs.iter().map(|r| r.run_id).collect();
    ids.reverse();
    assert_eq!(listed, ids);
    let page = client
        .list_runs_page(
            &ListRuns {
                job_id: Some(99),
                ..ListRuns::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(page.runs.is_empty() && !page.has_more);
    let bad = client
        .list_runs_page(
            &ListRuns {
                limit: Some(26),
                ..ListRuns::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400));
}

#[tokio::test]
async fn cancel_is_asynchronous_and_harmless_on_a_terminal_run() {
    let (sim, client) = sim(SimConfig {
        running_ms: 5_000,
        terminating_ms: 300,
        ..fast()
    })
    .await;
    let run = start(&client, "2026-01-01", "t").await;
    client.cancel_run(run.run_id).await.unwrap();
    let right_after = client.get_run(run.run_id).await.unwrap();
    assert_eq!(
        right_after.status.unwrap().state.unwrap().as_str(),
        "TERMINATING"
    );
    let (ended, _) = wait_terminal(&client, run.run_id).await;
    assert!(
        matches!(classify(&ended), RunOutcome::Failed(f) if f.class == FailureClass::Cancelled && f.code == "USER_CANCELED")
    );
    client.cancel_run(run.run_id).await.unwrap();
    assert_eq!(sim.sim.stats().cancels, 1);
}

#[tokio::test]
async fn repair_reruns_a_failed_run_under_the_same_run_id() {
    let outcomes = BTreeMap::from([(
        "2026-01-01".to_owned(),
        vec![Outcome::TaskFailed, Outcome::TaskFailed],
    )]);
    let (sim, client) = sim(SimConfig { outcomes, ..fast() }).await;
    let run = start(&client, "2026-01-01", "t").await;
    let (failed, _) = wait_terminal(&client, run.run_id).await;
    assert!(
        matches!(classify(&failed), RunOutcome::Failed(f) if f.class == FailureClass::UserCode)
    );
    let request = |latest| RepairRequest {
        run_id: run.run_id,
        rerun_all_failed_tasks: Some(true),
        rerun_tasks: Vec::new(),
        latest_repair_id: latest,
        job_parameters: BTreeMap::from([("partition_date".to_owned(), "2026-01-01".to_owned())]),
    };
    client.repair_run(&request(None)).await.unwrap();
    assert!(wait_terminal(&client, run.run_id).await.0.status.is_some());
    let history = client.get_run_with_history(run.run_id).await.unwrap();
    let latest = history.latest_repair_id();
    assert!(latest.is_some(), "{:?}", history.repair_history);
    // A second repair must name the first.
    assert_eq!(
        client
            .repair_run(&request(None))
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    client.repair_run(&request(latest)).await.unwrap();
    let (repaired, _) = wait_terminal(&client, run.run_id).await;
    assert_eq!(classify(&repaired), RunOutcome::Succeeded);
    assert_eq!(sim.sim.stats().runs_created, 1);
    assert_eq!(sim.sim.stats().repairs, 2);
}

#[tokio::test]
async fn the_bearer_token_stays_secret() {
    let (_sim, client) = sim(fast_with(|c| c.token = Some("the-right-token".into()))).await;
    assert!(!format!("{client:?}").contains("dapi-test-secret"));
    let err = client.get_job(1).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.to_string().contains("dapi-test-secret"), "{err}");
    assert!(err.to_string().contains("PERMISSION_DENIED"), "{err}");
}

#[tokio::test]
async fn random_faults_are_reproducible_from_their_seed() {
    let random_rule = FaultRule {
        probability: Some(0.3),
        times: None,
        ..rule("jobs/get", FaultKind::Html, 0)
    };
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (sim, client) = sim(SimConfig {
            seed: 99,
            faults: vec![random_rule.clone()],
            ..fast()
        })
        .await;
        for _ in 0..20 {
            client.get_job(1).await.unwrap();
        }
        let stats = sim.sim.stats();
        seen.push((
            stats.calls["jobs/get"],
            stats.faults.get("Html").copied().unwrap_or(0),
        ));
    }
    assert_eq!(seen[0], seen[1], "same seed, same faults");
    assert!(seen[0].1 > 0, "some requests were hit: {seen:?}");
}

#[tokio::test]
async fn runs_get_follows_task_pages_of_api_2_2() {
    let (sim, client) = sim(fast_with(|c| c.tasks_per_run = 230)).await;
    let run = start(&client, "2026-01-01", "t").await;
    let full = client.get_run(run.run_id).await.unwrap();
    assert_eq!(full.tasks.len(), 230);
    let mut ids: Vec<i64> = full.tasks.iter().filter_map(|t| t.run_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 230, "every task once");
    assert_eq!(
        sim.sim.stats().calls["jobs/runs/get"],
        3,
        "three pages of at most 100"
    );
}
