//! Flags of the simulator and what runs on it: `sim`, `demo`, `rehearsal-check`, and
//! `completions`.

use std::net::SocketAddr;

use backfill_contract::{BackfillId, PartitionDate};
use clap::Args;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g. `backfill completions bash > /etc/bash_completion.d/backfill`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "SIM_ADDR", default_value = "127.0.0.1:8089")]
    pub addr: SocketAddr,
    /// A TOML scenario file: dwell times, jobs, limits, scripted outcomes, faults
    /// (see docs/simulator.md). Flags below override it.
    #[arg(long, env = "SIM_SCENARIO")]
    pub scenario: Option<std::path::PathBuf>,
    /// Milliseconds a run stays PENDING (default 300).
    #[arg(long)]
    pub pending_ms: Option<u64>,
    /// Milliseconds a run stays RUNNING (default 700).
    #[arg(long)]
    pub running_ms: Option<u64>,
    /// Requests per second allowed on an endpoint, ENDPOINT=RATE (for example
    /// jobs/run-now=20); repeatable.
    #[arg(long = "rate-limit", value_name = "ENDPOINT=RATE")]
    pub rate_limits: Vec<String>,
    /// Inject a fault: ENDPOINT=KIND[,times=N][,probability=P][,partition=DATE]
    /// [,retry_after_s=S][,delay_ms=MS]; repeatable. Kinds: throttle,
    /// throttle_no_retry_after, unavailable, internal, html, slow, lost_response.
    #[arg(long = "fault", value_name = "ENDPOINT=KIND[,...]")]
    pub faults: Vec<String>,
    /// Accept only this bearer token (default: any non-empty token).
    #[arg(long, env = "SIM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Script how a partition's runs end, in order: DATE=OUTCOME[,OUTCOME...]; repeatable.
    /// Outcomes: success, task_failed, platform_failure, cloud_failure, user_canceled,
    /// timed_out, skipped, unauthorized. Runs beyond the script succeed.
    #[arg(long = "outcome", value_name = "DATE=OUTCOMES")]
    pub outcomes: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// With --engine spark: the first day the generated sample covers [default: so that
    /// --sample-days end yesterday].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub sample_start: Option<PartitionDate>,
    /// With --engine spark: days the generated sample covers.
    #[arg(long, default_value_t = 5)]
    pub sample_days: u32,
    /// With --engine spark: the generator's seed (the same seed makes the same files).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// With --engine spark: a day of the sample whose production partition disagrees with
    /// its recomputation, so its data-quality gate fails.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub gate_failing_day: Option<PartitionDate>,
}

#[derive(Debug, Args)]
pub struct RehearsalCheckArgs {
    /// The rehearsal's sample directory (holding rehearsal-sample.json).
    #[arg(long, value_name = "DIR")]
    pub sample: std::path::PathBuf,
    /// A backfill of the rehearsal; repeatable.
    #[arg(long = "backfill-id", required = true)]
    pub backfill_ids: Vec<BackfillId>,
    /// The live pipeline's commits, as `POST /sim/live/stop` answered them (a JSON file).
    #[arg(long, value_name = "FILE")]
    pub live: Option<std::path::PathBuf>,
    /// A Python with the bundle's requirements [default: BUNDLE_DIR/.venv/bin/python].
    #[arg(long, env = "BACKFILL_SPARK_PYTHON")]
    pub python: Option<std::path::PathBuf>,
    /// The Databricks bundle (its `src` holds the check).
    #[arg(long, env = "BACKFILL_BUNDLE_DIR", default_value = "bundle")]
    pub bundle_dir: std::path::PathBuf,
}

/// How simulated runs execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Runs follow timed states and report invented results (fast; the default).
    Instant,
    /// Runs of the bundle's jobs execute the bundle's own code on local Spark with Delta
    /// Lake, in one long-lived Spark session.
    Spark,
}

/// The executing engine's settings (`sim`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// How simulated runs execute: instant (timed, invented results) or spark (the
    /// bundle's own job code on local Spark with Delta Lake).
    #[arg(long, value_enum, default_value_t = Engine::Instant)]
    pub engine: Engine,
    /// With --engine spark: runs executing at once in the Spark session.
    #[arg(long, default_value_t = 2)]
    pub slots: usize,
    /// With --engine spark: a Python with the bundle's requirements (pyspark,
    /// delta-spark) [default: BUNDLE_DIR/.venv/bin/python].
    #[arg(long, env = "BACKFILL_SPARK_PYTHON")]
    pub python: Option<std::path::PathBuf>,
    /// With --engine spark: the Databricks bundle (its `src` holds the job code).
    #[arg(long, env = "BACKFILL_BUNDLE_DIR", default_value = "bundle")]
    pub bundle_dir: std::path::PathBuf,
    /// With --engine spark: the sample's directory. One holding rehearsal-sample.json is
    /// used as it is (a team's own raw files and tables, see docs/rehearsal.md); an empty
    /// or missing one gets a generated sample [default: backfill-rehearsal/TIMESTAMP].
    #[arg(long, value_name = "DIR")]
    pub sample: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of daily partitions, ending yesterday [default: 180; 5 with --engine spark].
    #[arg(long)]
    pub days: Option<u32>,
    /// Worker concurrency per lane.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Backfill concurrency cap.
    #[arg(long, default_value_t = 60)]
    pub concurrency_cap: i64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// How long each simulated run stays RUNNING, in milliseconds (the simulator's
    /// default when absent).
    #[arg(long)]
    pub run_ms: Option<u64>,
    /// Keep serving metrics this many seconds after the backfill is complete (for a
    /// last scrape with --metrics-addr).
    #[arg(long)]
    pub linger_s: Option<u64>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// With --engine spark: inject a fault into the simulator, as `backfill sim --fault`
    /// (for example jobs/run-now=lost_response,times=2); repeatable.
    #[arg(long = "fault", value_name = "ENDPOINT=KIND[,...]")]
    pub faults: Vec<String>,
}
