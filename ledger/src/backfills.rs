//! Registering backfills and reading them back.

use std::collections::BTreeMap;

use backfill_contract::{Attempt, BackfillId, PartitionDate};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::contracts::PromotionContract;
use crate::events::insert_event;
use crate::model::corrupt;
use crate::{
    Backfill, BackfillState, Guards, Ledger, LedgerError, NewEvent, PartitionState, now_ms,
};

/// A backfill request as the producer registers it.
#[derive(Debug, Clone)]
pub struct NewBackfill {
    pub backfill_id: BackfillId,
    pub job_id: i64,
    pub start: PartitionDate,
    pub end: PartitionDate,
    pub params: BTreeMap<String, String>,
    pub concurrency_cap: i64,
    pub manifest_id: String,
    pub manifest: serde_json::Value,
    /// What governs its promotion, recorded as the contract's version 1.
    pub contract: Option<PromotionContract>,
    pub created_by: String,
}

/// The part of a request that identifies it: re-registering the same request is a no-op,
/// a different request under the same id is refused.
#[derive(Serialize)]
struct RequestIdentity<'a> {
    job_id: i64,
    start: String,
    end: String,
    params: &'a BTreeMap<String, String>,
    concurrency_cap: i64,
    /// Without the policy's file name: the same policy given by another path is the same
    /// request.
    #[serde(skip_serializing_if = "Option::is_none")]
    contract: Option<PromotionContract>,
}

impl NewBackfill {
    fn request_json(&self) -> String {
        serde_json::to_string(&RequestIdentity {
            job_id: self.job_id,
            start: self.start.to_string(),
            end: self.end.to_string(),
            params: &self.params,
            concurrency_cap: self.concurrency_cap,
            contract: self.contract.clone().map(|mut c| {
                if let Some(p) = c.dq_policy.as_mut() {
                    p.source.clear();
                }
                c
            }),
        })
        .unwrap_or_default()
    }
}

/// What registering did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// False when the backfill was already registered with the same request.
    pub created: bool,
    /// Partitions added by this call.
    pub new_partitions: usize,
}

impl Ledger {
    /// Registers a backfill and its partitions (pending, attempt 1) in one transaction.
    /// Idempotent for the same request; refuses a different request under the same id.
    pub async fn register_backfill(&self, new: &NewBackfill) -> Result<Registration, LedgerError> {
        let request_json = new.request_json();
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT request_json FROM backfills WHERE backfill_id = $1")
                .bind(new.backfill_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let created = match existing {
            Some(stored) if stored == request_json => false,
            Some(_) => return Err(LedgerError::Conflict(new.backfill_id.to_string())),
            None => {
                sqlx::query(
                    "INSERT INTO backfills (backfill_id, job_id, start_date, end_date, request_json, \
                     manifest_id, manifest_json, state, concurrency_cap, created_by, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(new.backfill_id.to_string())
                .bind(new.job_id)
                .bind(new.start.to_string())
                .bind(new.end.to_string())
                .bind(request_json.clone())
                .bind(new.manifest_id.clone())
                .bind(new.manifest.to_string())
                .bind(BackfillState::Active.as_str())
                .bind(new.concurrency_cap)
                .bind(new.created_by.clone())
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                let event = NewEvent::backfill(&new.created_by, &new.backfill_id, "registered")
                    .detail(format!(
                        "job {} from {} to {}, manifest {}",
                        new.job_id, new.start, new.end, new.manifest_id
                    ));
                insert_event(&mut tx, &event).await?;
                if let Some(contract) = &new.contract {
                    crate::contracts::insert_version(
                        &mut tx,
                        &new.backfill_id,
                        1,
                        contract,
                        &new.created_by,
                        "recorded at produce",
                    )
                    .await?;
                    let event =
                        NewEvent::backfill(&new.created_by, &new.backfill_id, "contract_recorded")
                            .detail(contract_summary(contract));
                    insert_event(&mut tx, &event).await?;
                }
                true
            }
        };
        let now = now_ms();
        let mut new_partitions = 0;
        for date in PartitionDate::range_inclusive(new.start, new.end) {
            let done = sqlx::query(
                "INSERT INTO partitions (backfill_id, partition_date, state, attempt, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(new.backfill_id.to_string())
            .bind(date.to_string())
            .bind(PartitionState::Pending.as_str())
            .bind(i64::from(Attempt::FIRST.get()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            new_partitions += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(Registration {
            created,
            new_partitions,
        })
    }

    pub async fn backfill(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Option<Backfill>, LedgerError> {
        let rows = self
            .backfill_rows(
                "SELECT backfill_id, job_id, start_date, end_date, request_json, manifest_id, \
                 manifest_json, state, concurrency_cap, created_by, created_at_ms, \
                 price_per_run_hour, budget, protected_windows, production_job_id \
                 FROM backfills WHERE backfill_id = $1",
                backfill_id,
                backfill_from_row,
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The backfill's manifest id alone (what a re-issued message carries): readable even
    /// when other fields of the row no longer decode.
    pub async fn manifest_id(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query("SELECT manifest_id FROM backfills WHERE backfill_id = $1")
            .bind(backfill_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get(0).map_err(corrupt)).transpose()
    }

    /// The most recently registered backfills (newest first, at most `limit`): what
    /// dashboards show. Older ones stay in the ledger and the audit.
    pub async fn recent_backfills(&self, limit: i64) -> Result<Vec<BackfillId>, LedgerError> {
        let rows = sqlx::query(
            "SELECT backfill_id FROM backfills ORDER BY created_at_ms DESC, backfill_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("backfill_id").map_err(corrupt)?;
                id.parse()
                    .map_err(|e| LedgerError::Corrupt(format!("backfill id {id:?}: {e}")))
            })
            .collect()
    }

    /// Replaces a backfill's guards, recording who changed them to what.
    pub async fn set_guards(
        &self,
        backfill_id: &BackfillId,
        guards: &Guards,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE backfills SET price_per_run_hour = $1, budget = $2, protected_windows = $3, \
             production_job_id = $4 WHERE backfill_id = $5",
        )
        .bind(guards.price_per_run_hour)
        .bind(guards.budget)
        .bind(
            guards
                .protected_windows
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .bind(guards.production_job_id)
        .bind(backfill_id.to_string())
        .execute(&mut *tx)
        .await?;
        let event = NewEvent::backfill(actor, backfill_id, "guards_changed")
            .detail(serde_json::to_string(guards).unwrap_or_default());
        commit_if_changed(tx, done.rows_affected(), &event).await
    }

    /// Run-milliseconds charged over every attempt's runs (failed, dead-lettered and
    /// cancelled ones included, the last two bounded from above when their end is not
    /// known) and how many runs finished with a measured length (for spend).
    pub async fn finished_run_time(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<(i64, i64), LedgerError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(spent_run_ms), 0) AS BIGINT), \
             CAST(COALESCE(SUM(runs_finished), 0) AS BIGINT) \
             FROM partitions WHERE backfill_id = $1",
        )
        .bind(backfill_id.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get(0).map_err(corrupt)?,
            row.try_get(1).map_err(corrupt)?,
        ))
    }

    /// How many runs of the backfill have finished, the shortest and the mean length in
    /// milliseconds (Databricks start to end): what adaptive polling is tuned by.
    pub async fn run_lengths(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<(i64, i64, i64), LedgerError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(MIN(run_ended_ms - run_started_ms), 0) AS BIGINT), \
             CAST(COALESCE(AVG(run_ended_ms - run_started_ms), 0) AS BIGINT) \
             FROM partitions WHERE backfill_id = $1 AND run_ended_ms IS NOT NULL \
             AND run_started_ms IS NOT NULL AND run_ended_ms >= run_started_ms",
        )
        .bind(backfill_id.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get(0).map_err(corrupt)?,
            row.try_get(1).map_err(corrupt)?,
            row.try_get(2).map_err(corrupt)?,
        ))
    }

    /// Sets a backfill's state (pause, resume, cancel), recording who and why.
    pub async fn set_backfill_state(
        &self,
        backfill_id: &BackfillId,
        state: BackfillState,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE backfills SET state = $1 WHERE backfill_id = $2 AND state <> $1")
                .bind(state.as_str())
                .bind(backfill_id.to_string())
                .execute(&mut *tx)
                .await?;
        let event = NewEvent::backfill(actor, backfill_id, "backfill_state")
            .detail(format!("{}: {why}", state.as_str()));
        commit_if_changed(tx, done.rows_affected(), &event).await
    }
}

/// Commits an update of one backfill's row, with its event when it changed the row.
async fn commit_if_changed(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    rows_affected: u64,
    event: &NewEvent,
) -> Result<bool, LedgerError> {
    let changed = rows_affected == 1;
    if changed {
        insert_event(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

fn backfill_from_row(r: &AnyRow) -> Result<Backfill, LedgerError> {
    let request: serde_json::Value =
        serde_json::from_str(&r.try_get::<String, _>("request_json").map_err(corrupt)?)
            .map_err(corrupt)?;
    let params = serde_json::from_value(request["params"].clone()).map_err(corrupt)?;
    Ok(Backfill {
        backfill_id: r
            .try_get::<String, _>("backfill_id")
            .map_err(corrupt)?
            .parse()
            .map_err(corrupt)?,
        job_id: r.try_get("job_id").map_err(corrupt)?,
        start: r
            .try_get::<String, _>("start_date")
            .map_err(corrupt)?
            .parse()
            .map_err(corrupt)?,
        end: r
            .try_get::<String, _>("end_date")
            .map_err(corrupt)?
            .parse()
            .map_err(corrupt)?,
        params,
        manifest_id: r.try_get("manifest_id").map_err(corrupt)?,
        manifest: serde_json::from_str(&r.try_get::<String, _>("manifest_json").map_err(corrupt)?)
            .map_err(corrupt)?,
        state: r.try_get::<String, _>("state").map_err(corrupt)?.parse()?,
        concurrency_cap: r.try_get("concurrency_cap").map_err(corrupt)?,
        created_by: r.try_get("created_by").map_err(corrupt)?,
        created_at_ms: r.try_get("created_at_ms").map_err(corrupt)?,
        guards: Guards {
            price_per_run_hour: r.try_get("price_per_run_hour").map_err(corrupt)?,
            budget: r.try_get("budget").map_err(corrupt)?,
            protected_windows: r
                .try_get::<Option<String>, _>("protected_windows")
                .map_err(corrupt)?
                .map(|w| {
                    w.split(',')
                        .filter(|w| !w.is_empty())
                        .map(|w| w.parse().map_err(LedgerError::Corrupt))
                        .collect::<Result<_, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            production_job_id: r.try_get("production_job_id").map_err(corrupt)?,
        },
    })
}

/// The contract in one line, for the audit.
fn contract_summary(c: &PromotionContract) -> String {
    format!(
        "version 1: dq_policy {}, approval {}, staging {}, target {}, promotion job {}, rollback job {}",
        c.dq_policy.as_ref().map_or_else(
            || "NONE (promotion gated on run success alone)".to_owned(),
            |p| format!("{} sha256 {}", p.source, p.sha256)
        ),
        if c.require_approval {
            "required"
        } else {
            "not required"
        },
        c.staging_table,
        c.target_table,
        c.promotion_job.job_id,
        c.rollback_job.job_id
    )
}
