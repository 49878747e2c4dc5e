//! What the workers of a fleet share besides partitions: who is alive (heartbeats) and
//! which Databricks endpoints the workspace asked everyone to leave alone for a while.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::model::corrupt;
use crate::{Ledger, LedgerError, now_ms};

impl Ledger {
    /// Records that `worker_id` is alive and returns how many workers were seen within
    /// `ttl_ms` (this one included) and this worker's rank among them (how many of them
    /// have a smaller id).
    pub async fn heartbeat(&self, worker_id: &str, ttl_ms: i64) -> Result<(i64, i64), LedgerError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (worker_id, started_at_ms, last_seen_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (worker_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
        )
        .bind(worker_id.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN worker_id < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM workers WHERE last_seen_ms > $1",
        )
        .bind(now - ttl_ms)
        .bind(worker_id.to_owned())
        .fetch_one(&self.pool)
        .await?;
        let live: i64 = row.try_get(0).map_err(corrupt)?;
        let rank: i64 = row.try_get(1).map_err(corrupt)?;
        Ok((live.max(1), rank))
    }

    /// Removes a worker that stops cleanly, so the others take its share at once.
    pub async fn leave(&self, worker_id: &str) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM workers WHERE worker_id = $1")
            .bind(worker_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Asks the whole fleet to leave `endpoint` alone until `until_ms` (a later pause
    /// already recorded wins).
    pub async fn pause_endpoint(&self, endpoint: &str, until_ms: i64) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO api_throttle (endpoint, until_ms) VALUES ($1, $2) \
             ON CONFLICT (endpoint) DO UPDATE SET until_ms = \
             CASE WHEN excluded.until_ms > api_throttle.until_ms THEN excluded.until_ms \
             ELSE api_throttle.until_ms END",
        )
        .bind(endpoint.to_owned())
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends the fleet-wide pause of `endpoint` (or of every endpoint): an operator who
    /// knows the workspace is fine again. Returns how many pauses were in force.
    pub async fn clear_pauses(&self, endpoint: Option<&str>) -> Result<u64, LedgerError> {
        let cleared = match endpoint {
            Some(e) => {
                sqlx::query("DELETE FROM api_throttle WHERE endpoint = $1 AND until_ms > $2")
                    .bind(e.to_owned())
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM api_throttle WHERE until_ms > $1")
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(cleared.rows_affected())
    }

    /// Endpoints paused fleet-wide, with the time each pause ends.
    pub async fn paused_endpoints(&self) -> Result<BTreeMap<String, i64>, LedgerError> {
        let rows = sqlx::query("SELECT endpoint, until_ms FROM api_throttle WHERE until_ms > $1")
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ))
            })
            .collect()
    }
}
