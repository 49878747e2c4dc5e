//! What the workers of a fleet share besides partitions: who is alive (heartbeats) and
//! which Databricks endpoints the workspace asked everyone to leave alone for a while.

use std::collections::BTreeMap;

use crate::model::two_columns;
use crate::{Ledger, LedgerError, now_ms};

impl Ledger {
    /// Records that `worker_id` is alive and returns how many workers were seen within
    /// `ttl_ms` (this one included).
    pub async fn heartbeat(&self, worker_id: &str, ttl_ms: i64) -> Result<i64, LedgerError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (worker_id, started_at_ms, last_seen_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (worker_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
        )
        .bind(worker_id.to_owned())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workers WHERE last_seen_ms > $1")
            .bind(now - ttl_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(live.max(1))
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

    /// Takes the next call slot of `endpoint`, slots being `interval_ms` apart fleet-wide:
    /// `0` when this call may go now (the slot is taken), otherwise how many milliseconds
    /// until the next free slot.
    pub async fn take_rate_slot(
        &self,
        endpoint: &str,
        interval_ms: i64,
    ) -> Result<i64, LedgerError> {
        for _ in 0..2 {
            let now = now_ms();
            let taken: Option<i64> = sqlx::query_scalar(
                "UPDATE api_rate SET next_ms = \
                 CASE WHEN next_ms < $2 THEN $2 ELSE next_ms END + $3 \
                 WHERE endpoint = $1 AND next_ms <= $2 RETURNING next_ms",
            )
            .bind(endpoint.to_owned())
            .bind(now)
            .bind(interval_ms)
            .fetch_optional(&self.pool)
            .await?;
            if taken.is_some() {
                return Ok(0);
            }
            let next: Option<i64> =
                sqlx::query_scalar("SELECT next_ms FROM api_rate WHERE endpoint = $1")
                    .bind(endpoint.to_owned())
                    .fetch_optional(&self.pool)
                    .await?;
            match next {
                Some(next) => return Ok((next - now).max(1)),
                None => {
                    sqlx::query(
                        "INSERT INTO api_rate (endpoint, next_ms) VALUES ($1, 0) \
                         ON CONFLICT (endpoint) DO NOTHING",
                    )
                    .bind(endpoint.to_owned())
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(1)
    }

    /// Endpoints paused fleet-wide, with the time each pause ends.
    pub async fn paused_endpoints(&self) -> Result<BTreeMap<String, i64>, LedgerError> {
        let rows = sqlx::query("SELECT endpoint, until_ms FROM api_throttle WHERE until_ms > $1")
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(two_columns).collect()
    }
}
