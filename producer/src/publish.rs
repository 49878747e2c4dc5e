//! Publishing the trigger message of every partition not yet confirmed by the broker.

use backfill_broker::Publisher;
use backfill_contract::{Attempt, BackfillId, PartitionMessage, Step};
use backfill_ledger::Ledger;

use crate::{Order, ProduceError};

/// Publishes a trigger for every pending partition whose message was never confirmed,
/// in the requested order, and records each confirm in the ledger. `progress` is called
/// after each chunk is recorded with (done, total). Returns how many were published.
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
    ledger
        .bind_namespace(backfill_id, publisher.namespace())
        .await?;
    let ledger_id = ledger.ledger_id().await?;
    let mut waiting = ledger.unenqueued(backfill_id).await?;
    if order == Order::NewestFirst {
        waiting.reverse();
    }
    let total = waiting.len();
    let mut done = 0;
    // Confirms are awaited a chunk at a time, the chunk's publishes in flight together;
    // a chunk is recorded in the ledger (one transaction) only once all of it is
    // confirmed. A failure leaves the chunk unrecorded: the next run publishes it again,
    // and a repeated trigger is harmless.
    for chunk in waiting.chunks(PUBLISH_CHUNK) {
        let mut confirms = tokio::task::JoinSet::new();
        for (date, seq) in chunk {
            let mut msg = PartitionMessage::new(
                backfill_id.clone(),
                *date,
                Attempt::FIRST,
                backfill.manifest_id.clone(),
                Step::Trigger,
            );
            // A trigger the sweep has re-issued since supersedes this one.
            msg.issue_seq = Some(*seq);
            msg.ledger_id = Some(ledger_id.clone());
            let publisher = publisher.clone();
            confirms.spawn(async move {
                publisher
                    .publish_trigger(&msg.encode(), &msg.message_id.to_string())
                    .await
            });
        }
        while let Some(confirmed) = confirms.join_next().await {
            confirmed
                .map_err(|e| ProduceError::Invalid(format!("publishing task failed: {e}")))??;
        }
        let dates: Vec<_> = chunk.iter().map(|(date, _)| *date).collect();
        ledger.mark_enqueued_many(backfill_id, &dates).await?;
        done += chunk.len();
        progress(done, total);
    }
    Ok(total)
}

/// Trigger messages in flight at once while publishing.
const PUBLISH_CHUNK: usize = 256;
