//! Putting a message into the dead-letter queue with everything an operator needs to
//! decide what to do with it (the headers of [`DeadLetterHeaders`]), and the step's
//! dead ends: a bad message (poison) and a partition given up.

use backfill_broker::{DeadLetterHeaders, Destination, Lane, Publisher};
use backfill_contract::{PartitionMessage, RunId};
use backfill_ledger::{RunTimes, now_ms};

use crate::check::CheckOf;
use crate::received::Received;
use crate::{Handled, StepError, Worker};

/// Why and where from a message is dead-lettered, and what it is about. The body is the
/// original message, unchanged.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter<'a> {
    /// A short, low-cardinality kind: `invalid_message`, `run_failed`, `trigger_refused`, ...
    pub kind: &'static str,
    /// The readable reason and the last error.
    pub error: &'a str,
    pub source_lane: Lane,
    /// The message it is about, when it could be decoded and says which partition.
    pub about: Option<&'a PartitionMessage>,
    pub run_id: Option<RunId>,
    pub run_url: Option<&'a str>,
}

impl<'a> DeadLetter<'a> {
    pub fn new(kind: &'static str, error: &'a str, source_lane: Lane) -> Self {
        Self {
            kind,
            error,
            source_lane,
            about: None,
            run_id: None,
            run_url: None,
        }
    }

    /// Names the message's backfill, partition and attempt.
    pub fn about(mut self, msg: &'a PartitionMessage) -> Self {
        self.about = Some(msg);
        self
    }

    /// Names the run (and its page, when known).
    pub fn run(mut self, run_id: RunId, run_url: Option<&'a str>) -> Self {
        self.run_id = Some(run_id);
        self.run_url = run_url;
        self
    }

    fn headers(&self, worker_id: &str) -> DeadLetterHeaders {
        DeadLetterHeaders {
            reason: Some(self.kind.to_owned()),
            error: Some(self.error.to_owned()),
            source_lane: Some(self.source_lane.key().to_owned()),
            dead_lettered_by: Some(worker_id.to_owned()),
            dead_lettered_at_ms: Some(now_ms()),
            backfill_id: self.about.map(|m| m.backfill_id.to_string()),
            partition: self.about.map(|m| m.partition_date.to_string()),
            attempt: self.about.map(|m| m.attempt.get()),
            run_id: self.run_id.map(RunId::get),
            run_url: self.run_url.map(str::to_owned),
        }
    }
}

impl Worker {
    /// Publishes `body` to the dead-letter queue (confirmed) and counts it.
    pub(crate) async fn send_dead_letter(
        &self,
        publisher: &Publisher,
        body: &[u8],
        dead: DeadLetter<'_>,
    ) -> Result<(), StepError> {
        let id = format!("dead-{}", uuid::Uuid::new_v4().simple());
        let headers = dead.headers(self.id()).to_headers();
        publisher
            .publish(Destination::DeadLetter, body, &id, &headers)
            .await?;
        self.metrics
            .worker
            .dead_lettered(dead.source_lane.key(), dead.kind);
        Ok(())
    }

    /// A body that is not a partition message goes to the dead-letter queue with the
    /// reason, and the worker carries on.
    pub(crate) async fn dead_letter_invalid(
        &self,
        publisher: &Publisher,
        lane: Lane,
        body: &[u8],
        reason: &str,
    ) -> Result<Handled, StepError> {
        let dead = DeadLetter::new("invalid_message", reason, lane);
        self.send_dead_letter(publisher, body, dead).await?;
        Ok(Handled::Poisoned(reason.to_owned()))
    }

    /// A message that cannot be right (another fleet's, of no known partition, ahead of
    /// the ledger) goes to the dead-letter queue with the reason.
    pub(crate) async fn poison(&self, m: &Received, reason: &str) -> Result<Handled, StepError> {
        let dead = DeadLetter::new("invalid_message", reason, m.lane).about(&m.msg);
        self.send_dead_letter(&m.publisher, &m.body, dead).await?;
        Ok(Handled::Poisoned(reason.to_owned()))
    }

    /// Dead-letters a partition at its check: the message first (so nothing is lost if
    /// we die next), then the ledger. `run` is the run when it ended (its time goes into
    /// the spend); none when Databricks does not know it.
    pub(crate) async fn give_up(
        &self,
        m: &Received,
        check: CheckOf,
        run: Option<&RunTimes>,
        kind: &'static str,
        reason: &str,
    ) -> Result<Handled, StepError> {
        let run_url = run.and_then(|r| r.run_url.as_deref());
        let dead = DeadLetter::new(kind, reason, Lane::Check)
            .about(&m.msg)
            .run(check.run_id, run_url);
        self.send_dead_letter(&m.publisher, &m.body, dead).await?;
        self.ledger
            .dead_letter(
                &m.key,
                m.msg.attempt,
                Some(check.check_seq),
                run,
                reason,
                self.id(),
            )
            .await?;
        tracing::warn!(reason, "partition dead-lettered");
        Ok(Handled::DeadLettered(reason.to_owned()))
    }
}
