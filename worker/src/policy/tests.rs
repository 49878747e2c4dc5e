use super::*;
use backfill_contract::{CheckSeq, RunId};

#[test]
fn admission_waits_spread_with_the_backlog_and_keep_claims_near_cap_per_base() {
    let base = Duration::from_secs(5);
    // A backlog up to four times the cap asks again after about `base`.
    assert_eq!(admission_wait(base, 10, 50, 0.5), base);
    assert_eq!(admission_wait(base, 0, 50, 0.5), base);
    assert_eq!(admission_wait(base, 200, 50, 0.5), base);
    // Jitter spreads the wait over zero to twice its mean, at least a tenth of base.
    assert_eq!(admission_wait(base, 10, 50, 0.0), base / 10);
    assert_eq!(admission_wait(base, 10, 50, 0.25), base / 2);
    assert_eq!(admission_wait(base, 10, 50, 1.0), base * 2);
    // 10,000 waiting at a cap of 50: 50 times the base; 100,000: capped at 120 times.
    assert_eq!(admission_wait(base, 1000, 50, 0.5), base * 5);
    assert_eq!(admission_wait(base, 10_000, 50, 0.5), base * 50);
    assert_eq!(admission_wait(base, 100_000, 50, 0.5), base * 120);
    // Claims per second stay near 4 * cap / base whatever the backlog (until the limit).
    for waiting in [400, 2000, 10_000, 24_000] {
        let mean = admission_wait(base, waiting, 50, 0.5).as_secs_f64();
        let claims = waiting as f64 / mean;
        assert!((claims - 40.0).abs() < 1e-9, "{waiting}: {claims}");
    }
    // A cap of 0 (nothing may start) does not divide by zero.
    assert_eq!(admission_wait(base, 10, 0, 0.5), base);
}

fn partition(state: PartitionState, attempt: u32) -> Partition {
    Partition {
        backfill_id: "bf".parse().unwrap(),
        date: "2026-01-01".parse().unwrap(),
        state,
        attempt: Attempt::try_from(attempt).unwrap(),
        idempotency_token: None,
        run_id: (state == PartitionState::Running).then_some(RunId::from(77)),
        run_url: None,
        check_seq: CheckSeq::from(3),
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
fn only_the_newest_trigger_of_an_attempt_acts() {
    use PartitionState::*;
    let p = partition(Pending, 2); // check_seq 3
    assert!(
        !superseded_trigger(&p, a(2), None),
        "unstamped triggers stay valid"
    );
    assert!(!superseded_trigger(&p, a(2), Some(CheckSeq::from(3))));
    assert!(
        superseded_trigger(&p, a(2), Some(CheckSeq::from(2))),
        "re-issued since"
    );
    // Another attempt's trigger is judged by the attempt rules, not by the sequence.
    assert!(!superseded_trigger(&p, a(3), Some(CheckSeq::from(0))));
    assert!(superseded_trigger(
        &partition(Running, 2),
        a(2),
        Some(CheckSeq::from(2))
    ));
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
            T::RestartChecks {
                run_id: RunId::from(77),
            },
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
    assert_eq!(
        decide_check(&p, a(1), RunId::from(77), CheckSeq::from(3)),
        CheckAction::Look
    );
    assert_eq!(
        decide_check(&p, a(1), RunId::from(77), CheckSeq::from(2)),
        CheckAction::Drop("superseded check".into())
    );
    assert_eq!(
        decide_check(&p, a(1), RunId::from(78), CheckSeq::from(3)),
        CheckAction::Drop("superseded check".into())
    );
    assert_eq!(
        decide_check(&p, a(2), RunId::from(77), CheckSeq::from(3)),
        CheckAction::Drop("superseded check".into())
    );
    let done = partition(PartitionState::Succeeded, 1);
    assert_eq!(
        decide_check(&done, a(1), RunId::from(77), CheckSeq::from(3)),
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
