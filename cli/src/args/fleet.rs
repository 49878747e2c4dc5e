//! Flags of the fleet's own commands: `worker`, `dlq`, `topology`.

use backfill_contract::BackfillId;
use clap::{Args, Subcommand};

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
    pub backfill_id: Option<BackfillId>,
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
