//! SQLite: group commit. The short write transactions of concurrent callers (a partition's
//! transition and its event, a claim with its guards) are queued, and whatever is queued
//! when the connection comes free runs as one transaction with one commit, instead of
//! one each. Alike jobs (the same statements) run together as one batch of statements on
//! the connection's thread (see `batch`), so a group of dozens of jobs takes a handful of
//! hand-offs; a batch's text recurs from group to group (batches of 32, 16, ... 1 alike
//! jobs), so its statements stay prepared on the connection instead of being compiled
//! for every group.
//!
//! Each job's statements run in order, after the jobs run before it in the group, so a
//! job sees what the earlier ones wrote (a claim counts the claims made before it in the
//! group: the cap holds). A job changes nothing a caller has not asked for: a
//! compare-and-set that finds its row moved returns no row, as alone. If the group fails
//! (a statement errs), it is rolled back and each job runs again alone, so one job's
//! error is its own. The group runs on a task of its own: a caller that stops waiting
//! does not stop the others' writes half-way.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool};
use tokio::sync::oneshot;

use crate::LedgerError;
use crate::batch::{self, JobRows};

/// A value bound into a statement.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

/// Most jobs in one group (one transaction); `LEDGER_SQLITE_GROUP` sets it (1: no
/// grouping), for experiments.
fn most_jobs() -> usize {
    static MOST: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MOST.get_or_init(|| {
        std::env::var("LEDGER_SQLITE_GROUP")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=256).contains(n))
            .unwrap_or(64)
    })
}

/// One caller's transaction: statements (`$1`.. name its own values) and their values.
pub(crate) struct Job {
    pub(crate) statements: Vec<String>,
    pub(crate) binds: Vec<Bind>,
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<JobRows, LedgerError>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Queued>,
    /// A task is running groups; it takes what is queued before it stops.
    draining: bool,
}

/// The queue of one ledger handle's SQLite writes (clones share it).
#[derive(Clone, Default)]
pub(crate) struct Group(Arc<Mutex<Queue>>);

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Group")
    }
}

impl Group {
    /// Runs `job` in the next group; the rows of each of its statements.
    pub(crate) async fn run(&self, pool: &AnyPool, job: Job) -> Result<JobRows, LedgerError> {
        let (reply, rows) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.jobs.push(Queued { job, reply });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            // Made before the task: a task dropped before it first runs (the runtime
            // shutting down) still lets the next caller start a drain.
            let draining = Draining(Some(self.clone()));
            tokio::spawn(drain(self.clone(), pool.clone(), draining));
        }
        rows.await
            .map_err(|_| LedgerError::Database(sqlx::Error::WorkerCrashed))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs groups until the queue is empty.
/// `draining`, dropped mid-way (the runtime shut down, or a panic), lets the next caller
/// start a drain again, and the callers waiting now hear of it instead of waiting forever.
async fn drain(group: Group, pool: AnyPool, mut draining: Draining) {
    loop {
        let jobs: Vec<Queued> = {
            let mut queue = group.lock();
            if queue.jobs.is_empty() {
                queue.draining = false;
                draining.0 = None;
                return;
            }
            let n = queue.jobs.len().min(most_jobs());
            queue.jobs.drain(..n).collect()
        };
        run_group(&pool, jobs).await;
    }
}

struct Draining(Option<Group>);

impl Drop for Draining {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            let mut queue = group.lock();
            queue.draining = false;
            queue.jobs.clear();
        }
    }
}

async fn run_group(pool: &AnyPool, jobs: Vec<Queued>) {
    if jobs.len() == 1 {
        for q in jobs {
            let result = alone(pool, &q.job).await;
            let _ = q.reply.send(result);
        }
        return;
    }
    let chunks = chunks(&jobs);
    let batches = chunks
        .iter()
        .map(|chunk| {
            let binds = chunk
                .members
                .iter()
                .flat_map(|&i| jobs[i].job.binds.iter().cloned())
                .collect();
            query(chunk.sql.clone(), binds, true)
        })
        .collect();
    match batch::run_transaction(pool, batches).await {
        Ok(results) => {
            let mut rows: Vec<Option<JobRows>> = jobs.iter().map(|_| None).collect();
            for (chunk, statements) in chunks.iter().zip(results) {
                let mut statements = statements.into_iter();
                for &i in &chunk.members {
                    let n = jobs[i].job.statements.len();
                    rows[i] = Some(statements.by_ref().take(n).collect());
                }
            }
            for (q, rows) in jobs.into_iter().zip(rows) {
                let _ = q.reply.send(Ok(rows.unwrap_or_default()));
            }
        }
        Err(e) if e.is_transient() => {
            // Busy, locked, out of connections or IO: no statement of a job caused it, and
            // running each alone would wait it out once per job. Every job was rolled
            // back, so each is told so, to retry later.
            for q in jobs {
                let why = format!("rolled back with the group of writes it was part of: {e}");
                let _ = q.reply.send(Err(LedgerError::Database(sqlx::Error::Io(
                    std::io::Error::other(why),
                ))));
            }
        }
        Err(_) => {
            // A statement failed and the group was rolled back: each job again, alone, so
            // that the error is its own job's.
            for q in jobs {
                let result = alone(pool, &q.job).await;
                let _ = q.reply.send(result);
            }
        }
    }
}

/// Alike jobs of a group (the same statements and as many values) run together as one
/// batch: the statements once per job, each job's values after the ones before.
struct Chunk {
    /// Indices of the jobs, in the group's order.
    members: Vec<usize>,
    sql: String,
}

/// The most alike jobs in one batch.
const MOST_ALIKE: usize = 32;

/// The group's jobs as batches of alike jobs, in the order each kind first appears, so
/// a batch's text recurs from group to group and stays prepared: each kind's jobs go in
/// batches of 32, 16, 8, 4, 2 and 1. Jobs are reordered only across kinds; they all
/// waited together, so any order is an order they could have arrived in, and each still
/// sees what the jobs run before it in the group wrote (a claim counts those claims).
fn chunks(jobs: &[Queued]) -> Vec<Chunk> {
    let mut kinds: Vec<(&Job, Vec<usize>)> = Vec::new();
    for (i, q) in jobs.iter().enumerate() {
        let alike =
            |k: &Job| k.statements == q.job.statements && k.binds.len() == q.job.binds.len();
        match kinds.iter_mut().find(|(k, _)| alike(k)) {
            Some((_, members)) => members.push(i),
            None => kinds.push((&q.job, vec![i])),
        }
    }
    let mut chunks = Vec::new();
    for (kind, members) in kinds {
        let mut rest = members.as_slice();
        while !rest.is_empty() {
            let size = MOST_ALIKE.min(1 << rest.len().ilog2());
            let (members, after) = rest.split_at(size);
            rest = after;
            chunks.push(Chunk {
                members: members.to_vec(),
                sql: chunk_sql(kind, size),
            });
        }
    }
    chunks
}

/// The text of `size` jobs like `kind` in one batch, built once per kind and size (a
/// batch of 32 runs to tens of kilobytes).
fn chunk_sql(kind: &Job, size: usize) -> String {
    type Texts = HashMap<u64, (Vec<String>, usize, usize, String)>;
    static TEXTS: OnceLock<Mutex<Texts>> = OnceLock::new();
    let values = kind.binds.len();
    let key = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&kind.statements, values, size).hash(&mut h);
        h.finish()
    };
    let texts = TEXTS.get_or_init(Mutex::default);
    if let Some((statements, v, n, sql)) = texts.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
        && *statements == kind.statements
        && (*v, *n) == (values, size)
    {
        return sql.clone();
    }
    let sql = (0..size)
        .flat_map(|copy| {
            kind.statements
                .iter()
                .map(move |statement| renumber(statement, copy * values))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut texts = texts.lock().unwrap_or_else(|p| p.into_inner());
    if texts.len() >= 512 {
        texts.clear();
    }
    texts.insert(key, (kind.statements.clone(), values, size, sql.clone()));
    sql
}

/// One job as its own transaction.
async fn alone(pool: &AnyPool, job: &Job) -> Result<JobRows, LedgerError> {
    let sql = format!("BEGIN IMMEDIATE; {}; COMMIT", job.statements.join("; "));
    let statements = batch::run_statements(pool, query(sql, job.binds.clone(), true)).await?;
    // After the BEGIN's (empty) result, before the COMMIT's.
    Ok(statements
        .into_iter()
        .skip(1)
        .take(job.statements.len())
        .collect())
}

/// The statement with its values bound.
pub(crate) fn query(
    sql: String,
    binds: Vec<Bind>,
    persistent: bool,
) -> Query<'static, Any, AnyArguments> {
    // Built only from column names and states in the ledger's code; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(persistent);
    for bind in binds {
        query = match bind {
            Bind::Int(v) => query.bind(v),
            Bind::OptInt(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
            Bind::OptText(v) => query.bind(v),
        };
    }
    query
}

/// `statement` with each `$N` made `$(N + offset)`: its values follow the jobs' before it.
/// The ledger's statements hold no `$` but in their parameters.
fn renumber(statement: &str, offset: usize) -> String {
    if offset == 0 {
        return statement.to_owned();
    }
    let mut out = String::with_capacity(statement.len() + 16);
    let mut chars = statement.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            n = n * 10 + (d as usize - '0' as usize);
            digits = true;
            chars.next();
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_are_renumbered_past_the_jobs_before() {
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $12 WHERE c = $2", 10),
            "UPDATE t SET a = $11, b = $22 WHERE c = $12"
        );
        assert_eq!(renumber("SELECT $3", 0), "SELECT $3");
        assert_eq!(renumber("x = 'a$' AND y = $1", 1), "x = 'a$' AND y = $2");
    }
}
