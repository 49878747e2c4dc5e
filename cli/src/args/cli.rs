//! The command line's top: the global settings and one subcommand.

use clap::{Parser, Subcommand};

use super::backfill::{AuditArgs, PlanArgs, ProduceArgs, RerunArgs, StatusArgs};
use super::control::{ControlArgs, GuardsArgs, ThrottleArgs};
use super::fleet::{DlqArgs, TopologyArgs, WorkerArgs};
use super::global::GlobalOpts;
use super::promotion::{AmendArgs, PromoteArgs, ReconcileArgs, RollbackArgs};
use super::simulation::{CompletionsArgs, DemoArgs, RehearsalCheckArgs, SimArgs};

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
