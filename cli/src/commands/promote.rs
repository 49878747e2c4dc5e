//! `backfill promote` and `backfill rollback`, under the backfill's recorded contract.

use std::time::Duration;

use backfill_ledger::{ActionState, NewEvent};
use backfill_reconciler::{PromotionOutcome, PromotionSettings, promote, rollback as roll_back};

use super::contract::{flags, reconcile_error, recorded_agreeing, warn_without_policy};
use super::parse_backfill_id;
use crate::CliError;
use crate::args::{GlobalOpts, PromoteArgs, RollbackArgs, RunWait};

fn settings(wait: &RunWait, wave_size: usize) -> PromotionSettings {
    PromotionSettings {
        wave_size,
        poll: Duration::from_millis(500),
        timeout: Duration::from_secs(wait.run_timeout_s),
    }
}

pub async fn run(global: &GlobalOpts, args: PromoteArgs) -> Result<(), CliError> {
    if args.wave_size == 0 {
        return Err(CliError::usage("--wave-size must be at least 1"));
    }
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    let Some(contract) = recorded_agreeing(&ledger, &backfill_id, &given).await? else {
        return Err(CliError::usage(format!(
            "backfill {backfill_id} has no recorded promotion contract (unknown, or produced before \
             contracts were recorded); record one with `backfill amend --backfill-id {backfill_id} --reason ...`"
        )));
    };
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let actor = format!("promoter-{}", args.by);
    if contract.contract.dq_policy.is_none() {
        warn_without_policy(&backfill_id);
        ledger
            .record_event(
                &NewEvent::backfill(&actor, &backfill_id, "promoting_without_policy").detail(
                    format!(
                        "contract version {} records no data-quality policy: partitions are promoted on run success alone",
                        contract.version
                    ),
                ),
            )
            .await
            .map_err(anyhow::Error::new)?;
    }
    if args.approve {
        let first = ledger
            .approve(&backfill_id, contract.version, &args.by)
            .await
            .map_err(anyhow::Error::new)?;
        eprintln!(
            "promotion of {backfill_id} under contract version {} {} by {}",
            contract.version,
            if first {
                "approved"
            } else {
                "was already approved"
            },
            args.by
        );
    }
    let outcome = promote(
        &ledger,
        &client,
        &backfill_id,
        &settings(&args.wait, args.wave_size),
        &actor,
    )
    .await
    .map_err(reconcile_error)?;
    match outcome {
        PromotionOutcome::Promoted {
            actions,
            already,
            rolled_back,
            elsewhere,
            without_policy,
        } => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "actions": actions,
                        "already_promoted": already,
                        "rolled_back": rolled_back,
                        "being_promoted_elsewhere": elsewhere,
                        "without_policy": without_policy,
                        "contract_version": contract.version,
                    })
                );
            } else {
                for a in &actions {
                    println!(
                        "{}: {} partitions, run {}, {}",
                        a.action_key,
                        a.partitions.len(),
                        a.run_id.unwrap_or_default(),
                        a.detail
                    );
                }
                let promoted: usize = actions.iter().map(|a| a.partitions.len()).sum();
                println!(
                    "backfill {backfill_id}: {promoted} partition attempts promoted now in {} runs, \
                     {already} were already promoted at their proven snapshot{}{} (contract version {})",
                    actions.len(),
                    if rolled_back > 0 {
                        format!(
                            ", {rolled_back} were rolled back and stay so (re-run them to promote new numbers)"
                        )
                    } else {
                        String::new()
                    },
                    if elsewhere > 0 {
                        format!(", {elsewhere} are being promoted by another reconciler")
                    } else {
                        String::new()
                    },
                    contract.version
                );
            }
            if elsewhere > 0 {
                return Err(CliError::Negative(format!(
                    "{elsewhere} partitions are still being promoted by another reconciler; run promote again to follow them"
                )));
            }
            Ok(())
        }
        PromotionOutcome::NotReady(report) => Err(CliError::Negative(format!(
            "not promoted: {} of {} partitions proven; {} gaps (see backfill reconcile --once --backfill-id {backfill_id})",
            report.verified,
            report.total,
            report.gaps.len()
        ))),
        PromotionOutcome::AwaitingApproval => Err(CliError::Negative(format!(
            "not promoted: complete and green, waiting for approval: backfill promote --backfill-id {backfill_id} --approve"
        ))),
        PromotionOutcome::Failed(wave) => Err(CliError::Negative(format!(
            "promotion {} failed (run {}): {}; later waves were not started; `backfill promote` again retries it as a new promotion",
            wave.action_key,
            wave.run_id.unwrap_or_default(),
            wave.detail
        ))),
    }
}

pub async fn rollback(global: &GlobalOpts, args: RollbackArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let partitions = super::parse_partitions(&args.partitions)?;
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    recorded_agreeing(&ledger, &backfill_id, &given).await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let done = roll_back(
        &ledger,
        &client,
        &backfill_id,
        &partitions,
        &settings(&args.wait, 1),
        "rollback",
    )
    .await
    .map_err(reconcile_error)?;
    for a in &done {
        println!(
            "{} {}: run {}, {}",
            a.action_key,
            a.state,
            a.run_id.unwrap_or_default(),
            a.detail
        );
    }
    if done.iter().all(|a| a.state == ActionState::Succeeded) {
        Ok(())
    } else {
        Err(CliError::Negative(
            "some rollbacks failed; `backfill rollback` again retries them as new actions".into(),
        ))
    }
}
