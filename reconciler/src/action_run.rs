//! Running a promotion's or rollback's job once (by the action's token), following it to
//! its end and reading what it reported.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backfill_contract::{BackfillId, RunId};
use backfill_databricks::models::RunNowRequest;
use backfill_databricks::{DatabricksClient, RunOutcome, classify};
use backfill_ledger::{Action, ActionState, Ledger};
use serde_json::{Value, json};

use crate::ReconcileError;

/// How to carry out promotions and rollbacks (what and where is the contract's).
#[derive(Debug, Clone)]
pub struct PromotionSettings {
    /// Partitions per promotion run, oldest first. Only batches: it never changes what
    /// is promoted.
    pub wave_size: usize,
    /// How often to look at a promotion or rollback run, and for how long at most.
    pub poll: Duration,
    pub timeout: Duration,
}

/// How an action's run ended.
pub(crate) enum Ended {
    Succeeded {
        run_id: RunId,
        detail: String,
        reported: Value,
    },
    Failed {
        run_id: Option<RunId>,
        detail: String,
    },
}

/// Runs the action's job (once, by its token), waits for it and reads what it reported.
/// The caller records the end.
#[allow(clippy::too_many_arguments)] // one run: what, where, how long, by whom
pub(crate) async fn run_action(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    action: &Action,
    job_id: i64,
    params: BTreeMap<String, String>,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Ended, ReconcileError> {
    let request = RunNowRequest {
        job_id,
        job_parameters: params,
        idempotency_token: Some(action.token.clone()),
    };
    let run_id = match client.run_now(&request).await {
        Ok(r) => RunId::from(r.run_id),
        // Refused for good (the job is gone, no permission, bad parameters): no run was
        // started, and retrying the same request cannot help. The action ends failed, so
        // the next attempt is a new action (after, say, an amendment naming another job).
        Err(e) if e.is_permanent() => {
            return Ok(Ended::Failed {
                run_id: None,
                detail: json!({"refused": e.to_string()}).to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    ledger
        .move_action(
            backfill_id,
            &action.action_key,
            &[ActionState::Requested],
            ActionState::Running,
            Some(run_id),
            "",
            actor,
        )
        .await?;
    let deadline = Instant::now() + settings.timeout;
    let run = loop {
        let run = client.get_run(run_id.get()).await?;
        if !matches!(classify(&run), RunOutcome::InProgress { .. }) {
            break run;
        }
        if Instant::now() > deadline {
            return Err(ReconcileError::Timeout(format!(
                "{} run {run_id} still running after {:?}; run the command again to follow it",
                action.action_key, settings.timeout
            )));
        }
        tokio::time::sleep(settings.poll).await;
    };
    Ok(match classify(&run) {
        RunOutcome::Succeeded => {
            let task = run
                .tasks
                .last()
                .and_then(|t| t.run_id)
                .unwrap_or(run_id.get());
            let output = client.get_run_output(task).await?;
            let reported: Value = output
                .notebook_output
                .and_then(|o| o.result)
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null);
            Ended::Succeeded {
                run_id,
                detail: json!({"run_page_url": run.run_page_url, "reported": reported}).to_string(),
                reported,
            }
        }
        other => Ended::Failed {
            run_id: Some(run_id),
            detail: json!({"run_page_url": run.run_page_url, "outcome": format!("{other:?}")})
                .to_string(),
        },
    })
}
