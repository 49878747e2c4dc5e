//! The partition message, version 1: what producer and workers put on the queues.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::wire::{MAX_MESSAGE_BYTES, SCHEMA_VERSION};
use crate::{Attempt, BackfillId, CheckSeq, ContractError, PartitionDate, RunId};

/// What the receiving worker is asked to do for the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start (or re-attach to) the Databricks run of this attempt.
    Trigger,
    /// Look at the run of this attempt once and decide what follows. `check_seq` names the
    /// one live chain of checks; a check whose sequence the ledger no longer holds is stale.
    Check { run_id: RunId, check_seq: CheckSeq },
}

/// One unit of work about one day-partition of one backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMessage {
    pub schema_version: u64,
    pub message_id: Uuid,
    pub backfill_id: BackfillId,
    pub partition_date: PartitionDate,
    pub attempt: Attempt,
    pub manifest_id: String,
    pub step: Step,
    /// Why this message was sent or delayed (for example "run still RUNNING", "retry after
    /// CLOUD_FAILURE", "concurrency cap reached").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds since the epoch before which a check should not call Databricks; lets
    /// fixed delay tiers add up to any wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
    /// Milliseconds since the epoch when the first message of this chain was sent (kept
    /// by follow-ups); bounds how long a message may wait for the ledger to catch up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sent_ms: Option<i64>,
    /// For a trigger: the partition's `check_seq` when this trigger was issued. The sweep
    /// re-issues a lost trigger with a higher one, so only the newest trigger of a
    /// partition acts and older copies die. Absent (first triggers, older senders): valid
    /// while its attempt is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_seq: Option<CheckSeq>,
    /// Milliseconds since the epoch when this step first failed for an outage (Databricks
    /// or the ledger unreachable), kept while it is retried; past the worker's outage
    /// budget the partition is dead-lettered with the last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_since_ms: Option<i64>,
    /// The id of the ledger that sent it (the fleet's identity): a worker on another
    /// ledger leaves the message alone. Absent from older senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_id: Option<String>,
}

impl PartitionMessage {
    /// A fresh message with a new message id.
    pub fn new(
        backfill_id: BackfillId,
        partition_date: PartitionDate,
        attempt: Attempt,
        manifest_id: impl Into<String>,
        step: Step,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            message_id: Uuid::new_v4(),
            backfill_id,
            partition_date,
            attempt,
            manifest_id: manifest_id.into(),
            step,
            reason: None,
            not_before_ms: None,
            first_sent_ms: Some(chrono::Utc::now().timestamp_millis()),
            issue_seq: None,
            outage_since_ms: None,
            ledger_id: None,
        }
    }

    /// The follow-up of this message: same partition, a new message id. A follow-up for
    /// another attempt starts a chain of its own: its `first_sent_ms` is now, so the time
    /// it may wait for the ledger to record that attempt counts from its own sending.
    pub fn follow_up(&self, attempt: Attempt, step: Step, reason: impl Into<String>) -> Self {
        let first_sent_ms = if attempt == self.attempt {
            self.first_sent_ms
        } else {
            Some(chrono::Utc::now().timestamp_millis())
        };
        Self {
            message_id: Uuid::new_v4(),
            attempt,
            step,
            reason: Some(reason.into()),
            not_before_ms: None,
            first_sent_ms,
            outage_since_ms: None,
            ..self.clone()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Validates and decodes a received body, naming the problem when it is refused.
    pub fn decode(body: &[u8]) -> Result<Self, ContractError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(ContractError::TooLarge(body.len()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ContractError::NotJson(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(ContractError::NotJson("expected a JSON object".into()));
        };
        match object.get("schema_version") {
            None => return Err(ContractError::MissingVersion),
            Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {}
            Some(v) => return Err(ContractError::UnknownVersion(v.as_u64().unwrap_or(0))),
        }
        let msg: Self =
            serde_json::from_value(value).map_err(|e| ContractError::Invalid(e.to_string()))?;
        if msg.manifest_id.is_empty() {
            return Err(ContractError::Invalid("manifest_id is empty".into()));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PartitionMessage {
        PartitionMessage::new(
            "usage-fix".parse().unwrap(),
            "2026-03-01".parse().unwrap(),
            Attempt::FIRST,
            "m-abc",
            Step::Trigger,
        )
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut m = sample();
        m.step = Step::Check {
            run_id: RunId::from(42),
            check_seq: CheckSeq::from(3),
        };
        m.reason = Some("run still RUNNING".into());
        m.not_before_ms = Some(1_700_000_000_000);
        assert_eq!(PartitionMessage::decode(&m.encode()).unwrap(), m);
        let t = sample();
        assert_eq!(PartitionMessage::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn run_and_check_numbers_are_bare_numbers_on_the_wire() {
        let mut m = sample();
        m.step = Step::Check {
            run_id: RunId::from(42),
            check_seq: CheckSeq::from(3),
        };
        m.issue_seq = Some(CheckSeq::from(5));
        let v: serde_json::Value = serde_json::from_slice(&m.encode()).unwrap();
        assert_eq!(
            v["step"],
            serde_json::json!({"kind": "check", "run_id": 42, "check_seq": 3})
        );
        assert_eq!(v["issue_seq"], 5);
    }

    #[test]
    fn unknown_version_is_named() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["schema_version"] = 2.into();
        let err = PartitionMessage::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err, ContractError::UnknownVersion(2));
        assert!(err.to_string().contains("unknown schema_version 2"));
    }

    #[test]
    fn missing_fields_are_named() {
        for field in [
            "schema_version",
            "backfill_id",
            "partition_date",
            "attempt",
            "manifest_id",
            "message_id",
            "step",
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let err = PartitionMessage::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            if field == "schema_version" {
                assert_eq!(err, ContractError::MissingVersion);
            } else {
                assert!(err.to_string().contains(field), "{field}: {err}");
            }
        }
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["partition_date"] = "2026-13-01".into();
        let err = PartitionMessage::decode(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("partition date"), "{err}");

        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["attempt"] = 0.into();
        assert!(PartitionMessage::decode(&serde_json::to_vec(&v).unwrap()).is_err());

        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        v["step"] = serde_json::json!({"kind": "explode"});
        assert!(PartitionMessage::decode(&serde_json::to_vec(&v).unwrap()).is_err());
    }

    #[test]
    fn garbage_and_oversize_bodies_are_refused() {
        for body in [&b""[..], b"\xff\xfe\x00", b"not json", b"[1,2,3]", b"null"] {
            let err = PartitionMessage::decode(body).unwrap_err();
            assert!(
                matches!(err, ContractError::NotJson(_)),
                "{body:?}: {err:?}"
            );
        }
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            PartitionMessage::decode(&big).unwrap_err(),
            ContractError::TooLarge(MAX_MESSAGE_BYTES + 1)
        );
    }

    #[test]
    fn a_follow_up_for_a_new_attempt_starts_its_own_chain() {
        let mut first = sample();
        first.first_sent_ms = Some(1_000);
        first.issue_seq = Some(CheckSeq::from(4));
        let same = first.follow_up(first.attempt, Step::Trigger, "delayed");
        assert_eq!(same.first_sent_ms, Some(1_000));
        assert_eq!(same.issue_seq, Some(CheckSeq::from(4)));
        let retry = first.follow_up(first.attempt.next(), Step::Trigger, "retry");
        assert!(retry.first_sent_ms.unwrap() > 1_000_000, "{retry:?}");
        let decoded = PartitionMessage::decode(&same.encode()).unwrap();
        assert_eq!(decoded.issue_seq, Some(CheckSeq::from(4)));
    }
}
