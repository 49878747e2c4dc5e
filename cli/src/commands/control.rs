//! `backfill pause`, `resume` and `cancel`: an operator's hand on a running backfill.

use backfill_databricks::models::ListRuns;
use backfill_ledger::{BackfillState, Guards, PartitionState};

use super::{load_backfill, parse_backfill_id};
use crate::CliError;
use crate::args::{ControlArgs, GlobalOpts, GuardFlags, GuardsArgs, ThrottleArgs, ThrottleCommand};

/// Pause (no new runs start; running ones are followed to their end) or resume.
pub async fn set_paused(
    global: &GlobalOpts,
    args: ControlArgs,
    paused: bool,
) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let ledger = global.ledger().await?;
    let backfill = load_backfill(&ledger, &backfill_id).await?;
    if backfill.state == BackfillState::Cancelled {
        return Err(CliError::usage(format!(
            "backfill {backfill_id} is cancelled"
        )));
    }
    let (state, verb) = if paused {
        (BackfillState::Paused, "paused")
    } else {
        (BackfillState::Active, "resumed")
    };
    let changed = ledger
        .set_backfill_state(&backfill_id, state, &args.by, &args.reason)
        .await
        .map_err(anyhow::Error::new)?;
    println!(
        "backfill {backfill_id} {}",
        if changed { verb } else { "was already so" }
    );
    Ok(())
}

/// Cancels this backfill only: no new runs, every unfinished partition recorded
/// `cancelled`, then each of its runs cancelled one by one through `runs/cancel` (never
/// `cancel-all`, which would hit other backfills and production): the recorded ones and
/// any active run of its job whose parameters name this backfill. Errors on single runs
/// are listed at the end (exit 1) without stopping the rest. Safe to repeat.
pub async fn cancel(global: &GlobalOpts, args: ControlArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    if !args.yes {
        return Err(CliError::usage(format!(
            "cancelling {backfill_id} stops its runs and cannot be undone; repeat with --yes"
        )));
    }
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "cancel").await?;
    let backfill = load_backfill(&ledger, &backfill_id).await?;
    let why = format!("cancelled by {}: {}", args.by, args.reason);
    ledger
        .set_backfill_state(
            &backfill_id,
            BackfillState::Cancelled,
            &args.by,
            &args.reason,
        )
        .await
        .map_err(anyhow::Error::new)?;
    let partitions = ledger
        .partitions(&backfill_id)
        .await
        .map_err(anyhow::Error::new)?;
    let mut cancelled = 0;
    for p in partitions.iter().filter(|p| !p.state.is_terminal()) {
        // Ledger first: a worker's check then drops the run instead of dead-lettering it.
        if ledger
            .cancel_active(&p.key(), p.attempt, &args.by, &why)
            .await
            .map_err(anyhow::Error::new)?
        {
            cancelled += 1;
        }
    }
    // Every run of this backfill: the recorded ones, and the active runs of its job whose
    // parameters name this backfill (runs whose id was never recorded: a lost run-now
    // answer, a worker killed before recording). Never `cancel-all`.
    let mut run_ids: std::collections::BTreeSet<i64> = ledger
        .partitions(&backfill_id)
        .await
        .map_err(anyhow::Error::new)?
        .into_iter()
        .filter(|p| p.state == PartitionState::Cancelled)
        .filter_map(|p| p.run_id)
        .collect();
    let active = ListRuns {
        job_id: Some(backfill.job_id),
        active_only: true,
        ..ListRuns::default()
    };
    let mut failed: Vec<String> = Vec::new();
    match client.list_runs(&active, 10_000).await {
        Ok(listed) => run_ids.extend(
            listed
                .iter()
                .filter(|r| r.parameter("backfill_id") == Some(backfill_id.as_str()))
                .map(|r| r.run_id),
        ),
        Err(e) => failed.push(format!(
            "could not list the job's active runs (unrecorded runs may remain): {e}"
        )),
    }
    let total = run_ids.len();
    let mut runs = 0;
    for run_id in run_ids {
        // Cancelling a terminal run changes nothing, so a repeated cancel is harmless; an
        // error on one run does not stop the others.
        match client.cancel_run(run_id).await {
            Ok(()) => {
                runs += 1;
                eprintln!("cancelled run {run_id} ({runs}/{total})");
            }
            Err(e) => failed.push(format!("run {run_id}: {e}")),
        }
    }
    println!(
        "backfill {backfill_id} cancelled: {cancelled} partitions cancelled, {runs} runs cancelled"
    );
    if failed.is_empty() {
        return Ok(());
    }
    Err(CliError::Negative(format!(
        "could not cancel everything ({} left); repeat the command:\n  {}",
        failed.len(),
        failed.join("\n  ")
    )))
}

/// `backfill throttle show | clear`: the fleet-wide pauses of Databricks endpoints.
pub async fn throttle(global: &GlobalOpts, args: ThrottleArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    match args.command {
        ThrottleCommand::Show => {
            let paused = ledger
                .paused_endpoints()
                .await
                .map_err(anyhow::Error::new)?;
            if paused.is_empty() {
                println!("no endpoint is paused");
            }
            let now = backfill_ledger::now_ms();
            for (endpoint, until) in paused {
                println!(
                    "{endpoint} paused for another {} s",
                    (until - now).max(0) / 1000
                );
            }
            Ok(())
        }
        ThrottleCommand::Clear { endpoint } => {
            let cleared = ledger
                .clear_pauses(endpoint.as_deref())
                .await
                .map_err(anyhow::Error::new)?;
            println!("{cleared} pauses cleared; workers follow within a heartbeat");
            Ok(())
        }
    }
}

/// Applies guard flags over `current`, checking every value.
pub fn merge_guards(current: Guards, flags: &GuardFlags) -> Result<Guards, CliError> {
    if flags.budget.is_some_and(|b| b < 0.0) || flags.price_per_run_hour.is_some_and(|p| p < 0.0) {
        return Err(CliError::usage(
            "--budget and --price-per-run-hour must not be negative",
        ));
    }
    let mut windows = current.protected_windows;
    windows.extend(flags.protected_windows.iter().copied());
    windows.dedup();
    Ok(Guards {
        price_per_run_hour: flags.price_per_run_hour.or(current.price_per_run_hour),
        budget: flags.budget.or(current.budget),
        protected_windows: windows,
        production_job_id: flags.production_job_id.or(current.production_job_id),
    })
}

/// `backfill guards`: change a backfill's guards.
pub async fn guards(global: &GlobalOpts, args: GuardsArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let ledger = global.ledger().await?;
    let backfill = load_backfill(&ledger, &backfill_id).await?;
    let mut current = backfill.guards;
    if args.clear_windows {
        current.protected_windows.clear();
    }
    let guards = merge_guards(current, &args.guards)?;
    ledger
        .set_guards(&backfill_id, &guards, &args.by)
        .await
        .map_err(anyhow::Error::new)?;
    println!("{}", serde_json::to_string(&guards).unwrap_or_default());
    Ok(())
}
