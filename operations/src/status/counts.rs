//! Partitions counted by state, written as a map from the state's word (in the words'
//! order, as `status --json` has always printed it).

use std::collections::BTreeMap;

use backfill_ledger::PartitionState;
use serde::{Serialize, Serializer};

/// How many partitions are in each state (every state present, zero included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts(BTreeMap<PartitionState, i64>);

impl StateCounts {
    /// Partitions in `state`.
    pub fn get(&self, state: PartitionState) -> i64 {
        self.0.get(&state).copied().unwrap_or(0)
    }

    /// Every state and its count, in the states' own order.
    pub fn iter(&self) -> impl Iterator<Item = (PartitionState, i64)> + '_ {
        self.0.iter().map(|(s, n)| (*s, *n))
    }

    /// Every state's word and its count, in the words' order.
    pub fn by_word(&self) -> BTreeMap<&'static str, i64> {
        self.iter().map(|(s, n)| (s.as_str(), n)).collect()
    }

    /// Triggering or running: holding a Databricks run or about to.
    pub fn active(&self) -> i64 {
        self.get(PartitionState::Triggering) + self.get(PartitionState::Running)
    }
}

impl From<BTreeMap<PartitionState, i64>> for StateCounts {
    fn from(counts: BTreeMap<PartitionState, i64>) -> Self {
        Self(counts)
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_word().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_serialize_by_state_word_in_word_order() {
        let counts = StateCounts::from(
            PartitionState::ALL
                .into_iter()
                .zip(1..)
                .collect::<BTreeMap<_, _>>(),
        );
        assert_eq!(
            serde_json::to_string(&counts).ok().as_deref(),
            Some(
                r#"{"cancelled":7,"dead_lettered":6,"failed":5,"pending":1,"running":3,"succeeded":4,"triggering":2}"#
            )
        );
        assert_eq!(counts.active(), 5);
        assert_eq!(counts.get(PartitionState::Failed), 5);
    }
}
