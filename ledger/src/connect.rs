//! Opening the ledger: URL validation, pool set-up per backend, migrations.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::LedgerError;
use crate::group::Group;

/// A handle on the ledger; cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Ledger {
    pub(crate) pool: AnyPool,
    /// Where a partition's row is read on its hot path: on SQLite a read-only connection
    /// of its own (WAL readers wait for no writer, and the writer's connection does not
    /// wait for them); elsewhere the same pool.
    pub(crate) reads: AnyPool,
    /// SQLite: the queue of short write transactions committed together.
    pub(crate) group: Group,
    backend: Backend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating a SQLite file if missing) and migrates the ledger at `url`.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        install_default_drivers();
        let (backend, dial) = Self::parse(url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .max_connections(pool_size("LEDGER_SQLITE_POOL", 1))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 15000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&dial)
                    .await?
            }
            Backend::Postgres => {
                options
                    .max_connections(pool_size("LEDGER_PG_POOL", 10))
                    .connect(&dial)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let reads = match backend {
            // An in-memory database is private to its connection.
            Backend::Sqlite if !dial.contains(":memory:") && !dial.contains("mode=memory") => {
                AnyPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(30))
                    .max_connections(pool_size("LEDGER_SQLITE_READ_POOL", 1))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 15000; PRAGMA query_only = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&dial)
                    .await?
            }
            _ => pool.clone(),
        };
        Ok(Self {
            pool,
            reads,
            group: Group::default(),
            backend,
        })
    }

    fn parse(url: &str) -> Result<(Backend, String), LedgerError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            if path.is_empty() {
                return Err(LedgerError::Config(
                    "sqlite URL names no file (use sqlite://backfill.db)".into(),
                ));
            }
            let dial = if rest.contains("mode=") || path.starts_with(":memory:") {
                format!("sqlite://{path}")
            } else if path.contains('?') {
                format!("sqlite://{path}&mode=rwc")
            } else {
                format!("sqlite://{path}?mode=rwc")
            };
            Ok((Backend::Sqlite, dial))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_owned()))
        } else {
            Err(LedgerError::Config(
                "ledger URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// SQLite runs its short write transactions as one batch of statements each.
    pub(crate) fn is_sqlite(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
    }
}

/// A pool size from the environment (for experiments), or the default.
fn pool_size(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_sqlite_files_created_on_demand() {
        let (b, dial) = Ledger::parse("sqlite://backfill.db").unwrap();
        assert_eq!(b, Backend::Sqlite);
        assert_eq!(dial, "sqlite://backfill.db?mode=rwc");
        assert_eq!(
            Ledger::parse("sqlite:///tmp/x.db").unwrap().1,
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert_eq!(
            Ledger::parse("postgres://u@h/db").unwrap().0,
            Backend::Postgres
        );
        let err = Ledger::parse("mysql://x").unwrap_err().to_string();
        assert!(err.contains("sqlite://"), "{err}");
        assert!(Ledger::parse("sqlite://").is_err());
    }
}
