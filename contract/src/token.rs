//! The idempotency token of one (backfill, partition, attempt): the key that makes a
//! repeated `run-now` return the existing run instead of starting another.

use crate::{Attempt, BackfillId, PartitionDate};

/// Derives the token for one attempt at one partition. Deterministic, so any worker that
/// re-attaches after a crash sends the same token, and at most 58 characters, within the
/// 64 Databricks allows.
pub fn idempotency_token(backfill: &BackfillId, date: PartitionDate, attempt: Attempt) -> String {
    format!("bf-{backfill}-{}-a{attempt}", date.date().format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_stable_distinct_and_short() {
        let id: BackfillId = "x".repeat(40).parse().unwrap();
        let d: PartitionDate = "2026-05-01".parse().unwrap();
        let a = Attempt::try_from(Attempt::MAX).unwrap();
        let t = idempotency_token(&id, d, a);
        assert!(t.len() <= 64, "{} chars", t.len());
        assert_eq!(t, idempotency_token(&id, d, a));
        assert_ne!(
            idempotency_token(&id, d, Attempt::FIRST),
            idempotency_token(&id, d, Attempt::FIRST.next())
        );
    }
}
