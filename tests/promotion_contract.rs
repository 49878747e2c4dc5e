//! Invariant 10, promote what was proven, once per proof: the contract recorded at produce
//! governs (flags that disagree are refused, amendments are recorded), promotion copies each
//! partition attempt's proven staging snapshot once, a re-run partition is promoted again, a
//! failed promotion is retried with a fresh token, wave size only batches, a changed policy
//! re-gates, and two fleets on one workspace never share a run. On SQLite and PostgreSQL,
//! with the simulator over HTTP and the real `backfill` binary where a flag is the point.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use backfill_ledger::{ActionKind, ActionState};
use backfill_reconciler::{GapKind, PromotionOutcome, promote, recorded_policy};
use backfill_simulator::{Outcome, SimConfig};
use support::fleet::{ContractSpec, Fleet, fast_sim, sim_with_metric};
use support::process::{run, text};
use support::promotion::{
    current_proofs, job_runs, not_ready, promote_fleet, promoted, reconcile_fleet, rollback_fleet,
    settings, told,
};

const POLICY: &str = include_str!("../policies/usage-daily.toml");

/// The staging version each partition's current attempt was proven with.
async fn proven(fleet: &Fleet) -> BTreeMap<String, i64> {
    current_proofs(fleet)
        .await
        .into_iter()
        .filter_map(|p| p.staging_version.map(|v| (p.partition_date, v)))
        .collect()
}

/// A fleet on `ledger_url` whose `days` partitions all ran to the end.
async fn finished(days: u32, sim: SimConfig, spec: ContractSpec, ledger_url: &str) -> Fleet {
    let mut fleet = Fleet::build_with(days, 20, sim, &support::amqp_url(), ledger_url, spec).await;
    fleet.run_to_the_end().await;
    fleet
}

async fn ledgers() -> Vec<String> {
    vec![support::sqlite_url(), support::postgres_url().await]
}

/// The environment of a `backfill` command aimed at `fleet`.
fn cli_env(fleet: &Fleet) -> Vec<(&'static str, String)> {
    vec![
        ("LEDGER_URL", fleet.ledger_url.clone()),
        ("DATABRICKS_HOST", fleet.sim.url()),
        ("DATABRICKS_TOKEN", "t".to_owned()),
        ("AMQP_URL", support::amqp_url_string()),
        ("BACKFILL_DELAY_TIERS", support::TEST_TIERS.to_owned()),
    ]
}

fn write_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", support::unique()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_without_flags_refuses_a_backfill_failing_its_recorded_policy() {
    for url in ledgers().await {
        let sim = sim_with_metric("2026-01-02", "duplicate_keys", serde_json::json!(3));
        let spec = ContractSpec {
            policy: Some(POLICY),
            ..ContractSpec::default()
        };
        let fleet = finished(3, sim, spec, &url).await;
        let env = cli_env(&fleet);
        let id = fleet.backfill_id.to_string();
        // No --dq-policy anywhere: the recorded policy gates all the same.
        let out = run(&env, &["promote", "--backfill-id", &id, "--approve"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("not promoted"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            job_runs(&fleet, 2).await.is_empty(),
            "no promotion run started"
        );
        let out = run(
            &env,
            &["reconcile", "--backfill-id", &id, "--once", "--json"],
        );
        assert_eq!(out.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["gaps"][0]["partition"], "2026-01-02");
        assert_eq!(report["gaps"][0]["kind"], "dq_failed");
        assert_eq!(report["contract_version"], 1);
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_contradicting_the_contract_exits_2_until_an_amendment_changes_it() {
    for url in ledgers().await {
        let fleet = finished(2, fast_sim(), ContractSpec::default(), &url).await;
        let env = cli_env(&fleet);
        let id = fleet.backfill_id.to_string();
        let other_policy = write_file("other.toml", POLICY);
        for (args, flag) in [
            (
                vec!["promote", "--target-table", "main.usage.typo"],
                "--target-table",
            ),
            (
                vec!["promote", "--dq-policy", other_policy.to_str().unwrap()],
                "--dq-policy",
            ),
            (
                vec!["promote", "--promotion-job-id", "3"],
                "--promotion-job-id",
            ),
            (
                vec!["reconcile", "--once", "--require-approval"],
                "--require-approval",
            ),
            (
                vec!["rollback", "--staging-table", "main.x.y"],
                "--staging-table",
            ),
        ] {
            let mut full = args.clone();
            full.extend(["--backfill-id", &id]);
            let out = run(&env, &full);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{full:?}: {err}");
            assert!(
                err.contains(flag)
                    && err.contains("recorded contract")
                    && err.contains("backfill amend"),
                "{full:?}: {err}"
            );
        }
        // A flag that repeats the contract is fine.
        let out = run(
            &env,
            &[
                "reconcile",
                "--once",
                "--backfill-id",
                &id,
                "--target-table",
                "main.usage.daily_customer_usage",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            job_runs(&fleet, 2).await.is_empty(),
            "nothing promoted by a refused command"
        );
        // An amendment is recorded with who and why, and then governs.
        let out = run(
            &env,
            &[
                "amend",
                "--backfill-id",
                &id,
                "--target-table",
                "main.usage.moved",
                "--reason",
                "the table moved",
                "--by",
                "alice",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("version 1 → 2"),
            "{}",
            text(&out.stdout)
        );
        let out = run(&env, &["promote", "--backfill-id", &id]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("WARNING")
                && text(&out.stderr).contains("without a data-quality policy"),
            "a backfill without a policy says so at promotion: {}",
            text(&out.stderr)
        );
        let runs = job_runs(&fleet, 2).await;
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].parameter("target_table"), Some("main.usage.moved"));
        let events = fleet.ledger.events(&fleet.backfill_id).await.unwrap();
        assert!(events.iter().any(|e| e.kind == "contract_recorded"));
        assert!(events.iter().any(|e| {
            e.kind == "contract_amended"
                && e.actor == "alice"
                && e.detail.contains("the table moved")
                && e.detail
                    .contains("main.usage.daily_customer_usage → main.usage.moved")
        }));
        assert!(events.iter().any(|e| e.kind == "promoting_without_policy"));
        let history = fleet
            .ledger
            .contract_history(&fleet.backfill_id)
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        // An amendment that changes nothing is refused.
        let out = run(
            &env,
            &["amend", "--backfill-id", &id, "--reason", "nothing"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let _ = std::fs::remove_file(other_policy);
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_rerun_after_promotion_is_proven_and_promoted_again_at_its_new_snapshot() {
    for url in ledgers().await {
        let fleet = finished(4, fast_sim(), ContractSpec::default(), &url).await;
        let s = settings(10);
        promoted(&fleet, &s, "r").await;
        let before = proven(&fleet).await;
        let date: backfill_contract::PartitionDate = "2026-01-02".parse().unwrap();
        fleet
            .request_rerun(date, "alice", "late files arrived")
            .await
            .unwrap();
        support::eventually("attempt 2 succeeded", Duration::from_secs(30), || async {
            let p = fleet.ledger.partitions(&fleet.backfill_id).await.unwrap();
            let p = p.iter().find(|p| p.date == date).unwrap();
            (p.attempt.get() == 2 && p.state.is_terminal()).then_some(())
        })
        .await;
        let report = reconcile_fleet(&fleet, "r").await;
        assert!(report.complete, "{report:?}");
        let counts = fleet
            .ledger
            .promotion_counts(&fleet.backfill_id)
            .await
            .unwrap();
        assert_eq!(
            (counts.promoted, counts.proven_not_promoted),
            (3, 1),
            "{counts:?}"
        );
        let again = promote_fleet(&fleet, &s, "r").await;
        let PromotionOutcome::Promoted {
            actions, already, ..
        } = again
        else {
            panic!("{again:?}")
        };
        assert_eq!((actions.len(), already), (1, 3));
        let after = proven(&fleet).await;
        assert_ne!(after["2026-01-02"], before["2026-01-02"], "a new snapshot");
        let runs = job_runs(&fleet, 2).await;
        assert_eq!(runs.len(), 2);
        assert_eq!(
            told(&runs[1]),
            [("2026-01-02".to_owned(), after["2026-01-02"])]
        );
        let counts = fleet
            .ledger
            .promotion_counts(&fleet.backfill_id)
            .await
            .unwrap();
        assert_eq!((counts.promoted, counts.proven_not_promoted), (4, 0));
        // Rollback restores the version before the latest promotion of that partition.
        let items = fleet
            .ledger
            .promotion_items(&fleet.backfill_id)
            .await
            .unwrap();
        let latest = items
            .iter()
            .filter(|i| i.partition_date == "2026-01-02")
            .max_by_key(|i| i.seq)
            .unwrap();
        assert_eq!(latest.attempt, 2);
        rollback_fleet(&fleet, &[date], &s, "op").await.unwrap();
        let rb = job_runs(&fleet, 3).await;
        assert_eq!(
            rb[0].parameter("restore_version").unwrap(),
            latest.version_before.unwrap().to_string()
        );
        let counts = fleet
            .ledger
            .promotion_counts(&fleet.backfill_id)
            .await
            .unwrap();
        assert_eq!((counts.promoted, counts.rolled_back), (3, 1));
        // A rolled-back proof is not promoted again behind the operator's back.
        let third = promote_fleet(&fleet, &s, "r").await;
        assert!(
            matches!(third, PromotionOutcome::Promoted { ref actions, .. } if actions.is_empty()),
            "{third:?}"
        );
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_promotion_is_retried_with_a_fresh_token_and_wave_size_only_batches() {
    for url in ledgers().await {
        let sim = SimConfig {
            outcomes: [("job:2".to_owned(), vec![Outcome::TaskFailed])].into(),
            ..fast_sim()
        };
        let fleet = finished(5, sim, ContractSpec::default(), &url).await;
        let failed = promote_fleet(&fleet, &settings(3), "r").await;
        let PromotionOutcome::Failed(action) = failed else {
            panic!("{failed:?}")
        };
        assert_eq!(
            action.partitions,
            ["2026-01-01", "2026-01-02", "2026-01-03"]
        );
        let promoted = promote_fleet(&fleet, &settings(2), "r").await;
        let PromotionOutcome::Promoted {
            actions, already, ..
        } = promoted
        else {
            panic!("{promoted:?}")
        };
        assert_eq!(already, 0);
        let sizes: Vec<usize> = actions.iter().map(|a| a.partitions.len()).collect();
        assert_eq!(sizes, [2, 2, 1], "waves of two, oldest first");
        assert!(
            actions.iter().all(|a| a.token != action.token),
            "fresh tokens"
        );
        // Every partition promoted exactly once, at its proven snapshot.
        let runs = job_runs(&fleet, 2).await;
        assert_eq!(runs.len(), 4, "the failed run and three waves");
        let mut copied: Vec<(String, i64)> = runs[1..].iter().flat_map(told).collect();
        copied.sort();
        assert_eq!(copied, proven(&fleet).await.into_iter().collect::<Vec<_>>());
        let items = fleet
            .ledger
            .promotion_items(&fleet.backfill_id)
            .await
            .unwrap();
        let succeeded: Vec<&str> = items
            .iter()
            .filter(|i| i.state == ActionState::Succeeded)
            .map(|i| i.partition_date.as_str())
            .collect();
        assert_eq!(
            succeeded,
            [
                "2026-01-01",
                "2026-01-02",
                "2026-01-03",
                "2026-01-04",
                "2026-01-05"
            ]
        );
        assert_eq!(
            items
                .iter()
                .filter(|i| i.state == ActionState::Failed)
                .count(),
            3
        );
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_gates_again_instead_of_reusing_old_verdicts() {
    for url in ledgers().await {
        let spec = ContractSpec {
            policy: Some(POLICY),
            ..ContractSpec::default()
        };
        let fleet = finished(2, fast_sim(), spec, &url).await;
        let report = reconcile_fleet(&fleet, "r").await;
        assert!(report.complete, "{report:?}");
        let strict = "[[rule]]\nname = \"tiny\"\ncheck = \"threshold\"\nmetric = \"row_count\"\nop = \"le\"\nvalue = 10\n";
        let mut amended = fleet.current_contract().await;
        amended.dq_policy = Some(recorded_policy(strict, "strict.toml").unwrap());
        fleet
            .amend_contract(1, &amended, "bob", "stricter")
            .await
            .unwrap();
        let report = reconcile_fleet(&fleet, "r").await;
        assert!(!report.complete);
        assert_eq!(report.gaps.len(), 2);
        assert!(
            report
                .gaps
                .iter()
                .all(|g| g.kind == GapKind::DqFailed && g.detail.contains("tiny"))
        );
        let hashes: std::collections::BTreeSet<String> = fleet
            .ledger
            .dq_results(&fleet.backfill_id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.policy_hash)
            .collect();
        assert_eq!(hashes.len(), 2, "verdicts under each policy, kept apart");
        not_ready(&fleet, &settings(5), "r").await;
        assert!(job_runs(&fleet, 2).await.is_empty());
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_lacking_a_field_of_the_job_contract_fails_the_gate_naming_it() {
    for url in ledgers().await {
        let sim = sim_with_metric("2026-01-01", "schema_hash", serde_json::Value::Null);
        let fleet = finished(2, sim, ContractSpec::default(), &url).await;
        let report = reconcile_fleet(&fleet, "r").await;
        assert!(!report.complete);
        assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
        let gap = &report.gaps[0];
        assert_eq!(
            (gap.partition.as_str(), &gap.kind),
            ("2026-01-01", &GapKind::DqUnavailable)
        );
        assert!(gap.detail.contains("schema_hash"), "{}", gap.detail);
        not_ready(&fleet, &settings(5), "r").await;
        assert!(job_runs(&fleet, 2).await.is_empty());
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_and_an_amendment_wait_for_a_promotion_in_progress() {
    for url in ledgers().await {
        let fleet = finished(2, fast_sim(), ContractSpec::default(), &url).await;
        let report = reconcile_fleet(&fleet, "r").await;
        let wanted: Vec<_> = report
            .proven
            .iter()
            .map(|p| (p.date, p.attempt, p.staging_version.unwrap()))
            .collect();
        let ledger_id = fleet.ledger.ledger_id().await.unwrap();
        // A promoter recorded its action and died before run-now.
        fleet
            .ledger
            .create_promotion(&fleet.backfill_id, &wanted, 1, &ledger_id, "crashed")
            .await
            .unwrap()
            .unwrap();
        let date: backfill_contract::PartitionDate = "2026-01-02".parse().unwrap();
        let refused = fleet
            .request_rerun(date, "alice", "bad source")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("being promoted"), "{refused}");
        let mut amended = fleet.current_contract().await;
        amended.target_table = "main.usage.elsewhere".into();
        let refused = fleet
            .amend_contract(1, &amended, "bob", "move")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("in progress"), "{refused}");
        // Rolling back is refused too until the promotion ends.
        let rb = rollback_fleet(&fleet, &[date], &settings(5), "op").await;
        assert!(rb.is_err(), "{rb:?}");
        // The next promote carries the recorded action out; then the rerun goes ahead.
        let outcome = promote_fleet(&fleet, &settings(5), "r").await;
        let PromotionOutcome::Promoted {
            actions, already, ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!((actions.len(), already), (1, 0));
        assert_eq!(
            job_runs(&fleet, 2).await.len(),
            1,
            "the recorded action ran once"
        );
        fleet
            .request_rerun(date, "alice", "bad source")
            .await
            .unwrap();
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_rewrites_the_table_the_partition_was_promoted_into() {
    for url in ledgers().await {
        let fleet = finished(1, fast_sim(), ContractSpec::default(), &url).await;
        let s = settings(10);
        promoted(&fleet, &s, "r").await;
        let mut amended = fleet.current_contract().await;
        amended.target_table = "main.usage.daily_customer_usage_v2".into();
        fleet
            .amend_contract(1, &amended, "bob", "new target for the rest")
            .await
            .unwrap();
        let date: backfill_contract::PartitionDate = "2026-01-01".parse().unwrap();
        rollback_fleet(&fleet, &[date], &s, "op").await.unwrap();
        let rb = job_runs(&fleet, 3).await;
        assert_eq!(
            rb[0].parameter("target_table"),
            Some("main.usage.daily_customer_usage"),
            "restore_version {:?} is a version of the table promoted into",
            rb[0].parameter("restore_version")
        );
        fleet.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_never_promote_one_proof_twice() {
    for url in ledgers().await {
        let sim = SimConfig {
            pending_ms: 100,
            running_ms: 1_500,
            ..SimConfig::default()
        };
        let fleet = finished(2, sim, ContractSpec::default(), &url).await;
        let report = reconcile_fleet(&fleet, "r").await;
        assert!(report.complete, "{report:?}");
        let d2 = report.proven[1].clone();
        // A promotes in waves of one; B promotes 2026-01-02 while A's first wave runs,
        // and finishes first.
        let one = settings(1);
        let a = promote(&fleet.ledger, &fleet.client, &fleet.backfill_id, &one, "A");
        let b = async {
            support::eventually("A runs its first wave", Duration::from_secs(20), || async {
                let actions = fleet.ledger.actions(&fleet.backfill_id).await.unwrap();
                actions
                    .iter()
                    .any(|x| x.kind == ActionKind::Promote && x.state == ActionState::Running)
                    .then_some(())
            })
            .await;
            let ledger_id = fleet.ledger.ledger_id().await.unwrap();
            let b = fleet
                .ledger
                .create_promotion(
                    &fleet.backfill_id,
                    &[(d2.date, d2.attempt, d2.staging_version.unwrap())],
                    1,
                    &ledger_id,
                    "B",
                )
                .await
                .unwrap()
                .expect("2026-01-02 is not held by A's first wave");
            assert!(
                fleet
                    .ledger
                    .complete_promotion(
                        &fleet.backfill_id,
                        &b.action_key,
                        backfill_contract::RunId::from(424_242),
                        "{}",
                        &[backfill_ledger::PromotedVersions {
                            partition_date: "2026-01-02".into(),
                            version_before: Some(500),
                            version_after: Some(501),
                        }],
                        "B",
                    )
                    .await
                    .unwrap()
            );
        };
        let (outcome, ()) = tokio::join!(a, b);
        let outcome = outcome.unwrap();
        let PromotionOutcome::Promoted {
            already, elsewhere, ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!((already, elsewhere), (1, 0), "B's promotion counts as done");
        let items = fleet
            .ledger
            .promotion_items(&fleet.backfill_id)
            .await
            .unwrap();
        let d2_promotions: Vec<_> = items
            .iter()
            .filter(|i| i.partition_date == "2026-01-02" && i.state == ActionState::Succeeded)
            .collect();
        assert_eq!(
            d2_promotions.len(),
            1,
            "one proof promoted twice: {d2_promotions:#?}"
        );
        fleet.stop().await;
    }
}
