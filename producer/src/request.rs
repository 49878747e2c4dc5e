//! A backfill request, its validation, and registering it in the ledger.

use std::collections::BTreeMap;

use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::{ApiError, DatabricksClient};
use backfill_ledger::{Ledger, LedgerError, NewBackfill, PromotionContract, Registration};

use crate::Manifest;

/// Which partitions go first. Newest first by default: recent data is fixed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

impl std::str::FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "newest-first" => Ok(Self::NewestFirst),
            "oldest-first" => Ok(Self::OldestFirst),
            _ => Err(format!("order {s:?} must be newest-first or oldest-first")),
        }
    }
}

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct ProduceRequest {
    pub backfill_id: BackfillId,
    pub job_id: i64,
    pub start: PartitionDate,
    pub end: PartitionDate,
    /// Passed to every run as job parameters (with the partition date, backfill id and
    /// manifest id added by the worker).
    pub params: BTreeMap<String, String>,
    pub concurrency_cap: i64,
    pub order: Order,
    pub created_by: String,
    /// What governs its promotion (SPEC invariant 10), recorded with it. Its staging table
    /// is passed to every run as the `staging_table` parameter.
    pub contract: Option<PromotionContract>,
}

/// Why a request was refused or could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("could not read job {job_id} from Databricks: {source}")]
    Job {
        job_id: i64,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Broker(#[from] backfill_broker::BrokerError),
}

/// Job parameters the fleet sets itself; a request may not set them.
pub const RESERVED_PARAMS: [&str; 5] = backfill_contract::jobs::backfill::FLEET_PARAMS;

impl ProduceRequest {
    /// Checks the request, naming the first problem.
    pub fn validate(&self) -> Result<(), ProduceError> {
        if self.end < self.start {
            return Err(ProduceError::Invalid(format!(
                "--end {} is before --start {}",
                self.end, self.start
            )));
        }
        if self.job_id <= 0 {
            return Err(ProduceError::Invalid(
                "--job-id must be a positive number".into(),
            ));
        }
        if self.concurrency_cap < 1 {
            return Err(ProduceError::Invalid(
                "--concurrency-cap must be at least 1".into(),
            ));
        }
        if let Some(p) = self
            .params
            .keys()
            .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(ProduceError::Invalid(format!(
                "--param {p} is set by the fleet itself"
            )));
        }
        Ok(())
    }

    /// The parameters every run gets besides the partition's own: the request's, and the
    /// contract's staging table.
    pub fn run_params(&self) -> BTreeMap<String, String> {
        let mut params = self.params.clone();
        if let Some(c) = &self.contract {
            params.insert(
                backfill_contract::jobs::backfill::param::STAGING_TABLE.into(),
                c.staging_table.clone(),
            );
        }
        params
    }

    /// The partitions in publishing order.
    pub fn partitions(&self) -> Vec<PartitionDate> {
        let mut dates = PartitionDate::range_inclusive(self.start, self.end);
        if self.order == Order::NewestFirst {
            dates.reverse();
        }
        dates
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ProduceRequest {
        ProduceRequest {
            backfill_id: "bf".parse().unwrap(),
            job_id: 1,
            start: "2026-01-01".parse().unwrap(),
            end: "2026-01-03".parse().unwrap(),
            params: BTreeMap::new(),
            concurrency_cap: 10,
            order: Order::NewestFirst,
            created_by: "me".into(),
            contract: None,
        }
    }

    #[test]
    fn newest_first_by_default() {
        let dates: Vec<String> = request()
            .partitions()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(dates, ["2026-01-03", "2026-01-02", "2026-01-01"]);
        let r = ProduceRequest {
            order: Order::OldestFirst,
            ..request()
        };
        assert_eq!(r.partitions()[0].to_string(), "2026-01-01");
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let r = ProduceRequest {
            end: "2025-12-31".parse().unwrap(),
            ..request()
        };
        assert!(r.validate().unwrap_err().to_string().contains("--end"));
        let r = ProduceRequest {
            concurrency_cap: 0,
            ..request()
        };
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("--concurrency-cap")
        );
        let mut r = request();
        r.params.insert("partition_date".into(), "x".into());
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("partition_date")
        );
        assert!(request().validate().is_ok());
    }
}
