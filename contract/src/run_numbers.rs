//! Numbers on the run side of a partition: a Databricks run's id and a check chain's link.
//! Both are 64-bit integers on the wire and in the ledger; as types they cannot be swapped.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 64-bit number of the fleet as a type of its own: the bare number on the wire, in
/// JSON and in text; `get` and `From` convert at the edges (SQL columns, the Jobs API).
macro_rules! number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The bare number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(n: i64) -> Self {
                Self(n)
            }
        }

        impl From<$name> for i64 {
            fn from(n: $name) -> Self {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        /// The bare number in debug output too, as logs and messages showed it before.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

number! {
    /// The id Databricks gave one run (of a backfill job, or of a promotion or rollback
    /// job).
    RunId
}

number! {
    /// The link of a partition's one live check chain (the ledger's `check_seq`): each
    /// hand-on bumps it, so a message carrying an older one is stale.
    CheckSeq
}

impl CheckSeq {
    /// The link after this one.
    pub fn next(self) -> CheckSeq {
        CheckSeq(self.0 + 1)
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
