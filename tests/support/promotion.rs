//! What promotion tests read back: the settings they promote with, the runs a job was
//! started with, what each promotion run was told to copy, and the proofs of the current
//! attempts.

use std::collections::BTreeMap;
use std::time::Duration;

use backfill_contract::PartitionDate;
use backfill_databricks::models::{ListRuns, Run};
use backfill_ledger::Action;
use backfill_ledger::Proof;
use backfill_reconciler::{
    PromotionOutcome, PromotionSettings, ReconcileError, Report, Reverify, promote, reconcile_once,
    reconcile_pass, rollback,
};

use super::fleet::Fleet;

/// Promotion in waves of `wave_size`, polled every 50 ms for at most 30 s.
pub fn settings(wave_size: usize) -> PromotionSettings {
    PromotionSettings {
        wave_size,
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(30),
    }
}

/// The simulator's runs of `job_id`, oldest first.
pub async fn job_runs(fleet: &Fleet, job_id: i64) -> Vec<Run> {
    let mut runs = fleet
        .client
        .list_runs(
            &ListRuns {
                job_id: Some(job_id),
                limit: Some(25),
                ..ListRuns::default()
            },
            1000,
        )
        .await
        .unwrap();
    runs.reverse();
    runs
}

/// What one promotion run was told to copy: (partition, staging version).
pub fn told(run: &Run) -> Vec<(String, i64)> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(run.parameter("partitions").unwrap()).unwrap();
    list.iter()
        .map(|p| {
            (
                p["partition_date"].as_str().unwrap().to_owned(),
                p["staging_version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The proofs recorded for each partition's current attempt.
pub async fn current_proofs(fleet: &Fleet) -> Vec<Proof> {
    let attempts: BTreeMap<String, i64> = fleet
        .ledger
        .partitions(&fleet.backfill_id)
        .await
        .unwrap()
        .iter()
        .map(|p| (p.date.to_string(), i64::from(p.attempt.get())))
        .collect();
    fleet
        .ledger
        .proofs(&fleet.backfill_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| attempts.get(&p.partition_date) == Some(&p.attempt))
        .collect()
}

/// One reconcile pass over the fleet's backfill by `actor` (which must not error).
pub async fn reconcile_fleet(fleet: &Fleet, actor: &str) -> Report {
    reconcile_once(&fleet.ledger, &fleet.client, &fleet.backfill_id, actor)
        .await
        .unwrap()
}

/// One reconcile pass that re-reads the runs `reverify` names.
pub async fn reconcile_fleet_pass(fleet: &Fleet, actor: &str, reverify: Reverify) -> Report {
    reconcile_pass(
        &fleet.ledger,
        &fleet.client,
        &fleet.backfill_id,
        actor,
        reverify,
    )
    .await
    .unwrap()
}

/// Promotes the fleet's backfill with `settings` as `actor` (which must not error).
pub async fn promote_fleet(
    fleet: &Fleet,
    settings: &PromotionSettings,
    actor: &str,
) -> PromotionOutcome {
    promote(
        &fleet.ledger,
        &fleet.client,
        &fleet.backfill_id,
        settings,
        actor,
    )
    .await
    .unwrap()
}

/// [`promote_fleet`], asserting that it promoted.
pub async fn promoted(fleet: &Fleet, settings: &PromotionSettings, actor: &str) {
    let outcome = promote_fleet(fleet, settings, actor).await;
    assert!(
        matches!(outcome, PromotionOutcome::Promoted { .. }),
        "{outcome:?}"
    );
}

/// [`promote_fleet`], asserting that the backfill was not ready to promote.
pub async fn not_ready(fleet: &Fleet, settings: &PromotionSettings, actor: &str) {
    let outcome = promote_fleet(fleet, settings, actor).await;
    assert!(
        matches!(outcome, PromotionOutcome::NotReady(_)),
        "{outcome:?}"
    );
}

/// Rolls back `partitions` of the fleet's backfill with `settings` as `actor`.
pub async fn rollback_fleet(
    fleet: &Fleet,
    partitions: &[PartitionDate],
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Vec<Action>, ReconcileError> {
    rollback(
        &fleet.ledger,
        &fleet.client,
        &fleet.backfill_id,
        partitions,
        settings,
        actor,
    )
    .await
}
