//! One promotion action carried out: its job run with each item's proven staging version,
//! its end recorded with the target's versions.

use std::collections::{BTreeMap, HashMap};

use backfill_contract::BackfillId;
use backfill_contract::jobs::promotion::{self, item};
use backfill_databricks::DatabricksClient;
use backfill_ledger::{Action, Ledger, PromotedVersions, PromotionItem};
use serde_json::{Value, json};

use crate::ReconcileError;
use crate::action_run::{Ended, PromotionSettings, run_action};

/// The target's versions around each partition's commit, from the promotion job's output:
/// per partition when reported, else the whole run's before and after.
fn promoted_versions(reported: &Value, items: &[PromotionItem]) -> Vec<PromotedVersions> {
    let per_partition: HashMap<&str, &Value> = reported[promotion::result::PARTITIONS]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p[item::PARTITION_DATE].as_str().map(|d| (d, p)))
                .collect()
        })
        .unwrap_or_default();
    items
        .iter()
        .map(|i| {
            let source = per_partition
                .get(i.partition_date.as_str())
                .copied()
                .unwrap_or(reported);
            PromotedVersions {
                partition_date: i.partition_date.clone(),
                version_before: source[item::VERSION_BEFORE].as_i64(),
                version_after: source[item::VERSION_AFTER].as_i64(),
            }
        })
        .collect()
}

/// Carries one promotion action out: runs the job with each item's proven staging version,
/// records the end (with the target's versions) in one step.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn carry_out_promotion(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    manifest_id: &str,
    action: Action,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Action, ReconcileError> {
    let history = ledger.contract_history(backfill_id).await?;
    let contract = history
        .iter()
        .find(|c| Some(c.version) == action.contract_version)
        .map(|c| c.contract.clone())
        .ok_or_else(|| {
            ReconcileError::Contract(format!(
                "{backfill_id}: {} names contract version {:?}, which is not on record",
                action.action_key, action.contract_version
            ))
        })?;
    let items: Vec<PromotionItem> = ledger
        .promotion_items(backfill_id)
        .await?
        .into_iter()
        .filter(|i| i.action_key == action.action_key)
        .collect();
    let partitions: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({item::PARTITION_DATE: i.partition_date, item::STAGING_VERSION: i.staging_version})
        })
        .collect();
    use promotion::param;
    let params = BTreeMap::from([
        (param::BACKFILL_ID.to_owned(), backfill_id.to_string()),
        (param::MANIFEST_ID.to_owned(), manifest_id.to_owned()),
        (
            param::STAGING_TABLE.to_owned(),
            contract.staging_table.clone(),
        ),
        (
            param::TARGET_TABLE.to_owned(),
            contract.target_table.clone(),
        ),
        (
            param::PARTITIONS.to_owned(),
            Value::from(partitions).to_string(),
        ),
    ]);
    let ended = run_action(
        ledger,
        client,
        backfill_id,
        &action,
        contract.promotion_job.job_id,
        params,
        settings,
        actor,
    )
    .await?;
    match ended {
        Ended::Succeeded {
            run_id,
            detail,
            reported,
        } => {
            let versions = promoted_versions(&reported, &items);
            ledger
                .complete_promotion(
                    backfill_id,
                    &action.action_key,
                    run_id,
                    &detail,
                    &versions,
                    actor,
                )
                .await?;
        }
        Ended::Failed { run_id, detail } => {
            ledger
                .fail_action(backfill_id, &action.action_key, run_id, &detail, actor)
                .await?;
        }
    }
    ledger
        .action(backfill_id, &action.action_key)
        .await?
        .ok_or_else(|| ReconcileError::Timeout(format!("action {} vanished", action.action_key)))
}
