//! String headers on fleet messages (dead-letter reasons, delay reasons) and reading them back.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// When a message was published (milliseconds since the epoch), so a consumer can
/// measure its wait in the queue.
pub const SENT_MS_HEADER: &str = "x-backfill-sent-ms";

/// Why a message was sent (round the delay tiers, or again): the body's `reason`, for
/// someone reading the queue.
pub const DELAY_REASON_HEADER: &str = "x-backfill-delay-reason";

/// A small ordered set of string-valued AMQP headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub(crate) fn to_field_table(&self) -> FieldTable {
        let mut table = FieldTable::default();
        for (k, v) in &self.0 {
            table.insert(
                ShortString::from(k.as_str()),
                AMQPValue::LongString(LongString::from(v.as_str())),
            );
        }
        table
    }

    /// Reads the string and integer headers of a received message; nested tables such as
    /// `x-death` are summarised by [`Headers::death_count`].
    pub(crate) fn from_field_table(table: Option<&FieldTable>) -> Self {
        let mut out = Vec::new();
        if let Some(table) = table {
            for (k, v) in table.inner() {
                let text = match v {
                    AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    AMQPValue::ShortString(s) => s.as_str().to_owned(),
                    AMQPValue::LongInt(i) => i.to_string(),
                    AMQPValue::LongLongInt(i) => i.to_string(),
                    AMQPValue::LongUInt(i) => i.to_string(),
                    AMQPValue::ShortInt(i) => i.to_string(),
                    _ => continue,
                };
                out.push((k.as_str().to_owned(), text));
            }
        }
        Self(out)
    }

    /// The number of times a message was dead-lettered for `reason` ("rejected",
    /// "delivery_limit", ...) according to its `x-death` header.
    pub(crate) fn death_count(table: Option<&FieldTable>, reason: &str) -> i64 {
        let Some(AMQPValue::FieldArray(deaths)) = table.and_then(|t| t.inner().get("x-death"))
        else {
            return 0;
        };
        deaths
            .as_slice()
            .iter()
            .filter_map(|d| match d {
                AMQPValue::FieldTable(t) => Some(t),
                _ => None,
            })
            .filter(|t| match t.inner().get("reason") {
                Some(AMQPValue::LongString(s)) => s.as_bytes() == reason.as_bytes(),
                _ => false,
            })
            .map(|t| match t.inner().get("count") {
                Some(AMQPValue::LongLongInt(n)) => *n,
                Some(AMQPValue::LongInt(n)) => i64::from(*n),
                _ => 1,
            })
            .sum()
    }
}
