//! `backfill promote` and `backfill rollback`, under the backfill's recorded contract:
//! `backfill_operations::promotion` with its outcome printed.

use std::time::Duration;

use backfill_contract::BackfillId;
use backfill_ledger::Action;
use backfill_operations::contract::recorded_agreeing;
use backfill_operations::promotion::{PromoteRequest, promote_under, roll_back};
use backfill_reconciler::{PromotionOutcome, PromotionSettings};

use super::contract::{flags, warn_without_policy};
use crate::args::{GlobalOpts, PromoteArgs, RollbackArgs, RunWait};
use crate::exit::CliError;

fn settings(wait: &RunWait, wave_size: usize) -> PromotionSettings {
    PromotionSettings {
        wave_size,
        poll: Duration::from_millis(500),
        timeout: Duration::from_secs(wait.run_timeout_s),
    }
}

pub async fn run(global: &GlobalOpts, args: PromoteArgs) -> Result<(), CliError> {
    if args.promotion.wave_size == 0 {
        return Err(CliError::usage("--wave-size must be at least 1"));
    }
    let backfill_id = &args.backfill_id;
    let given = flags(&args.promotion.contract)?;
    let ledger = global.ledger().await?;
    let Some(contract) = recorded_agreeing(&ledger, backfill_id, &given).await? else {
        return Err(CliError::usage(format!(
            "backfill {backfill_id} has no recorded promotion contract (unknown, or produced before \
             contracts were recorded); record one with `backfill amend --backfill-id {backfill_id} --reason ...`"
        )));
    };
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let actor = format!("promoter-{}", args.by);
    if contract.contract.dq_policy.is_none() {
        warn_without_policy(backfill_id);
    }
    let request = PromoteRequest {
        actor: &actor,
        approve_by: args.approve.then_some(args.by.as_str()),
        settings: settings(&args.promotion.wait, args.promotion.wave_size),
    };
    let outcome = promote_under(
        &ledger,
        &client,
        backfill_id,
        &contract,
        &request,
        |first| {
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
        },
    )
    .await?;
    report(backfill_id, contract.version, outcome, args.json)
}

/// Prints what a promotion came to; anything short of every proven partition promoted
/// exits 1.
fn report(
    backfill_id: &BackfillId,
    version: i64,
    outcome: PromotionOutcome,
    json: bool,
) -> Result<(), CliError> {
    match outcome {
        PromotionOutcome::Promoted {
            actions,
            already,
            rolled_back,
            elsewhere,
            without_policy,
        } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "actions": actions,
                        "already_promoted": already,
                        "rolled_back": rolled_back,
                        "being_promoted_elsewhere": elsewhere,
                        "without_policy": without_policy,
                        "contract_version": version,
                    })
                );
            } else {
                print_promoted(
                    backfill_id,
                    version,
                    &actions,
                    already,
                    rolled_back,
                    elsewhere,
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
            wave.run_id.map_or(0, backfill_contract::RunId::get),
            wave.detail
        ))),
    }
}

fn print_promoted(
    backfill_id: &BackfillId,
    version: i64,
    actions: &[Action],
    already: usize,
    rolled_back: usize,
    elsewhere: usize,
) {
    for a in actions {
        println!("{}", action_line(a));
    }
    let promoted: usize = actions.iter().map(|a| a.partitions.len()).sum();
    println!(
        "backfill {backfill_id}: {promoted} partition attempts promoted now in {} runs, \
         {already} were already promoted at their proven snapshot{}{} (contract version {version})",
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
    );
}

pub async fn rollback(global: &GlobalOpts, args: RollbackArgs) -> Result<(), CliError> {
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    recorded_agreeing(&ledger, &args.backfill_id, &given).await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let done = roll_back(
        &ledger,
        &client,
        &args.backfill_id,
        &args.partitions,
        &settings(&args.wait, 1),
        "rollback",
    )
    .await?;
    for a in &done.actions {
        println!(
            "{} {}: run {}, {}",
            a.action_key,
            a.state,
            a.run_id.map_or(0, backfill_contract::RunId::get),
            a.detail
        );
    }
    if done.all_succeeded {
        Ok(())
    } else {
        Err(CliError::Negative(
            "some rollbacks failed; `backfill rollback` again retries them as new actions".into(),
        ))
    }
}

/// One promotion or rollback action in a line: its key, partitions, run and what it reported.
pub(super) fn action_line(a: &backfill_ledger::Action) -> String {
    format!(
        "{}: {} partitions, run {}, {}",
        a.action_key,
        a.partitions.len(),
        a.run_id.map_or(0, backfill_contract::RunId::get),
        a.detail
    )
}
