//! An operator's deliberate re-run of a partition as a new attempt.

use backfill_broker::{DELAY_REASON_HEADER, Destination, Headers, Lane, Publisher};
use backfill_contract::{BackfillId, PartitionDate, PartitionMessage, Step};
use backfill_ledger::{Ledger, PartitionKey};

use crate::ProduceError;

/// Publishes the trigger of the partition's next attempt, then records the decision.
/// Publishing first loses nothing if we die in between: a trigger that arrives before
/// the ledger records its attempt waits, and one whose attempt is never recorded is
/// dropped as stale.
pub async fn request_rerun(
    ledger: &Ledger,
    publisher: &Publisher,
    backfill_id: &BackfillId,
    date: PartitionDate,
    actor: &str,
    why: &str,
) -> Result<u32, ProduceError> {
    let key = PartitionKey::new(backfill_id.clone(), date);
    let (Some(p), Some(backfill)) = (
        ledger.partition(&key).await?,
        ledger.backfill(backfill_id).await?,
    ) else {
        return Err(ProduceError::Invalid(format!(
            "backfill {backfill_id} has no partition {date}"
        )));
    };
    if !p.state.is_terminal() {
        return Err(ProduceError::Invalid(format!(
            "partition {date} is {}; only succeeded, dead-lettered or cancelled partitions can be re-run",
            p.state
        )));
    }
    ledger
        .bind_namespace(backfill_id, publisher.namespace())
        .await?;
    let next = p.attempt.next();
    let mut msg = PartitionMessage::new(
        backfill_id.clone(),
        date,
        next,
        backfill.manifest_id,
        Step::Trigger,
    );
    msg.reason = Some(format!("rerun requested by {actor}: {why}"));
    // request_rerun keeps the sequence: this is the live trigger of the new attempt.
    msg.issue_seq = Some(p.check_seq);
    msg.ledger_id = Some(ledger.ledger_id().await?);
    let headers = Headers::new().with(DELAY_REASON_HEADER, msg.reason.clone().unwrap_or_default());
    publisher
        .publish(
            Destination::Lane(Lane::Trigger),
            &msg.encode(),
            &msg.message_id.to_string(),
            &headers,
        )
        .await?;
    if !ledger.request_rerun(&key, p.attempt, actor, why).await? {
        return Err(ProduceError::Invalid(format!(
            "partition {date} changed meanwhile; look again"
        )));
    }
    Ok(next.get())
}
