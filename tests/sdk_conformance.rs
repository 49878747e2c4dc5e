//! The official Databricks Python SDK drives the simulator (`tests/conformance/`): proof
//! that the simulator speaks the API as Databricks' own client expects. `scripts/test`
//! installs the SDK into `.venv`; `BACKFILL_PYTHON` may point at another interpreter.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::path::PathBuf;
use std::time::Duration;

use backfill_simulator::{SimConfig, Simulator};

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("BACKFILL_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with databricks-sdk: run scripts/test (it creates .venv) or set BACKFILL_PYTHON"
    );
    venv
}

#[tokio::test]
async fn the_official_python_sdk_drives_the_simulator() {
    let sim = Simulator::spawn(SimConfig {
        pending_ms: 200,
        running_ms: 1_200,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/sdk_conformance.py");
    let run = tokio::process::Command::new(python())
        .arg(script)
        .env("DATABRICKS_HOST", sim.url())
        .env("DATABRICKS_TOKEN", "conformance-token")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("SDK script finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK conformance failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("conformance: all steps passed"), "{stdout}");
    let stats = sim.sim.stats();
    assert_eq!(
        stats.runs_created, 2,
        "the repeated token created no run: {stats:?}"
    );
    assert_eq!(stats.idempotent_replays, 1);
}
