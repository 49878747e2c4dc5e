//! A backfill's promotion contract (SPEC invariant 10): what governs its promotion, recorded
//! when it is produced and changed only by a recorded, audited amendment. `reconcile`,
//! `promote` and `rollback` read it here, never from their own flags.

use backfill_contract::BackfillId;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::model::{corrupt, two_columns};
use crate::{Ledger, LedgerError, NewEvent, now_ms};

/// The data-quality policy a backfill is gated on: its text as given, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPolicy {
    pub sha256: String,
    pub text: String,
    /// Where it was read from, for people (the hash is what counts).
    pub source: String,
}

/// A Databricks job as it was when the contract was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedJob {
    pub job_id: i64,
    pub name: Option<String>,
    /// SHA-256 of the job's settings as `jobs/get` returned them.
    pub settings_hash: String,
}

/// What governs a backfill's promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionContract {
    /// `None`: produced without a policy; every promotion says so, loudly.
    pub dq_policy: Option<RecordedPolicy>,
    pub require_approval: bool,
    /// Where the backfill's runs write (passed to every run as `staging_table`).
    pub staging_table: String,
    pub target_table: String,
    pub promotion_job: RecordedJob,
    pub rollback_job: RecordedJob,
}

impl PromotionContract {
    /// The key verdicts are stored under: the policy's hash, or `-` without a policy.
    pub fn policy_key(&self) -> &str {
        self.dq_policy.as_ref().map_or("-", |p| p.sha256.as_str())
    }

    /// What differs from `other`, one `field: old → new` per change (empty when equal).
    pub fn changes_to(&self, other: &PromotionContract) -> Vec<String> {
        let policy = |c: &PromotionContract| {
            c.dq_policy
                .as_ref()
                .map_or_else(|| "none".to_owned(), |p| format!("sha256 {}", &p.sha256))
        };
        let job = |j: &RecordedJob| format!("job {} (settings {})", j.job_id, j.settings_hash);
        let mut out = Vec::new();
        let mut diff = |field: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{field}: {a} → {b}"));
            }
        };
        diff("dq_policy", policy(self), policy(other));
        diff(
            "require_approval",
            self.require_approval.to_string(),
            other.require_approval.to_string(),
        );
        diff(
            "staging_table",
            self.staging_table.clone(),
            other.staging_table.clone(),
        );
        diff(
            "target_table",
            self.target_table.clone(),
            other.target_table.clone(),
        );
        diff(
            "promotion_job",
            job(&self.promotion_job),
            job(&other.promotion_job),
        );
        diff(
            "rollback_job",
            job(&self.rollback_job),
            job(&other.rollback_job),
        );
        out
    }
}

/// One version of a backfill's contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractVersion {
    pub version: i64,
    pub contract: PromotionContract,
    pub amended_by: String,
    pub reason: String,
    pub at_ms: i64,
}

fn version_from_row(r: &AnyRow) -> Result<ContractVersion, LedgerError> {
    let json: String = r.try_get("contract_json").map_err(corrupt)?;
    Ok(ContractVersion {
        version: r.try_get("version").map_err(corrupt)?,
        contract: serde_json::from_str(&json).map_err(corrupt)?,
        amended_by: r.try_get("amended_by").map_err(corrupt)?,
        reason: r.try_get("reason").map_err(corrupt)?,
        at_ms: r.try_get("at_ms").map_err(corrupt)?,
    })
}

impl Ledger {
    /// The contract in force: the latest version (`None` for a backfill registered before
    /// contracts were recorded).
    pub async fn contract(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Option<ContractVersion>, LedgerError> {
        let rows = self
            .backfill_rows(
                "SELECT version, contract_json, amended_by, reason, at_ms FROM contracts \
                 WHERE backfill_id = $1 ORDER BY version DESC LIMIT 1",
                backfill_id,
                version_from_row,
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Every version, oldest first: the contract's history for the audit.
    pub async fn contract_history(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<ContractVersion>, LedgerError> {
        self.backfill_rows(
            "SELECT version, contract_json, amended_by, reason, at_ms FROM contracts \
             WHERE backfill_id = $1 ORDER BY version",
            backfill_id,
            version_from_row,
        )
        .await
    }

    /// Records a new version of the contract, amending version `current` (0 when there is
    /// none yet), with who and why. Refused when the contract changed meanwhile, or when
    /// the amendment changes nothing.
    pub async fn amend_contract(
        &self,
        backfill_id: &BackfillId,
        current: i64,
        contract: &PromotionContract,
        by: &str,
        reason: &str,
    ) -> Result<i64, LedgerError> {
        let mut tx = self.pool.begin().await?;
        // A write first: it serialises amendments and promotions of the backfill (a row
        // lock on PostgreSQL, the write lock on SQLite, taken before anything is read).
        sqlx::query("UPDATE backfills SET state = state WHERE backfill_id = $1")
            .bind(backfill_id.to_string())
            .execute(&mut *tx)
            .await?;
        let live: Option<String> = sqlx::query_scalar(
            "SELECT action_key FROM actions WHERE backfill_id = $1 \
             AND state IN ('requested', 'running') LIMIT 1",
        )
        .bind(backfill_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(action) = live {
            return Err(LedgerError::Refused(format!(
                "{backfill_id}: {action} is in progress under the current contract; let `backfill promote` \
                 (or `backfill rollback`) finish it before amending"
            )));
        }
        let latest: Option<(i64, String)> = sqlx::query(
            "SELECT version, contract_json FROM contracts WHERE backfill_id = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(backfill_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| two_columns::<i64, String>(&r))
        .transpose()?;
        let (latest_version, changes) = match &latest {
            Some((v, json)) => {
                let old: PromotionContract = serde_json::from_str(json).map_err(corrupt)?;
                (*v, old.changes_to(contract))
            }
            None => (0, vec!["recorded".to_owned()]),
        };
        if latest_version != current {
            return Err(LedgerError::Refused(format!(
                "{backfill_id}: its contract is at version {latest_version}, not {current} (amended meanwhile)"
            )));
        }
        if changes.is_empty() {
            return Err(LedgerError::Refused(format!(
                "{backfill_id}: the amendment changes nothing in contract version {latest_version}"
            )));
        }
        let version = latest_version + 1;
        let inserted = insert_version(&mut tx, backfill_id, version, contract, by, reason).await?;
        if !inserted {
            return Err(LedgerError::Refused(format!(
                "{backfill_id}: contract version {version} was recorded meanwhile"
            )));
        }
        let event = NewEvent::backfill(by, backfill_id, "contract_amended").detail(format!(
            "version {latest_version} → {version} ({reason}): {}",
            changes.join("; ")
        ));
        insert_event(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(version)
    }
}

/// Inserts one version (false when it already exists).
pub(crate) async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backfill_id: &BackfillId,
    version: i64,
    contract: &PromotionContract,
    by: &str,
    reason: &str,
) -> Result<bool, LedgerError> {
    let json = serde_json::to_string(contract).map_err(corrupt)?;
    let done = sqlx::query(
        "INSERT INTO contracts (backfill_id, version, contract_json, amended_by, reason, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(backfill_id.to_string())
    .bind(version)
    .bind(json)
    .bind(by.to_owned())
    .bind(reason.to_owned())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
