//! Flags of the commands that register, show, re-run and audit a backfill: `produce`,
//! `plan`, `status`, `rerun`, `audit`.

use backfill_contract::{BackfillId, PartitionDate};
use backfill_producer::Order;
use clap::Args;

use super::control::GuardFlags;
use super::promotion::ContractArgs;
use super::values::amount;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Name of the backfill (1-40 of letters, digits, '_' and '-').
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
    /// The Databricks job that recomputes one partition.
    #[arg(long, env = "BACKFILL_JOB_ID")]
    pub job_id: i64,
    /// First day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub start: PartitionDate,
    /// Last day, YYYY-MM-DD (inclusive).
    #[arg(long)]
    pub end: PartitionDate,
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
    pub order: Order,
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
pub struct StatusArgs {
    /// The backfill to show; without it, the most recent backfills are listed.
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: Option<BackfillId>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
    #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
    pub format: AuditFormat,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
    /// A partition to re-run, YYYY-MM-DD; repeatable.
    #[arg(long = "partition", required = true)]
    pub partitions: Vec<PartitionDate>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Who asks (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Number of day-partitions (or give --start and --end).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub partitions: Option<u64>,
    /// First day, YYYY-MM-DD.
    #[arg(long, requires = "end")]
    pub start: Option<PartitionDate>,
    /// Last day, YYYY-MM-DD.
    #[arg(long, requires = "start")]
    pub end: Option<PartitionDate>,
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
