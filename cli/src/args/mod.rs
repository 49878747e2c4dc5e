//! Flags and subcommands, by family. Every setting has an environment fallback; secrets
//! never show their values in `--help`; values are parsed into their types by clap.

mod backfill;
mod cli;
mod control;
mod fleet;
mod global;
mod help;
mod promotion;
mod simulation;
mod values;

pub use backfill::{AuditArgs, AuditFormat, PlanArgs, ProduceArgs, RerunArgs, StatusArgs};
pub use cli::{Cli, Command};
pub use control::{ControlArgs, GuardsArgs, ThrottleArgs, ThrottleCommand};
pub use fleet::{
    DlqArgs, DlqCommand, DlqFilter, TopologyArgs, TopologyCommand, TopologyDeleteArgs, WorkerArgs,
};
pub use global::GlobalOpts;
pub use help::command_for;
pub use promotion::{AmendArgs, ContractArgs, PromoteArgs, ReconcileArgs, RollbackArgs, RunWait};
pub use simulation::{DemoArgs, Engine, EngineArgs, RehearsalCheckArgs, SimArgs};
