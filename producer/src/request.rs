//! A backfill request, its validation, and registering it in the ledger.

use std::collections::BTreeMap;

use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::ApiError;
use backfill_ledger::{LedgerError, PromotionContract};

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
    /// The request itself is wrong (the operator's to fix).
    #[error("invalid request: {0}")]
    Request(RequestProblem),
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

/// What is wrong with a request, by the value at fault (the command line names its flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    #[error("the end {end} is before the start {start}")]
    EndBeforeStart {
        start: PartitionDate,
        end: PartitionDate,
    },
    #[error("job id {0} must be a positive number")]
    JobId(i64),
    #[error("concurrency cap {0} must be at least 1")]
    ConcurrencyCap(i64),
    #[error("parameter {0} is set by the fleet itself")]
    ReservedParam(String),
}

/// Job parameters the fleet sets itself; a request may not set them.
pub const RESERVED_PARAMS: [&str; 5] = backfill_contract::jobs::backfill::FLEET_PARAMS;

impl ProduceRequest {
    /// Checks the request, naming the first problem.
    pub fn validate(&self) -> Result<(), ProduceError> {
        if self.end < self.start {
            return Err(ProduceError::Request(RequestProblem::EndBeforeStart {
                start: self.start,
                end: self.end,
            }));
        }
        if self.job_id <= 0 {
            return Err(ProduceError::Request(RequestProblem::JobId(self.job_id)));
        }
        if self.concurrency_cap < 1 {
            return Err(ProduceError::Request(RequestProblem::ConcurrencyCap(
                self.concurrency_cap,
            )));
        }
        if let Some(p) = self
            .params
            .keys()
            .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(ProduceError::Request(RequestProblem::ReservedParam(
                p.clone(),
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
        assert!(matches!(
            r.validate(),
            Err(ProduceError::Request(RequestProblem::EndBeforeStart { .. }))
        ));
        let r = ProduceRequest {
            concurrency_cap: 0,
            ..request()
        };
        assert!(matches!(
            r.validate(),
            Err(ProduceError::Request(RequestProblem::ConcurrencyCap(0)))
        ));
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
