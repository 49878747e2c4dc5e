//! A Databricks workspace in a box: the Jobs API endpoints the fleet uses, served over
//! real HTTP by `backfill sim` and in-process by tests ([`Simulator::spawn`]). Job 1
//! recomputes partitions (its task reports data-quality metrics); jobs 2 and 3 promote
//! and roll back (their tasks report the target table's versions).
//!
//! Runs move through `PENDING → RUNNING → TERMINATED` on a clock (dwell times are
//! settings), idempotency tokens are remembered forever, and `/sim/stats` tells what the
//! simulator saw: calls per endpoint and runs per partition, so tests can assert "exactly
//! one run per partition attempt". It shares no code with the client on purpose: the wire
//! shapes are written out here, from the API notes, so a client bug cannot hide behind a
//! shared type.

mod config;
mod dispatch;
mod engine;
mod execution;
mod gate;
mod limits;
mod live_routes;
mod outcome;
mod refusal;
mod routes;
mod runs;
mod sample;
mod server;
mod slots;
mod spark_engine;
mod state;

pub use config::{FaultKind, FaultRule, JobOutput, JobSpec, JobTask, SimConfig};
pub use outcome::Outcome;
pub use routes::router;
pub use sample::{SAMPLE_FILE, SampleSpec, SampleSummary, prepare_sample};
pub use server::{SimHandle, serve};
pub use spark_engine::{SparkEngine, SparkSettings};
pub use state::{SimStats, Simulator};
