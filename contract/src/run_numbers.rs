//! Numbers on the run side of a partition: a Databricks run's id and a check chain's link.
//! Both are 64-bit integers on the wire and in the ledger; as types they cannot be swapped.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id Databricks gave one run (of a backfill job, or of a promotion or rollback job).
/// Written as the bare number in messages, JSON and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(i64);

impl RunId {
    /// The number Databricks uses for the run.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for RunId {
    fn from(id: i64) -> Self {
        Self(id)
    }
}

impl From<RunId> for i64 {
    fn from(id: RunId) -> Self {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The link of a partition's one live check chain (the ledger's `check_seq`): each hand-on
/// bumps it, so a message carrying an older one is stale. Written as the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckSeq(i64);

impl CheckSeq {
    /// The number the ledger stores.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The link after this one.
    pub fn next(self) -> CheckSeq {
        CheckSeq(self.0 + 1)
    }
}

impl From<i64> for CheckSeq {
    fn from(seq: i64) -> Self {
        Self(seq)
    }
}

impl From<CheckSeq> for i64 {
    fn from(seq: CheckSeq) -> Self {
        seq.0
    }
}

impl fmt::Display for CheckSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_are_bare_numbers_in_json_and_text() {
        assert_eq!(serde_json::to_string(&RunId::from(42)).unwrap(), "42");
        assert_eq!(serde_json::to_string(&CheckSeq::from(3)).unwrap(), "3");
        assert_eq!(serde_json::from_str::<RunId>("42").unwrap().get(), 42);
        assert_eq!(RunId::from(7).to_string(), "7");
        assert_eq!(CheckSeq::from(3).next().to_string(), "4");
    }
}
