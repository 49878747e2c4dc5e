//! Flags and subcommands. Every setting has an environment fallback; secrets never show
//! their values in `--help`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// A price or a budget: a finite number, not negative. NaN or infinity would silently
/// disable the budget guard (every comparison with NaN is false), so clap refuses them
/// (exit 2, naming the flag).
fn amount(value: &str) -> Result<f64, String> {
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{value} is not a finite number"));
    }
    if v < 0.0 {
        return Err(format!("{value} is negative"));
    }
    Ok(v)
}

/// Backfill fleet: recompute a Databricks pipeline's day-partitions safely with a
/// RabbitMQ worker fleet.
#[derive(Debug, Parser)]
#[command(name = "backfill", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalOpts {
    /// RabbitMQ URL, or the URLs of a cluster's nodes separated by commas (each process
    /// tries them in turn, in its own shuffled order).
    #[arg(
        long,
        global = true,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub amqp_url: String,
    /// Ledger database: sqlite://FILE or postgres://... (default sqlite://backfill.db in
    /// the working directory, which a process then names on start-up).
    #[arg(long, global = true, env = "LEDGER_URL", hide_env_values = true)]
    pub ledger_url: Option<String>,
    /// Prefix of every queue and exchange, so several fleets can share one broker.
    #[arg(
        long,
        global = true,
        env = "BACKFILL_NAMESPACE",
        default_value = "backfill"
    )]
    pub namespace: String,
    /// Databricks workspace URL (the local simulator by default).
    #[arg(
        long,
        global = true,
        env = "DATABRICKS_HOST",
        default_value = "http://127.0.0.1:8089"
    )]
    pub databricks_host: String,
    /// Databricks personal access token. Required for a workspace; may be left out only
    /// for a simulator on this machine (loopback), which takes any token.
    #[arg(long, global = true, env = "DATABRICKS_TOKEN", hide_env_values = true)]
    pub databricks_token: Option<String>,
    /// The longest `Retry-After` from Databricks honoured, in seconds (longer ones are
    /// cut to this; a throttled message waits in the delay tiers, never in a delivery).
    #[arg(
        long,
        global = true,
        env = "DATABRICKS_MAX_RETRY_AFTER_S",
        default_value_t = 120
    )]
    pub max_retry_after_s: u64,
    /// Databricks requests per second for the whole fleet, per endpoint: every process
    /// that calls Databricks (workers, reconciler, promote, cancel, produce) takes an equal
    /// share through the ledger.
    #[arg(
        long,
        global = true,
        env = "WORKER_API_BUDGET",
        default_value = "jobs/run-now=10,jobs/runs/get=50"
    )]
    pub api_budget: String,
    /// Delay tiers of the broker topology, comma-separated (for example 1s,5s,30s,2m,10m,1h).
    #[arg(long, global = true, env = "BACKFILL_DELAY_TIERS")]
    pub delay_tiers: Option<String>,
    /// Serve /metrics, /healthz and /readyz on HOST:PORT (long-running commands: worker,
    /// reconcile, sim, demo).
    #[arg(long, global = true, env = "METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a backfill and publish one message per day-partition.
    Produce(Box<ProduceArgs>),
    /// Estimate makespan and cost; warn when the window or the budget would be broken.
    Plan(PlanArgs),
    /// Consume partition work: trigger and follow Databricks runs.
    Worker(WorkerArgs),
    /// Verify completeness against Databricks (once, or as a service until complete).
    Reconcile(ReconcileArgs),
    /// Show where a backfill stands.
    Status(StatusArgs),
    /// Promote every proven, not yet promoted partition attempt into production (and
    /// approve it), under the backfill's recorded contract.
    Promote(PromoteArgs),
    /// Change a backfill's promotion contract: a new, audited version (who and why).
    Amend(AmendArgs),
    /// Roll back promoted partitions from their recorded pre-promotion versions.
    Rollback(RollbackArgs),
    /// Export the manifest and the full event log.
    Audit(AuditArgs),
    /// Re-run partitions as new attempts (for example after a failed data-quality gate).
    Rerun(RerunArgs),
    /// Start no new runs for a backfill (running ones are followed to their end).
    Pause(ControlArgs),
    /// Let a paused backfill start runs again.
    Resume(ControlArgs),
    /// Cancel a backfill: its active runs one by one, its partitions end cancelled.
    Cancel(ControlArgs),
    /// Change a backfill's budget and freshness guards (raising the budget releases held runs).
    Guards(GuardsArgs),
    /// Inspect, replay or purge the dead-letter queue.
    Dlq(DlqArgs),
    /// Show a namespace's queues, or delete a retired fleet's queues and exchanges.
    Topology(TopologyArgs),
    /// End the fleet-wide pause of Databricks endpoints set after throttling.
    Throttle(ThrottleArgs),
    /// Serve the Databricks Jobs API simulator.
    Sim(SimArgs),
    /// Run a whole backfill in one process on the embedded defaults.
    Demo(DemoArgs),
    /// Check a rehearsal's Delta tables against an independent computation from its raw
    /// files and the ledger's record of the given backfills.
    RehearsalCheck(RehearsalCheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g. `backfill completions bash > /etc/bash_completion.d/backfill`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Name of the backfill (1-40 of letters, digits, '_' and '-').
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// The Databricks job that recomputes one partition.
    #[arg(long, env = "BACKFILL_JOB_ID")]
    pub job_id: i64,
    /// First day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub start: String,
    /// Last day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub end: String,
    /// A job parameter passed to every run, KEY=VALUE; repeatable. Pin code and dimension
    /// table versions here.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// The job code's version (a git SHA, a wheel version), pinned for every run as the
    /// job parameter `code_version` and recorded in the manifest.
    #[arg(long)]
    pub code_version: Option<String>,
    /// A dimension table's pinned Delta version, TABLE=VERSION; repeatable. Passed to every
    /// run as the job parameter `pin.TABLE` so reruns read the same inputs.
    #[arg(long = "pin", value_name = "TABLE=VERSION")]
    pub pins: Vec<String>,
    /// Most runs active at once across the whole fleet.
    #[arg(long, env = "BACKFILL_CONCURRENCY_CAP", default_value_t = 20)]
    pub concurrency_cap: i64,
    /// newest-first (default) or oldest-first.
    #[arg(long, default_value = "newest-first")]
    pub order: String,
    /// Who starts it (recorded in the manifest and the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub created_by: String,
    #[command(flatten)]
    pub guards: GuardFlags,
    /// Recorded as the backfill's promotion contract (defaults for those not given).
    #[command(flatten)]
    pub contract: ContractArgs,
    /// Print the plan without registering or publishing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Messages handled at once per lane in this process.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// Name of this worker in claims and the audit trail (default: host-pid).
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,
    /// Seconds allowed for in-flight messages after SIGTERM.
    #[arg(long, default_value_t = 20)]
    pub shutdown_grace_s: u64,
    /// Seconds a claim is left to its owner before another worker re-attaches.
    #[arg(long, env = "WORKER_CLAIM_LEASE_S", default_value_t = 15)]
    pub claim_lease_s: u64,
    /// Seconds a check may be overdue before the sweep re-issues it.
    #[arg(long, env = "WORKER_CHECK_GRACE_S", default_value_t = 60)]
    pub check_grace_s: u64,
    /// Seconds one step of a partition may keep failing for outages (Databricks or the
    /// ledger unreachable) before it is dead-lettered with the last error.
    #[arg(long, env = "WORKER_OUTAGE_BUDGET_S", default_value_t = 3600)]
    pub outage_budget_s: u64,
    /// Seconds between sweeps for overdue checks.
    #[arg(long, env = "WORKER_SWEEP_INTERVAL_S", default_value_t = 15)]
    pub sweep_interval_s: u64,
    /// Wait before a failed run's second attempt, in seconds; doubles per attempt.
    #[arg(long, env = "WORKER_RETRY_BASE_S", default_value_t = 30)]
    pub retry_base_s: u64,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// One pass, then exit 0 if complete and 1 if not.
    #[arg(long)]
    pub once: bool,
    /// Seconds between passes when running as a service.
    #[arg(long, default_value_t = 30)]
    pub interval_s: u64,
    /// As a service, read every run again at each pass (by default a pass skips runs
    /// already verified, with their data-quality verdicts stored; `--once` and promotion
    /// always read everything).
    #[arg(long)]
    pub reverify: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Once complete and green, promote (in waves; after approval when the contract
    /// requires it).
    #[arg(long)]
    pub promote: bool,
    /// Partitions per promotion run, oldest first (only batches work).
    #[arg(long, default_value_t = 30)]
    pub wave_size: usize,
    /// Partitions are gated on the backfill's recorded contract; these may only repeat it.
    #[command(flatten)]
    pub contract: ContractArgs,
    #[command(flatten)]
    pub wait: RunWait,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The backfill to show; without it, the most recent backfills are listed.
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Refresh every few seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Cluster price per run-hour, to show spend.
    #[arg(long, env = "BACKFILL_PRICE_PER_RUN_HOUR", default_value_t = 0.0,
          value_parser = amount, allow_negative_numbers = true)]
    pub price_per_run_hour: f64,
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
    pub sample_start: Option<String>,
    /// With --engine spark: days the generated sample covers.
    #[arg(long, default_value_t = 5)]
    pub sample_days: u32,
    /// With --engine spark: the generator's seed (the same seed makes the same files).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// With --engine spark: a day of the sample whose production partition disagrees with
    /// its recomputation, so its data-quality gate fails.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub gate_failing_day: Option<String>,
}

#[derive(Debug, Args)]
pub struct RehearsalCheckArgs {
    /// The rehearsal's sample directory (holding rehearsal-sample.json).
    #[arg(long, value_name = "DIR")]
    pub sample: std::path::PathBuf,
    /// A backfill of the rehearsal; repeatable.
    #[arg(long = "backfill-id", required = true)]
    pub backfill_ids: Vec<String>,
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

/// What governs a backfill's promotion (SPEC invariant 10). `produce` records these as the
/// backfill's contract (unset ones take the defaults shown); `amend` changes the given ones
/// in a new, audited contract version; `reconcile`, `promote` and `rollback` use the
/// recorded contract and refuse (exit 2) any given value that disagrees with it.
#[derive(Debug, Args, Clone, Default)]
pub struct ContractArgs {
    /// Data-quality policy file (TOML rules) gating promotion.
    #[arg(long, env = "BACKFILL_DQ_POLICY", conflicts_with = "no_dq_policy")]
    pub dq_policy: Option<std::path::PathBuf>,
    /// Record that there is no data-quality policy (`produce`, `amend`): promotion is then
    /// gated on run success alone, and says so every time.
    #[arg(long)]
    pub no_dq_policy: bool,
    /// Promotion waits for `backfill promote --approve` [produce default: false].
    #[arg(long, env = "BACKFILL_REQUIRE_APPROVAL", num_args = 0..=1, default_missing_value = "true")]
    pub require_approval: Option<bool>,
    /// Where the backfill's runs write (passed to every run as `staging_table`)
    /// [produce default: main.usage.daily_customer_usage_staging].
    #[arg(long, env = "BACKFILL_STAGING_TABLE")]
    pub staging_table: Option<String>,
    /// The production table promotion replaces partitions of
    /// [produce default: main.usage.daily_customer_usage].
    #[arg(long, env = "BACKFILL_TARGET_TABLE")]
    pub target_table: Option<String>,
    /// The job that replaces partitions of the target from staging [produce default: 2].
    #[arg(long, env = "BACKFILL_PROMOTION_JOB_ID")]
    pub promotion_job_id: Option<i64>,
    /// The job that rewrites a partition of the target from an earlier version
    /// [produce default: 3].
    #[arg(long, env = "BACKFILL_ROLLBACK_JOB_ID")]
    pub rollback_job_id: Option<i64>,
}

pub const DEFAULT_STAGING_TABLE: &str = "main.usage.daily_customer_usage_staging";
pub const DEFAULT_TARGET_TABLE: &str = "main.usage.daily_customer_usage";
pub const DEFAULT_PROMOTION_JOB_ID: i64 = 2;
pub const DEFAULT_ROLLBACK_JOB_ID: i64 = 3;

/// How long to follow a promotion or rollback run.
#[derive(Debug, Args, Clone)]
pub struct RunWait {
    /// Seconds to wait for a promotion or rollback run (run the command again to go on
    /// following it).
    #[arg(long, default_value_t = 3600)]
    pub run_timeout_s: u64,
}

/// `backfill amend`: a new, audited version of a backfill's promotion contract.
#[derive(Debug, Args)]
pub struct AmendArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// Why the contract changes (recorded in the audit).
    #[arg(long)]
    pub reason: String,
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
    #[command(flatten)]
    pub contract: ContractArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// Record this operator's approval, then promote.
    #[arg(long)]
    pub approve: bool,
    /// Who approves (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
    /// Partitions per promotion run, oldest first (only batches work: it never changes
    /// what gets promoted).
    #[arg(long, default_value_t = 30)]
    pub wave_size: usize,
    /// The backfill's recorded contract governs; these may only repeat it.
    #[command(flatten)]
    pub contract: ContractArgs,
    #[command(flatten)]
    pub wait: RunWait,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// A partition to roll back, YYYY-MM-DD; repeatable (default: every promoted one).
    #[arg(long = "partition")]
    pub partitions: Vec<String>,
    /// The backfill's recorded contract governs; these may only repeat it.
    #[command(flatten)]
    pub contract: ContractArgs,
    #[command(flatten)]
    pub wait: RunWait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
    pub format: AuditFormat,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// A partition to re-run, YYYY-MM-DD; repeatable.
    #[arg(long = "partition", required = true)]
    pub partitions: Vec<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Who asks (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    /// Why (recorded in the audit trail).
    #[arg(long, default_value = "operator request")]
    pub reason: String,
    /// Who (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
    /// Confirm an irreversible command (cancel).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Number of day-partitions (or give --start and --end).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub partitions: Option<u64>,
    /// First day, YYYY-MM-DD.
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// Last day, YYYY-MM-DD.
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// Runs at once.
    #[arg(long)]
    pub concurrency: u64,
    /// Expected minutes per run.
    #[arg(long)]
    pub run_minutes: f64,
    /// Cluster price per run-hour.
    #[arg(long, default_value_t = 0.0, value_parser = amount, allow_negative_numbers = true)]
    pub price_per_run_hour: f64,
    /// Budget for the whole backfill.
    #[arg(long, value_parser = amount, allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Hours the backfill must fit in.
    #[arg(long, default_value_t = 72.0)]
    pub window_hours: f64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead-lettered messages with partition, reason, attempts, last error, run URL, age.
    List(DlqFilter),
    /// One message in full.
    Show { id: String },
    /// A fresh attempt for each chosen message's partition; the message leaves the queue
    /// only after the new trigger is confirmed.
    Replay(DlqFilter),
    /// Drop the chosen messages (recorded in the audit trail).
    Purge(DlqFilter),
}

#[derive(Debug, Args)]
pub struct DlqFilter {
    /// Message ids (from `dlq list`).
    pub ids: Vec<String>,
    #[arg(long)]
    pub backfill_id: Option<String>,
    /// Only messages dead-lettered for this reason (run_failed, invalid_message, ...).
    #[arg(long)]
    pub reason: Option<String>,
    /// Every message, of every backfill (replay and purge act only on chosen messages:
    /// ids, a filter, or this).
    #[arg(long)]
    pub all: bool,
    /// Confirm a change to the queue.
    #[arg(long)]
    pub yes: bool,
    /// Look at no more than this many messages.
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
    /// Why (recorded in the audit trail).
    #[arg(long = "reason-note", default_value = "operator request")]
    pub why: String,
    /// Who (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct ThrottleArgs {
    #[command(subcommand)]
    pub command: ThrottleCommand,
}

#[derive(Debug, Subcommand)]
pub enum ThrottleCommand {
    /// Endpoints paused now, and until when.
    Show,
    /// End the pause now (every endpoint, or one); workers follow within a heartbeat.
    Clear {
        /// Only this endpoint (for example jobs/runs/get).
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct TopologyArgs {
    #[command(subcommand)]
    pub command: TopologyCommand,
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Every queue of the namespace with its ready messages and consumers.
    Show,
    /// Delete every queue and exchange of the namespace (quorum queues never go away on
    /// their own). Give the same --delay-tiers the fleet used. Refused while a queue holds
    /// messages or has consumers, unless --force.
    Delete(TopologyDeleteArgs),
}

#[derive(Debug, Args)]
pub struct TopologyDeleteArgs {
    /// Confirm the deletion.
    #[arg(long)]
    pub yes: bool,
    /// Delete even queues that still hold messages or have consumers (the messages are lost).
    #[arg(long)]
    pub force: bool,
}

/// What holds new runs back.
#[derive(Debug, Args, Clone, Default)]
pub struct GuardFlags {
    /// Cluster price per run-hour (spend is run-hours times this).
    #[arg(long, value_parser = amount, allow_negative_numbers = true)]
    pub price_per_run_hour: Option<f64>,
    /// Hold new runs when the projected spend would exceed this.
    #[arg(long, value_parser = amount, allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// A UTC window in which no new run starts, HH:MM-HH:MM; repeatable.
    #[arg(long = "protect", value_name = "HH:MM-HH:MM")]
    pub protected_windows: Vec<backfill_ledger::ProtectedWindow>,
    /// While this job has an active run, no new run starts.
    #[arg(long)]
    pub production_job_id: Option<i64>,
}

impl GuardFlags {
    pub fn any(&self) -> bool {
        self.price_per_run_hour.is_some()
            || self.budget.is_some()
            || !self.protected_windows.is_empty()
            || self.production_job_id.is_some()
    }
}

#[derive(Debug, Args)]
pub struct GuardsArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: String,
    #[command(flatten)]
    pub guards: GuardFlags,
    /// Remove every protected window.
    #[arg(long)]
    pub clear_windows: bool,
    /// Who (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
}

/// The global settings each command uses (`log_format` everywhere but `completions`): the
/// others are hidden from that command's `--help` (still accepted, so one environment
/// serves every command).
const USES: [(&str, &[&str]); 22] = {
    const B: [&str; 3] = ["amqp_url", "namespace", "delay_tiers"];
    const D: [&str; 4] = [
        "databricks_host",
        "databricks_token",
        "max_retry_after_s",
        "api_budget",
    ];
    [
        (
            "produce",
            &[B[0], B[1], B[2], "ledger_url", D[0], D[1], D[2], D[3]],
        ),
        ("plan", &[]),
        (
            "worker",
            &[
                B[0],
                B[1],
                B[2],
                "ledger_url",
                D[0],
                D[1],
                D[2],
                D[3],
                "metrics_addr",
            ],
        ),
        (
            "reconcile",
            &["ledger_url", D[0], D[1], D[2], D[3], "metrics_addr"],
        ),
        ("status", &["ledger_url"]),
        ("promote", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("amend", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("rollback", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("audit", &["ledger_url"]),
        ("rerun", &[B[0], B[1], B[2], "ledger_url"]),
        ("pause", &["ledger_url"]),
        ("resume", &["ledger_url"]),
        ("cancel", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("guards", &["ledger_url"]),
        ("dlq", &[B[0], B[1], B[2], "ledger_url"]),
        ("topology", &[B[0], B[1], B[2]]),
        ("throttle", &["ledger_url"]),
        ("sim", &["metrics_addr"]),
        ("demo", &[B[0], B[1], B[2], "ledger_url", "metrics_addr"]),
        ("rehearsal-check", &["ledger_url"]),
        ("completions", &[]),
        ("help", &[]),
    ]
};

/// Every global setting's argument id.
const GLOBALS: [&str; 10] = [
    "amqp_url",
    "ledger_url",
    "namespace",
    "databricks_host",
    "databricks_token",
    "max_retry_after_s",
    "api_budget",
    "delay_tiers",
    "metrics_addr",
    "log_format",
];

/// The command line for `argv`. When it asks for a subcommand's help (`backfill sim
/// --help`, `backfill help sim`), the global settings that subcommand does not use are
/// hidden from it; parsing is the same either way.
pub fn command_for(argv: &[String]) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let names: Vec<&str> = USES.iter().map(|(n, _)| *n).collect();
    let words: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let asks_help = words
        .iter()
        .any(|w| *w == "--help" || *w == "-h" || *w == "help");
    let Some(name) = words
        .iter()
        .find(|w| names.contains(w) && **w != "help")
        .copied()
        .filter(|_| asks_help)
    else {
        return cmd;
    };
    let uses = USES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, u)| *u);
    for id in GLOBALS {
        let used = uses.contains(&id) || (id == "log_format" && name != "completions");
        if !used {
            cmd = cmd.mut_arg(id, |a| a.hide(true));
        }
    }
    cmd
}
