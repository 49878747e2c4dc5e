//! The promotion contract at the command line: the values given (a policy file read and
//! checked), the warning a backfill without a policy gets, and `backfill amend`.

use backfill_contract::BackfillId;
use backfill_operations::contract::amend as amend_contract;
use backfill_reconciler::{ContractFlags, recorded_policy};

use crate::args::{AmendArgs, ContractArgs, GlobalOpts};
use crate::exit::CliError;

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

/// The loud line every promotion of a backfill without a policy prints.
pub fn warn_without_policy(backfill_id: &BackfillId) {
    eprintln!(
        "WARNING: backfill {backfill_id} was produced without a data-quality policy: its partitions are \
         promoted on run success alone (record one with `backfill amend --dq-policy FILE --reason ...`)"
    );
}

/// `backfill amend`.
pub async fn amend(global: &GlobalOpts, args: AmendArgs) -> Result<(), CliError> {
    let backfill_id = &args.backfill_id;
    if args.reason.trim().is_empty() {
        return Err(CliError::usage(
            "--reason must say why the contract changes",
        ));
    }
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "promote").await?;
    let amended = amend_contract(
        &ledger,
        &client,
        backfill_id,
        &given,
        &args.by,
        &args.reason,
    )
    .await?;
    println!(
        "backfill {backfill_id}: contract version {} → {} by {} ({}):",
        amended.from_version, amended.to_version, args.by, args.reason
    );
    for c in &amended.changes {
        println!("  {c}");
    }
    if amended.contract.dq_policy.is_none() {
        warn_without_policy(backfill_id);
    }
    Ok(())
}
