//! Idempotency tokens: the key that makes a repeated `run-now` return the existing run
//! instead of starting another. Every token starts with as much of the ledger's identity
//! as fits, so two fleets (two ledgers) sharing one workspace, even with the same backfill
//! id, never send the same token and never take over each other's runs.

use crate::{Attempt, BackfillId, PartitionDate};

/// Databricks accepts tokens of at most 64 characters.
pub const MAX_TOKEN_LEN: usize = 64;

/// The fewest characters of the ledger's identity a token carries (32 bits of a random
/// id); a short body leaves room for all of it.
const MIN_LEDGER_CHARS: usize = 8;

/// `body` prefixed with the ledger's identity: as many of its characters as fit within 64,
/// at least 8 (every body this crate builds leaves room for 8).
pub fn scoped_token(ledger_id: &str, body: &str) -> String {
    let room = MAX_TOKEN_LEN
        .saturating_sub(body.len() + 1)
        .max(MIN_LEDGER_CHARS);
    let ledger: String = ledger_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(room)
        .collect();
    format!("{ledger}-{body}")
}

/// The token of one attempt at one partition. Deterministic, so any worker that re-attaches
/// after a crash sends the same token; at most 64 characters.
pub fn idempotency_token(
    ledger_id: &str,
    backfill: &BackfillId,
    date: PartitionDate,
    attempt: Attempt,
) -> String {
    let body = format!("{backfill}-{}-a{attempt}", date.date().format("%Y%m%d"));
    scoped_token(ledger_id, &body)
}

/// The token of one promotion action (its sequence number within the backfill): a failed
/// promotion is retried as a new action, so with a fresh token. Within 64 characters up to
/// 9,999 promotions of a backfill.
pub fn promotion_token(ledger_id: &str, backfill: &BackfillId, seq: i64) -> String {
    scoped_token(ledger_id, &format!("{backfill}-p{seq}"))
}

/// The token of one rollback action (its key names the partition, the promotion it undoes
/// and the try): a digest of the key, so that it fits beside the whole ledger identity.
pub fn rollback_token(ledger_id: &str, backfill: &BackfillId, action_key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{backfill}/{action_key}").as_bytes());
    scoped_token(ledger_id, &format!("rb-{}", &hex::encode(digest)[..24]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEDGER: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn token_is_stable_distinct_and_short() {
        let id: BackfillId = "x".repeat(40).parse().unwrap();
        let d: PartitionDate = "2026-05-01".parse().unwrap();
        let a = Attempt::try_from(Attempt::MAX).unwrap();
        let t = idempotency_token(LEDGER, &id, d, a);
        assert!(t.len() <= MAX_TOKEN_LEN, "{t}: {} chars", t.len());
        assert!(t.starts_with("01234567-"), "{t}");
        assert_eq!(t, idempotency_token(LEDGER, &id, d, a));
        assert_ne!(
            idempotency_token(LEDGER, &id, d, Attempt::FIRST),
            idempotency_token(LEDGER, &id, d, Attempt::FIRST.next())
        );
        let seq = promotion_token(LEDGER, &id, 9_999);
        assert!(seq.len() <= MAX_TOKEN_LEN, "{seq}");
        let r = rollback_token(LEDGER, &id, "rollback-2026-05-01-promote-9999-99");
        assert!(r.len() <= MAX_TOKEN_LEN && r.starts_with(LEDGER), "{r}");
        assert_ne!(
            r,
            rollback_token(LEDGER, &id, "rollback-2026-05-01-promote-9999-98")
        );
    }

    #[test]
    fn two_ledgers_never_share_a_token() {
        let id: BackfillId = "usage-fix".parse().unwrap();
        let d: PartitionDate = "2026-05-01".parse().unwrap();
        let other = "fedcba9876543210fedcba9876543210";
        let mine = idempotency_token(LEDGER, &id, d, Attempt::FIRST);
        assert_ne!(mine, idempotency_token(other, &id, d, Attempt::FIRST));
        // A short backfill id leaves room for the whole identity.
        assert!(mine.starts_with(LEDGER), "{mine}");
        assert_ne!(
            promotion_token(LEDGER, &id, 1),
            promotion_token(other, &id, 1)
        );
    }
}
