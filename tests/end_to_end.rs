//! The walking skeleton as users run it: `backfill produce`, two `backfill worker`
//! processes and `backfill reconcile --once`, against the simulator over HTTP, on each
//! ledger backend.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

/// The shipped data-quality policy, recorded in the backfill's contract at produce.
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/usage-daily.toml");

use std::time::Duration;

use backfill_simulator::Simulator;
use support::fleet::fast_sim;
use support::process::{run, spawn, terminate, text, words};

async fn thirty_partitions_through_the_whole_fleet(ledger_url: String) {
    let sim = Simulator::spawn(fast_sim()).await.unwrap();
    let (namespace, guard) = support::process_namespace(&support::amqp_url_string());
    let env = vec![
        ("AMQP_URL", support::amqp_url_string()),
        ("LEDGER_URL", ledger_url),
        ("BACKFILL_NAMESPACE", namespace.clone()),
        ("BACKFILL_DELAY_TIERS", support::TEST_TIERS.to_owned()),
        ("DATABRICKS_HOST", sim.url()),
        ("DATABRICKS_TOKEN", "e2e-secret-token".to_owned()),
    ];
    let mut produce = words(
        "produce --backfill-id e2e --job-id 1 --start 2026-01-01 --end 2026-01-30 \
         --code-version abc --pin dim_customers=812 --concurrency-cap 10 --dq-policy",
    );
    produce.push(POLICY);
    let produced = run(&env, &produce);
    assert!(
        produced.status.success(),
        "produce failed: {}",
        text(&produced.stderr)
    );
    assert!(
        text(&produced.stdout).contains("30 published"),
        "{}",
        text(&produced.stdout)
    );

    // Re-running the same request is a no-op.
    let again = run(&env, &produce);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("already registered (0 new partitions, 0 published"),
        "{}",
        text(&again.stdout)
    );

    let mut workers = vec![
        spawn(&env, &["worker", "--concurrency", "8"]),
        spawn(&env, &["worker", "--concurrency", "8"]),
    ];

    let status = support::eventually(
        "all 30 partitions succeeded",
        Duration::from_secs(90),
        || async {
            let out = run(&env, &["status", "--backfill-id", "e2e", "--json"]);
            assert!(out.status.success(), "status failed: {}", text(&out.stderr));
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("status --json is one JSON object");
            (v["states"]["succeeded"] == 30).then_some(v)
        },
    )
    .await;
    assert_eq!(status["backfill_id"], "e2e");
    assert_eq!(status["total"], 30);
    for key in [
        "pending",
        "running",
        "succeeded",
        "failed",
        "dead_lettered",
        "cancelled",
    ] {
        assert!(
            status["states"][key].is_i64(),
            "states.{key} missing: {status}"
        );
    }

    let reconciled = run(
        &env,
        &["reconcile", "--backfill-id", "e2e", "--once", "--json"],
    );
    assert!(
        reconciled.status.success(),
        "reconcile: {}{}",
        text(&reconciled.stdout),
        text(&reconciled.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&reconciled.stdout).unwrap();
    assert_eq!(report["complete"], true);
    assert_eq!(report["verified"], 30);

    for w in &mut workers {
        assert_eq!(
            terminate(w),
            Some(0),
            "a worker must drain and exit 0 on SIGTERM"
        );
    }
    let stats = sim.sim.stats();
    assert_eq!(stats.runs_per_partition.len(), 30);
    assert!(
        stats.runs_per_partition.values().all(|n| *n == 1),
        "duplicate runs: {:?}",
        stats.runs_per_partition
    );
    assert_eq!(stats.runs_created, 30);

    let verified = run(&env, &["status", "--backfill-id", "e2e", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(v["verified"], 30);

    // The manifest pins code and inputs; every run carried them (reconcile checked each
    // run's parameters against the backfill's).
    let audit = run(&env, &["audit", "--backfill-id", "e2e", "--format", "json"]);
    assert!(audit.status.success(), "{}", text(&audit.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(doc["manifest"]["code_version"], "abc");
    assert_eq!(doc["manifest"]["pinned_tables"]["dim_customers"], "812");
    assert_eq!(
        doc["manifest"]["created_by"].as_str().map(str::is_empty),
        Some(false)
    );
    assert!(!String::from_utf8_lossy(&audit.stdout).contains("e2e-secret-token"));

    // The reconciler gates on the shipped data-quality policy and promotes in waves; an
    // operator rolls one partition back; the audit trail has it all.
    // Repeating the recorded policy is fine; a different one would exit 2.
    let policy = POLICY;
    let promoted = run(
        &env,
        &[
            "reconcile",
            "--backfill-id",
            "e2e",
            "--once",
            "--dq-policy",
            policy,
            "--promote",
            "--wave-size",
            "10",
        ],
    );
    assert!(
        promoted.status.success(),
        "{}{}",
        text(&promoted.stdout),
        text(&promoted.stderr)
    );
    assert!(
        text(&promoted.stdout).contains("30 partition attempts promoted now in 3 runs"),
        "{}",
        text(&promoted.stdout)
    );
    let rollback = |date| {
        run(
            &env,
            &["rollback", "--backfill-id", "e2e", "--partition", date],
        )
    };
    let rolled = rollback("2026-01-05");
    assert!(rolled.status.success(), "{}", text(&rolled.stderr));
    assert!(
        text(&rolled.stdout).contains("succeeded"),
        "{}",
        text(&rolled.stdout)
    );
    let never = rollback("2025-01-05");
    assert_eq!(never.status.code(), Some(2), "{}", text(&never.stderr));
    let csv = run(&env, &["audit", "--backfill-id", "e2e", "--format", "csv"]);
    let csv = text(&csv.stdout);
    assert!(csv.starts_with("event_id,at_ms,actor,"), "{csv}");
    assert!(
        csv.lines().any(|l| l.contains(",dq_rule_passed,"))
            && csv.lines().any(|l| l.contains("rollback-2026-01-05")),
        "{csv}"
    );

    let topology = guard.topology();
    let broker = support::connect(topology).await;
    assert_eq!(
        broker
            .queue_depth(&topology.dead_letter_queue())
            .await
            .unwrap(),
        0
    );
    support::teardown(&broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_partitions_end_to_end_on_sqlite() {
    thirty_partitions_through_the_whole_fleet(support::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_partitions_end_to_end_on_postgres() {
    thirty_partitions_through_the_whole_fleet(support::postgres_url().await).await;
}
