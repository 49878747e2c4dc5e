//! Flags of proof and promotion: `reconcile`, `promote`, `rollback`, `amend`, and the
//! contract values they share.

use backfill_contract::{BackfillId, PartitionDate};
use clap::Args;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
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
    #[command(flatten)]
    pub promotion: PromotionFlags,
}

/// How a promotion runs, for `promote` and `reconcile --promote`.
#[derive(Debug, Args, Clone)]
pub struct PromotionFlags {
    /// Partitions per promotion run, oldest first (only batches work: it never changes
    /// what gets promoted).
    #[arg(long, default_value_t = 30)]
    pub wave_size: usize,
    /// The backfill's recorded contract governs; these may only repeat it.
    #[command(flatten)]
    pub contract: ContractArgs,
    #[command(flatten)]
    pub wait: RunWait,
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
    pub backfill_id: BackfillId,
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
    pub backfill_id: BackfillId,
    /// Record this operator's approval, then promote.
    #[arg(long)]
    pub approve: bool,
    /// Who approves (recorded in the audit trail).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub by: String,
    #[command(flatten)]
    pub promotion: PromotionFlags,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
    /// A partition to roll back, YYYY-MM-DD; repeatable (default: every promoted one).
    #[arg(long = "partition")]
    pub partitions: Vec<PartitionDate>,
    /// The backfill's recorded contract governs; these may only repeat it.
    #[command(flatten)]
    pub contract: ContractArgs,
    #[command(flatten)]
    pub wait: RunWait,
}
