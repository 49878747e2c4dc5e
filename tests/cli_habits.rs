//! The command line as an operator at a terminal at night meets it: `status` alone lists the
//! backfills, logs written to a file carry no colour codes, every output ends its lines,
//! each command's `--help` lists only the settings it uses, completions for the shell.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::io::Read;
use std::time::Duration;

use backfill_simulator::SimConfig;
use support::process::{backfill, run, text, words};
use support::process_fleet::ProcessFleet;

fn fast() -> SimConfig {
    SimConfig {
        pending_ms: 50,
        running_ms: 100,
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_alone_lists_the_backfills_in_text_and_json() {
    let fleet = ProcessFleet::new(&support::amqp_url_string(), fast()).await;
    fleet.produce_as("first", 3, 2);
    fleet.produce_as("second", 5, 2);
    let out = run(&fleet.env, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines[0].starts_with("backfill") && lines[0].contains("done"),
        "{listing}"
    );
    assert!(lines[1].starts_with("second"), "newest first: {listing}");
    assert!(lines[1].contains("2026-01-01..2026-01-05"), "{listing}");
    assert!(lines[2].starts_with("first"), "{listing}");
    let out = run(&fleet.env, &["status", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["backfill_id"], "second");
    assert_eq!(all[0]["total"], 5);
    assert_eq!(all[0]["states"]["pending"], 5);
    assert_eq!(all[0]["progress_pct"], 0.0);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_to_a_file_carries_no_colour_codes() {
    let fleet = ProcessFleet::new(&support::amqp_url_string(), fast()).await;
    fleet.produce(2, 2);
    let log = std::env::temp_dir().join(format!("worker-{}.log", support::unique()));
    let mut worker = backfill(&fleet.env)
        .args(["worker", "--concurrency", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    fleet.wait_succeeded(2, Duration::from_secs(30)).await;
    assert_eq!(support::process::terminate(&mut worker), Some(0));
    let mut written = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut written)
        .unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(written.contains("INFO"), "the worker logged: {written}");
    assert!(
        !written.contains('\u{1b}'),
        "escape codes in a log file: {written:?}"
    );
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_ends_its_lines() {
    let fleet = ProcessFleet::new(&support::amqp_url_string(), fast()).await;
    fleet.produce(2, 2);
    let commands: [&[&str]; 9] = [
        &["status"],
        &["status", "--json"],
        &["status", "--backfill-id", "fleet"],
        &["status", "--backfill-id", "fleet", "--json"],
        &["dlq", "list"],
        &["dlq", "list", "--json"],
        &["topology", "show"],
        &["audit", "--backfill-id", "fleet", "--format", "csv"],
        &words("plan --partitions 180 --concurrency 20 --run-minutes 12"),
    ];
    for args in commands {
        let out = run(&fleet.env, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                bytes.is_empty() || bytes.ends_with(b"\n"),
                "{args:?}: {stream} does not end its line: {:?}",
                text(bytes)
            );
        }
    }
    fleet.teardown().await;
}

#[test]
fn each_help_lists_only_the_settings_its_command_uses() {
    let help = |cmd: &str| text(&run(&[], &[cmd, "--help"]).stdout);
    let sim = help("sim");
    for flag in [
        "--ledger-url",
        "--amqp-url",
        "--namespace",
        "--delay-tiers",
        "--databricks-token",
    ] {
        assert!(!sim.contains(flag), "sim --help lists {flag}:\n{sim}");
    }
    assert!(
        sim.contains("--metrics-addr") && sim.contains("--scenario"),
        "{sim}"
    );
    let worker = help("worker");
    for flag in [
        "--ledger-url",
        "--amqp-url",
        "--namespace",
        "--databricks-host",
        "--api-budget",
    ] {
        assert!(worker.contains(flag), "worker --help lacks {flag}");
    }
    let status = help("status");
    assert!(
        status.contains("--ledger-url") && !status.contains("--amqp-url"),
        "{status}"
    );
    // `backfill help sim` is the same help.
    let via_help = text(&run(&[], &["help", "sim"]).stdout);
    assert!(!via_help.contains("--ledger-url"), "{via_help}");
    // Hidden settings are still accepted.
    let out = run(
        &[],
        &words("plan --partitions 10 --concurrency 2 --run-minutes 1 --ledger-url sqlite://x.db"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn completions_are_printed_for_the_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&[], &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains("backfill") && script.contains("promote"),
            "{shell}"
        );
        assert!(script.ends_with('\n'));
    }
    let out = run(&[], &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}
