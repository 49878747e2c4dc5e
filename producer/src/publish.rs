//! Publishing the trigger message of every partition not yet confirmed by the broker.

use backfill_broker::{Destination, Headers, Lane, Publisher, SENT_MS_HEADER};
use backfill_contract::{Attempt, BackfillId, PartitionMessage, Step};
use backfill_ledger::{Ledger, PartitionKey, now_ms};

use crate::{Order, ProduceError};

/// Publishes a trigger for every pending partition whose message was never confirmed,
/// in the requested order, and records each confirm in the ledger. `progress` is called
/// after each confirm with (done, total). Returns how many were published.
pub async fn publish_pending(
    ledger: &Ledger,
    publisher: &Publisher,
    backfill_id: &BackfillId,
    order: Order,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, ProduceError> {
    let Some(backfill) = ledger.backfill(backfill_id).await? else {
        return Err(ProduceError::Invalid(format!(
            "backfill {backfill_id} is not registered"
        )));
    };
    let mut dates = ledger.unenqueued(backfill_id).await?;
    if order == Order::NewestFirst {
        dates.reverse();
    }
    let total = dates.len();
    for (i, date) in dates.into_iter().enumerate() {
        let msg = PartitionMessage::new(
            backfill_id.clone(),
            date,
            Attempt::FIRST,
            backfill.manifest_id.clone(),
            Step::Trigger,
        );
        publisher
            .publish(
                Destination::Lane(Lane::Trigger),
                &msg.encode(),
                &msg.message_id.to_string(),
                &Headers::new().with(SENT_MS_HEADER, now_ms()),
            )
            .await?;
        ledger
            .mark_enqueued(&PartitionKey::new(backfill_id.clone(), date))
            .await?;
        progress(i + 1, total);
    }
    Ok(total)
}
