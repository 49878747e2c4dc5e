//! Draining the dead-letter queue without fear: list, show, replay, purge. Messages are
//! taken unacknowledged and only acknowledged once dealt with, so a tool killed midway
//! leaves every message it had not finished in the queue.

use backfill_broker::{Broker, BrokerError, DeadLetterHeaders, Delivery};
use backfill_contract::{BackfillId, PartitionMessage};
use backfill_ledger::{Ledger, NewEvent, PartitionKey, PartitionState, now_ms};
use serde::Serialize;

use crate::error::OperationError;

/// What an operator needs to know about one dead-lettered message.
#[derive(Debug, Serialize)]
pub struct DlqEntry {
    pub id: String,
    pub reason: String,
    pub error: String,
    pub backfill_id: Option<String>,
    pub partition: Option<String>,
    pub attempt: Option<String>,
    pub run_id: Option<String>,
    pub run_url: Option<String>,
    pub age_s: Option<i64>,
    pub body: String,
}

fn entry(d: &Delivery, n: usize) -> DlqEntry {
    let h = DeadLetterHeaders::read(&d.headers());
    let msg = PartitionMessage::decode(d.body()).ok();
    let reason = h.reason.unwrap_or_else(|| {
        if d.death_count("delivery_limit") > 0 {
            "delivery_limit".into()
        } else {
            "rejected".into()
        }
    });
    DlqEntry {
        id: d
            .message_id()
            .map_or_else(|| format!("#{n}"), str::to_owned),
        reason,
        error: h.error.unwrap_or_default(),
        backfill_id: h
            .backfill_id
            .or_else(|| msg.as_ref().map(|m| m.backfill_id.to_string())),
        partition: h
            .partition
            .or_else(|| msg.as_ref().map(|m| m.partition_date.to_string())),
        attempt: h
            .attempt
            .map(|a| a.to_string())
            .or_else(|| msg.as_ref().map(|m| m.attempt.to_string())),
        run_id: h.run_id.map(|r| r.to_string()),
        run_url: h.run_url,
        age_s: h.dead_lettered_at_ms.map(|t| (now_ms() - t) / 1000),
        body: String::from_utf8_lossy(d.body())
            .chars()
            .take(2_000)
            .collect(),
    }
}

/// Which dead-lettered messages an operation acts on: every one given, all of them when
/// nothing is given.
#[derive(Debug, Clone, Default)]
pub struct DlqFilter {
    /// Message ids (as `list` shows them).
    pub ids: Vec<String>,
    pub backfill_id: Option<BackfillId>,
    /// Only messages dead-lettered for this reason.
    pub reason: Option<String>,
}

impl DlqFilter {
    /// Whether the filter chooses anything narrower than every message.
    pub fn is_narrowed(&self) -> bool {
        !self.ids.is_empty() || self.backfill_id.is_some() || self.reason.is_some()
    }

    pub fn matches(&self, e: &DlqEntry) -> bool {
        self.backfill_id
            .as_ref()
            .is_none_or(|b| e.backfill_id.as_deref() == Some(b.as_str()))
            && self.reason.as_ref().is_none_or(|r| &e.reason == r)
            && (self.ids.is_empty() || self.ids.contains(&e.id))
    }
}

/// Who changes the queue and why (recorded in the audit trail).
#[derive(Debug, Clone)]
pub struct DlqActor<'a> {
    pub by: &'a str,
    pub why: &'a str,
}

/// Takes up to `limit` messages off the DLQ, unacknowledged.
async fn take(broker: &Broker, limit: usize) -> Result<Vec<(Delivery, DlqEntry)>, OperationError> {
    let queue = broker.topology().dead_letter_queue();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(d) = broker.get(&queue).await? else {
            break;
        };
        let e = entry(&d, out.len() + 1);
        out.push((d, e));
    }
    Ok(out)
}

async fn put_back(d: Delivery) {
    // A channel already gone returns the message to the queue too.
    let _ = d.requeue().await;
}

async fn remove(d: Delivery) -> Result<(), OperationError> {
    match d.ack().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(OperationError::Unsettled("acknowledging a DLQ message")),
        Err(BrokerError::Timeout { .. }) => {
            Err(OperationError::Timeout("acknowledging a DLQ message"))
        }
        Err(e) => Err(e.into()),
    }
}

/// What `list` saw: the chosen messages, and how many it looked at.
#[derive(Debug)]
pub struct DlqListing {
    pub shown: Vec<DlqEntry>,
    pub looked_at: usize,
}

/// The chosen messages among the first `limit`, every message put back.
pub async fn list(
    broker: &Broker,
    filter: &DlqFilter,
    limit: usize,
) -> Result<DlqListing, OperationError> {
    let taken = take(broker, limit).await?;
    let looked_at = taken.len();
    let mut shown = Vec::new();
    for (d, e) in taken {
        put_back(d).await;
        if filter.matches(&e) {
            shown.push(e);
        }
    }
    Ok(DlqListing { shown, looked_at })
}

/// How many messages `show` looks through for the one asked.
const SHOW_LOOKS_AT: usize = 100_000;

/// The message of this id, if it is in the queue (every message put back).
pub async fn show(broker: &Broker, id: &str) -> Result<Option<DlqEntry>, OperationError> {
    let taken = take(broker, SHOW_LOOKS_AT).await?;
    let mut found = None;
    for (d, e) in taken {
        put_back(d).await;
        if found.is_none() && e.id == id {
            found = Some(e);
        }
    }
    Ok(found)
}

/// What became of one chosen message in a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// A fresh attempt of its partition is queued (confirmed); the message left the queue.
    Queued { attempt: u32 },
    /// Left in the queue, and why.
    Skipped { why: String },
}

/// One chosen message dealt with, for progress: the `done`-th of `chosen`.
#[derive(Debug)]
pub struct ReplayStep<'a> {
    pub done: usize,
    pub chosen: usize,
    pub entry: &'a DlqEntry,
    pub outcome: &'a Replayed,
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayTotals {
    pub replayed: usize,
    pub skipped: usize,
}

/// A fresh attempt for each chosen message's partition (among the first `limit`); a
/// message leaves the queue only after its new trigger is confirmed. `on_step` hears of
/// each chosen message once dealt with.
pub async fn replay(
    ledger: &Ledger,
    broker: &Broker,
    filter: &DlqFilter,
    limit: usize,
    actor: &DlqActor<'_>,
    mut on_step: impl FnMut(ReplayStep<'_>),
) -> Result<ReplayTotals, OperationError> {
    let taken = take(broker, limit).await?;
    let chosen = taken.iter().filter(|(_, e)| filter.matches(e)).count();
    let mut totals = ReplayTotals::default();
    let mut done = 0;
    for (d, e) in taken {
        if !filter.matches(&e) {
            put_back(d).await;
            continue;
        }
        done += 1;
        let outcome = match replay_one(ledger, broker, &d, actor.by, actor.why).await? {
            Ok(attempt) => {
                remove(d).await?;
                totals.replayed += 1;
                Replayed::Queued { attempt }
            }
            Err(why) => {
                put_back(d).await;
                totals.skipped += 1;
                Replayed::Skipped { why }
            }
        };
        on_step(ReplayStep {
            done,
            chosen,
            entry: &e,
            outcome: &outcome,
        });
    }
    Ok(totals)
}

/// A fresh attempt for the partition of a dead-lettered message (the new trigger is
/// confirmed by the broker before this returns); `Err` says why it cannot be replayed.
async fn replay_one(
    ledger: &Ledger,
    broker: &Broker,
    d: &Delivery,
    by: &str,
    why: &str,
) -> Result<Result<u32, String>, OperationError> {
    let Ok(msg) = PartitionMessage::decode(d.body()) else {
        return Ok(Err("not a valid partition message (purge it)".into()));
    };
    let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
    let Some(p) = ledger.partition(&key).await? else {
        return Ok(Err("its partition is not in the ledger".into()));
    };
    if p.state != PartitionState::DeadLettered {
        return Ok(Err(format!("its partition is {} now", p.state)));
    }
    let reason = format!("replayed from the dead-letter queue: {why}");
    match backfill_producer::request_rerun(
        ledger,
        &broker.publisher(),
        &msg.backfill_id,
        msg.partition_date,
        by,
        &reason,
    )
    .await
    {
        Ok(attempt) => Ok(Ok(attempt)),
        Err(backfill_producer::ProduceError::Invalid(m)) => Ok(Err(m)),
        Err(e) => Err(OperationError::Produce(e)),
    }
}

/// Drops the chosen messages (among the first `limit`), each recorded in the audit trail
/// of its backfill; returns how many were dropped.
pub async fn purge(
    ledger: &Ledger,
    broker: &Broker,
    filter: &DlqFilter,
    limit: usize,
    actor: &DlqActor<'_>,
) -> Result<usize, OperationError> {
    let taken = take(broker, limit).await?;
    let mut purged = 0;
    for (d, e) in taken {
        if !filter.matches(&e) {
            put_back(d).await;
            continue;
        }
        if let Some(backfill_id) = e
            .backfill_id
            .as_deref()
            .and_then(|b| b.parse::<BackfillId>().ok())
        {
            let mut event = NewEvent::backfill(actor.by, &backfill_id, "dlq_purged").detail(
                format!("{} ({}: {}): {}", e.id, e.reason, e.error, actor.why),
            );
            if let Some(date) = e.partition.as_deref().and_then(|p| p.parse().ok()) {
                event.partition_date = Some(date);
            }
            ledger.record_event(&event).await?;
        }
        remove(d).await?;
        purged += 1;
    }
    Ok(purged)
}
