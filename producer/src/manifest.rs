//! The reproducibility manifest: what exactly a backfill recomputes, with which job
//! definition and inputs. Recorded once; its id travels with every message and run.

use std::collections::BTreeMap;

use backfill_databricks::models::Job;
use backfill_ledger::PromotionContract;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ProduceRequest;

/// What finance and audit need to reproduce the numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub backfill_id: String,
    pub job_id: i64,
    pub job_name: Option<String>,
    /// SHA-256 of the job's settings as `jobs/get` returned them.
    pub job_settings_hash: String,
    pub start: String,
    pub end: String,
    /// Every parameter, pinned versions of code and dimension tables included.
    pub params: BTreeMap<String, String>,
    /// The job code's pinned version (`--code-version`).
    pub code_version: Option<String>,
    /// Dimension tables' pinned versions (`--pin TABLE=VERSION`).
    pub pinned_tables: BTreeMap<String, String>,
    pub concurrency_cap: i64,
    /// What governs promotion: the data-quality policy (its text and hash), approval, the
    /// staging and target tables, the promotion and rollback jobs (with settings hashes).
    /// `None`: produced without one; such a backfill cannot be promoted until a recorded
    /// amendment gives it one.
    pub promotion_contract: Option<PromotionContract>,
    pub created_by: String,
    pub created_at: String,
    pub fleet_version: String,
}

impl Manifest {
    pub fn new(request: &ProduceRequest, job: &Job) -> Self {
        Self {
            backfill_id: request.backfill_id.to_string(),
            job_id: request.job_id,
            job_name: job.settings.name.clone(),
            job_settings_hash: settings_hash(job),
            start: request.start.to_string(),
            end: request.end.to_string(),
            params: request.run_params(),
            code_version: request.params.get("code_version").cloned(),
            pinned_tables: request
                .params
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("pin.").map(|t| (t.to_owned(), v.clone())))
                .collect(),
            concurrency_cap: request.concurrency_cap,
            promotion_contract: request.contract.clone(),
            created_by: request.created_by.clone(),
            created_at: chrono::Utc::now().to_rfc3339(),
            fleet_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// `m-` and the first 16 hex digits of the SHA-256 of the manifest.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("m-{}", &hex::encode(Sha256::digest(json))[..16])
    }
}

/// SHA-256 of a job's settings in canonical (sorted-key) JSON.
pub fn settings_hash(job: &Job) -> String {
    job.settings_hash()
}
