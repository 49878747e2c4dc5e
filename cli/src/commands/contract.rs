//! The promotion contract at the command line: recorded by `produce`, changed by `amend`,
//! and only repeated (never overridden) by `reconcile`, `promote` and `rollback`.

use backfill_contract::BackfillId;
use backfill_databricks::DatabricksClient;
use backfill_ledger::{ContractVersion, Ledger, LedgerError, PromotionContract};
use backfill_reconciler::{ContractFlags, ReconcileError, recorded_job, recorded_policy};

use super::parse_backfill_id;
use crate::CliError;
use crate::args::{
    AmendArgs, ContractArgs, DEFAULT_PROMOTION_JOB_ID, DEFAULT_ROLLBACK_JOB_ID,
    DEFAULT_STAGING_TABLE, DEFAULT_TARGET_TABLE, GlobalOpts,
};

/// The values given on the command line (or in the environment), the policy file read and
/// checked. A file that cannot be read or parsed is bad usage (exit 2).
pub fn flags(args: &ContractArgs) -> Result<ContractFlags, CliError> {
    let dq_policy = match &args.dq_policy {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("--dq-policy {}: {e}", path.display())))?;
            Some(
                recorded_policy(&text, &path.display().to_string())
                    .map_err(|e| CliError::usage(format!("--dq-policy {}: {e}", path.display())))?,
            )
        }
    };
    for (flag, value) in [
        ("--staging-table", &args.staging_table),
        ("--target-table", &args.target_table),
    ] {
        if let Some(v) = value
            && (v.trim().is_empty() || v.contains(char::is_whitespace))
        {
            return Err(CliError::usage(format!(
                "{flag} {v:?} must be a table name (catalog.schema.table)"
            )));
        }
    }
    for (flag, value) in [
        ("--promotion-job-id", args.promotion_job_id),
        ("--rollback-job-id", args.rollback_job_id),
    ] {
        if value.is_some_and(|v| v <= 0) {
            return Err(CliError::usage(format!("{flag} must be a positive job id")));
        }
    }
    Ok(ContractFlags {
        dq_policy,
        no_dq_policy: args.no_dq_policy,
        require_approval: args.require_approval,
        staging_table: args.staging_table.clone(),
        target_table: args.target_table.clone(),
        promotion_job_id: args.promotion_job_id,
        rollback_job_id: args.rollback_job_id,
    })
}

/// The contract `produce` records: the given values, defaults for the rest, the promotion
/// and rollback jobs read from Databricks for their settings hashes.
pub async fn for_produce(
    client: &DatabricksClient,
    given: &ContractFlags,
) -> Result<PromotionContract, CliError> {
    let job = |flag: &'static str, id: i64| async move {
        recorded_job(client, id).await.map_err(|e| {
            if e.is_not_found() || e.is_permanent() {
                CliError::usage(format!("{flag} {id}: {e}"))
            } else {
                CliError::Failed(anyhow::anyhow!("reading {flag} {id} from Databricks: {e}"))
            }
        })
    };
    Ok(PromotionContract {
        dq_policy: given.dq_policy.clone(),
        require_approval: given.require_approval.unwrap_or(false),
        staging_table: given
            .staging_table
            .clone()
            .unwrap_or_else(|| DEFAULT_STAGING_TABLE.to_owned()),
        target_table: given
            .target_table
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET_TABLE.to_owned()),
        promotion_job: job(
            "--promotion-job-id",
            given.promotion_job_id.unwrap_or(DEFAULT_PROMOTION_JOB_ID),
        )
        .await?,
        rollback_job: job(
            "--rollback-job-id",
            given.rollback_job_id.unwrap_or(DEFAULT_ROLLBACK_JOB_ID),
        )
        .await?,
    })
}

/// The recorded contract, after checking that every given value agrees with it: a value
/// that disagrees is bad usage (exit 2), naming the flag, both values and the way to
/// change the contract.
pub async fn recorded_agreeing(
    ledger: &Ledger,
    backfill_id: &BackfillId,
    given: &ContractFlags,
) -> Result<Option<ContractVersion>, CliError> {
    let recorded = ledger
        .contract(backfill_id)
        .await
        .map_err(anyhow::Error::new)?;
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    let disagree = given.disagreements(&recorded.contract);
    if disagree.is_empty() {
        return Ok(Some(recorded));
    }
    Err(CliError::usage(format!(
        "{}\nbackfill {backfill_id} is governed by its contract version {} (recorded by {}: {}); \
         change it with `backfill amend --backfill-id {backfill_id} --reason ...`, or drop the flag",
        disagree.join("\n"),
        recorded.version,
        recorded.amended_by,
        recorded.reason
    )))
}

/// The loud line every promotion of a backfill without a policy prints.
pub fn warn_without_policy(backfill_id: &BackfillId) {
    eprintln!(
        "WARNING: backfill {backfill_id} was produced without a data-quality policy: its partitions are \
         promoted on run success alone (record one with `backfill amend --dq-policy FILE --reason ...`)"
    );
}

/// Maps reconciler errors: a contract refusal is the operator's to fix (exit 2).
pub fn reconcile_error(e: ReconcileError) -> CliError {
    match e {
        ReconcileError::Contract(_) | ReconcileError::NotPromoted(_) => {
            CliError::usage(e.to_string())
        }
        other => CliError::Failed(anyhow::Error::new(other)),
    }
}

/// `backfill amend`.
pub async fn amend(global: &GlobalOpts, args: AmendArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    if args.reason.trim().is_empty() {
        return Err(CliError::usage(
            "--reason must say why the contract changes",
        ));
    }
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    if ledger
        .backfill(&backfill_id)
        .await
        .map_err(anyhow::Error::new)?
        .is_none()
    {
        return Err(CliError::usage(format!(
            "backfill {backfill_id} is not registered"
        )));
    }
    let current = ledger
        .contract(&backfill_id)
        .await
        .map_err(anyhow::Error::new)?;
    let (version, amended) = match &current {
        Some(c) => (
            c.version,
            given
                .amend(&client, &c.contract)
                .await
                .map_err(reconcile_error)?,
        ),
        // A backfill registered before contracts were recorded gets its first one.
        None => (0, for_produce(&client, &given).await?),
    };
    let new_version = ledger
        .amend_contract(&backfill_id, version, &amended, &args.by, &args.reason)
        .await
        .map_err(|e| match e {
            LedgerError::Refused(m) => CliError::usage(m),
            other => CliError::Failed(anyhow::Error::new(other)),
        })?;
    let changes = current
        .map(|c| c.contract.changes_to(&amended))
        .unwrap_or_else(|| vec!["first contract recorded".to_owned()]);
    println!(
        "backfill {backfill_id}: contract version {version} → {new_version} by {} ({}):",
        args.by, args.reason
    );
    for c in changes {
        println!("  {c}");
    }
    if amended.dq_policy.is_none() {
        warn_without_policy(&backfill_id);
    }
    Ok(())
}
