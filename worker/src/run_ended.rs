//! What a run's end tells about the others, so the next ones start without delay:
//!
//! - its slot is free: when the backfill's triggers wait at its cap, the waiting trigger
//!   due next is woken, and takes the slot within moments rather than at its next ask
//!   (the cap itself stays inside the claim: a woken trigger finding the slot taken
//!   waits again);
//! - runs started together end together: while the backfill has too few finished runs
//!   for polling to predict ends, the checks of the runs triggered with it look now.

use std::time::Duration;

use backfill_broker::{Destination, Lane};
use backfill_contract::{Attempt, PartitionDate, PartitionMessage, Step};
use backfill_ledger::{Partition, now_ms};

use crate::received::Received;
use crate::{StepError, Worker};

impl Worker {
    /// A run of `m`'s backfill ended and its slot is free: if this worker lately saw the
    /// backfill's triggers held at the cap, wake one. Best effort: a trigger not woken
    /// takes the slot at its next ask, and one woken but not published is re-issued by
    /// the sweep.
    pub(crate) async fn slot_freed(&self, m: &Received) {
        if !self.cached.lately_at_cap(&m.msg.backfill_id) {
            return;
        }
        if let Err(e) = self.wake_waiting_trigger(m).await {
            tracing::warn!(error = %e, "could not hand the freed slot to a waiting trigger; one takes it at its next ask");
        }
    }

    /// `p`'s run succeeded after `length` and was seen `seen_after` its end: when it is
    /// the backfill's first run to end (no history to predict ends from), look now at the
    /// runs triggered within a twentieth of that length of it (at least a second) whose
    /// next check is further away than `seen_after` (at most that twentieth): one due
    /// sooner sees its run's end no later than this one was seen, and restarting it
    /// would cost a message and gain little.
    /// Best effort: a check not published is re-issued by the sweep.
    pub(crate) async fn siblings_may_have_ended(
        &self,
        m: &Received,
        p: &Partition,
        length: Duration,
        seen_after: Duration,
    ) {
        let Some(triggered) = p.triggered_at_ms else {
            return;
        };
        let enough = self.config.poll.min_history;
        let history = self
            .cached
            .run_history(&self.ledger, &m.msg.backfill_id, enough)
            .await;
        // Only the first end of the backfill (as this worker last read it): the checks
        // of one wave are restarted once, not at every end.
        if history.finished > 1 || enough == 0 {
            return;
        }
        let near = length.mul_f64(0.05).max(Duration::from_secs(1));
        let near_ms = near.as_millis() as i64;
        if let Err(e) = self
            .look_at_siblings(
                m,
                (triggered - near_ms, triggered + near_ms),
                seen_after.min(near),
            )
            .await
        {
            tracing::warn!(error = %e, "could not restart the checks of runs started with this one; they look at their next check");
        }
    }

    async fn wake_waiting_trigger(&self, m: &Received) -> Result<(), StepError> {
        let id = &m.msg.backfill_id;
        let Some(woken) = self.ledger.wake_waiting_trigger(id, now_ms()).await? else {
            return Ok(());
        };
        let mut msg = self
            .fresh_message(m, woken.date, woken.attempt, Step::Trigger)
            .await?;
        msg.issue_seq = Some(woken.issue_seq);
        msg.reason = Some(format!("a slot freed ({} ended)", m.msg.partition_date));
        self.publish(m, &msg, Destination::Lane(Lane::Trigger))
            .await?;
        self.metrics.worker.trigger_woken();
        tracing::debug!(woken = %woken.date, "freed slot handed to a waiting trigger");
        Ok(())
    }

    async fn look_at_siblings(
        &self,
        m: &Received,
        window: (i64, i64),
        seen_after: Duration,
    ) -> Result<(), StepError> {
        let id = &m.msg.backfill_id;
        // A check due within the shortest delay tier, or within as long as this run's
        // end took to be seen, looks soon enough anyway.
        let now = now_ms();
        let soon = now + m.publisher.shortest_delay().max(seen_after).as_millis() as i64;
        let siblings = self
            .ledger
            .restart_sibling_checks(id, window, now, soon)
            .await?;
        // Every restarted chain is published, whatever became of the one before.
        let mut first_error = None;
        for s in siblings {
            let step = Step::Check {
                run_id: s.run_id,
                check_seq: s.check_seq,
            };
            let published = async {
                let mut msg = self.fresh_message(m, s.date, s.attempt, step).await?;
                msg.reason = Some(format!(
                    "a run started with it ended ({})",
                    m.msg.partition_date
                ));
                self.publish(m, &msg, Destination::Lane(Lane::Check)).await
            };
            if let Err(e) = published.await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A message of this fleet about another partition of `m`'s backfill.
    async fn fresh_message(
        &self,
        m: &Received,
        date: PartitionDate,
        attempt: Attempt,
        step: Step,
    ) -> Result<PartitionMessage, StepError> {
        let mut msg = PartitionMessage::new(
            m.msg.backfill_id.clone(),
            date,
            attempt,
            m.msg.manifest_id.clone(),
            step,
        );
        msg.ledger_id = Some(self.ledger_id().await?);
        Ok(msg)
    }
}
