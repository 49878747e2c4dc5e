//! The rehearsal on real data (SPEC 5.11), end to end: the simulator's runs execute the
//! bundle's own job code on local Spark with Delta Lake over a generated sample; workers and
//! the reconciler run as processes. One backfill's partition fails its gate and is never
//! promoted; the other backfill is promoted while the live pipeline appends today's
//! partition, one partition is rolled back, one is re-run after promotion over a late file
//! and promoted again. The Delta tables are then checked against an independent
//! computation from the raw files (`backfill rehearsal-check`).
//!
//! Needs the bundle's virtual environment (`scripts/ensure-bundle-venv`, which
//! `scripts/test` runs first).

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::path::PathBuf;
use std::time::Duration;

use backfill_simulator::{SampleSpec, SimConfig, Simulator, SparkSettings};
use serde_json::json;
use support::process::{run, text};
use support::process_fleet::ProcessFleet;

const GATE_DAY: &str = "2026-10-31";
const FIRST: &str = "2026-11-01";
const LAST: &str = "2026-11-04";
const ROLLED_BACK: &str = "2026-11-02";
const RERUN: &str = "2026-11-03";

fn bundle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bundle")
}

fn settings(dir: &std::path::Path) -> SparkSettings {
    let python = bundle_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the rehearsal needs the bundle's venv: run scripts/ensure-bundle-venv first"
    );
    SparkSettings {
        python,
        bundle_dir: bundle_dir(),
        slots: 2,
        scratch: dir.join("scratch"),
        ready_timeout: Duration::from_secs(300),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehearsal_promotes_proven_numbers_only_and_the_tables_agree_with_the_raw_files() {
    // Kept when the test fails, to look at the tables and Spark's log.
    let dir = std::env::temp_dir().join(format!("rehearsal-{}", support::unique()));
    let sample_dir = dir.join("sample");
    let settings = settings(&sample_dir);
    let spec = SampleSpec {
        dir: sample_dir.clone(),
        start: GATE_DAY.into(),
        end: LAST.into(),
        days: 5,
        seed: 11,
        gate_failing_day: Some(GATE_DAY.into()),
    };
    let summary = backfill_simulator::prepare_sample(&settings, &spec)
        .await
        .unwrap();
    let mut config = SimConfig::default();
    summary.apply(&mut config);
    let sim = Simulator::with_spark(config, settings).await.unwrap();
    let engine = sim.engine().unwrap();
    let mut fleet =
        ProcessFleet::on(&support::amqp_url_string(), sim.serve_here().await.unwrap()).await;
    let policy = format!("{}/policies/usage-daily.toml", env!("CARGO_MANIFEST_DIR"));
    let pin = summary
        .pins
        .iter()
        .map(|(t, v)| format!("{t}={v}"))
        .next()
        .expect("the sample pins its dimension");
    let produce = |id: &str, start: &str, end: &str| {
        let flags = [
            "--concurrency-cap",
            "4",
            "--pin",
            &pin,
            "--dq-policy",
            &policy,
            "--staging-table",
            &summary.staging_table,
            "--target-table",
            &summary.target_table,
        ];
        fleet.produce_range(id, start, end, &flags);
    };
    produce("reh-gate", GATE_DAY, GATE_DAY);
    produce("reh-main", FIRST, LAST);
    fleet.spawn_worker();
    fleet.spawn_worker();
    let succeeded = |id: &'static str, n: i64| {
        let fleet = &fleet;
        async move {
            support::eventually(
                &format!("{id}: {n} partitions succeeded"),
                Duration::from_secs(600),
                || async {
                    let s = fleet.status_of(id);
                    assert_eq!(s["states"]["dead_lettered"], 0, "{s}");
                    (s["states"]["succeeded"] == n).then_some(())
                },
            )
            .await;
        }
    };
    succeeded("reh-gate", 1).await;
    succeeded("reh-main", 4).await;

    // The gate refuses the partition whose recomputation disagrees with production.
    let gate = run(
        &fleet.env,
        &[
            "reconcile",
            "--backfill-id",
            "reh-gate",
            "--once",
            "--promote",
        ],
    );
    assert_eq!(gate.status.code(), Some(1), "{}", text(&gate.stdout));
    let said = format!("{}{}", text(&gate.stdout), text(&gate.stderr));
    assert!(said.contains("row count within 5% of production"), "{said}");

    // Promotion while the live pipeline appends today's partition.
    engine
        .call(
            json!({"op": "live_start", "table": summary.target_table, "date": summary.cutover_date,
                   "warehouse_dir": summary.warehouse_dir, "every_ms": 700}),
            "live_started",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let promote = |what: &str| {
        let out = run(
            &fleet.env,
            &[
                "reconcile",
                "--backfill-id",
                "reh-main",
                "--once",
                "--promote",
            ],
        );
        assert!(
            out.status.success(),
            "{what}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    };
    promote("first promotion");
    let out = run(
        &fleet.env,
        &[
            "rollback",
            "--backfill-id",
            "reh-main",
            "--partition",
            ROLLED_BACK,
        ],
    );
    assert!(out.status.success(), "rollback: {}", text(&out.stderr));

    // A late file for one promoted day (an existing customer's event: new numbers, the same
    // rows, so the gate still passes), then a re-run of it: promoted again.
    let late = PathBuf::from(&summary.raw_root).join("ingest_date=2026-11-04/late-arrival.json");
    std::fs::write(
        &late,
        "{\"event_id\": \"late-rehearsal-1\", \"customer_id\": \"c3\", \"event_ts\": \"2026-11-03T12:00:00Z\", \"event_type\": \"api_call\", \"units\": 42.5}\n",
    )
    .unwrap();
    let out = run(
        &fleet.env,
        &[
            "rerun",
            "--backfill-id",
            "reh-main",
            "--partition",
            RERUN,
            "--reason",
            "late file",
        ],
    );
    assert!(out.status.success(), "rerun: {}", text(&out.stderr));
    support::eventually("the re-run succeeded", Duration::from_secs(600), || async {
        let s = fleet.status_of("reh-main");
        (s["states"]["succeeded"] == 4 && s["states"]["pending"] == 0).then_some(())
    })
    .await;
    support::eventually(
        "the re-run's attempt 2 ran",
        Duration::from_secs(600),
        || async {
            let runs = sim_runs(&fleet, RERUN);
            (runs == 2).then_some(())
        },
    )
    .await;
    promote("promotion of the re-run");
    let live = engine
        .call(
            json!({"op": "live_stop"}),
            "live_stopped",
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert!(
        live["commits"].as_array().is_some_and(|c| !c.is_empty()),
        "the live pipeline committed while promotion ran: {live}"
    );
    let live_file = dir.join("live.json");
    std::fs::write(&live_file, live.to_string()).unwrap();
    for w in &mut fleet.workers {
        let _ = w.kill();
    }

    // One run per partition attempt (the re-run made the second of its day), the rollback's
    // run (it names its partition too), and the two promotion runs: nothing more.
    let stats = fleet.sim.sim.stats();
    for (day, runs) in [
        (GATE_DAY, 1),
        (FIRST, 1),
        (ROLLED_BACK, 2),
        (RERUN, 2),
        (LAST, 1),
    ] {
        assert_eq!(
            stats.runs_per_partition.get(day),
            Some(&runs),
            "{day}: {stats:?}"
        );
    }
    assert_eq!(stats.runs_created, 6 + 1 + 2, "{stats:?}");

    // The tables themselves, against the raw files and the ledger's record.
    let mut env = fleet.env.clone();
    env.push((
        "BACKFILL_BUNDLE_DIR",
        bundle_dir().to_string_lossy().into_owned(),
    ));
    let sample = sample_dir.to_string_lossy().into_owned();
    let live_arg = live_file.to_string_lossy().into_owned();
    let out = run(
        &env,
        &[
            "rehearsal-check",
            "--sample",
            &sample,
            "--backfill-id",
            "reh-main",
            "--backfill-id",
            "reh-gate",
            "--live",
            &live_arg,
        ],
    );
    let report = text(&out.stdout);
    assert!(
        out.status.success(),
        "check failed:\n{report}\n{}",
        text(&out.stderr)
    );
    for must in [
        format!("{GATE_DAY} never promoted"),
        format!("{ROLLED_BACK} rolled back"),
        format!("{RERUN} promoted"),
        format!("{FIRST} promoted"),
        "live".to_owned(),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(&must)),
            "no passing check about {must:?}:\n{report}"
        );
    }
    assert!(!report.lines().any(|l| l.starts_with("FAIL")), "{report}");
    engine.stop(Duration::from_secs(60)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn sim_runs(fleet: &ProcessFleet, day: &str) -> u64 {
    fleet
        .sim
        .sim
        .stats()
        .runs_per_partition
        .get(day)
        .copied()
        .unwrap_or(0)
}
