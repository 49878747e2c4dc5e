//! The producer (SPEC 5.4): registers a backfill with its reproducibility manifest, then
//! publishes one trigger message per day-partition with publisher confirms.
//!
//! Both steps are idempotent: registering the same request again adds nothing, and
//! publishing sends only the partitions whose message was never confirmed, so a producer
//! killed halfway is simply run again.

mod manifest;
mod plan;
mod publish;
mod register;
mod request;
mod rerun;

pub use manifest::{Manifest, settings_hash};
pub use plan::{Plan, PlanInput, PlanProblem, plan};
pub use publish::publish_pending;
pub use register::register;
pub use request::{Order, ProduceError, ProduceRequest, RequestProblem};
pub use rerun::request_rerun;
