//! Flags of an operator's hand on a running backfill: `pause`, `resume`, `cancel`,
//! `guards`, `throttle`.

use backfill_contract::BackfillId;
use backfill_operations::guards::GuardChange;
use clap::{Args, Subcommand};

use super::values::amount;

#[derive(Debug, Args)]
pub struct ControlArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
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
    /// The guard values given, as a change to a backfill's guards.
    pub fn change(&self, clear_windows: bool) -> GuardChange {
        GuardChange {
            price_per_run_hour: self.price_per_run_hour,
            budget: self.budget,
            protected_windows: self.protected_windows.clone(),
            production_job_id: self.production_job_id,
            clear_windows,
        }
    }
}

#[derive(Debug, Args)]
pub struct GuardsArgs {
    #[arg(long, env = "BACKFILL_ID")]
    pub backfill_id: BackfillId,
    #[command(flatten)]
    pub guards: GuardFlags,
    /// Remove every protected window.
    #[arg(long)]
    pub clear_windows: bool,
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
