//! The fleet-wide pauses of Databricks endpoints set after throttling.

use backfill_ledger::{Ledger, now_ms};

use crate::error::OperationError;

/// An endpoint paused now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPause {
    pub endpoint: String,
    /// Seconds until the pause ends.
    pub remaining_s: i64,
}

/// The endpoints paused now.
pub async fn paused_endpoints(ledger: &Ledger) -> Result<Vec<EndpointPause>, OperationError> {
    let now = now_ms();
    Ok(ledger
        .paused_endpoints()
        .await?
        .into_iter()
        .map(|(endpoint, until)| EndpointPause {
            endpoint,
            remaining_s: (until - now).max(0) / 1000,
        })
        .collect())
}

/// Ends the pause of every endpoint, or of one; returns how many pauses ended. Workers
/// follow within a heartbeat.
pub async fn clear_pauses(ledger: &Ledger, endpoint: Option<&str>) -> Result<u64, OperationError> {
    Ok(ledger.clear_pauses(endpoint).await?)
}
