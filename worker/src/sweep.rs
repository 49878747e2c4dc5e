//! What a worker does beside handling messages: the sweep that re-issues what the broker
//! lost, and recording a handler's panic in the ledger.

use std::time::Duration;

use backfill_broker::Publisher;
use backfill_contract::{PartitionMessage, Step};
use backfill_ledger::{PartitionKey, now_ms};

use crate::{StepError, Worker};

impl Worker {
    /// Re-issues the checks that are overdue by more than the grace period (their message
    /// was lost between handing the chain on and publishing). Safe to run on every
    /// worker at once: each re-issue is a compare-and-set. Returns how many it re-issued.
    pub async fn sweep_overdue_checks(&self, publisher: &Publisher) -> Result<usize, StepError> {
        let grace = self.config.check_grace.as_millis() as i64;
        let overdue = self.ledger.overdue_checks(now_ms() - grace, 200).await?;
        let mut reissued = 0;
        for p in overdue {
            let (Some(run_id), Some(backfill)) =
                (p.run_id, self.ledger.backfill(&p.backfill_id).await?)
            else {
                continue;
            };
            let Some(seq) = self
                .ledger
                .restart_checks(&p.key(), p.attempt, run_id, now_ms(), self.id())
                .await?
            else {
                continue;
            };
            let msg = PartitionMessage::new(
                p.backfill_id.clone(),
                p.date,
                p.attempt,
                backfill.manifest_id,
                Step::Trigger,
            );
            self.schedule_check(
                publisher,
                &msg,
                run_id,
                seq,
                Duration::ZERO,
                "overdue check re-issued",
            )
            .await?;
            tracing::warn!(backfill_id = %p.backfill_id, partition = %p.date, run_id, "re-issued an overdue check");
            self.metrics.worker.checks_reissued(1);
            reissued += 1;
        }
        Ok(reissued)
    }

    /// Records in the ledger that the message for this partition made a handler panic,
    /// so the partition ends dead-lettered rather than stranded (best effort).
    pub(crate) async fn record_panic(&self, body: &[u8], reason: &str) {
        let Ok(msg) = PartitionMessage::decode(body) else {
            return;
        };
        let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
        if let Err(e) = self
            .ledger
            .dead_letter(&key, msg.attempt, None, reason, self.id())
            .await
        {
            tracing::error!(error = %e, "could not record the panic in the ledger");
        }
    }

}
