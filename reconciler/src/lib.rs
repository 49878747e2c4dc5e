//! The reconciler (SPEC 5.6): completeness is proven against Databricks, not against
//! messages. Each pass re-reads the latest run of every succeeded partition and checks
//! that it succeeded, belongs to the backfill's job, and ran with the partition's
//! parameters; everything else is reported as a gap by kind.

mod action_run;
mod audit;
mod completeness;
mod contract;
mod dq;
mod error;
mod promotion;
mod promotion_wave;
mod report;
mod rollback;
mod service;
mod verify;

pub use action_run::PromotionSettings;
pub use audit::{audit_csv, audit_json};
pub use completeness::{Reverify, reconcile_once, reconcile_pass};
pub use contract::{
    ContractField, ContractFlags, Disagreement, check_job_unchanged, policy_of, recorded_job,
    recorded_policy,
};
pub use dq::{Check, DqPolicy, Op, Rule, Verdict};
pub use error::ReconcileError;
pub use promotion::{PromotionOutcome, promote};
pub use report::{Gap, GapKind, Proven, Report};
pub use rollback::rollback;
pub use service::{ServiceOptions, run_reconciler};
