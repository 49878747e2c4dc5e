//! The reconciler against the simulator over HTTP, on SQLite and PostgreSQL: proof of
//! completeness, the data-quality gate, promotion in waves (once, even when raced),
//! approval, rollback, and the audit trail.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_ledger::{ActionKind, ActionState};
use backfill_reconciler::{GapKind, PromotionOutcome, Reverify, audit_csv, audit_json, promote};
use backfill_simulator::SimConfig;
use support::fleet::{ContractSpec, Fleet, fast_sim, sim_with_metric};
use support::promotion::{
    current_proofs, job_runs, promote_fleet, promoted, reconcile_fleet, reconcile_fleet_pass,
    rollback_fleet, settings, told,
};

const POLICY: &str = include_str!("../policies/usage-daily.toml");

/// The shipped policy, as a contract records it.
fn with_policy() -> ContractSpec {
    ContractSpec {
        policy: Some(POLICY),
        ..ContractSpec::default()
    }
}

/// A simulator whose run of `date` reports `count` duplicate keys.
fn duplicate_keys_on(date: &str, count: i64) -> SimConfig {
    sim_with_metric(date, "duplicate_keys", serde_json::json!(count))
}

/// Runs a backfill of `days` to the end on each ledger backend, then hands it to `check`.
async fn on_both_ledgers<F, Fut>(days: u32, sim: SimConfig, spec: ContractSpec, check: F)
where
    F: Fn(Fleet) -> Fut,
    Fut: std::future::Future<Output = Fleet>,
{
    for url in [support::sqlite_url(), support::postgres_url().await] {
        let mut fleet = Fleet::build_with(
            days,
            20,
            sim.clone(),
            &support::amqp_url(),
            &url,
            spec.clone(),
        )
        .await;
        fleet.run_to_the_end().await;
        let fleet = check(fleet).await;
        fleet.stop().await;
    }
}

/// What each promotion run was told to copy: (partition, staging version), in run order.
async fn promoted_params(fleet: &Fleet) -> Vec<(String, i64)> {
    job_runs(fleet, 2).await.iter().flat_map(told).collect()
}

/// Each partition's proven staging version for its current attempt.
async fn proven_versions(fleet: &Fleet) -> std::collections::BTreeMap<String, i64> {
    current_proofs(fleet)
        .await
        .into_iter()
        .map(|p| (p.partition_date, p.staging_version.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_backfill_promotes_once_even_when_promotion_is_raced() {
    on_both_ledgers(7, fast_sim(), with_policy(), |fleet| async move {
        let s = settings(3);
        let (a, b) = tokio::join!(
            promote(&fleet.ledger, &fleet.client, &fleet.backfill_id, &s, "r1"),
            promote(&fleet.ledger, &fleet.client, &fleet.backfill_id, &s, "r2"),
        );
        for outcome in [a.unwrap(), b.unwrap()] {
            assert!(
                matches!(
                    outcome,
                    PromotionOutcome::Promoted {
                        without_policy: false,
                        ..
                    }
                ),
                "{outcome:?}"
            );
        }
        // Every partition promoted exactly once, at the staging version it was proven with.
        let mut told = promoted_params(&fleet).await;
        told.sort();
        let proven: Vec<(String, i64)> = proven_versions(&fleet).await.into_iter().collect();
        assert_eq!(proven.len(), 7);
        assert_eq!(told, proven, "each proven snapshot promoted once, no other");
        let items = fleet
            .ledger
            .promotion_items(&fleet.backfill_id)
            .await
            .unwrap();
        assert_eq!(items.len(), 7, "{items:?}");
        for i in &items {
            assert_eq!(i.state, ActionState::Succeeded);
            assert_eq!(i.version_after, i.version_before.map(|v| v + 1), "{i:?}");
        }
        let actions = fleet.ledger.actions(&fleet.backfill_id).await.unwrap();
        let promotions: Vec<_> = actions
            .iter()
            .filter(|a| a.kind == ActionKind::Promote)
            .collect();
        assert_eq!(
            promotions.len(),
            job_runs(&fleet, 2).await.len(),
            "one run per promotion action, even when two promoters raced"
        );
        assert!(promotions.iter().all(|a| a.contract_version == Some(1)));
        let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == "action_state" && e.detail.contains("succeeded"))
                .count(),
            promotions.len()
        );
        // Promoting again promotes nothing: every proof was promoted once.
        let again = promote_fleet(&fleet, &s, "r3").await;
        let PromotionOutcome::Promoted {
            actions, already, ..
        } = again
        else {
            panic!("{again:?}")
        };
        assert!(actions.is_empty());
        assert_eq!(already, 7);
        assert_eq!(job_runs(&fleet, 2).await.len(), promotions.len());
        fleet
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_failed_and_mismatched_partitions_block_promotion_and_are_reported() {
    let sim = SimConfig {
        outcomes: [(
            "2026-01-02".to_owned(),
            vec![backfill_simulator::Outcome::Unauthorized],
        )]
        .into(),
        ..fast_sim()
    };
    on_both_ledgers(4, sim, ContractSpec::default(), |fleet| async move {
        // A mismatch: partition 03's ledger row points at partition 04's run.
        let ps = fleet.ledger.partitions(&fleet.backfill_id).await.unwrap();
        let run_of_04 = ps[3].run_id.unwrap();
        let url = fleet.ledger_url.clone();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE partitions SET run_id = {run_of_04} WHERE partition_date = '2026-01-03'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        // A missing one: a partition added to the range but never run.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO partitions (backfill_id, partition_date, state, attempt, updated_at_ms) VALUES ('{}', '2026-01-05', 'pending', 1, 0)",
            fleet.backfill_id
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let outcome = promote_fleet(&fleet, &settings(10), "r").await;
        let PromotionOutcome::NotReady(report) = outcome else { panic!("{outcome:?}") };
        let kinds: Vec<(String, GapKind)> = report.gaps.iter().map(|g| (g.partition.clone(), g.kind.clone())).collect();
        assert_eq!(
            kinds,
            [
                ("2026-01-02".to_owned(), GapKind::DeadLettered),
                ("2026-01-03".to_owned(), GapKind::ParametersMismatch),
                ("2026-01-05".to_owned(), GapKind::Missing),
            ]
        );
        assert!(report.gaps[1].detail.contains("partition_date"), "{:?}", report.gaps[1]);
        assert!(job_runs(&fleet, 2).await.is_empty(), "nothing promoted");
        fleet
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_expired_at_databricks_is_reported_as_such() {
    on_both_ledgers(
        2,
        SimConfig {
            run_expiry_s: 2,
            ..fast_sim()
        },
        ContractSpec::default(),
        |fleet| async move {
            tokio::time::sleep(Duration::from_millis(2_200)).await;
            let report = reconcile_fleet(&fleet, "r").await;
            assert!(!report.complete);
            assert!(
                report.gaps.iter().all(|g| g.kind == GapKind::RunNotFound),
                "{:?}",
                report.gaps
            );
            assert_eq!(report.gaps.len(), 2);
            fleet
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_quality_failure_blocks_promotion_and_names_the_rule() {
    on_both_ledgers(
        3,
        duplicate_keys_on("2026-01-02", 7),
        with_policy(),
        |fleet| async move {
            let outcome = promote_fleet(&fleet, &settings(10), "r").await;
            let PromotionOutcome::NotReady(report) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
            let gap = &report.gaps[0];
            assert_eq!(
                (gap.partition.as_str(), &gap.kind),
                ("2026-01-02", &GapKind::DqFailed)
            );
            assert_eq!(
                gap.detail,
                "no duplicate keys: duplicate_keys=7 (required duplicate_keys == 0)"
            );
            let stored = fleet.ledger.dq_results(&fleet.backfill_id).await.unwrap();
            assert_eq!(
                stored.len(),
                3 * 4,
                "every rule of every partition recorded once"
            );
            assert_eq!(stored.iter().filter(|r| !r.passed).count(), 1);
            // A second pass reuses the stored verdicts.
            reconcile_fleet(&fleet, "r").await;
            assert_eq!(
                fleet
                    .ledger
                    .dq_results(&fleet.backfill_id)
                    .await
                    .unwrap()
                    .len(),
                12
            );
            assert!(job_runs(&fleet, 2).await.is_empty());
            fleet
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approval_required_nothing_is_promoted_until_an_operator_approves() {
    let spec = ContractSpec {
        require_approval: true,
        ..ContractSpec::default()
    };
    on_both_ledgers(2, fast_sim(), spec, |fleet| async move {
        let s = settings(10);
        let outcome = promote_fleet(&fleet, &s, "r").await;
        assert!(
            matches!(outcome, PromotionOutcome::AwaitingApproval),
            "{outcome:?}"
        );
        assert!(job_runs(&fleet, 2).await.is_empty());
        assert!(
            fleet
                .ledger
                .approve(&fleet.backfill_id, 1, "alice")
                .await
                .unwrap()
        );
        assert!(
            !fleet
                .ledger
                .approve(&fleet.backfill_id, 1, "bob")
                .await
                .unwrap(),
            "the first approval is kept"
        );
        promoted(&fleet, &s, "r").await;
        assert_eq!(
            fleet
                .ledger
                .approval(&fleet.backfill_id, 1)
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        // An amendment needs approving again: version 2 has no approval yet.
        let mut amended = fleet.current_contract().await;
        amended.target_table = "main.usage.moved".into();
        fleet
            .amend_contract(1, &amended, "carol", "moved")
            .await
            .unwrap();
        assert_eq!(
            fleet.ledger.approval(&fleet.backfill_id, 2).await.unwrap(),
            None
        );
        fleet
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_two_partitions_runs_exactly_two_rollbacks_from_the_recorded_versions() {
    on_both_ledgers(6, fast_sim(), ContractSpec::default(), |fleet| async move {
        let s = settings(3);
        promoted(&fleet, &s, "r").await;
        // Each partition's own version before its commit (one commit per partition).
        let items = fleet
            .ledger
            .promotion_items(&fleet.backfill_id)
            .await
            .unwrap();
        let before = |date: &str| {
            items
                .iter()
                .find(|i| i.partition_date == date)
                .unwrap()
                .version_before
                .unwrap()
                .to_string()
        };
        let targets = ["2026-01-02".parse().unwrap(), "2026-01-05".parse().unwrap()];
        let done = rollback_fleet(&fleet, &targets, &s, "op").await.unwrap();
        assert!(
            done.iter().all(|a| a.state == ActionState::Succeeded),
            "{done:?}"
        );
        let runs = job_runs(&fleet, 3).await;
        assert_eq!(runs.len(), 2);
        let restored: Vec<(String, String)> = runs
            .iter()
            .map(|r| {
                (
                    r.parameter("partition_date").unwrap().to_owned(),
                    r.parameter("restore_version").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            restored,
            [
                ("2026-01-02".to_owned(), before("2026-01-02")),
                ("2026-01-05".to_owned(), before("2026-01-05"))
            ]
        );
        // Idempotent: asking again starts nothing new.
        rollback_fleet(&fleet, &targets, &s, "op").await.unwrap();
        assert_eq!(job_runs(&fleet, 3).await.len(), 2);
        let never: backfill_contract::PartitionDate = "2027-01-01".parse().unwrap();
        let err = rollback_fleet(&fleet, &[never], &s, "op")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("never promoted"), "{err}");
        fleet
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_export_holds_every_event_in_order_and_no_secret() {
    on_both_ledgers(3, fast_sim(), with_policy(), |fleet| async move {
        promote_fleet(&fleet, &settings(2), "r").await;
        rollback_fleet(&fleet, &["2026-01-03".parse().unwrap()], &settings(2), "op")
            .await
            .unwrap();
        let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
        let doc = audit_json(&fleet.ledger, &fleet.backfill_id).await.unwrap();
        let exported = doc["events"].as_array().unwrap();
        assert_eq!(exported.len(), events.len());
        let ids: Vec<i64> = exported
            .iter()
            .map(|e| e["event_id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order");
        for kind in [
            "registered",
            "claimed",
            "run_started",
            "succeeded",
            "verified",
            "dq_rule_passed",
            "action_requested",
            "action_state",
        ] {
            assert!(
                exported.iter().any(|e| e["kind"] == kind),
                "no {kind} event in the export"
            );
        }
        assert!(doc["manifest"]["job_settings_hash"].as_str().unwrap().len() == 64);
        assert_eq!(doc["dq_results"].as_array().unwrap().len(), 12);
        assert_eq!(
            doc["actions"].as_array().unwrap().len(),
            3,
            "two waves and one rollback"
        );
        let csv = audit_csv(&fleet.ledger, &fleet.backfill_id).await.unwrap();
        assert_eq!(
            csv.lines().count(),
            events.len() + 2,
            "header, manifest row, one row per event"
        );
        for text in [doc.to_string(), csv] {
            assert!(
                !text.contains("test-token") && !text.contains("guest:guest"),
                "a secret leaked into the audit export"
            );
        }
        fleet
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reruns_a_partition_that_failed_the_gate_as_a_new_attempt() {
    on_both_ledgers(
        2,
        duplicate_keys_on("2026-01-01", 2),
        with_policy(),
        |fleet| async move {
            let report = reconcile_fleet(&fleet, "r").await;
            assert_eq!(report.gaps[0].kind, GapKind::DqFailed);
            let attempt = fleet
                .request_rerun("2026-01-01".parse().unwrap(), "alice", "duplicate keys")
                .await
                .unwrap();
            assert_eq!(attempt, 2);
            // Not terminal any more: a second request is refused, naming the state.
            let again = fleet
                .request_rerun("2026-01-01".parse().unwrap(), "bob", "again")
                .await;
            assert!(again.unwrap_err().to_string().contains("only succeeded"));
            support::eventually("attempt 2 succeeded", Duration::from_secs(30), || async {
                let p = fleet.first_partition().await;
                (p.attempt.get() == 2 && p.state == backfill_ledger::PartitionState::Succeeded)
                    .then_some(())
            })
            .await;
            assert_eq!(
                fleet.sim.sim.stats().runs_per_partition["2026-01-01"],
                2,
                "one new run for the new attempt"
            );
            reconcile_fleet(&fleet, "r").await;
            let attempts: std::collections::BTreeSet<i64> = fleet
                .ledger
                .dq_results(&fleet.backfill_id)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.partition_date == "2026-01-01")
                .map(|r| r.attempt)
                .collect();
            assert_eq!(
                attempts.into_iter().collect::<Vec<_>>(),
                [1, 2],
                "each attempt evaluated on its own"
            );
            let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
            assert!(events.iter().any(|e| e.kind == "rerun_requested"
                && e.actor == "alice"
                && e.detail.contains("duplicate keys")));
            fleet
        },
    )
    .await;
}

#[tokio::test]
async fn a_service_pass_skips_runs_already_verified_and_promotion_reads_them_all() {
    on_both_ledgers(6, fast_sim(), with_policy(), |fleet| async move {
        let gets = |f: &Fleet| {
            f.sim
                .sim
                .stats()
                .calls
                .get("jobs/runs/get")
                .copied()
                .unwrap_or(0)
        };
        let first = reconcile_fleet_pass(&fleet, "r", Reverify::Unverified).await;
        assert!(first.complete, "{first:?}");
        let after_first = gets(&fleet);
        let again = reconcile_fleet_pass(&fleet, "r", Reverify::Unverified).await;
        assert!(again.complete && again.verified == 6, "{again:?}");
        assert_eq!(gets(&fleet), after_first, "no run read again");
        let full = reconcile_fleet(&fleet, "r").await;
        assert!(full.complete);
        assert!(gets(&fleet) >= after_first + 6, "every run read again");
        fleet
    })
    .await;
}
