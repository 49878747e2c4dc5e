//! Operator commands on a running fleet of worker processes (PostgreSQL, the real broker,
//! the simulator over HTTP): pause, resume, cancel.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_simulator::{Outcome, SimConfig};
use support::process::{run, text};
use support::process_fleet::{ProcessFleet, timed_sim};

/// A process fleet (see [`timed_sim`]) whose runs of `dates` fail as unauthorized.
async fn unauthorized_on<D: AsRef<str>>(
    dates: &[D],
    pending_ms: u64,
    running_ms: u64,
) -> ProcessFleet {
    let outcomes = dates
        .iter()
        .map(|d| (d.as_ref().to_owned(), vec![Outcome::Unauthorized]))
        .collect();
    let sim = SimConfig {
        outcomes,
        ..timed_sim(pending_ms, running_ms)
    };
    ProcessFleet::new(&support::amqp_url_string(), sim).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_triggers_while_running_runs_finish_and_resume_releases_them() {
    let mut fleet = ProcessFleet::timed(100, 1_500).await;
    fleet.produce(12, 3);
    fleet.spawn_worker();
    support::eventually("runs started", Duration::from_secs(20), || async {
        (fleet.sim.sim.stats().runs_created >= 3).then_some(())
    })
    .await;
    let paused = run(
        &fleet.env,
        &["pause", "--backfill-id", "fleet", "--reason", "maintenance"],
    );
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let at_pause = fleet.sim.sim.stats().runs_created;
    // The runs already started finish; nothing new starts while paused.
    support::eventually("running runs finished", Duration::from_secs(20), || async {
        let s = fleet.status();
        (s["states"]["running"] == 0 && s["states"]["triggering"] == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fleet.sim.sim.stats().runs_created,
        at_pause,
        "no run started while paused"
    );
    assert_eq!(fleet.status()["state"], "paused");
    let resumed = run(&fleet.env, &["resume", "--backfill-id", "fleet"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    fleet.wait_succeeded(12, Duration::from_secs(90)).await;
    fleet.assert_one_run_per_partition(12);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_cancels_only_this_backfills_runs_one_by_one() {
    let mut fleet = ProcessFleet::timed(100, 4_000).await;
    fleet.produce_as("doomed", 6, 3);
    fleet.produce_as("kept", 3, 3);
    fleet.spawn_worker();
    fleet.spawn_worker();
    support::eventually(
        "both backfills running",
        Duration::from_secs(30),
        || async {
            let (d, k) = (fleet.status_of("doomed"), fleet.status_of("kept"));
            (d["states"]["running"].as_i64().unwrap() >= 2
                && k["states"]["running"].as_i64().unwrap() >= 2)
                .then_some(())
        },
    )
    .await;
    let refused = run(&fleet.env, &["cancel", "--backfill-id", "doomed"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "cancel needs --yes: {}",
        text(&refused.stderr)
    );
    let out = run(
        &fleet.env,
        &[
            "cancel",
            "--backfill-id",
            "doomed",
            "--yes",
            "--reason",
            "wrong range",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cancelled_runs = fleet.sim.sim.stats().cancels;
    assert!(
        cancelled_runs >= 2,
        "the doomed backfill's active runs were cancelled ({cancelled_runs})"
    );
    let doomed = fleet.status_of("doomed");
    assert_eq!(doomed["states"]["cancelled"], 6, "{doomed}");
    // The other backfill on the same job is untouched and finishes.
    support::eventually(
        "the kept backfill finishes",
        Duration::from_secs(60),
        || async { (fleet.status_of("kept")["states"]["succeeded"] == 3).then_some(()) },
    )
    .await;
    assert_eq!(
        fleet.sim.sim.stats().cancels,
        cancelled_runs,
        "no run of the kept backfill was cancelled"
    );
    assert_eq!(
        fleet.status_of("doomed")["states"]["cancelled"],
        6,
        "cancelled partitions stay cancelled"
    );
    // Repeating the cancel is harmless.
    assert!(
        run(&fleet.env, &["cancel", "--backfill-id", "doomed", "--yes"])
            .status
            .success()
    );
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_three_dead_lettered_partitions_leads_to_their_success_and_an_empty_dlq() {
    let mut fleet = unauthorized_on(&["2026-01-02", "2026-01-04", "2026-01-05"], 100, 200).await;
    fleet.produce(6, 6);
    fleet.spawn_worker();
    support::eventually("three dead-lettered", Duration::from_secs(30), || async {
        let s = fleet.status();
        (s["states"]["dead_lettered"] == 3 && s["states"]["succeeded"] == 3).then_some(())
    })
    .await;
    let listed = run(&fleet.env, &["dlq", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| e["reason"] == "run_failed"
        && e["error"].as_str().unwrap().contains("UNAUTHORIZED_ERROR")
        && e["run_url"].is_string()));
    // Listing leaves the queue as it was; replay needs a confirmation.
    assert_eq!(
        run(&fleet.env, &["dlq", "replay", "--all"]).status.code(),
        Some(2)
    );
    let replayed = run(
        &fleet.env,
        &[
            "dlq",
            "replay",
            "--all",
            "--yes",
            "--reason-note",
            "permissions fixed",
        ],
    );
    assert!(replayed.status.success(), "{}", text(&replayed.stderr));
    assert!(
        text(&replayed.stdout).contains("replayed 3, skipped 0"),
        "{}",
        text(&replayed.stdout)
    );
    fleet.wait_succeeded(6, Duration::from_secs(60)).await;
    let after = run(&fleet.env, &["dlq", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&after.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0,
        "the DLQ is empty"
    );
    assert_eq!(
        fleet.sim.sim.stats().runs_per_partition["2026-01-02"],
        2,
        "attempt 2 ran once"
    );
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_is_recorded_in_the_audit_trail() {
    let mut fleet = unauthorized_on(&["2026-01-01"], 100, 200).await;
    fleet.produce(1, 1);
    fleet.spawn_worker();
    support::eventually("dead-lettered", Duration::from_secs(30), || async {
        (fleet.status()["states"]["dead_lettered"] == 1).then_some(())
    })
    .await;
    let purged = run(
        &fleet.env,
        &[
            "dlq",
            "purge",
            "--backfill-id",
            "fleet",
            "--yes",
            "--by",
            "carol",
            "--reason-note",
            "superseded",
        ],
    );
    assert!(purged.status.success(), "{}", text(&purged.stderr));
    assert!(text(&purged.stdout).contains("purged 1"));
    let audit = run(&fleet.env, &["audit", "--backfill-id", "fleet"]);
    let doc: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let event = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "dlq_purged")
        .expect("a dlq_purged event");
    assert_eq!(event["actor"], "carol");
    assert!(event["detail"].as_str().unwrap().contains("superseded"));
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_below_projected_spend_holds_triggers_and_raising_it_releases_them() {
    let mut fleet = ProcessFleet::timed(100, 900).await;
    // Runs of about a second at 3600 per run-hour cost about 1 each: with a budget of 3.5
    // the fourth run would take the projection past it.
    fleet.produce_with(
        "fleet",
        6,
        &[
            "--concurrency-cap",
            "1",
            "--price-per-run-hour",
            "3600",
            "--budget",
            "3.5",
        ],
    );
    fleet.spawn_worker();
    support::eventually(
        "three runs done and the fourth held",
        Duration::from_secs(40),
        || async {
            let s = fleet.status();
            let held = s["guard"].as_str().is_some_and(|g| g.contains("budget"));
            (s["states"]["succeeded"] == 3 && held).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fleet.sim.sim.stats().runs_created,
        3,
        "no run started over the budget"
    );
    let raised = run(
        &fleet.env,
        &["guards", "--backfill-id", "fleet", "--budget", "100"],
    );
    assert!(raised.status.success(), "{}", text(&raised.stderr));
    fleet.wait_succeeded(6, Duration::from_secs(60)).await;
    let spend = fleet.status()["spend"].as_f64().unwrap();
    assert!(
        spend > 5.0 && spend < 8.0,
        "six runs of about a second at 3600 per hour: {spend}"
    );
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_production_run_holds_triggers_until_it_ends() {
    use backfill_databricks::models::{ListRuns, RunNowRequest};
    let mut fleet = ProcessFleet::timed(100, 3_000).await;
    let client = backfill_databricks::DatabricksClient::new(
        backfill_databricks::ClientConfig::new(fleet.sim.url(), "t"),
    )
    .unwrap();
    let production = client
        .create_job(
            &serde_json::json!({"name": "usage-daily-production", "max_concurrent_runs": 1}),
        )
        .await
        .unwrap();
    let prod_run = client
        .run_now(&RunNowRequest {
            job_id: production,
            job_parameters: Default::default(),
            idempotency_token: Some("prod-today".into()),
        })
        .await
        .unwrap()
        .run_id;
    let production_job = production.to_string();
    fleet.produce_with("fleet", 3, &["--production-job-id", &production_job]);
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(60)).await;
    let prod_end = client.get_run(prod_run).await.unwrap().end_time.unwrap();
    let backfill_runs = client
        .list_runs(
            &ListRuns {
                job_id: Some(1),
                ..ListRuns::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(backfill_runs.len(), 3);
    for r in backfill_runs {
        assert!(
            r.start_time.unwrap() >= prod_end,
            "run {} started at {:?}, before production ended at {prod_end}",
            r.run_id,
            r.start_time
        );
    }
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_dlq_replay_midway_loses_nothing() {
    use std::io::{BufRead, BufReader};
    const N: u32 = 60;
    let dates: Vec<String> = (0..N)
        .map(|i| {
            (chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(i)))
                .to_string()
        })
        .collect();
    let mut fleet = unauthorized_on(&dates, 50, 100).await;
    fleet.produce(N, 60);
    fleet.spawn_worker();
    support::eventually("all dead-lettered", Duration::from_secs(60), || async {
        (fleet.status()["states"]["dead_lettered"] == i64::from(N)).then_some(())
    })
    .await;
    // Kill the replay (SIGKILL) once it has replayed ten messages.
    let mut replay = support::process::backfill(&fleet.env)
        .args(["dlq", "replay", "--all", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(replay.stderr.take().unwrap());
    let mut replayed_before_kill = 0;
    for line in stderr.lines() {
        if line.unwrap().contains("queued") {
            replayed_before_kill += 1;
            if replayed_before_kill == 10 {
                replay.kill().unwrap();
                break;
            }
        }
    }
    replay.wait().unwrap();
    assert_eq!(replayed_before_kill, 10);
    // Every partition is either on its way (a new attempt) or still dead-lettered with its
    // message back in the DLQ.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listed = run(&fleet.env, &["dlq", "list", "--json"]);
    let in_dlq = serde_json::from_slice::<serde_json::Value>(&listed.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    let s = fleet.status();
    let still_dead = s["states"]["dead_lettered"].as_i64().unwrap() as usize;
    assert!(
        in_dlq >= still_dead,
        "{still_dead} dead-lettered partitions but only {in_dlq} messages in the DLQ"
    );
    assert!(
        still_dead < N as usize,
        "the replay had replayed some before it was killed"
    );
    // Finishing the replay brings every partition home (the script fails only first runs).
    let finished = run(&fleet.env, &["dlq", "replay", "--all", "--yes"]);
    assert!(finished.status.success(), "{}", text(&finished.stderr));
    fleet
        .wait_succeeded(i64::from(N), Duration::from_secs(90))
        .await;
    fleet.teardown().await;
}
