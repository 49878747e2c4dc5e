//! Reading a backfill's rows: one query whose only parameter (`$1`) is the backfill id,
//! each row read by a mapper of the module that owns the table.

use sqlx::any::AnyRow;

use backfill_contract::BackfillId;

use crate::{Ledger, LedgerError};

impl Ledger {
    /// Every row `sql` returns for `backfill_id`, each read by `read`. A query that returns
    /// one row at the most is read the same way (the caller takes the first).
    pub(crate) async fn backfill_rows<T>(
        &self,
        sql: &'static str,
        backfill_id: &BackfillId,
        read: impl Fn(&AnyRow) -> Result<T, LedgerError>,
    ) -> Result<Vec<T>, LedgerError> {
        let rows = sqlx::query(sql)
            .bind(backfill_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read).collect()
    }
}
