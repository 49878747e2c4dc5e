//! Credentials and settings are checked before any work is touched (issue 14 point 8):
//! a worker whose token the workspace refuses exits 2 naming the setting and
//! dead-letters nothing; no made-up token is ever sent to a host that is not this
//! machine; a process left without `LEDGER_URL` names the ledger it uses.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_simulator::SimConfig;
use support::fleet::fast_sim;
use support::process::{run, text};
use support::process_fleet::ProcessFleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_worker_before_it_touches_a_message() {
    let sim = SimConfig {
        token: Some("the-right-token".into()),
        ..fast_sim()
    };
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), sim).await;
    fleet.set_env("DATABRICKS_TOKEN", "the-right-token");
    fleet.produce(3, 3);
    fleet.set_env("DATABRICKS_TOKEN", "a-wrong-token");
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking({
            let env = fleet.env.clone();
            move || run(&env, &["worker"])
        }),
    )
    .await
    .expect("the worker exits instead of working")
    .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let why = text(&refused.stderr);
    assert!(why.contains("DATABRICKS_TOKEN"), "{why}");
    assert!(
        !why.contains("a-wrong-token"),
        "the token is never printed: {why}"
    );
    assert_eq!(fleet.status()["states"]["pending"], 3, "nothing touched");
    let dlq = run(&fleet.env, &["dlq", "list", "--json"]);
    assert_eq!(text(&dlq.stdout).trim(), "[]", "nothing dead-lettered");
    assert_eq!(fleet.sim.sim.stats().runs_created, 0);

    fleet.set_env("DATABRICKS_TOKEN", "the-right-token");
    fleet.spawn_worker();
    fleet.wait_succeeded(3, Duration::from_secs(60)).await;
    fleet.teardown().await;
}

#[test]
fn no_default_token_goes_to_a_remote_workspace() {
    let env = vec![
        ("LEDGER_URL", support::sqlite_url()),
        (
            "DATABRICKS_HOST",
            "https://adb-123.cloud.databricks.com".to_owned(),
        ),
    ];
    let out = run(&env, &["reconcile", "--backfill-id", "x", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--databricks-token / DATABRICKS_TOKEN is required"));
}

#[test]
fn a_process_without_ledger_url_says_which_ledger_it_uses() {
    let dir = std::env::temp_dir().join(format!("bf-cwd-{}", support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = support::process::backfill(&[])
        .env_remove("LEDGER_URL")
        .current_dir(&dir)
        .args(["status", "--backfill-id", "none"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("no --ledger-url / LEDGER_URL given"), "{err}");
    assert!(
        err.contains(&dir.join("backfill.db").display().to_string()),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
