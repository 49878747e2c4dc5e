//! Registering a backfill: the request checked, the job's settings pinned in the
//! manifest, the backfill and its partitions recorded.

use backfill_databricks::DatabricksClient;
use backfill_ledger::{Ledger, NewBackfill, Registration};

use crate::{Manifest, ProduceError, ProduceRequest};

/// Validates the request, reads the job to pin its settings in the manifest, and
/// registers the backfill and its partitions. Returns the manifest id with what changed.
pub async fn register(
    ledger: &Ledger,
    client: &DatabricksClient,
    request: &ProduceRequest,
) -> Result<(String, Registration), ProduceError> {
    request.validate()?;
    let job = client
        .get_job(request.job_id)
        .await
        .map_err(|source| ProduceError::Job {
            job_id: request.job_id,
            source,
        })?;
    let job_cap = job.settings.max_concurrent_runs.unwrap_or(1);
    if job_cap < request.concurrency_cap {
        tracing::warn!(
            job_id = request.job_id,
            job_max_concurrent_runs = job_cap,
            concurrency_cap = request.concurrency_cap,
            "the job allows fewer concurrent runs than the backfill's cap; runs beyond it will queue or be skipped"
        );
    }
    let manifest = Manifest::new(request, &job);
    let manifest_id = manifest.id();
    let new = NewBackfill {
        backfill_id: request.backfill_id.clone(),
        job_id: request.job_id,
        start: request.start,
        end: request.end,
        params: request.run_params(),
        concurrency_cap: request.concurrency_cap,
        manifest_id: manifest_id.clone(),
        manifest: serde_json::to_value(&manifest).unwrap_or_default(),
        contract: request.contract.clone(),
        created_by: request.created_by.clone(),
    };
    let registration = ledger.register_backfill(&new).await?;
    Ok((manifest_id, registration))
}
