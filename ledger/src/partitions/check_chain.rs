//! The live chain of checks of a running partition: recording the run starts it, a
//! trigger finding its run restarts it, each check hands it on.

use backfill_contract::{Attempt, CheckSeq, RunId};

use crate::partitions::cas::{Bind, Cas};
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, PartitionState};

impl Ledger {
    /// triggering → running: records the run id; returns the new check sequence, which
    /// names the one live chain of check messages.
    pub async fn record_run(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: RunId,
        run_url: Option<&str>,
        check_due_ms: i64,
        actor: &str,
    ) -> Result<Option<CheckSeq>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .move_to(PartitionState::Running)
            .set("run_id", Bind::Int(run_id.get()))
            .set("run_url", Bind::OptText(run_url.map(str::to_owned)))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1")
            .set_expr("outage_since_ms = NULL")
            .set_expr("reissues = 0");
        let event = NewEvent::partition(actor, key, attempt, "run_started")
            .run(Some(run_id))
            .states(PartitionState::Triggering, PartitionState::Running)
            .detail(run_url.unwrap_or_default().to_owned());
        self.apply(cas, event).await
    }

    /// Starts a new chain of checks for a running partition (the old chain, if any, dies
    /// at its next message). Used when a trigger message finds its run already recorded.
    pub async fn restart_checks(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: RunId,
        check_due_ms: i64,
        actor: &str,
    ) -> Result<Option<CheckSeq>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("run_id", Bind::Int(run_id.get()))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1");
        let event = NewEvent::partition(actor, key, attempt, "checks_restarted").run(Some(run_id));
        self.apply(cas, event).await
    }

    /// Hands the check chain on: `check_seq` → `check_seq + 1`, due at `check_due_ms`.
    /// Only the holder of the live check succeeds, so a duplicated check message dies
    /// here instead of growing a second chain. Not an event: the state does not change.
    pub async fn advance_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: CheckSeq,
        check_due_ms: i64,
    ) -> Result<Option<CheckSeq>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq.get()))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1")
            .set_expr("outage_since_ms = NULL");
        let mut tx = self.pool.begin().await?;
        let seq = Self::apply_in(&mut tx, cas, None).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Moves the live check's due time to `due_ms` (its message was sent round the delay
    /// tiers, for an outage say), so the sweep does not replace a check that is only
    /// waiting; `handled` (it was sent round without an error) ends any outage on record.
    /// Not an event.
    pub async fn touch_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: CheckSeq,
        due_ms: i64,
        handled: bool,
    ) -> Result<(), LedgerError> {
        let mut cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq.get()))
            .set("check_due_ms", Bind::Int(due_ms));
        if handled {
            cas = cas.set_expr("outage_since_ms = NULL");
        }
        let mut tx = self.pool.begin().await?;
        Self::apply_in(&mut tx, cas, None).await?;
        tx.commit().await?;
        Ok(())
    }
}
