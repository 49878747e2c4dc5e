//! The operator's approval of promotion, recorded per contract version.

use backfill_contract::BackfillId;

use crate::events::insert_event;
use crate::{Ledger, LedgerError, NewEvent, now_ms};

impl Ledger {
    /// Records an operator's approval of promotion under contract version
    /// `contract_version` (once; the first approver is kept). An amendment needs approving
    /// again.
    pub async fn approve(
        &self,
        backfill_id: &BackfillId,
        contract_version: i64,
        by: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO contract_approvals (backfill_id, contract_version, approved_by, at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(backfill_id.to_string())
        .bind(contract_version)
        .bind(by.to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let created = done.rows_affected() == 1;
        if created {
            insert_event(
                &mut tx,
                &NewEvent::backfill(by, backfill_id, "promotion_approved")
                    .detail(format!("under contract version {contract_version}")),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Who approved promotion under contract version `contract_version`, if anyone.
    pub async fn approval(
        &self,
        backfill_id: &BackfillId,
        contract_version: i64,
    ) -> Result<Option<String>, LedgerError> {
        Ok(sqlx::query_scalar(
            "SELECT approved_by FROM contract_approvals WHERE backfill_id = $1 AND contract_version = $2",
        )
        .bind(backfill_id.to_string())
        .bind(contract_version)
        .fetch_optional(&self.pool)
        .await?)
    }
}
