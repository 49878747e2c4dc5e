//! One message being handled, decoded once: the message, its partition's key, the body
//! as it came (what the dead-letter queue keeps), the lane it came from and the
//! publisher its follow-ups go out on. Every part of a step reads it from here.

use backfill_broker::{Lane, Publisher};
use backfill_contract::{
    Attempt, BackfillId, ContractError, PartitionDate, PartitionMessage, RunId, Step,
};
use backfill_ledger::{Partition, PartitionKey};
use tracing::Span;
use tracing::field::Empty;

/// A decoded message with what handling it needs.
#[derive(Debug)]
pub(crate) struct Received {
    pub msg: PartitionMessage,
    /// The partition the message is about, built once.
    pub key: PartitionKey,
    /// The body as received, unchanged.
    pub body: Vec<u8>,
    /// The lane it was received on.
    pub lane: Lane,
    pub publisher: Publisher,
    /// When it was published (`x-backfill-sent-ms`), if the delivery says.
    pub sent_ms: Option<i64>,
}

impl Received {
    /// Decodes a body received on `lane`; the error names what is wrong with it.
    pub fn decode(
        publisher: &Publisher,
        lane: Lane,
        body: &[u8],
        sent_ms: Option<i64>,
    ) -> Result<Self, ContractError> {
        let msg = PartitionMessage::decode(body)?;
        Ok(Self {
            key: PartitionKey::new(msg.backfill_id.clone(), msg.partition_date),
            msg,
            body: body.to_vec(),
            lane,
            publisher: publisher.clone(),
            sent_ms,
        })
    }

    /// A message this worker issues itself (the sweep), as if received on its step's
    /// lane, so that its follow-ups and dead letter go out as any other's.
    pub fn issued(publisher: &Publisher, msg: PartitionMessage) -> Self {
        let lane = step_lane(&msg.step);
        Self {
            key: PartitionKey::new(msg.backfill_id.clone(), msg.partition_date),
            body: msg.encode(),
            msg,
            lane,
            publisher: publisher.clone(),
            sent_ms: None,
        }
    }

    /// The lane of the message's step (where a trigger or a check belongs).
    pub fn step_lane(&self) -> Lane {
        step_lane(&self.msg.step)
    }

    /// The span every log line about this message is written in: lane, backfill,
    /// partition, attempt and, once known, the run.
    pub fn span(&self) -> Span {
        let run_id = match self.msg.step {
            Step::Check { run_id, .. } => Some(run_id),
            Step::Trigger => None,
        };
        let msg = &self.msg;
        span(
            self.lane,
            &msg.backfill_id,
            msg.partition_date,
            msg.attempt,
            run_id,
        )
    }
}

/// The span of what the sweep does for a partition's message on `lane`.
pub(crate) fn partition_span(lane: Lane, p: &Partition, run_id: Option<RunId>) -> Span {
    span(lane, &p.backfill_id, p.date, p.attempt, run_id)
}

/// At the error level, so that a log line of any level names its message whatever the
/// filter; `run_id` is recorded later when a trigger starts its run.
fn span(
    lane: Lane,
    backfill_id: &BackfillId,
    partition: PartitionDate,
    attempt: Attempt,
    run_id: Option<RunId>,
) -> Span {
    let span = tracing::error_span!(
        "message",
        lane = lane.key(),
        backfill_id = %backfill_id,
        partition = %partition,
        attempt = %attempt,
        run_id = Empty,
    );
    if let Some(run_id) = run_id {
        span.record("run_id", run_id.get());
    }
    span
}

fn step_lane(step: &Step) -> Lane {
    match step {
        Step::Trigger => Lane::Trigger,
        Step::Check { .. } => Lane::Check,
    }
}
