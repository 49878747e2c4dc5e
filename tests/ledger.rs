//! The ledger suite, run against SQLite and PostgreSQL alike.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use backfill_contract::{Attempt, BackfillId, CheckSeq, PartitionDate, RunId};
use backfill_ledger::{
    ActionKind, ActionState, BackfillState, Claim, DqResult, Ledger, LedgerError, NewBackfill,
    PartitionKey, PartitionState, Registration, RunTimes, now_ms,
};

fn new_backfill(id: &str, days: u32, cap: i64) -> NewBackfill {
    let start: PartitionDate = "2026-01-01".parse().unwrap();
    let end = PartitionDate::new(start.date() + chrono::Days::new(u64::from(days - 1)));
    NewBackfill {
        backfill_id: id.parse().unwrap(),
        job_id: 1,
        start,
        end,
        params: BTreeMap::from([("code_version".into(), "abc123".into())]),
        concurrency_cap: cap,
        manifest_id: "m-test".into(),
        manifest: serde_json::json!({"job_settings_hash": "x"}),
        contract: None,
        created_by: "tester".into(),
    }
}

/// Registers [`new_backfill`] (which must succeed).
async fn register(ledger: &Ledger, id: &str, days: u32, cap: i64) -> Registration {
    ledger
        .register_backfill(&new_backfill(id, days, cap))
        .await
        .unwrap()
}

/// Records run `run_id` for a claimed attempt as worker `w`, returning the first check's
/// sequence number.
async fn recorded_run(
    ledger: &Ledger,
    key: &PartitionKey,
    attempt: Attempt,
    run_id: i64,
    check_due_ms: i64,
) -> CheckSeq {
    ledger
        .record_run(key, attempt, RunId::from(run_id), None, check_due_ms, "w")
        .await
        .unwrap()
        .expect("run recorded")
}

/// Claims `attempt` with `token` as worker `w` and records run `run_id` for it (first check
/// due at once), returning what recording answered.
async fn claimed_run(
    ledger: &Ledger,
    key: &PartitionKey,
    attempt: Attempt,
    token: &str,
    run_id: i64,
) -> Option<CheckSeq> {
    ledger
        .claim_trigger(key, attempt, token, "w")
        .await
        .unwrap();
    ledger
        .record_run(key, attempt, RunId::from(run_id), None, 0, "w")
        .await
        .unwrap()
}

fn key(id: &str, date: &str) -> PartitionKey {
    PartitionKey::new(id.parse().unwrap(), date.parse().unwrap())
}

fn times(run_id: i64) -> RunTimes {
    RunTimes {
        run_id: RunId::from(run_id),
        run_url: Some(format!("https://sim/#run/{run_id}")),
        started_ms: Some(1),
        ended_ms: Some(2),
    }
}

async fn for_each_backend<F, Fut>(test: F)
where
    F: Fn(Ledger) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (backend, url) in support::ledger_urls().await {
        let ledger = support::ledger(&url).await;
        assert_eq!(ledger.backend_name(), backend);
        test(ledger).await;
    }
}

#[tokio::test]
async fn registering_is_idempotent_and_refuses_a_different_request() {
    for_each_backend(|ledger| async move {
        let first = register(&ledger, "bf", 10, 5).await;
        assert!(first.created);
        assert_eq!(first.new_partitions, 10);
        let again = register(&ledger, "bf", 10, 5).await;
        assert!(!again.created);
        assert_eq!(again.new_partitions, 0);
        let err = ledger
            .register_backfill(&new_backfill("bf", 11, 5))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::Conflict(_)), "{err}");
        assert!(err.to_string().contains("different request"));
        let counts = ledger.state_counts(&"bf".parse().unwrap()).await.unwrap();
        assert_eq!(counts[&PartitionState::Pending], 10);
        let b = ledger
            .backfill(&"bf".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.params["code_version"], "abc123");
        assert_eq!(b.state, BackfillState::Active);
        assert_eq!(ledger.events(&b.backfill_id).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn migrations_run_once_and_reconnecting_is_harmless() {
    for (_, url) in support::ledger_urls().await {
        let a = support::ledger(&url).await;
        register(&a, "bf", 2, 1).await;
        let b = support::ledger(&url).await;
        assert_eq!(b.partitions(&"bf".parse().unwrap()).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_ledger_has_one_identity_and_a_backfill_one_namespace() {
    let mut ids = Vec::new();
    for (_, url) in support::ledger_urls().await {
        let a = support::ledger(&url).await;
        let id = a.ledger_id().await.unwrap();
        assert_eq!(id.len(), 32, "{id}");
        let again = support::ledger(&url).await;
        assert_eq!(
            again.ledger_id().await.unwrap(),
            id,
            "stable across connections"
        );
        ids.push(id);
        register(&a, "bf", 2, 1).await;
        let bf = "bf".parse().unwrap();
        a.bind_namespace(&bf, "fleet-a").await.unwrap();
        a.bind_namespace(&bf, "fleet-a").await.unwrap();
        let err = a.bind_namespace(&bf, "fleet-b").await.unwrap_err();
        assert!(matches!(err, LedgerError::OtherNamespace { .. }), "{err}");
        assert!(err.to_string().contains("\"fleet-a\""), "{err}");
    }
    assert_ne!(ids[0], ids[1], "two ledgers, two identities");
}

#[tokio::test]
async fn two_workers_racing_for_a_partition_only_one_claims_it() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 1, 10).await;
        let k = key("bf", "2026-01-01");
        let mut racers = Vec::new();
        for n in 0..8 {
            let (ledger, k) = (ledger.clone(), k.clone());
            racers.push(tokio::spawn(async move {
                ledger
                    .claim_trigger(&k, Attempt::FIRST, "tok", &format!("w{n}"))
                    .await
                    .unwrap()
            }));
        }
        let mut claimed = 0;
        for r in racers {
            if r.await.unwrap() == Claim::Claimed {
                claimed += 1;
            }
        }
        assert_eq!(claimed, 1);
        let events = ledger.events(&k.backfill_id).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == "claimed").count(), 1);
        let p = ledger.partition(&k).await.unwrap().unwrap();
        assert_eq!(p.state, PartitionState::Triggering);
        assert_eq!(p.idempotency_token.as_deref(), Some("tok"));
    })
    .await;
}

#[tokio::test]
async fn the_concurrency_cap_holds_under_concurrent_claims() {
    for_each_backend(|ledger| async move {
        register(&ledger, "capped", 20, 3).await;
        let id: BackfillId = "capped".parse().unwrap();
        let ledger = Arc::new(ledger);
        let mut claims = Vec::new();
        for p in ledger.partitions(&id).await.unwrap() {
            let ledger = ledger.clone();
            claims.push(tokio::spawn(async move {
                ledger
                    .claim_trigger(&p.key(), Attempt::FIRST, "t", "w")
                    .await
                    .unwrap()
            }));
        }
        let mut results = Vec::new();
        for c in claims {
            results.push(c.await.unwrap());
        }
        assert_eq!(results.iter().filter(|c| **c == Claim::Claimed).count(), 3);
        assert!(
            results
                .iter()
                .all(|c| matches!(c, Claim::Claimed | Claim::AtCapacity { cap: 3, .. }))
        );
        assert_eq!(ledger.active_runs(&id).await.unwrap(), 3);
    })
    .await;
}

/// Concurrent writes of different kinds (claims, runs recorded, claims refused at the
/// cap) share groups on SQLite, where alike jobs run as one batch: each caller still
/// gets its own answer, and the cap holds.
#[tokio::test]
async fn concurrent_writes_of_different_kinds_each_get_their_own_answer() {
    for_each_backend(|ledger| async move {
        register(&ledger, "mix", 60, 30).await;
        let id: BackfillId = "mix".parse().unwrap();
        let keys: Vec<PartitionKey> = ledger
            .partitions(&id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.key())
            .collect();
        let claim = |k: PartitionKey| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let c = ledger.claim_trigger(&k, Attempt::FIRST, "t", "w").await;
                (k, c.unwrap())
            })
        };
        let mut first = Vec::new();
        for handle in keys.iter().cloned().map(claim).collect::<Vec<_>>() {
            first.push(handle.await.unwrap());
        }
        let (claimed, refused): (Vec<_>, Vec<_>) =
            first.into_iter().partition(|(_, c)| *c == Claim::Claimed);
        assert_eq!(claimed.len(), 30, "the cap");
        // Runs recorded for the claimed partitions while the others ask again.
        let mut runs = Vec::new();
        for (n, (k, _)) in claimed.iter().enumerate() {
            let (ledger, k) = (ledger.clone(), k.clone());
            let run_id = 1_000 + n as i64;
            runs.push(tokio::spawn(async move {
                let seq = ledger
                    .record_run(&k, Attempt::FIRST, RunId::from(run_id), None, 0, "w")
                    .await
                    .unwrap();
                (k, run_id, seq)
            }));
        }
        let again: Vec<_> = refused.iter().map(|(k, _)| claim(k.clone())).collect();
        for r in runs {
            let (k, run_id, seq) = r.await.unwrap();
            assert!(seq.is_some(), "{k:?}: its run recorded");
            let p = ledger.partition(&k).await.unwrap().unwrap();
            assert_eq!(p.run_id, Some(RunId::from(run_id)), "{k:?}: its own run");
        }
        for a in again {
            let (k, c) = a.await.unwrap();
            assert!(
                matches!(c, Claim::AtCapacity { cap: 30, .. }),
                "{k:?}: {c:?}"
            );
        }
        assert_eq!(ledger.active_runs(&id).await.unwrap(), 30);
        let events = ledger.events(&id).await.unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == "claimed").count(), 30);
        assert_eq!(
            events.iter().filter(|e| e.kind == "run_started").count(),
            30
        );
    })
    .await;
}

#[tokio::test]
async fn a_paused_backfill_claims_nothing_until_resumed() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 1, 5).await;
        let id: BackfillId = "bf".parse().unwrap();
        assert!(
            ledger
                .set_backfill_state(&id, BackfillState::Paused, "op", "maintenance")
                .await
                .unwrap()
        );
        let k = key("bf", "2026-01-01");
        assert_eq!(
            ledger
                .claim_trigger(&k, Attempt::FIRST, "t", "w")
                .await
                .unwrap(),
            Claim::NotActive(BackfillState::Paused)
        );
        ledger
            .set_backfill_state(&id, BackfillState::Active, "op", "done")
            .await
            .unwrap();
        assert_eq!(
            ledger
                .claim_trigger(&k, Attempt::FIRST, "t", "w")
                .await
                .unwrap(),
            Claim::Claimed
        );
    })
    .await;
}

#[tokio::test]
async fn transitions_are_compare_and_set_along_the_state_machine() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 1, 5).await;
        let k = key("bf", "2026-01-01");
        let a1 = Attempt::FIRST;
        // A run cannot be recorded before the attempt is claimed.
        assert_eq!(
            ledger
                .record_run(&k, a1, RunId::from(7), None, 0, "w")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            ledger.claim_trigger(&k, a1, "t1", "w").await.unwrap(),
            Claim::Claimed
        );
        let seq = recorded_run(&ledger, &k, a1, 7, 0).await;
        // A second recording (a racing worker) is refused.
        assert_eq!(
            ledger
                .record_run(&k, a1, RunId::from(7), None, 0, "w2")
                .await
                .unwrap(),
            None
        );
        // A new check chain supersedes the old one.
        let seq2 = ledger
            .restart_checks(&k, a1, RunId::from(7), 0, "w2")
            .await
            .unwrap()
            .expect("restarted");
        assert_eq!(seq2, seq.next());
        assert!(
            !ledger
                .record_success(&k, a1, seq, times(7), "old-chain")
                .await
                .unwrap()
        );
        // The live chain schedules a retry: attempt 2, state failed.
        assert!(
            ledger
                .schedule_retry(&k, a1, seq2, times(7), 0, "CLOUD_FAILURE", "w2")
                .await
                .unwrap()
        );
        assert!(
            !ledger
                .schedule_retry(&k, a1, seq2, times(7), 0, "again", "w3")
                .await
                .unwrap()
        );
        let p = ledger.partition(&k).await.unwrap().unwrap();
        assert_eq!((p.state, p.attempt.get()), (PartitionState::Failed, 2));
        assert_eq!(p.last_error.as_deref(), Some("CLOUD_FAILURE"));
        // Attempt 2 runs and succeeds; attempt 1's claim can no longer happen.
        let a2 = a1.next();
        assert!(matches!(
            ledger.claim_trigger(&k, a1, "t1", "w").await.unwrap(),
            Claim::Lost
        ));
        assert_eq!(
            ledger.claim_trigger(&k, a2, "t2", "w").await.unwrap(),
            Claim::Claimed
        );
        let seq3 = recorded_run(&ledger, &k, a2, 8, 0).await;
        assert!(
            ledger
                .record_success(&k, a2, seq3, times(8), "w")
                .await
                .unwrap()
        );
        assert!(
            ledger
                .mark_verified(&k, a2, RunId::from(8), "reconciler")
                .await
                .unwrap()
        );
        assert!(
            !ledger
                .mark_verified(&k, a2, RunId::from(8), "reconciler")
                .await
                .unwrap()
        );
        let p = ledger.partition(&k).await.unwrap().unwrap();
        assert_eq!(p.state, PartitionState::Succeeded);
        assert_eq!(p.run_id, Some(RunId::from(8)));
        assert!(p.verified_at_ms.is_some());
        // Terminal: nothing moves it any more.
        assert!(
            !ledger
                .dead_letter(&k, a2, None, None, "late", "w")
                .await
                .unwrap()
        );
        let kinds: Vec<String> = ledger
            .events(&k.backfill_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "registered",
                "claimed",
                "run_started",
                "checks_restarted",
                "retry_scheduled",
                "claimed",
                "run_started",
                "succeeded",
                "verified"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn events_are_append_only() {
    for (backend, url) in support::ledger_urls().await {
        let ledger = support::ledger(&url).await;
        register(&ledger, "bf", 1, 1).await;
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let mut statements = vec!["UPDATE events SET detail = 'forged'", "DELETE FROM events"];
        if backend == "postgres" {
            // TRUNCATE fires no row trigger: a statement trigger refuses it.
            statements.push("TRUNCATE events");
        }
        for statement in statements {
            let err = sqlx::query(statement).execute(&mut conn).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{backend}: {err}");
        }
        assert_eq!(
            ledger.events(&"bf".parse().unwrap()).await.unwrap().len(),
            1
        );
    }
}

#[tokio::test]
async fn a_bad_ledger_url_names_the_problem() {
    let err = Ledger::connect("mysql://localhost/x").await.unwrap_err();
    assert!(
        err.to_string().contains("sqlite:// or postgres://"),
        "{err}"
    );
}

#[tokio::test]
async fn only_the_live_check_hands_the_chain_on_and_overdue_checks_are_found() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 1, 5).await;
        let k = key("bf", "2026-01-01");
        let a1 = Attempt::FIRST;
        ledger.claim_trigger(&k, a1, "t", "w").await.unwrap();
        let seq = recorded_run(&ledger, &k, a1, 7, 1_000).await;
        let (a, b) = tokio::join!(
            ledger.advance_check(&k, a1, seq, 2_000),
            ledger.advance_check(&k, a1, seq, 2_000)
        );
        let winners: Vec<CheckSeq> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert_eq!(
            winners,
            [seq.next()],
            "exactly one holder of check {seq} hands the chain on"
        );
        assert!(
            ledger
                .overdue_checks(1_999, 10, "ns")
                .await
                .unwrap()
                .is_empty()
        );
        let overdue = ledger.overdue_checks(2_001, 10, "ns").await.unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].check_due_ms, Some(2_000));
    })
    .await;
}

#[tokio::test]
async fn waiting_partitions_can_be_cancelled_and_claims_dead_lettered_only_by_their_owner() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 2, 5).await;
        let (k1, k2) = (key("bf", "2026-01-01"), key("bf", "2026-01-02"));
        let a1 = Attempt::FIRST;
        assert!(
            ledger
                .cancel_partition(&k1, a1, "op", "backfill cancelled")
                .await
                .unwrap()
        );
        assert_eq!(
            ledger.partition(&k1).await.unwrap().unwrap().state,
            PartitionState::Cancelled
        );
        ledger.claim_trigger(&k2, a1, "t", "owner").await.unwrap();
        assert!(
            !ledger
                .dead_letter_claim(&k2, a1, "someone-else", "refused")
                .await
                .unwrap()
        );
        ledger
            .record_run(&k2, a1, RunId::from(9), None, 0, "owner")
            .await
            .unwrap();
        // Once a run is recorded, even the owner's late refusal cannot dead-letter it.
        assert!(
            !ledger
                .dead_letter_claim(&k2, a1, "owner", "refused")
                .await
                .unwrap()
        );
        assert!(
            !ledger
                .cancel_partition(&k2, a1, "op", "too late")
                .await
                .unwrap()
        );
        assert_eq!(
            ledger.partition(&k2).await.unwrap().unwrap().state,
            PartitionState::Running
        );
    })
    .await;
}

#[tokio::test]
async fn the_summary_is_computed_by_the_database_and_matches_the_rows() {
    for_each_backend(|ledger| async move {
        let id: BackfillId = "bf".parse().unwrap();
        register(&ledger, "bf", 4, 5).await;
        // Day 1 succeeds (a 1 ms run) after a retry and is verified; day 2 runs; day 3
        // is dead-lettered; day 4 waits.
        let d1 = key("bf", "2026-01-01");
        let a1 = Attempt::FIRST;
        ledger.claim_trigger(&d1, a1, "t1", "w").await.unwrap();
        let s = recorded_run(&ledger, &d1, a1, 1, 0).await;
        ledger
            .schedule_retry(&d1, a1, s, times(1), 0, "CLOUD_FAILURE", "w")
            .await
            .unwrap();
        let a2 = a1.next();
        ledger.claim_trigger(&d1, a2, "t2", "w").await.unwrap();
        let s = recorded_run(&ledger, &d1, a2, 2, 0).await;
        let long = RunTimes {
            started_ms: Some(1_000),
            ended_ms: Some(4_000),
            ..times(2)
        };
        assert!(ledger.record_success(&d1, a2, s, long, "w").await.unwrap());
        assert!(
            ledger
                .mark_verified(&d1, a2, RunId::from(2), "r")
                .await
                .unwrap()
        );
        let d2 = key("bf", "2026-01-02");
        claimed_run(&ledger, &d2, a1, "t3", 3).await;
        let d3 = key("bf", "2026-01-03");
        ledger.claim_trigger(&d3, a1, "t4", "w").await.unwrap();
        assert!(
            ledger
                .dead_letter(&d3, a1, None, None, "bad", "w")
                .await
                .unwrap()
        );

        let summary = ledger.partition_summary(&id, 0).await.unwrap();
        let counts = ledger.state_counts(&id).await.unwrap();
        assert_eq!(summary.states, counts);
        assert_eq!(summary.total(), 4);
        assert_eq!(summary.count(PartitionState::Running), 1);
        assert_eq!(summary.active(), 1);
        assert_eq!(summary.unfinished(), 2);
        assert_eq!(summary.verified, 1);
        assert_eq!(summary.retries, 1);
        // Both runs of day 1 count: attempt 1's 1 ms (times(1)) and attempt 2's 3 s.
        let rows = ledger.partitions(&id).await.unwrap();
        assert_eq!(summary.finished_runs, 2);
        assert_eq!(summary.run_ms, 3_001);
        assert_eq!(ledger.finished_run_time(&id).await.unwrap(), (3_001, 2));
        assert_eq!(summary.finished_since, 2);
        assert_eq!(
            ledger
                .partition_summary(&id, now_ms() + 1)
                .await
                .unwrap()
                .finished_since,
            0
        );
        assert_eq!(
            summary.first_triggered_ms,
            rows.iter().filter_map(|p| p.triggered_at_ms).min()
        );

        // The latest verdict per partition and rule counts: day 1 failed `rows` on its
        // first attempt and passed on its second; day 2 fails `rows` and `nulls`, then
        // passes `nulls` on a re-evaluation of the same attempt.
        let dq = |attempt: i64, rule: &str, passed: bool| DqResult {
            partition_date: String::new(),
            attempt,
            run_id: RunId::from(1),
            rule: rule.into(),
            passed,
            value: "1".into(),
            threshold: "0".into(),
            policy_hash: "p".into(),
        };
        let d1_attempt1 = [dq(1, "rows", false), dq(1, "nulls", true)];
        ledger.record_dq(&d1, a1, "r", &d1_attempt1).await.unwrap();
        let d1_attempt2 = [dq(2, "rows", true), dq(2, "nulls", true)];
        ledger.record_dq(&d1, a2, "r", &d1_attempt2).await.unwrap();
        let d2_first = [dq(1, "rows", false), dq(1, "nulls", false)];
        ledger.record_dq(&d2, a1, "r", &d2_first).await.unwrap();
        ledger
            .record_dq(&d2, a1, "r", &[dq(1, "nulls", true)])
            .await
            .unwrap();
        assert_eq!(
            ledger.dq_failing(&id).await.unwrap(),
            [("nulls".to_owned(), 0), ("rows".to_owned(), 1)]
        );

        ledger
            .create_action(
                &id,
                "p1",
                ActionKind::Promote,
                1,
                &["2026-01-01".into()],
                "tok",
                None,
                "r",
            )
            .await
            .unwrap();
        ledger
            .create_action(
                &id,
                "p2",
                ActionKind::Promote,
                2,
                &["2026-01-02".into()],
                "tok2",
                None,
                "r",
            )
            .await
            .unwrap();
        assert!(
            ledger
                .move_action(
                    &id,
                    "p1",
                    &[ActionState::Requested],
                    ActionState::Succeeded,
                    Some(RunId::from(9)),
                    "",
                    "r"
                )
                .await
                .unwrap()
        );
        assert_eq!(
            ledger.action_counts(&id).await.unwrap(),
            [
                (ActionKind::Promote, ActionState::Requested, 1),
                (ActionKind::Promote, ActionState::Succeeded, 1)
            ]
        );
    })
    .await;
}

/// A run of `ms` milliseconds at Databricks.
fn run_of(run_id: i64, ms: i64) -> RunTimes {
    RunTimes {
        started_ms: Some(10_000),
        ended_ms: Some(10_000 + ms),
        ..times(run_id)
    }
}

#[tokio::test]
async fn spend_counts_every_attempts_run_and_never_goes_down() {
    for_each_backend(|ledger| async move {
        let id: BackfillId = "bf".parse().unwrap();
        register(&ledger, "bf", 3, 5).await;
        let spend = || async { ledger.partition_summary(&id, 0).await.unwrap().run_ms };
        let mut last = 0;
        let step = |last: &mut i64, now: i64| {
            assert!(now >= *last, "spend went down from {last} to {now}");
            *last = now;
        };

        // Day 1 fails once after 3 s, then succeeds after 1 s: both runs count.
        let d1 = key("bf", "2026-01-01");
        let a1 = Attempt::FIRST;
        let s = claimed_run(&ledger, &d1, a1, "t1", 1).await;
        assert!(
            ledger
                .schedule_retry(
                    &d1,
                    a1,
                    s.unwrap(),
                    run_of(1, 3_000),
                    0,
                    "CLOUD_FAILURE",
                    "w"
                )
                .await
                .unwrap()
        );
        step(&mut last, spend().await);
        assert_eq!(last, 3_000);
        let a2 = a1.next();
        let s = claimed_run(&ledger, &d1, a2, "t2", 2).await;
        assert!(
            ledger
                .record_success(&d1, a2, s.unwrap(), run_of(2, 1_000), "w")
                .await
                .unwrap()
        );
        step(&mut last, spend().await);
        assert_eq!(last, 4_000, "the failed run and the successful one");
        let summary = ledger.partition_summary(&id, 0).await.unwrap();
        assert_eq!(summary.finished_runs, 2);
        assert_eq!(ledger.finished_run_time(&id).await.unwrap(), (4_000, 2));

        // A late duplicate of the success changes nothing.
        assert!(
            !ledger
                .record_success(&d1, a2, s.unwrap(), run_of(2, 1_000), "w")
                .await
                .unwrap()
        );
        step(&mut last, spend().await);
        assert_eq!(last, 4_000);

        // A re-run of day 1 keeps what was spent; its third run, dead-lettered as failed
        // for good after 500 ms, adds to it.
        assert!(ledger.request_rerun(&d1, a2, "op", "dq").await.unwrap());
        step(&mut last, spend().await);
        let a3 = a2.next();
        let s = claimed_run(&ledger, &d1, a3, "t3", 3).await;
        let dead = run_of(3, 500);
        assert!(
            ledger
                .dead_letter(&d1, a3, s, Some(&dead), "failed for good", "w")
                .await
                .unwrap()
        );
        step(&mut last, spend().await);
        assert_eq!(last, 4_500);

        // Day 2 is cancelled while its run runs: its end is unknown, so it counts from
        // its claim to the cancel (an upper bound), and not as a measured run.
        let d2 = key("bf", "2026-01-02");
        let before_claim = now_ms();
        claimed_run(&ledger, &d2, a1, "t4", 4).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(ledger.cancel_active(&d2, a1, "op", "stop").await.unwrap());
        let after_cancel = now_ms();
        step(&mut last, spend().await);
        let bounded = last - 4_500;
        assert!(
            (50..=after_cancel - before_claim).contains(&bounded),
            "cancelled run counted {bounded} ms"
        );
        assert_eq!(
            ledger
                .partition_summary(&id, 0)
                .await
                .unwrap()
                .finished_runs,
            3
        );
        // A waiting partition cancelled had no run of its attempt: nothing added.
        let d3 = key("bf", "2026-01-03");
        assert!(ledger.cancel_active(&d3, a1, "op", "stop").await.unwrap());
        step(&mut last, spend().await);
        assert_eq!(last, 4_500 + bounded);
    })
    .await;
}

#[tokio::test]
async fn the_budget_guard_counts_the_runs_of_failed_attempts() {
    for_each_backend(|ledger| async move {
        let id: BackfillId = "bf".parse().unwrap();
        register(&ledger, "bf", 2, 5).await;
        // One unit per run-second; two runs of a second each have cost 2.
        let guards = backfill_ledger::Guards {
            price_per_run_hour: Some(3_600.0),
            budget: Some(2.5),
            ..Default::default()
        };
        assert!(ledger.set_guards(&id, &guards, "op").await.unwrap());
        let d1 = key("bf", "2026-01-01");
        let a1 = Attempt::FIRST;
        let s = claimed_run(&ledger, &d1, a1, "t1", 1).await;
        ledger
            .schedule_retry(
                &d1,
                a1,
                s.unwrap(),
                run_of(1, 1_000),
                0,
                "CLOUD_FAILURE",
                "w",
            )
            .await
            .unwrap();
        let a2 = a1.next();
        let s = claimed_run(&ledger, &d1, a2, "t2", 2).await;
        ledger
            .record_success(&d1, a2, s.unwrap(), run_of(2, 1_000), "w")
            .await
            .unwrap();
        // Spent 2, one more run at the average of 1: 3 > 2.5.
        let d2 = key("bf", "2026-01-02");
        match ledger.claim_trigger(&d2, a1, "t3", "w").await.unwrap() {
            Claim::Held { reason, detail } => {
                assert_eq!(reason, backfill_ledger::HoldReason::Budget);
                assert!(detail.contains("projected spend 3.00"), "{detail}");
            }
            other => panic!("expected the budget to hold the claim: {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn every_partition_event_names_its_states_and_the_attempts_run() {
    for_each_backend(|ledger| async move {
        let id: BackfillId = "bf".parse().unwrap();
        register(&ledger, "bf", 4, 5).await;
        let a1 = Attempt::FIRST;
        let a2 = a1.next();

        // Day 1: claimed, running, cancelled, re-run, claimed again (the cancelled run
        // belongs to attempt 1, not 2), refused and dead-lettered by its claim.
        let d1 = key("bf", "2026-01-01");
        claimed_run(&ledger, &d1, a1, "t1", 11).await;
        assert!(ledger.cancel_active(&d1, a1, "op", "stop").await.unwrap());
        assert!(ledger.request_rerun(&d1, a1, "op", "again").await.unwrap());
        ledger.claim_trigger(&d1, a2, "t2", "w").await.unwrap();
        assert!(
            ledger
                .dead_letter_claim(&d1, a2, "w", "refused")
                .await
                .unwrap()
        );

        // Day 2: a run fails and is retried; the waiting attempt 2 is dead-lettered (the
        // failed run is attempt 1's); re-run from there carries no run either.
        let d2 = key("bf", "2026-01-02");
        let s = claimed_run(&ledger, &d2, a1, "t3", 21).await;
        ledger
            .schedule_retry(&d2, a1, s.unwrap(), times(21), 0, "CLOUD_FAILURE", "w")
            .await
            .unwrap();
        assert!(
            ledger
                .dead_letter(&d2, a2, None, None, "gave up", "w")
                .await
                .unwrap()
        );
        assert!(ledger.request_rerun(&d2, a2, "op", "again").await.unwrap());

        // Day 3: dead-lettered while running (its run not known at Databricks), re-run.
        let d3 = key("bf", "2026-01-03");
        let s = claimed_run(&ledger, &d3, a1, "t4", 31).await;
        assert!(
            ledger
                .dead_letter(&d3, a1, s, None, "run not found", "w")
                .await
                .unwrap()
        );
        assert!(ledger.request_rerun(&d3, a1, "op", "again").await.unwrap());

        // Day 4: succeeds, is verified, then re-run.
        let d4 = key("bf", "2026-01-04");
        let s = claimed_run(&ledger, &d4, a1, "t5", 41).await;
        ledger
            .record_success(&d4, a1, s.unwrap(), times(41), "w")
            .await
            .unwrap();
        assert!(
            ledger
                .mark_verified(&d4, a1, RunId::from(41), "r")
                .await
                .unwrap()
        );
        assert!(ledger.request_rerun(&d4, a1, "op", "dq").await.unwrap());

        let seen: Vec<(String, i64, String, String, String, Option<i64>)> = ledger
            .events(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.partition_date.is_some())
            .map(|e| {
                (
                    e.partition_date.unwrap(),
                    e.attempt.unwrap(),
                    e.kind,
                    e.from_state.expect("from state"),
                    e.to_state.expect("to state"),
                    e.run_id.map(RunId::get),
                )
            })
            .collect();
        let ev = |d: &str, a: i64, kind: &str, from: &str, to: &str, run: Option<i64>| {
            (
                format!("2026-01-0{d}"),
                a,
                kind.to_owned(),
                from.to_owned(),
                to.to_owned(),
                run,
            )
        };
        assert_eq!(
            seen,
            [
                ev("1", 1, "claimed", "pending", "triggering", None),
                ev("1", 1, "run_started", "triggering", "running", Some(11)),
                ev("1", 1, "cancelled", "running", "cancelled", Some(11)),
                ev("1", 1, "rerun_requested", "cancelled", "failed", Some(11)),
                ev("1", 2, "claimed", "failed", "triggering", None),
                ev("1", 2, "dead_lettered", "triggering", "dead_lettered", None),
                ev("2", 1, "claimed", "pending", "triggering", None),
                ev("2", 1, "run_started", "triggering", "running", Some(21)),
                ev("2", 1, "retry_scheduled", "running", "failed", Some(21)),
                ev("2", 2, "dead_lettered", "failed", "dead_lettered", None),
                ev("2", 2, "rerun_requested", "dead_lettered", "failed", None),
                ev("3", 1, "claimed", "pending", "triggering", None),
                ev("3", 1, "run_started", "triggering", "running", Some(31)),
                ev(
                    "3",
                    1,
                    "dead_lettered",
                    "running",
                    "dead_lettered",
                    Some(31)
                ),
                ev(
                    "3",
                    1,
                    "rerun_requested",
                    "dead_lettered",
                    "failed",
                    Some(31)
                ),
                ev("4", 1, "claimed", "pending", "triggering", None),
                ev("4", 1, "run_started", "triggering", "running", Some(41)),
                ev("4", 1, "succeeded", "running", "succeeded", Some(41)),
                ev("4", 1, "verified", "succeeded", "succeeded", Some(41)),
                ev("4", 1, "rerun_requested", "succeeded", "failed", Some(41)),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn the_csv_export_neutralises_cells_a_spreadsheet_would_evaluate() {
    for_each_backend(|ledger| async move {
        let id: BackfillId = "bf".parse().unwrap();
        let mut new = new_backfill("bf", 1, 1);
        new.created_by = "=cmd|' /C calc'!A0".into();
        ledger.register_backfill(&new).await.unwrap();
        ledger
            .set_backfill_state(&id, BackfillState::Paused, "@evil", "-1+1, \"quoted\"")
            .await
            .unwrap();
        let csv = backfill_reconciler::audit_csv(&ledger, &id).await.unwrap();
        assert!(
            csv.contains("'=cmd|' /C calc'!A0") && csv.contains(",'@evil,"),
            "{csv}"
        );
        assert!(
            csv.contains("\"paused: -1+1, \"\"quoted\"\"\""),
            "a cell not starting with a formula character is kept: {csv}"
        );
        // No cell, quoted or not, starts with a character a spreadsheet evaluates.
        for line in csv.lines() {
            let mut cells = Vec::new();
            let (mut cell, mut quoted) = (String::new(), false);
            for c in line.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => cells.push(std::mem::take(&mut cell)),
                    c => cell.push(c),
                }
            }
            cells.push(cell);
            for cell in cells {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?} in {line}"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_freed_slot_wakes_the_trigger_due_next_and_runs_triggered_together_are_looked_at() {
    for_each_backend(|ledger| async move {
        register(&ledger, "bf", 4, 5).await;
        let bf: BackfillId = "bf".parse().unwrap();
        let a1 = Attempt::FIRST;
        assert_eq!(ledger.wake_waiting_trigger(&bf, 1_000).await.unwrap(), None);
        // Two triggers wait in the delay tiers (due at 5 s and 3 s); one is due already
        // (in its lane, not waiting); one was never sent round.
        let (k1, k2, k3) = (
            key("bf", "2026-01-01"),
            key("bf", "2026-01-02"),
            key("bf", "2026-01-03"),
        );
        ledger
            .touch_trigger(&k1, a1, None, 5_000, true, true)
            .await
            .unwrap();
        ledger
            .touch_trigger(&k2, a1, None, 3_000, true, true)
            .await
            .unwrap();
        ledger
            .touch_trigger(&k3, a1, None, 500, true, true)
            .await
            .unwrap();
        let before = ledger.partition(&k2).await.unwrap().unwrap().check_seq;
        let first = ledger
            .wake_waiting_trigger(&bf, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.date, first.attempt),
            (k2.date, a1),
            "the one due next"
        );
        assert_eq!(first.issue_seq, before.next(), "its waiting message dies");
        let row = ledger.partition(&k2).await.unwrap().unwrap();
        assert_eq!(
            (row.check_seq, row.check_due_ms),
            (first.issue_seq, Some(1_000))
        );
        let second = ledger
            .wake_waiting_trigger(&bf, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.date, k1.date);
        assert_eq!(ledger.wake_waiting_trigger(&bf, 1_000).await.unwrap(), None);

        // A retry waiting out its backoff is not woken; once its trigger meets the cap,
        // it is. Another backfill's waiting triggers are never touched.
        register(&ledger, "br", 2, 5).await;
        register(&ledger, "bo", 1, 5).await;
        let br: BackfillId = "br".parse().unwrap();
        let kr = key("br", "2026-01-01");
        ledger.claim_trigger(&kr, a1, "tr", "w").await.unwrap();
        let seq = recorded_run(&ledger, &kr, a1, 5, 0).await;
        let later = now_ms() + 60_000;
        assert!(
            ledger
                .schedule_retry(&kr, a1, seq, times(5), later, "boom", "w")
                .await
                .unwrap()
        );
        let ko = key("bo", "2026-01-01");
        ledger
            .touch_trigger(&ko, a1, None, later, true, true)
            .await
            .unwrap();
        let now = now_ms();
        assert_eq!(ledger.wake_waiting_trigger(&br, now).await.unwrap(), None);
        let a2 = a1.next();
        ledger
            .touch_trigger(&kr, a2, None, later, true, true)
            .await
            .unwrap();
        let retry = ledger
            .wake_waiting_trigger(&br, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((retry.date, retry.attempt), (kr.date, a2));
        let other = ledger.partition(&ko).await.unwrap().unwrap();
        assert_eq!(
            other.check_due_ms,
            Some(later),
            "another backfill's trigger waits on"
        );

        // Runs triggered together: those whose next check is later than now are made
        // due now (once); one whose check is due already is left alone.
        register(&ledger, "bs", 3, 5).await;
        let bs: BackfillId = "bs".parse().unwrap();
        let far = now_ms() + 3_600_000;
        let mut seqs = Vec::new();
        for (date, due) in [("2026-01-01", far), ("2026-01-02", far), ("2026-01-03", 0)] {
            let k = key("bs", date);
            ledger.claim_trigger(&k, a1, date, "w").await.unwrap();
            seqs.push(recorded_run(&ledger, &k, a1, seqs.len() as i64 + 1, due).await);
        }
        let now = now_ms();
        let window = (now - 60_000, now + 60_000);
        let mut looked = ledger
            .restart_sibling_checks(&bs, window, now, now)
            .await
            .unwrap();
        looked.sort_by_key(|s| s.date);
        let dates: Vec<String> = looked.iter().map(|s| s.date.to_string()).collect();
        assert_eq!(dates, ["2026-01-01", "2026-01-02"]);
        assert_eq!(looked[0].check_seq, seqs[0].next());
        assert_eq!(looked[1].run_id, RunId::from(2));
        assert!(
            ledger
                .restart_sibling_checks(&bs, window, now + 1, now + 1)
                .await
                .unwrap()
                .is_empty(),
            "checks already due are not restarted again"
        );
        // Outside the window, nothing; nor a check due sooner than asked.
        register(&ledger, "bt", 1, 5).await;
        let kt = key("bt", "2026-01-01");
        ledger.claim_trigger(&kt, a1, "tt", "w").await.unwrap();
        recorded_run(&ledger, &kt, a1, 9, now + 500).await;
        let bt: BackfillId = "bt".parse().unwrap();
        assert!(
            ledger
                .restart_sibling_checks(&bt, window, now, now + 1_000)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            ledger
                .restart_sibling_checks(&bs, (0, 1), 0, 0)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}
