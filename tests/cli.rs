//! The command line as users meet it: exit codes, messages that name the problem, secrets
//! kept out of help and errors, the simulator command.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use support::process::{backfill, run, text, words};

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("LEDGER_URL", support::sqlite_url()),
        ("DATABRICKS_TOKEN", "dapi-very-secret-123".to_owned()),
    ]
}

#[test]
fn bad_usage_exits_2_naming_the_problem() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            words("produce --backfill-id x --job-id 1 --start 2026-13-01 --end 2026-01-02"),
            "--start",
        ),
        (
            words("produce --backfill-id x --job-id 1 --start 2026-01-05 --end 2026-01-02"),
            "--end",
        ),
        (
            [
                vec!["produce", "--backfill-id", "has space"],
                words("--job-id 1 --start 2026-01-01 --end 2026-01-02"),
            ]
            .concat(),
            "backfill id",
        ),
        (
            words(
                "produce --backfill-id x --job-id 1 --start 2026-01-01 --end 2026-01-02 --param novalue",
            ),
            "KEY=VALUE",
        ),
        (
            words("produce --backfill-id x --start 2026-01-01 --end 2026-01-02"),
            "--job-id",
        ),
        (
            vec!["status", "--backfill-id", "x", "--ledger-url", "mysql://db"],
            "--ledger-url",
        ),
        (vec!["worker", "--concurrency", "0"], "--concurrency"),
        (vec!["worker", "--namespace", "bad name!"], "--namespace"),
        (vec!["worker", "--delay-tiers", "5x"], "--delay-tiers"),
        (
            vec!["status", "--backfill-id", "never-registered"],
            "no backfill never-registered",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (
            vec!["sim", "--outcome", "2026-01-01=exploded"],
            "unknown outcome",
        ),
    ];
    for (args, expected) in cases {
        let out = run(&env(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} exited {:?}: {stderr}",
            out.status.code()
        );
        assert!(
            stderr.contains(expected),
            "{args:?}: stderr does not mention {expected:?}: {stderr}"
        );
    }
}

#[test]
fn secrets_never_show_in_help_or_errors() {
    let secret_env = vec![
        ("DATABRICKS_TOKEN", "dapi-very-secret-123".to_owned()),
        ("AMQP_URL", "amqp://bob:hunter2@127.0.0.1:1/%2f".to_owned()),
        ("LEDGER_URL", support::sqlite_url()),
    ];
    for args in [
        vec!["--help"],
        vec!["worker", "--help"],
        vec!["produce", "--help"],
    ] {
        let out = run(&secret_env, &args);
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success());
        assert!(
            !all.contains("dapi-very-secret-123") && !all.contains("hunter2"),
            "{args:?} leaked a secret"
        );
    }
    // An unreachable broker: a readable error, the password redacted.
    let out = run(
        &secret_env,
        &words(
            "produce --backfill-id x --job-id 1 --start 2026-01-01 --end 2026-01-01 --databricks-host http://127.0.0.1:1",
        ),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("dapi-very-secret-123"),
        "{stderr}"
    );
    assert!(stderr.contains("Databricks"), "{stderr}");
}

#[test]
fn a_malformed_broker_list_exits_2_naming_the_setting_and_the_entry() {
    let cases = [
        (
            "amqp://bob:hunter2@127.0.0.1:1/%2f,http://bob:hunter2@127.0.0.1:2/%2f",
            "entry 2 of 2 must start with amqp:// or amqps://",
        ),
        (
            "amqp://127.0.0.1:1/%2f,,amqp://127.0.0.1:2/%2f",
            "entry 2 of 3 is empty",
        ),
        (
            "amqp://bob:hunter2@127.0.0.1:x/%2f, amqp://127.0.0.1:2/%2f",
            "entry 1 of 2",
        ),
    ];
    for (setting, expected) in cases {
        for command in [&["worker"][..], &["topology", "show"], &["dlq", "list"]] {
            let mut env = env();
            env.push(("AMQP_URL", setting.to_owned()));
            let out = run(&env, command);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} {setting}: {stderr}"
            );
            assert!(
                stderr.contains("--amqp-url / AMQP_URL") && stderr.contains(expected),
                "{command:?} {setting}: {stderr}"
            );
            assert!(!stderr.contains("hunter2"), "{stderr}");
            assert!(!stderr.contains("/,amqp"), "{stderr}");
        }
    }
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let ledger = support::sqlite_url();
    let env = vec![("LEDGER_URL", ledger.clone())];
    let out = run(
        &env,
        &words(
            "produce --backfill-id plan --job-id 1 --start 2026-01-01 --end 2026-06-29 --dry-run",
        ),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("180 partitions"), "{stdout}");
    assert!(stdout.contains("1. 2026-06-29"), "newest first: {stdout}");
    let path = ledger.trim_start_matches("sqlite://");
    assert!(
        !std::path::Path::new(path).exists(),
        "dry run created the ledger"
    );
}

#[test]
fn sim_serves_job_1_over_http_until_terminated() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = backfill(&[])
        .args(["sim", "--addr", &addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let job: serde_json::Value = runtime.block_on(async {
        support::eventually(
            "the simulator to answer",
            Duration::from_secs(20),
            || async {
                let response = reqwest::Client::new()
                    .get(format!("http://{addr}/api/2.1/jobs/get?job_id=1"))
                    .bearer_auth("any")
                    .send()
                    .await
                    .ok()?;
                response.json().await.ok()
            },
        )
        .await
    });
    assert_eq!(
        job["job_id"], 1,
        "the first answer was the scripted HTML page, the next the job"
    );
    assert!(job["settings"]["max_concurrent_runs"].as_i64().unwrap() >= 1);
    assert_eq!(support::process::terminate(&mut child), Some(0));
}

#[test]
fn the_example_scenario_loads_and_bad_scenarios_are_named() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/rehearsal.toml"
    ))
    .unwrap();
    let config = backfill_simulator::SimConfig::from_toml(&example).unwrap();
    assert_eq!(config.jobs[0].max_concurrent_runs, 50);
    let ids: Vec<i64> = config.jobs.iter().map(|j| j.job_id).collect();
    assert_eq!(ids, [1, 2, 3], "a rehearsal can promote and roll back");
    assert_eq!(config.faults.len(), 3);
    assert_eq!(config.outcomes["2026-04-02"].len(), 2);
    assert_eq!(config.unknown_state_partitions, ["2026-01-09"]);
    assert_eq!(
        config.metrics["2026-02-11"].len(),
        1,
        "{:?}",
        config.metrics
    );
    let err = backfill_simulator::SimConfig::from_toml("runing_ms = 5").unwrap_err();
    assert!(err.contains("runing_ms"), "{err}");
    let bad = std::env::temp_dir().join(format!("bad-{}.toml", support::unique()));
    std::fs::write(&bad, "[[faults]]\nendpoint = \"x\"\nkind = \"explode\"\n").unwrap();
    let out = run(&[], &["sim", "--scenario", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--scenario") && text(&out.stderr).contains("explode"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_prints_makespan_cost_and_warnings() {
    let out = run(
        &[],
        &words(
            "plan --start 2026-01-01 --end 2026-06-29 --concurrency 2 --run-minutes 120 --price-per-run-hour 60 --budget 18000 --json",
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["waves"], 90);
    assert_eq!(plan["makespan_hours"], 180.0);
    assert_eq!(plan["cost"], 21600.0);
    assert_eq!(plan["min_concurrency_for_window"], 5);
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 2);
}

#[test]
fn non_finite_or_negative_prices_and_budgets_exit_2_naming_the_flag() {
    let produce = |flag: &'static str, value: &'static str| {
        let mut args =
            words("produce --backfill-id x --job-id 1 --start 2026-01-01 --end 2026-01-02");
        args.extend([flag, value]);
        args
    };
    let plan = |flag: &'static str, value: &'static str| {
        let mut args = words("plan --partitions 10 --concurrency 2 --run-minutes 30");
        args.extend([flag, value]);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (produce("--budget", "NaN"), "--budget"),
        (produce("--budget", "inf"), "--budget"),
        (
            produce("--price-per-run-hour", "-3"),
            "--price-per-run-hour",
        ),
        (
            vec!["guards", "--backfill-id", "x", "--budget", "nan"],
            "--budget",
        ),
        (
            vec!["guards", "--backfill-id", "x", "--budget", "-1"],
            "--budget",
        ),
        (
            vec!["guards", "--backfill-id", "x", "--price-per-run-hour=-inf"],
            "--price-per-run-hour",
        ),
        (plan("--budget", "infinity"), "--budget"),
        (plan("--price-per-run-hour", "NaN"), "--price-per-run-hour"),
        (
            words("status --backfill-id x --price-per-run-hour -0.5"),
            "--price-per-run-hour",
        ),
        (
            words("status --backfill-id x --price-per-run-hour 1e400"),
            "--price-per-run-hour",
        ),
    ];
    for (args, flag) in cases {
        let out = run(&env(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
    // The environment fallback is checked the same way.
    let mut nan_price = env();
    nan_price.push(("BACKFILL_PRICE_PER_RUN_HOUR", "NaN".to_owned()));
    let out = run(&nan_price, &["status", "--backfill-id", "x"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--price-per-run-hour"), "{stderr}");
    // Zero and plain amounts are fine.
    let out = run(&env(), &plan("--budget", "0"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfiltered_dlq_purge_and_replay_exit_2_and_touch_nothing() {
    use backfill_broker::{Destination, Headers};

    let url = support::amqp_url_string();
    let (name, namespace) = support::process_namespace(&url);
    let broker = support::connect(namespace.topology()).await;
    let headers = Headers::new()
        .with("x-backfill-reason", "run_failed")
        .with("x-backfill-id", "bf");
    broker
        .publisher()
        .publish(Destination::DeadLetter, b"{}", "dead-1", &headers)
        .await
        .unwrap();
    let dlq = namespace.dead_letter_queue();
    let depth = || async { broker.queue_depth(&dlq).await.unwrap() };
    support::eventually("the DLQ message", Duration::from_secs(5), || async {
        (depth().await == 1).then_some(())
    })
    .await;
    let mut env = env();
    env.extend([
        ("AMQP_URL", url.clone()),
        ("BACKFILL_NAMESPACE", name),
        ("BACKFILL_DELAY_TIERS", support::TEST_TIERS.to_owned()),
    ]);
    for command in ["purge", "replay"] {
        let out = run(&env, &["dlq", command, "--yes"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "dlq {command} --yes: {stderr}");
        for named in ["--backfill-id", "--reason", "--all"] {
            assert!(stderr.contains(named), "dlq {command}: {stderr}");
        }
        assert_eq!(depth().await, 1, "dlq {command} --yes touched the queue");
    }
    // The same namespace with a filter: the message is there to be purged.
    let out = run(&env, &["dlq", "purge", "--backfill-id", "bf", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("purged 1"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(depth().await, 0);
    support::teardown(&broker).await;
}
