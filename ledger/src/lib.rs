//! The ledger: the fleet's durable state and its audit trail (SPEC 5.3).
//!
//! One API over two backends, chosen by URL: SQLite (`sqlite://backfill.db`, WAL mode) for
//! one machine, PostgreSQL (`postgres://...`) for a fleet that spans machines. Versioned
//! migrations run on [`Ledger::connect`].
//!
//! Every change of a partition's state is a compare-and-set (`UPDATE ... WHERE state = ..
//! AND attempt = ..`) committed together with its event, so two workers holding the same
//! message cannot both act, and every change is on record. Events are append-only; the
//! schema itself refuses updates and deletes of them.

mod actions;
mod approvals;
mod backfills;
mod batch;
mod connect;
mod contracts;
mod dq_results;
mod error;
mod events;
mod fleet;
mod group;
mod guards;
mod identity;
mod model;
mod partitions;
mod promotions;
mod proofs;
mod rows;
mod summary;
mod trigger_sweep;

pub use partitions::{Claim, RunTimes, Sibling, spend_with_next_run};
pub use summary::PartitionSummary;
pub use trigger_sweep::{Reissued, Woken};

pub use actions::{Action, ActionKind, ActionState};
pub use backfills::{NewBackfill, Registration};
pub use connect::Ledger;
pub use contracts::{ContractVersion, PromotionContract, RecordedJob, RecordedPolicy};
pub use dq_results::DqResult;
pub use error::LedgerError;
pub use events::{Event, NewEvent};
pub use guards::{Guards, HoldReason, ProtectedWindow};
pub use model::{Backfill, BackfillState, Partition, PartitionKey, PartitionState, now_ms};
pub use promotions::{PromotedVersions, PromotionCounts, PromotionItem};
pub use proofs::Proof;
