//! Validated domain identifiers: a backfill's id, a day-partition, an attempt number.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ContractError;

/// The longest backfill id accepted; keeps every derived idempotency token within 64 characters.
pub const MAX_BACKFILL_ID_LEN: usize = 40;

/// The operator-chosen name of one backfill: 1 to 40 of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackfillId(String);

impl BackfillId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BackfillId {
    type Error = ContractError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let why = if value.is_empty() {
            Some("must not be empty")
        } else if value.len() > MAX_BACKFILL_ID_LEN {
            Some("must be at most 40 characters")
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some("may contain only letters, digits, '_' and '-'")
        } else {
            None
        };
        match why {
            Some(why) => Err(ContractError::InvalidId {
                what: "backfill id",
                value,
                why,
            }),
            None => Ok(Self(value)),
        }
    }
}

impl FromStr for BackfillId {
    type Err = ContractError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<BackfillId> for String {
    fn from(id: BackfillId) -> Self {
        id.0
    }
}

impl fmt::Display for BackfillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One day-partition of the backfilled range, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartitionDate(NaiveDate);

impl PartitionDate {
    pub fn new(date: NaiveDate) -> Self {
        Self(date)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// Every day from `start` to `end`, both included, oldest first.
    pub fn range_inclusive(start: Self, end: Self) -> Vec<Self> {
        start
            .0
            .iter_days()
            .take_while(|d| *d <= end.0)
            .map(Self)
            .collect()
    }
}

impl TryFrom<String> for PartitionDate {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for PartitionDate {
    type Err = ContractError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 10 {
            return Err(ContractError::InvalidId {
                what: "partition date",
                value: s.to_owned(),
                why: "expected YYYY-MM-DD",
            });
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Self)
            .map_err(|_| ContractError::InvalidId {
                what: "partition date",
                value: s.to_owned(),
                why: "expected a real calendar day as YYYY-MM-DD",
            })
    }
}

impl From<PartitionDate> for String {
    fn from(d: PartitionDate) -> Self {
        d.to_string()
    }
}

impl fmt::Display for PartitionDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// The number of a deliberate attempt at a partition, starting at 1. A new attempt mints a
/// new idempotency token and so may start a new Databricks run; nothing else may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Attempt(u32);

impl Attempt {
    pub const FIRST: Attempt = Attempt(1);
    /// Far beyond any retry budget; keeps tokens short and catches corrupted counters.
    pub const MAX: u32 = 9999;

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn next(self) -> Attempt {
        Attempt(self.0 + 1)
    }
}

impl TryFrom<u32> for Attempt {
    type Error = ContractError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ContractError::InvalidId {
                what: "attempt",
                value: value.to_string(),
                why: "must be between 1 and 9999",
            })
        }
    }
}

impl From<Attempt> for u32 {
    fn from(a: Attempt) -> Self {
        a.0
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_id_rejects_empty_long_and_odd_characters() {
        assert!("usage-fix_2026".parse::<BackfillId>().is_ok());
        assert!("".parse::<BackfillId>().is_err());
        assert!("a".repeat(41).parse::<BackfillId>().is_err());
        let err = "has space".parse::<BackfillId>().unwrap_err();
        assert!(err.to_string().contains("backfill id"), "{err}");
    }

    #[test]
    fn partition_date_parses_only_real_days() {
        assert_eq!(
            "2026-02-28".parse::<PartitionDate>().unwrap().to_string(),
            "2026-02-28"
        );
        assert!("2026-02-30".parse::<PartitionDate>().is_err());
        assert!("2026-2-3".parse::<PartitionDate>().is_err());
        assert!("yesterday".parse::<PartitionDate>().is_err());
    }

    #[test]
    fn range_includes_both_ends() {
        let a: PartitionDate = "2025-12-30".parse().unwrap();
        let b: PartitionDate = "2026-01-02".parse().unwrap();
        let days: Vec<String> = PartitionDate::range_inclusive(a, b)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            days,
            ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"]
        );
        assert!(PartitionDate::range_inclusive(b, a).is_empty());
    }

    #[test]
    fn attempt_is_bounded() {
        assert!(Attempt::try_from(0).is_err());
        assert_eq!(Attempt::try_from(1).unwrap(), Attempt::FIRST);
        assert!(Attempt::try_from(10_000).is_err());
        assert_eq!(Attempt::FIRST.next().get(), 2);
    }
}
