//! `backfill promote` and `backfill rollback`.

use std::time::Duration;

use anyhow::Context;
use backfill_reconciler::{PromotionOutcome, PromotionSettings, promote, rollback as roll_back};

use super::parse_backfill_id;
use super::reconcile::load_policy;
use crate::CliError;
use crate::args::{GlobalOpts, PromoteArgs, PromotionFlags, RollbackArgs};

fn settings(flags: &PromotionFlags, wave_size: usize, require_approval: bool) -> PromotionSettings {
    PromotionSettings {
        promotion_job_id: flags.promotion_job_id,
        rollback_job_id: flags.rollback_job_id,
        wave_size,
        staging_table: flags.staging_table.clone(),
        target_table: flags.target_table.clone(),
        require_approval,
        poll: Duration::from_millis(500),
        timeout: Duration::from_secs(flags.run_timeout_s),
    }
}

pub async fn run(global: &GlobalOpts, args: PromoteArgs) -> Result<(), CliError> {
    if args.wave_size == 0 {
        return Err(CliError::usage("--wave-size must be at least 1"));
    }
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let policy = load_policy(args.dq_policy.as_deref())?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    if args.approve {
        let first = ledger
            .approve(&backfill_id, &args.by)
            .await
            .map_err(anyhow::Error::new)?;
        eprintln!(
            "promotion of {backfill_id} {} by {}",
            if first {
                "approved"
            } else {
                "was already approved"
            },
            args.by
        );
    }
    let settings = settings(&args.promotion, args.wave_size, args.require_approval);
    let actor = format!("promoter-{}", args.by);
    let outcome = promote(
        &ledger,
        &client,
        &backfill_id,
        &settings,
        policy.as_ref(),
        &actor,
    )
    .await
    .context("promote")?;
    match outcome {
        PromotionOutcome::Promoted(waves) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&waves).unwrap_or_default()
                );
            } else {
                for w in &waves {
                    println!(
                        "{}: {} partitions, run {}, {}",
                        w.action_key,
                        w.partitions.len(),
                        w.run_id.unwrap_or_default(),
                        w.detail
                    );
                }
                println!("backfill {backfill_id} promoted in {} waves", waves.len());
            }
            Ok(())
        }
        PromotionOutcome::NotReady(report) => Err(CliError::Negative(format!(
            "not promoted: {} of {} partitions proven; {} gaps (see backfill reconcile --backfill-id {backfill_id})",
            report.verified,
            report.total,
            report.gaps.len()
        ))),
        PromotionOutcome::AwaitingApproval => Err(CliError::Negative(format!(
            "not promoted: complete and green, waiting for approval: backfill promote --backfill-id {backfill_id} --approve"
        ))),
        PromotionOutcome::Failed(wave) => Err(CliError::Negative(format!(
            "promotion {} failed (run {}): {}; later waves were not started",
            wave.action_key,
            wave.run_id.unwrap_or_default(),
            wave.detail
        ))),
    }
}

pub async fn rollback(global: &GlobalOpts, args: RollbackArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let partitions = super::parse_partitions(&args.partitions)?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let settings = settings(&args.promotion, 1, false);
    let done = roll_back(
        &ledger,
        &client,
        &backfill_id,
        &partitions,
        &settings,
        "rollback",
    )
    .await
    .map_err(|e| match e {
        backfill_reconciler::ReconcileError::NotPromoted(_) => CliError::usage(e.to_string()),
        other => CliError::Failed(anyhow::Error::new(other)),
    })?;
    for a in &done {
        println!(
            "{} {}: run {}, {}",
            a.action_key,
            a.state,
            a.run_id.unwrap_or_default(),
            a.detail
        );
    }
    if done.iter().all(|a| a.state == "succeeded") {
        Ok(())
    } else {
        Err(CliError::Negative("some rollbacks failed".into()))
    }
}
