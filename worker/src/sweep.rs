//! What a worker does beside handling messages: the sweep that re-issues what the broker
//! lost (overdue checks, overdue triggers), from the ledger.

use std::collections::HashMap;
use std::time::Duration;

use backfill_broker::{Lane, Publisher};
use backfill_contract::{BackfillId, PartitionMessage, Step};
use backfill_ledger::{Partition, PartitionState, now_ms};
use tracing::Instrument;

use crate::dead_letter::DeadLetter;
use crate::received::{Received, partition_span};
use crate::{StepError, Worker};

/// The manifest ids of one sweep pass, each backfill's read once. Only the manifest id is
/// read, so a backfill whose other fields no longer decode still has its lost messages
/// re-issued; the worker that handles them cannot read the backfill either, and
/// dead-letters them with the reason (invariant 11).
#[derive(Default)]
struct Manifests(HashMap<BackfillId, Option<String>>);

impl Manifests {
    async fn of(&mut self, worker: &Worker, p: &Partition) -> Option<String> {
        if let Some(known) = self.0.get(&p.backfill_id) {
            return known.clone();
        }
        let read = match worker.ledger.manifest_id(&p.backfill_id).await {
            Ok(manifest_id) => manifest_id,
            Err(e) => {
                tracing::warn!(backfill_id = %p.backfill_id, error = %e, "sweep: cannot read the backfill's manifest id; passing over its partitions");
                None
            }
        };
        self.0.insert(p.backfill_id.clone(), read.clone());
        read
    }
}

impl Worker {
    /// Re-issues the checks that are overdue by more than the grace period (their message
    /// was lost between handing the chain on and publishing). Safe to run on every
    /// worker at once: each re-issue is a compare-and-set. Returns how many it re-issued.
    pub async fn sweep_overdue_checks(&self, publisher: &Publisher) -> Result<usize, StepError> {
        let grace = self.config.check_grace.as_millis() as i64;
        let overdue = self
            .ledger
            .overdue_checks(now_ms() - grace, 200, publisher.namespace())
            .await?;
        let ledger_id = self.ledger_id().await?;
        let mut reissued = 0;
        let mut manifests = Manifests::default();
        for p in overdue {
            let (Some(run_id), Some(manifest_id)) = (p.run_id, manifests.of(self, &p).await) else {
                continue;
            };
            let Some(seq) = self
                .ledger
                .restart_checks(&p.key(), p.attempt, run_id, now_ms(), self.id())
                .await?
            else {
                continue;
            };
            let m = Received::issued(publisher, fresh_trigger(&p, &manifest_id, &ledger_id));
            let span = partition_span(Lane::Check, &p, Some(run_id));
            async {
                let reason = "overdue check re-issued";
                self.schedule_check(&m, run_id, seq, Duration::ZERO, reason)
                    .await?;
                tracing::warn!("re-issued an overdue check");
                Ok::<_, StepError>(())
            }
            .instrument(span)
            .await?;
            self.metrics.worker.checks_reissued(1);
            reissued += 1;
        }
        Ok(reissued)
    }

    /// Re-issues the trigger of every waiting partition (pending, failed, triggering) of an
    /// active backfill whose trigger has been due for longer than the grace period: the
    /// broker dead-lettered it on its delivery limit, a publish was lost, a worker of
    /// another fleet took it. Each re-issue is a compare-and-set that bumps the row's
    /// sequence, so one sweeper re-issues and older copies die on arrival. After
    /// `max_trigger_reissues` in a row without progress the partition is dead-lettered
    /// with the reason instead (invariant 11). Returns how many it re-issued.
    pub async fn sweep_overdue_triggers(&self, publisher: &Publisher) -> Result<usize, StepError> {
        let before = now_ms() - self.config.check_grace.as_millis() as i64;
        let overdue = self
            .ledger
            .overdue_triggers(before, 200, publisher.namespace())
            .await?;
        let ledger_id = self.ledger_id().await?;
        let mut reissued = 0;
        let mut manifests = Manifests::default();
        for p in overdue {
            let Some(manifest_id) = manifests.of(self, &p).await else {
                continue;
            };
            let msg = fresh_trigger(&p, &manifest_id, &ledger_id);
            let span = partition_span(Lane::Trigger, &p, None);
            if self
                .reissue_trigger(publisher, &p, msg, before)
                .instrument(span)
                .await?
            {
                self.metrics.worker.triggers_reissued(1);
                reissued += 1;
            }
        }
        Ok(reissued)
    }

    /// Re-issues one waiting partition's trigger `msg`, or dead-letters the partition
    /// once its trigger was lost too many times in a row. Returns whether it re-issued.
    async fn reissue_trigger(
        &self,
        publisher: &Publisher,
        p: &Partition,
        mut msg: PartitionMessage,
        before: i64,
    ) -> Result<bool, StepError> {
        let key = p.key();
        let Some(r) = self
            .ledger
            .reissue_trigger(&key, p.attempt, p.state, p.check_seq, before, self.id())
            .await?
        else {
            return Ok(false);
        };
        msg.issue_seq = Some(r.issue_seq);
        // A claimed partition is never given up here: its run may exist (a slow
        // run-now), so its re-issued trigger re-attaches with the recorded token, and
        // only the claim holder's refused run-now dead-letters it.
        if p.state != PartitionState::Triggering
            && r.reissues > i64::from(self.config.max_trigger_reissues)
        {
            let reason = format!(
                "trigger lost {} times in a row while {} (broker delivery limit, lost \
                 publishes, or a worker of another fleet taking it)",
                r.reissues - 1,
                p.state
            );
            let dead = DeadLetter::new("trigger_lost", &reason, Lane::Trigger).about(&msg);
            self.send_dead_letter(publisher, &msg.encode(), dead)
                .await?;
            // Only from the state the sweep saw, with its sequence: a trigger that claimed
            // the partition meanwhile wins, and the DLQ copy is then stale.
            if self
                .ledger
                .dead_letter_waiting(&key, p.attempt, p.state, r.issue_seq, &reason, self.id())
                .await?
            {
                tracing::warn!(reason, "partition dead-lettered");
            }
            return Ok(false);
        }
        msg.reason = Some(format!("trigger re-issued: none handled while {}", p.state));
        publisher
            .publish_trigger(&msg.encode(), &msg.message_id.to_string())
            .await?;
        tracing::warn!(state = %p.state, "re-issued an overdue trigger");
        Ok(true)
    }
}

/// A fresh trigger of the partition's current attempt, sent by the sweep of this fleet.
fn fresh_trigger(p: &Partition, manifest_id: &str, ledger_id: &str) -> PartitionMessage {
    let mut msg = PartitionMessage::new(
        p.backfill_id.clone(),
        p.date,
        p.attempt,
        manifest_id,
        Step::Trigger,
    );
    msg.ledger_id = Some(ledger_id.to_owned());
    msg
}
