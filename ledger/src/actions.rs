//! Promotion and rollback actions: each created once (racing reconcilers share one action
//! and one idempotency token) and moved along by compare-and-set, every move an event.

use std::fmt;
use std::str::FromStr;

use backfill_contract::{BackfillId, RunId};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::{Ledger, LedgerError, NewEvent, now_ms};

/// What an action does, as stored in `actions.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Copies proven partition attempts into the target table.
    Promote,
    /// Restores one partition of the target table to its version before a promotion.
    Rollback,
}

impl ActionKind {
    /// Every kind, in a fixed order (metrics report each one, zero included).
    pub const ALL: [ActionKind; 2] = [ActionKind::Promote, ActionKind::Rollback];

    /// The word stored in the ledger and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Promote => "promote",
            ActionKind::Rollback => "rollback",
        }
    }
}

/// Where an action stands, as stored in `actions.state` (and its promotion items').
///
/// ```text
/// requested ─run started─► running ─► succeeded
///     │                       │
///     └───────────────────────┴─────► failed (the next try is a new action)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Created; its run may not have started.
    Requested,
    /// Its run started and is followed.
    Running,
    Succeeded,
    Failed,
}

impl ActionState {
    /// Every state, in a fixed order (metrics report each one, zero included).
    pub const ALL: [ActionState; 4] = [
        ActionState::Requested,
        ActionState::Running,
        ActionState::Succeeded,
        ActionState::Failed,
    ];

    /// The unfinished states: an action in one holds its partitions.
    pub const LIVE: [ActionState; 2] = [ActionState::Requested, ActionState::Running];

    /// The word stored in the ledger and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Requested => "requested",
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
        }
    }

    /// Requested or running: not finished yet.
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| LedgerError::Corrupt(format!("unknown action kind {s:?}")))
    }
}

impl FromStr for ActionState {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| LedgerError::Corrupt(format!("unknown action state {s:?}")))
    }
}

/// A promotion wave or a partition's rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub action_key: String,
    pub kind: ActionKind,
    pub seq: i64,
    pub partitions: Vec<String>,
    pub token: String,
    pub state: ActionState,
    pub run_id: Option<RunId>,
    /// What the action's run reported (table versions), as JSON text.
    pub detail: String,
    pub actor: String,
    pub at_ms: i64,
    /// The contract version the action was started under.
    pub contract_version: Option<i64>,
}

fn action_from_row(r: &AnyRow) -> Result<Action, LedgerError> {
    let partitions: String = r.try_get("partitions").map_err(corrupt)?;
    Ok(Action {
        action_key: r.try_get("action_key").map_err(corrupt)?,
        kind: r.try_get::<String, _>("kind").map_err(corrupt)?.parse()?,
        seq: r.try_get("seq").map_err(corrupt)?,
        partitions: partitions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        token: r.try_get("token").map_err(corrupt)?,
        state: r.try_get::<String, _>("state").map_err(corrupt)?.parse()?,
        run_id: r
            .try_get::<Option<i64>, _>("run_id")
            .map_err(corrupt)?
            .map(RunId::from),
        detail: r.try_get("detail").map_err(corrupt)?,
        actor: r.try_get("actor").map_err(corrupt)?,
        at_ms: r.try_get("at_ms").map_err(corrupt)?,
        contract_version: r.try_get("contract_version").map_err(corrupt)?,
    })
}

impl Ledger {
    /// Creates the action unless it exists; returns the stored action either way, so that
    /// racing reconcilers share one action (and one idempotency token).
    #[allow(clippy::too_many_arguments)] // one row, its fields
    pub async fn create_action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        kind: ActionKind,
        seq: i64,
        partitions: &[String],
        token: &str,
        contract_version: Option<i64>,
        actor: &str,
    ) -> Result<Action, LedgerError> {
        let mut tx = self.pool.begin().await?;
        // A write first: serialised with promotions and amendments of the backfill.
        sqlx::query("UPDATE backfills SET state = state WHERE backfill_id = $1")
            .bind(backfill_id.to_string())
            .execute(&mut *tx)
            .await?;
        if kind == ActionKind::Rollback {
            for p in partitions {
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT action_key FROM promotion_items WHERE backfill_id = $1 \
                     AND partition_date = $2 AND state IN ('requested', 'running') LIMIT 1",
                )
                .bind(backfill_id.to_string())
                .bind(p.clone())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(action) = live {
                    return Err(LedgerError::Refused(format!(
                        "partition {p} is being promoted ({action}); let `backfill promote` finish it before rolling back"
                    )));
                }
            }
        }
        let created = sqlx::query(
            "INSERT INTO actions (backfill_id, action_key, kind, seq, partitions, token, state, detail, actor, at_ms, contract_version) \
             VALUES ($1, $2, $3, $4, $5, $6, 'requested', '', $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .bind(kind.as_str())
        .bind(seq)
        .bind(partitions.join(","))
        .bind(token.to_owned())
        .bind(actor.to_owned())
        .bind(now_ms())
        .bind(contract_version)
        .execute(&mut *tx)
        .await?;
        if created.rows_affected() == 1 {
            let event = NewEvent::backfill(actor, backfill_id, "action_requested")
                .detail(format!("{kind} {key}: {}", partitions.join(",")));
            insert_event(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.action(backfill_id, key)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("action {key} vanished")))
    }

    pub async fn action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
    ) -> Result<Option<Action>, LedgerError> {
        let row = sqlx::query("SELECT * FROM actions WHERE backfill_id = $1 AND action_key = $2")
            .bind(backfill_id.to_string())
            .bind(key.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(action_from_row).transpose()
    }

    pub async fn actions(&self, backfill_id: &BackfillId) -> Result<Vec<Action>, LedgerError> {
        self.backfill_rows(
            "SELECT * FROM actions WHERE backfill_id = $1 ORDER BY seq, at_ms, action_key",
            backfill_id,
            action_from_row,
        )
        .await
    }

    /// Ends a live action failed, with its run (if it started one) and what went wrong;
    /// false when another reconciler ended it first. Its partitions are free again.
    pub async fn fail_action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        run_id: Option<RunId>,
        detail: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let (from, to) = (&ActionState::LIVE, ActionState::Failed);
        self.move_action(backfill_id, key, from, to, run_id, detail, actor)
            .await
    }

    /// Moves an action from one of `from` to `to` (recording its run and what it reported);
    /// false when it was no longer in `from` (another reconciler moved it). A promotion's
    /// items move with it.
    #[allow(clippy::too_many_arguments)] // one compare-and-set, its fields
    pub async fn move_action(
        &self,
        backfill_id: &BackfillId,
        key: &str,
        from: &[ActionState],
        to: ActionState,
        run_id: Option<RunId>,
        detail: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let moved =
            move_action_in(&mut tx, backfill_id, key, from, to, run_id, detail, actor).await?;
        tx.commit().await?;
        Ok(moved)
    }
}

/// [`Ledger::move_action`] inside a transaction.
#[allow(clippy::too_many_arguments)] // one compare-and-set, its fields
pub(crate) async fn move_action_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backfill_id: &BackfillId,
    key: &str,
    from: &[ActionState],
    to: ActionState,
    run_id: Option<RunId>,
    detail: &str,
    actor: &str,
) -> Result<bool, LedgerError> {
    let list: Vec<String> = from.iter().map(|s| format!("'{s}'")).collect();
    let sql = format!(
        "UPDATE actions SET state = $1, run_id = COALESCE($2, run_id), detail = $3 \
         WHERE backfill_id = $4 AND action_key = $5 AND state IN ({})",
        list.join(", ")
    );
    // Built from the states' fixed words; values are bound.
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(run_id.map(RunId::get))
        .bind(detail.to_owned())
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
    let moved = done.rows_affected() == 1;
    if moved {
        sqlx::query(
            "UPDATE promotion_items SET state = $1 WHERE backfill_id = $2 AND action_key = $3",
        )
        .bind(to.as_str())
        .bind(backfill_id.to_string())
        .bind(key.to_owned())
        .execute(&mut **tx)
        .await?;
        let event = NewEvent::backfill(actor, backfill_id, "action_state")
            .run(run_id)
            .detail(format!("{key} {to} {detail}"));
        insert_event(tx, &event).await?;
    }
    Ok(moved)
}
