//! Finding a backfill in the ledger, or saying it is not there.

use backfill_contract::BackfillId;
use backfill_ledger::{Backfill, Ledger};

use crate::error::OperationError;

/// The backfill of this id, or [`OperationError::UnknownBackfill`].
pub async fn load_backfill(
    ledger: &Ledger,
    backfill_id: &BackfillId,
) -> Result<Backfill, OperationError> {
    ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| OperationError::UnknownBackfill(backfill_id.clone()))
}
