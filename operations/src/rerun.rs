//! New attempts for terminal partitions, each recorded with who and why.

use backfill_broker::Broker;
use backfill_contract::{BackfillId, PartitionDate};
use backfill_ledger::Ledger;

use crate::error::OperationError;
use crate::pause::Operator;

/// Queues a new attempt of each partition (its trigger confirmed by the broker), in turn;
/// `on_queued` hears of each date and its attempt. The first refusal stops the rest.
pub async fn rerun(
    ledger: &Ledger,
    broker: &Broker,
    backfill_id: &BackfillId,
    dates: &[PartitionDate],
    operator: Operator<'_>,
    mut on_queued: impl FnMut(PartitionDate, u32),
) -> Result<(), OperationError> {
    let publisher = broker.publisher();
    for &date in dates {
        let attempt = backfill_producer::request_rerun(
            ledger,
            &publisher,
            backfill_id,
            date,
            operator.by,
            operator.reason,
        )
        .await?;
        on_queued(date, attempt);
    }
    Ok(())
}
