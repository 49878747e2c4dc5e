//! The freshness guard: no new backfill run starts inside a protected window (UTC) or
//! while the production job has an active run, so the live pipeline keeps its freshness.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backfill_databricks::DatabricksClient;
use backfill_databricks::models::ListRuns;
use backfill_ledger::Guards;
use chrono::Timelike;

use crate::StepError;

/// Whether production jobs have active runs, remembered for a few seconds so that a busy
/// worker does not list runs for every trigger.
#[derive(Debug, Default)]
pub struct ProductionWatch {
    seen: Mutex<HashMap<i64, (Instant, bool)>>,
}

impl ProductionWatch {
    const FRESH_FOR: Duration = Duration::from_secs(5);

    async fn active(&self, client: &DatabricksClient, job_id: i64) -> Result<bool, StepError> {
        let cached = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&job_id)
            .filter(|(at, _)| at.elapsed() < Self::FRESH_FOR)
            .map(|(_, active)| *active);
        if let Some(active) = cached {
            return Ok(active);
        }
        let filter = ListRuns {
            job_id: Some(job_id),
            active_only: true,
            limit: Some(1),
            ..ListRuns::default()
        };
        let active = !client.list_runs_page(&filter, None).await?.runs.is_empty();
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id, (Instant::now(), active));
        Ok(active)
    }

    /// Why a new run must wait now, if it must.
    pub async fn hold(
        &self,
        client: &DatabricksClient,
        guards: &Guards,
    ) -> Result<Option<String>, StepError> {
        let now = chrono::Utc::now();
        if let Some(w) = guards.open_window(now.hour() * 60 + now.minute()) {
            return Ok(Some(format!("freshness: protected window {w} UTC")));
        }
        match guards.production_job_id {
            Some(job) if self.active(client, job).await? => Ok(Some(format!(
                "freshness: production job {job} has an active run"
            ))),
            _ => Ok(None),
        }
    }
}
