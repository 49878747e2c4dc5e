//! Pause and resume: no new runs start while a backfill is paused; running ones are
//! followed to their end.

use backfill_contract::BackfillId;
use backfill_ledger::{BackfillState, Ledger};

use crate::error::OperationError;
use crate::lookup::load_backfill;

/// Who asks and why (recorded in the audit trail).
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    pub by: &'a str,
    pub reason: &'a str,
}

impl<'a> Operator<'a> {
    pub fn new(by: &'a str, reason: &'a str) -> Self {
        Self { by, reason }
    }
}

/// Pauses (`paused`) or resumes the backfill; false when it already was so. A cancelled
/// backfill is refused.
pub async fn set_paused(
    ledger: &Ledger,
    backfill_id: &BackfillId,
    paused: bool,
    operator: Operator<'_>,
) -> Result<bool, OperationError> {
    let backfill = load_backfill(ledger, backfill_id).await?;
    if backfill.state == BackfillState::Cancelled {
        return Err(OperationError::Refused(format!(
            "backfill {backfill_id} is cancelled"
        )));
    }
    let state = if paused {
        BackfillState::Paused
    } else {
        BackfillState::Active
    };
    Ok(ledger
        .set_backfill_state(backfill_id, state, operator.by, operator.reason)
        .await?)
}
