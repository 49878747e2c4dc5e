//! The worker's decisions as pure functions, tested by tables: what a trigger or check
//! message should do given the ledger, whether a failure is retried, when to look next.

use std::time::Duration;

use backfill_contract::{Attempt, CheckSeq, RunId};
use backfill_databricks::{Failure, FailureClass};
use backfill_ledger::{Partition, PartitionState};

use crate::RetryPolicy;

mod polling;

pub use polling::{RunHistory, check_phase, first_check_in, next_check_in};

/// What a trigger message should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerAction {
    /// Nothing left to do (finished, or an older attempt): acknowledge.
    Drop(String),
    /// The message cannot be right: dead-letter it with the reason.
    Poison(String),
    /// Claim the attempt, then start its run.
    Claim,
    /// The attempt is claimed but its run id not recorded: call `run-now` again with the
    /// recorded token, which returns the run if it was started.
    ReAttach,
    /// Another live worker is triggering it; look again later.
    WaitForOwner(String),
    /// The ledger has not yet recorded the attempt this message is for; look again later.
    WaitForLedger,
    /// The run exists: start a fresh chain of checks (an old chain dies at its next step).
    RestartChecks { run_id: RunId },
}

/// How long a trigger for the next attempt waits for the ledger to record that attempt
/// (its sender publishes first, then records); past this, the attempt was never decided.
pub const LEDGER_CATCH_UP: Duration = Duration::from_secs(300);

/// Decides a trigger message for `attempt` (first sent at `first_sent_ms`), given the
/// partition's row.
pub fn decide_trigger(
    p: &Partition,
    attempt: Attempt,
    first_sent_ms: Option<i64>,
    me: &str,
    now_ms: i64,
    lease: Duration,
) -> TriggerAction {
    if attempt.get() == p.attempt.get() + 1 {
        let waited = now_ms - first_sent_ms.unwrap_or(now_ms);
        return if waited < LEDGER_CATCH_UP.as_millis() as i64 {
            TriggerAction::WaitForLedger
        } else {
            TriggerAction::Drop(format!("attempt {attempt} was never recorded"))
        };
    }
    if p.state.is_terminal() {
        return TriggerAction::Drop(format!("partition already {}", p.state));
    }
    if attempt < p.attempt {
        return TriggerAction::Drop(format!("attempt {attempt} superseded by {}", p.attempt));
    }
    if attempt > p.attempt {
        return TriggerAction::Poison(format!(
            "attempt {attempt} is ahead of the ledger's attempt {}",
            p.attempt
        ));
    }
    match p.state {
        PartitionState::Pending | PartitionState::Failed => TriggerAction::Claim,
        PartitionState::Triggering => {
            let owner = p.owner.as_deref().unwrap_or("");
            let age = now_ms - p.triggered_at_ms.unwrap_or(0);
            if owner == me || age >= lease.as_millis() as i64 {
                TriggerAction::ReAttach
            } else {
                TriggerAction::WaitForOwner(format!("being triggered by {owner}"))
            }
        }
        PartitionState::Running => match p.run_id {
            Some(run_id) => TriggerAction::RestartChecks { run_id },
            None => TriggerAction::Poison("ledger shows running without a run id".into()),
        },
        PartitionState::Succeeded | PartitionState::DeadLettered | PartitionState::Cancelled => {
            TriggerAction::Drop(format!("partition already {}", p.state))
        }
    }
}

/// A trigger for the partition's current attempt that carries an older `issue_seq` than
/// the row: the sweep has issued a newer one (or the run is recorded), so this copy dies.
pub fn superseded_trigger(p: &Partition, attempt: Attempt, issue_seq: Option<CheckSeq>) -> bool {
    issue_seq.is_some_and(|seq| attempt == p.attempt && seq != p.check_seq)
}

/// What a check message should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAction {
    /// The message is not the live check of this run: acknowledge and forget it.
    Drop(String),
    /// Read the run from Databricks.
    Look,
}

/// How long a trigger waits before asking again when the backfill is at its cap.
///
/// Every waiting partition holds a message that asks for a slot now and then. Asking every
/// `base` would cost `waiting / base` claims a second (2,000/s for 10,000 partitions at
/// 5 s) to fill slots that free at the runs' pace. Spreading each message's wait over
/// `base * waiting / (4 * cap)` keeps the claims near `4 * cap / base` a second whatever
/// the backlog: enough to refill every slot four times per `base` (runs shorter than a
/// quarter of `base` are not Databricks jobs), and a freed slot is taken within about
/// `base / (4 * cap)`. The wait is at most
/// 120 times `base` on average (10 minutes at the default 5 s). `sample` is uniform in
/// [0, 1): the wait is spread evenly over zero to twice its mean (at least a tenth of
/// `base`), so that a burst of messages published together asks at an even pace from
/// the start, not all together after the shortest wait.
pub fn admission_wait(base: Duration, waiting: i64, cap: i64, sample: f64) -> Duration {
    let backlog = if cap > 0 {
        (waiting as f64 / (ADMISSION_OVERSAMPLE * cap as f64)).max(1.0)
    } else {
        1.0
    };
    let mean = base.mul_f64(backlog.min(ADMISSION_SPREAD_LIMIT));
    mean.mul_f64(2.0 * sample.clamp(0.0, 1.0)).max(base / 10)
}

/// How many times over the claims at the cap could refill every slot per base delay.
const ADMISSION_OVERSAMPLE: f64 = 4.0;

/// The longest mean wait at the cap, in multiples of the base admission delay.
const ADMISSION_SPREAD_LIMIT: f64 = 120.0;

/// How much longer a message that is not due yet must wait (`None` when due). Delay
/// tiers are fixed, so a wait is made of tiers no longer than it; a message that comes
/// back early goes round again without calling Databricks. Within 50 ms is on time.
pub fn remaining_wait(not_before_ms: Option<i64>, now_ms: i64) -> Option<Duration> {
    match not_before_ms {
        Some(t) if t - now_ms > 50 => Some(Duration::from_millis((t - now_ms) as u64)),
        _ => None,
    }
}

/// Decides a check message, given the partition's row.
pub fn decide_check(
    p: &Partition,
    attempt: Attempt,
    run_id: RunId,
    check_seq: CheckSeq,
) -> CheckAction {
    if p.state != PartitionState::Running {
        return CheckAction::Drop(format!("partition is {}", p.state));
    }
    if p.attempt != attempt || p.run_id != Some(run_id) || p.check_seq != check_seq {
        return CheckAction::Drop("superseded check".into());
    }
    CheckAction::Look
}

/// What to do after a failed run.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureDecision {
    /// Start a new attempt after this delay.
    Retry { after: Duration },
    /// Give up: dead-letter with this reason.
    DeadLetter { reason: String },
}

/// Decides a failed attempt. `jitter_sample` is uniform in [-1, 1].
pub fn decide_failure(
    failure: &Failure,
    attempt: Attempt,
    policy: &RetryPolicy,
    jitter_sample: f64,
) -> FailureDecision {
    let what = format!("{} ({})", failure.code, failure.class.as_str());
    let budget = match failure.class {
        FailureClass::Transient => policy.transient_attempts,
        FailureClass::UserCode => policy.user_code_attempts,
        FailureClass::Cancelled => {
            return FailureDecision::DeadLetter {
                reason: format!(
                    "run was cancelled: {what}; cancellations are never retried automatically"
                ),
            };
        }
        FailureClass::Configuration | FailureClass::Unknown => {
            return FailureDecision::DeadLetter {
                reason: format!("{what}: retrying cannot help"),
            };
        }
    };
    if attempt.get() >= budget {
        return FailureDecision::DeadLetter {
            reason: format!("{what}: gave up after {} attempts", attempt.get()),
        };
    }
    let exp = 2f64.powi(attempt.get().saturating_sub(1).min(30) as i32);
    let base = (policy.base_delay.as_secs_f64() * exp).min(policy.max_delay.as_secs_f64());
    let jittered = base * (1.0 + policy.jitter * jitter_sample.clamp(-1.0, 1.0));
    FailureDecision::Retry {
        after: Duration::from_secs_f64(jittered.max(0.0)),
    }
}

#[cfg(test)]
mod tests;
