//! The freshness guard: no new backfill run starts inside a protected window (UTC) or
//! while the production job has an active run, so the live pipeline keeps its freshness.

use std::time::Duration;

use backfill_databricks::DatabricksClient;
use backfill_databricks::models::ListRuns;
use backfill_ledger::{Guards, HoldReason};
use chrono::Timelike;

use crate::StepError;
use crate::expiring::Expiring;

/// Why a new run must wait now: [`HoldReason::ProtectedWindow`] or
/// [`HoldReason::ProductionRunning`], with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reason: HoldReason,
    pub detail: String,
}

/// Whether production jobs have active runs, remembered for a few seconds so that a busy
/// worker does not list runs for every trigger.
#[derive(Debug)]
pub struct ProductionWatch {
    seen: Expiring<i64, bool>,
}

impl Default for ProductionWatch {
    fn default() -> Self {
        Self {
            seen: Expiring::new(Self::FRESH_FOR),
        }
    }
}

impl ProductionWatch {
    const FRESH_FOR: Duration = Duration::from_secs(5);

    async fn active(&self, client: &DatabricksClient, job_id: i64) -> Result<bool, StepError> {
        let read = async {
            let filter = ListRuns {
                job_id: Some(job_id),
                active_only: true,
                limit: Some(1),
                ..ListRuns::default()
            };
            Ok(!client.list_runs_page(&filter, None).await?.runs.is_empty())
        };
        self.seen.get_or_read(&job_id, read).await
    }

    /// Why a new run must wait now, if it must.
    pub async fn hold(
        &self,
        client: &DatabricksClient,
        guards: &Guards,
    ) -> Result<Option<Hold>, StepError> {
        let now = chrono::Utc::now();
        if let Some(w) = guards.open_window(now.hour() * 60 + now.minute()) {
            return Ok(Some(Hold {
                reason: HoldReason::ProtectedWindow,
                detail: format!("freshness: protected window {w} UTC"),
            }));
        }
        match guards.production_job_id {
            Some(job) if self.active(client, job).await? => Ok(Some(Hold {
                reason: HoldReason::ProductionRunning,
                detail: format!("freshness: production job {job} has an active run"),
            })),
            _ => Ok(None),
        }
    }
}
