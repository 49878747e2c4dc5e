//! The run a transition is about.

use backfill_contract::RunId;

/// The run a transition is about, with its Databricks timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTimes {
    pub run_id: RunId,
    pub run_url: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}
