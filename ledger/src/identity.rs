//! Which fleet a ledger is, and which broker namespace each of its backfills lives in:
//! what lets a worker given the wrong `LEDGER_URL` or `BACKFILL_NAMESPACE` change nothing.

use backfill_contract::BackfillId;

use crate::{Ledger, LedgerError};

impl Ledger {
    /// This ledger's random id (created with the ledger), stamped into every message.
    pub async fn ledger_id(&self) -> Result<String, LedgerError> {
        let id: String = sqlx::query_scalar("SELECT ledger_id FROM fleet_identity LIMIT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// Whether any backfill of this ledger was published in `namespace`: then a message
    /// stamped with another ledger's id there is a stray, not a sign that this worker is
    /// misconfigured.
    pub async fn has_backfills_in(&self, namespace: &str) -> Result<bool, LedgerError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backfills WHERE namespace = $1")
            .bind(namespace)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Records that the backfill's messages go to broker namespace `namespace` (at its
    /// first publish). Refused, naming both, when it was published in another namespace.
    pub async fn bind_namespace(
        &self,
        backfill_id: &BackfillId,
        namespace: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE backfills SET namespace = $1 WHERE backfill_id = $2 AND namespace IS NULL",
        )
        .bind(namespace)
        .bind(backfill_id.to_string())
        .execute(&self.pool)
        .await?;
        let bound: Option<Option<String>> =
            sqlx::query_scalar("SELECT namespace FROM backfills WHERE backfill_id = $1")
                .bind(backfill_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        match bound.flatten() {
            Some(bound) if bound != namespace => Err(LedgerError::OtherNamespace {
                backfill_id: backfill_id.to_string(),
                bound,
                asked: namespace.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}
