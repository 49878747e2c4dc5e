//! SQLite: a short write transaction sent to the connection's thread as one batch of
//! statements (`BEGIN IMMEDIATE; ...; COMMIT`), instead of one round trip a statement.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a
//! hand-off to it and back; the ledger holds one connection, so a transaction of four
//! statements held it for four hand-offs and the scheduling of its task between them.
//! A batch is one hand-off: the thread runs every statement, in order, as one command.
//! Its statements share the bound values (`$1`, `$2`, ... name the same value in each).
//!
//! A group of jobs (see `group`) runs as `BEGIN IMMEDIATE`, its batches of alike jobs,
//! and `COMMIT`, each a hand-off of its own ([`run_transaction`]): batches whose text
//! recurs stay prepared on the connection, which costs less than compiling one batch
//! of every statement for each group.
//!
//! A batch that fails part-way, or whose caller stops waiting, would leave its
//! transaction open on the connection: it is rolled back, and a connection whose state is
//! unknown (the caller stopped waiting, or the rollback failed) is closed, not returned
//! to the pool (closing a SQLite connection rolls back what it had open).

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Either, Executor};

use futures_util::TryStreamExt;

use crate::LedgerError;

/// Rows of each statement of a batch, in order.
pub(crate) type JobRows = Vec<Vec<AnyRow>>;

/// A pooled connection that is closed on drop unless its batch ended cleanly.
struct Held(Option<PoolConnection<Any>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

impl Held {
    fn conn(&mut self) -> &mut PoolConnection<Any> {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on release"))
    }

    /// The batch ended: the connection goes back to the pool as usual.
    fn release(mut self) {
        drop(self.0.take());
    }
}

/// Runs `query`, a batch of statements that opens a transaction and commits it, on one
/// connection; returns the rows of each of its statements, in order.
pub(crate) async fn run_statements(
    pool: &AnyPool,
    query: Query<'_, Any, AnyArguments>,
) -> Result<JobRows, LedgerError> {
    let mut held = Held(Some(pool.acquire().await?));
    let results = held.conn().fetch_many(query).try_collect::<Vec<_>>().await;
    match results {
        Ok(results) => {
            held.release();
            Ok(split(results))
        }
        Err(e) => {
            rollback(held).await;
            Err(e.into())
        }
    }
}

/// Runs `batches` (statements without `BEGIN` or `COMMIT`) in order as one transaction
/// on one connection: `BEGIN IMMEDIATE`, each batch, `COMMIT`, each its own hand-off;
/// returns the rows of each batch's statements. Batches whose text recurs stay prepared
/// on the connection (`persistent`), so they are not compiled again for every group.
pub(crate) async fn run_transaction(
    pool: &AnyPool,
    batches: Vec<Query<'_, Any, AnyArguments>>,
) -> Result<Vec<JobRows>, LedgerError> {
    let mut held = Held(Some(pool.acquire().await?));
    let mut out = Vec::with_capacity(batches.len());
    let mut ran = held
        .conn()
        .execute(sqlx::query("BEGIN IMMEDIATE"))
        .await
        .map(drop);
    for batch in batches {
        if ran.is_err() {
            break;
        }
        ran = held
            .conn()
            .fetch_many(batch)
            .try_collect::<Vec<_>>()
            .await
            .map(|results| out.push(split(results)));
    }
    if ran.is_ok() {
        ran = held.conn().execute(sqlx::query("COMMIT")).await.map(drop);
    }
    match ran {
        Ok(()) => {
            held.release();
            Ok(out)
        }
        Err(e) => {
            rollback(held).await;
            Err(e.into())
        }
    }
}

/// After a failed batch: rolls back whatever it left open. SQLite refuses a rollback
/// with no transaction open (the batch failed before or after it), which is as good; any
/// other failure closes the connection.
async fn rollback(mut held: Held) {
    match held.conn().execute("ROLLBACK").await {
        Ok(_) => held.release(),
        Err(e) if e.to_string().contains("no transaction is active") => held.release(),
        Err(_) => {}
    }
}

/// The rows a batch's statements returned, split by statement (each statement's result
/// follows its rows).
fn split(results: Vec<Either<sqlx::any::AnyQueryResult, AnyRow>>) -> JobRows {
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for result in results {
        match result {
            Either::Right(row) => current.push(row),
            Either::Left(_) => statements.push(std::mem::take(&mut current)),
        }
    }
    statements
}
