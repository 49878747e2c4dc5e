//! The worker's decisions as pure functions, tested by tables: what a trigger or check
//! message should do given the ledger, whether a failure is retried, when to look next.

use std::time::Duration;

use backfill_contract::Attempt;
use backfill_databricks::{Failure, FailureClass};
use backfill_ledger::{Partition, PartitionState};

use crate::{PollPolicy, RetryPolicy};

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
    RestartChecks { run_id: i64 },
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

/// What a check message should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAction {
    /// The message is not the live check of this run: acknowledge and forget it.
    Drop(String),
    /// Read the run from Databricks.
    Look,
}

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
pub fn decide_check(p: &Partition, attempt: Attempt, run_id: i64, check_seq: i64) -> CheckAction {
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

/// When to look at a run next, given how long ago it was triggered.
pub fn next_check_in(run_age: Duration, policy: &PollPolicy) -> Duration {
    run_age
        .mul_f64(policy.age_fraction)
        .clamp(policy.first, policy.max.max(policy.first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(state: PartitionState, attempt: u32) -> Partition {
        Partition {
            backfill_id: "bf".parse().unwrap(),
            date: "2026-01-01".parse().unwrap(),
            state,
            attempt: Attempt::try_from(attempt).unwrap(),
            idempotency_token: None,
            run_id: (state == PartitionState::Running).then_some(77),
            run_url: None,
            check_seq: 3,
            check_due_ms: None,
            enqueued: true,
            owner: Some("w1".into()),
            last_error: None,
            triggered_at_ms: Some(1_000),
            run_started_ms: None,
            run_ended_ms: None,
            verified_at_ms: None,
            updated_at_ms: 0,
        }
    }

    fn a(n: u32) -> Attempt {
        Attempt::try_from(n).unwrap()
    }

    #[test]
    fn trigger_decisions() {
        use PartitionState::*;
        use TriggerAction as T;
        let lease = Duration::from_secs(10);
        let cases: Vec<(&str, PartitionState, u32, u32, &str, i64, T)> = vec![
            (
                "fresh partition is claimed",
                Pending,
                1,
                1,
                "w2",
                2_000,
                T::Claim,
            ),
            (
                "failed partition's next attempt is claimed",
                Failed,
                2,
                2,
                "w2",
                2_000,
                T::Claim,
            ),
            (
                "own claim re-attaches",
                Triggering,
                1,
                1,
                "w1",
                2_000,
                T::ReAttach,
            ),
            (
                "other's fresh claim waits",
                Triggering,
                1,
                1,
                "w2",
                2_000,
                T::WaitForOwner("being triggered by w1".into()),
            ),
            (
                "other's expired claim re-attaches",
                Triggering,
                1,
                1,
                "w2",
                11_000,
                T::ReAttach,
            ),
            (
                "running restarts checks",
                Running,
                1,
                1,
                "w2",
                2_000,
                T::RestartChecks { run_id: 77 },
            ),
            (
                "succeeded drops",
                Succeeded,
                1,
                1,
                "w2",
                2_000,
                T::Drop("partition already succeeded".into()),
            ),
            (
                "cancelled drops",
                Cancelled,
                1,
                1,
                "w2",
                2_000,
                T::Drop("partition already cancelled".into()),
            ),
            (
                "older attempt drops",
                Pending,
                3,
                2,
                "w2",
                2_000,
                T::Drop("attempt 2 superseded by 3".into()),
            ),
            (
                "next attempt waits for the ledger",
                Running,
                1,
                2,
                "w2",
                2_000,
                T::WaitForLedger,
            ),
            (
                "far-ahead attempt is poison",
                Pending,
                1,
                5,
                "w2",
                2_000,
                T::Poison("attempt 5 is ahead of the ledger's attempt 1".into()),
            ),
        ];
        for (name, state, ledger_attempt, msg_attempt, me, now, want) in cases {
            let got = decide_trigger(
                &partition(state, ledger_attempt),
                a(msg_attempt),
                Some(1_000),
                me,
                now,
                lease,
            );
            assert_eq!(got, want, "{name}");
        }
        // A re-run's trigger may arrive before the ledger records its attempt, even on a
        // finished partition; it waits, but not forever.
        let done = partition(Succeeded, 1);
        assert_eq!(
            decide_trigger(&done, a(2), Some(1_000), "w", 2_000, lease),
            T::WaitForLedger
        );
        let late = 1_000 + LEDGER_CATCH_UP.as_millis() as i64;
        assert_eq!(
            decide_trigger(&done, a(2), Some(1_000), "w", late, lease),
            T::Drop("attempt 2 was never recorded".into())
        );
    }

    #[test]
    fn check_decisions() {
        let p = partition(PartitionState::Running, 1);
        assert_eq!(decide_check(&p, a(1), 77, 3), CheckAction::Look);
        assert_eq!(
            decide_check(&p, a(1), 77, 2),
            CheckAction::Drop("superseded check".into())
        );
        assert_eq!(
            decide_check(&p, a(1), 78, 3),
            CheckAction::Drop("superseded check".into())
        );
        assert_eq!(
            decide_check(&p, a(2), 77, 3),
            CheckAction::Drop("superseded check".into())
        );
        let done = partition(PartitionState::Succeeded, 1);
        assert_eq!(
            decide_check(&done, a(1), 77, 3),
            CheckAction::Drop("partition is succeeded".into())
        );
    }

    #[test]
    fn messages_wait_until_due() {
        assert_eq!(remaining_wait(None, 1_000), None);
        assert_eq!(
            remaining_wait(Some(5_000), 1_000),
            Some(Duration::from_secs(4))
        );
        assert_eq!(remaining_wait(Some(1_020), 1_000), None);
        assert_eq!(remaining_wait(Some(500), 1_000), None);
    }

    #[test]
    fn failure_decisions_follow_class_budgets() {
        let policy = RetryPolicy::default();
        let f = |class| Failure {
            class,
            code: "CODE".into(),
            message: String::new(),
        };
        let retry = |d: FailureDecision| matches!(d, FailureDecision::Retry { .. });
        assert!(retry(decide_failure(
            &f(FailureClass::Transient),
            a(1),
            &policy,
            0.0
        )));
        assert!(retry(decide_failure(
            &f(FailureClass::Transient),
            a(4),
            &policy,
            0.0
        )));
        assert!(!retry(decide_failure(
            &f(FailureClass::Transient),
            a(5),
            &policy,
            0.0
        )));
        assert!(retry(decide_failure(
            &f(FailureClass::UserCode),
            a(1),
            &policy,
            0.0
        )));
        assert!(!retry(decide_failure(
            &f(FailureClass::UserCode),
            a(2),
            &policy,
            0.0
        )));
        assert!(!retry(decide_failure(
            &f(FailureClass::Configuration),
            a(1),
            &policy,
            0.0
        )));
        assert!(!retry(decide_failure(
            &f(FailureClass::Unknown),
            a(1),
            &policy,
            0.0
        )));
        match decide_failure(&f(FailureClass::Cancelled), a(1), &policy, 0.0) {
            FailureDecision::DeadLetter { reason } => {
                assert!(reason.contains("never retried"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Backoff doubles, is capped, and jitter stays within its fraction.
        assert_eq!(
            decide_failure(&f(FailureClass::Transient), a(3), &policy, 0.0),
            FailureDecision::Retry {
                after: Duration::from_secs(120)
            }
        );
        assert_eq!(
            decide_failure(&f(FailureClass::Transient), a(2), &policy, 1.0),
            FailureDecision::Retry {
                after: Duration::from_secs(72)
            }
        );
        let capped = RetryPolicy {
            transient_attempts: 40,
            ..policy.clone()
        };
        assert_eq!(
            decide_failure(&f(FailureClass::Transient), a(30), &capped, 0.0),
            FailureDecision::Retry {
                after: policy.max_delay
            }
        );
    }

    #[test]
    fn polling_starts_soon_and_slows_with_age() {
        let p = PollPolicy::default();
        assert_eq!(next_check_in(Duration::ZERO, &p), Duration::from_secs(1));
        assert_eq!(
            next_check_in(Duration::from_secs(60), &p),
            Duration::from_secs(15)
        );
        assert_eq!(
            next_check_in(Duration::from_secs(20 * 60), &p),
            Duration::from_secs(300)
        );
        assert_eq!(
            next_check_in(Duration::from_secs(10 * 3600), &p),
            Duration::from_secs(600)
        );
    }
}
