//! Putting a message into the dead-letter queue with everything an operator needs to
//! decide what to do with it.

use backfill_broker::{BrokerError, Destination, Headers, Publisher};
use backfill_ledger::now_ms;

/// Why and where a message is dead-lettered. The body is the original message, unchanged.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeadLetter<'a> {
    /// A short, low-cardinality kind: `invalid_message`, `run_failed`, `trigger_refused`, ...
    pub kind: &'static str,
    /// The readable reason and the last error.
    pub error: &'a str,
    pub backfill_id: Option<&'a str>,
    pub partition_date: Option<String>,
    pub attempt: Option<u32>,
    pub run_id: Option<i64>,
    pub run_url: Option<&'a str>,
    pub source_lane: &'static str,
    pub worker_id: &'a str,
}

impl DeadLetter<'_> {
    fn headers(&self) -> Headers {
        let mut h = Headers::new()
            .with("x-backfill-reason", self.kind)
            .with("x-backfill-error", self.error)
            .with("x-backfill-source-lane", self.source_lane)
            .with("x-backfill-dead-lettered-by", self.worker_id)
            .with("x-backfill-dead-lettered-at-ms", now_ms());
        if let Some(v) = self.backfill_id {
            h = h.with("x-backfill-id", v);
        }
        if let Some(v) = &self.partition_date {
            h = h.with("x-backfill-partition", v);
        }
        if let Some(v) = self.attempt {
            h = h.with("x-backfill-attempt", v);
        }
        if let Some(v) = self.run_id {
            h = h.with("x-backfill-run-id", v);
        }
        if let Some(v) = self.run_url {
            h = h.with("x-backfill-run-url", v);
        }
        h
    }

    /// Publishes the original body to the dead-letter queue and waits for the confirm.
    pub async fn publish(&self, publisher: &Publisher, body: &[u8]) -> Result<(), BrokerError> {
        let id = format!("dead-{}", uuid::Uuid::new_v4().simple());
        publisher
            .publish(Destination::DeadLetter, body, &id, &self.headers())
            .await
    }
}
