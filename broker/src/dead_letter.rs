//! The headers a dead-lettered message carries: one schema, written by the worker when it
//! dead-letters a message and read by `backfill dlq`.

use crate::Headers;

const REASON: &str = "x-backfill-reason";
const ERROR: &str = "x-backfill-error";
const SOURCE_LANE: &str = "x-backfill-source-lane";
const DEAD_LETTERED_BY: &str = "x-backfill-dead-lettered-by";
const DEAD_LETTERED_AT_MS: &str = "x-backfill-dead-lettered-at-ms";
const BACKFILL_ID: &str = "x-backfill-id";
const PARTITION: &str = "x-backfill-partition";
const ATTEMPT: &str = "x-backfill-attempt";
const RUN_ID: &str = "x-backfill-run-id";
const RUN_URL: &str = "x-backfill-run-url";

/// Why a message was dead-lettered, by whom and from where, and which partition attempt
/// and run it is about. Every field is optional when read: the broker dead-letters
/// messages of its own accord (rejected, past the delivery limit) without any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterHeaders {
    /// A short, low-cardinality kind: `invalid_message`, `run_failed`, `trigger_refused`, ...
    pub reason: Option<String>,
    /// The readable reason and the last error.
    pub error: Option<String>,
    /// The lane (`trigger`, `check`) the message was handled on.
    pub source_lane: Option<String>,
    /// The worker that dead-lettered it.
    pub dead_lettered_by: Option<String>,
    /// When, in milliseconds since the epoch.
    pub dead_lettered_at_ms: Option<i64>,
    pub backfill_id: Option<String>,
    /// The partition's date, `YYYY-MM-DD`.
    pub partition: Option<String>,
    pub attempt: Option<u32>,
    pub run_id: Option<i64>,
    pub run_url: Option<String>,
}

impl DeadLetterHeaders {
    /// The headers to publish, the fields that are set in a fixed order.
    pub fn to_headers(&self) -> Headers {
        let text = [
            (REASON, &self.reason),
            (ERROR, &self.error),
            (SOURCE_LANE, &self.source_lane),
            (DEAD_LETTERED_BY, &self.dead_lettered_by),
        ];
        let mut h = Headers::new();
        for (key, value) in text {
            if let Some(v) = value {
                h = h.with(key, v);
            }
        }
        if let Some(v) = self.dead_lettered_at_ms {
            h = h.with(DEAD_LETTERED_AT_MS, v);
        }
        if let Some(v) = &self.backfill_id {
            h = h.with(BACKFILL_ID, v);
        }
        if let Some(v) = &self.partition {
            h = h.with(PARTITION, v);
        }
        if let Some(v) = self.attempt {
            h = h.with(ATTEMPT, v);
        }
        if let Some(v) = self.run_id {
            h = h.with(RUN_ID, v);
        }
        if let Some(v) = &self.run_url {
            h = h.with(RUN_URL, v);
        }
        h
    }

    /// Reads them back from a received message's headers (a number that does not parse
    /// is left out).
    pub fn read(headers: &Headers) -> Self {
        let text = |key: &str| headers.get(key).map(str::to_owned);
        let number = |key: &str| headers.get(key).and_then(|v| v.parse::<i64>().ok());
        Self {
            reason: text(REASON),
            error: text(ERROR),
            source_lane: text(SOURCE_LANE),
            dead_lettered_by: text(DEAD_LETTERED_BY),
            dead_lettered_at_ms: number(DEAD_LETTERED_AT_MS),
            backfill_id: text(BACKFILL_ID),
            partition: text(PARTITION),
            attempt: headers.get(ATTEMPT).and_then(|v| v.parse().ok()),
            run_id: number(RUN_ID),
            run_url: text(RUN_URL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_headers_read_back_the_same() {
        let all = DeadLetterHeaders {
            reason: Some("run_failed".into()),
            error: Some("boom".into()),
            source_lane: Some("check".into()),
            dead_lettered_by: Some("w1".into()),
            dead_lettered_at_ms: Some(1_700_000_000_000),
            backfill_id: Some("bf".into()),
            partition: Some("2026-01-01".into()),
            attempt: Some(2),
            run_id: Some(42),
            run_url: Some("https://example.invalid/run/42".into()),
        };
        let h = all.to_headers();
        let keys: Vec<&str> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                REASON,
                ERROR,
                SOURCE_LANE,
                DEAD_LETTERED_BY,
                DEAD_LETTERED_AT_MS,
                BACKFILL_ID,
                PARTITION,
                ATTEMPT,
                RUN_ID,
                RUN_URL
            ]
        );
        assert_eq!(h.get("x-backfill-run-id"), Some("42"));
        assert_eq!(DeadLetterHeaders::read(&h), all);
        let none = DeadLetterHeaders::default();
        assert_eq!(none.to_headers(), Headers::new());
        assert_eq!(DeadLetterHeaders::read(&Headers::new()), none);
    }
}
