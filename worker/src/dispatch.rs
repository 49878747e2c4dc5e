//! The step function: one message in, its follow-ups published, a [`Handled`] out. The
//! loop acknowledges the delivery only after this returns `Ok`. Here a message is
//! decoded, checked for its fleet and its due time, and handed to its step's path.

use std::time::Duration;

use backfill_broker::{Lane, Publisher};
use backfill_contract::Step;
use backfill_ledger::now_ms;
use tracing::Instrument;

use crate::check::CheckOf;
use crate::in_process::waited_on_arrival;
use crate::policy::remaining_wait;
use crate::received::Received;
use crate::{Handled, StepError, Worker};

impl Worker {
    /// Handles one message body from `lane`.
    pub async fn process(
        &self,
        publisher: &Publisher,
        lane: Lane,
        body: &[u8],
    ) -> Result<Handled, StepError> {
        match Received::decode(publisher, lane, body, None) {
            Ok(m) => {
                let span = m.span();
                self.handle(&m).instrument(span).await
            }
            Err(invalid) => {
                self.dead_letter_invalid(publisher, lane, body, &invalid.to_string())
                    .await
            }
        }
    }

    /// Handles a decoded message: ours, due, of a known partition, then its step.
    pub(crate) async fn handle(&self, m: &Received) -> Result<Handled, StepError> {
        let msg = &m.msg;
        if let Some(theirs) = &msg.ledger_id {
            let mine = self.ledger_id().await?;
            if *theirs != mine
                && self
                    .ledger
                    .has_backfills_in(m.publisher.namespace())
                    .await?
            {
                // This worker's ledger runs backfills in this namespace: the stray is the
                // message (a producer given another ledger), not this worker.
                let reason = format!(
                    "sent by the fleet whose ledger is {theirs} into a namespace whose \
                     backfills are in ledger {mine}"
                );
                return self.poison(m, &reason).await;
            }
            if *theirs != mine {
                return Err(StepError::Foreign(format!(
                    "a message of the fleet whose ledger is {theirs} reached this worker, whose \
                     ledger is {mine}: {} points at another fleet",
                    self.config.fleet_settings
                )));
            }
        }
        let now = now_ms();
        if let Some(due) = msg.not_before_ms.or(m.sent_ms).filter(|due| *due <= now) {
            let waited = Duration::from_millis((now - due) as u64);
            self.metrics.worker.message_wait(m.lane.key(), waited);
        }
        if let Some(wait) = remaining_wait(msg.not_before_ms, now) {
            if !waited_on_arrival(m, wait) {
                let reason = msg.reason.clone().unwrap_or_else(|| "not due yet".into());
                return self.delay_not_due(m, wait, &reason).await;
            }
            // Less than the shortest delay tier is left (a wait the tiers could not make
            // exactly): waited out here, so the message acts when due, not a tier later.
            tokio::time::sleep(wait).await;
        }
        let Some(partition) = self.ledger.partition(&m.key).await? else {
            return self
                .poison(m, "no such backfill partition in the ledger")
                .await;
        };
        match msg.step {
            Step::Trigger => self.on_trigger(m, &partition).await,
            Step::Check { run_id, check_seq } => {
                let check = CheckOf { run_id, check_seq };
                self.on_check(m, &partition, check).await
            }
        }
    }
}
