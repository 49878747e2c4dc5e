//! The message contract between producer and workers (SPEC 5.2) and the domain identifiers
//! every other crate speaks in.
//!
//! Messages are versioned JSON (`schema_version`), decoded with [`PartitionMessage::decode`],
//! which names the problem for anything it refuses: garbage bytes, an unknown version, a
//! missing or invalid field, an oversize body.

mod error;
mod ids;
pub mod jobs;
mod message;
mod run_numbers;
mod token;
mod wire;

pub use error::ContractError;
pub use ids::{Attempt, BackfillId, PartitionDate};
pub use message::{PartitionMessage, Step};
pub use run_numbers::{CheckSeq, RunId};
pub use token::{MAX_TOKEN_LEN, idempotency_token, promotion_token, rollback_token, scoped_token};
pub use wire::{MAX_MESSAGE_BYTES, SCHEMA_VERSION};
