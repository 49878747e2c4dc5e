//! `backfill dlq list | show | replay | purge`: draining the dead-letter queue without
//! fear. Messages are taken unacknowledged and only acknowledged once dealt with, so a
//! tool killed midway leaves every message it had not finished in the queue.

use std::time::Duration;

use backfill_broker::{Broker, BrokerError, DeadLetterHeaders, Delivery};
use backfill_contract::PartitionMessage;
use backfill_ledger::{Ledger, NewEvent, PartitionKey, PartitionState, now_ms};
use serde::Serialize;

use super::parse_backfill_id;
use crate::CliError;
use crate::args::{DlqArgs, DlqCommand, DlqFilter, GlobalOpts};

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

impl DlqFilter {
    fn matches(&self, e: &DlqEntry) -> bool {
        self.backfill_id
            .as_ref()
            .is_none_or(|b| e.backfill_id.as_ref() == Some(b))
            && self.reason.as_ref().is_none_or(|r| &e.reason == r)
            && (self.ids.is_empty() || self.ids.contains(&e.id))
    }
}

/// Takes up to `limit` messages off the DLQ, unacknowledged.
async fn take(broker: &Broker, limit: usize) -> Result<Vec<(Delivery, DlqEntry)>, CliError> {
    let queue = broker.topology().dead_letter_queue();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(d) = broker.get(&queue).await.map_err(anyhow::Error::new)? else {
            break;
        };
        let e = entry(&d, out.len() + 1);
        out.push((d, e));
    }
    Ok(out)
}

async fn put_back(d: Delivery) {
    let _ = d.requeue().await;
}

async fn remove(d: Delivery) -> Result<(), CliError> {
    d.ack().await.map_err(|e| match e {
        BrokerError::Timeout { .. } => anyhow::anyhow!("acknowledging a DLQ message timed out"),
        e => anyhow::Error::new(e),
    })?;
    Ok(())
}

pub async fn run(global: &GlobalOpts, args: DlqArgs) -> Result<(), CliError> {
    // Refused before anything is touched (the broker is not even connected to).
    match &args.command {
        DlqCommand::Replay(filter) => confirm(filter, "replay")?,
        DlqCommand::Purge(filter) => confirm(filter, "purge")?,
        DlqCommand::List(_) | DlqCommand::Show { .. } => {}
    }
    let broker = global
        .broker("backfill dlq", Duration::from_secs(30))
        .await?;
    let result = match args.command {
        DlqCommand::List(filter) => list(&broker, &filter, args.json).await,
        DlqCommand::Show { id } => show(&broker, &id, args.json).await,
        DlqCommand::Replay(filter) => replay(global, &broker, &filter).await,
        DlqCommand::Purge(filter) => purge(global, &broker, &filter).await,
    };
    broker.close().await;
    result
}

async fn list(broker: &Broker, filter: &DlqFilter, json: bool) -> Result<(), CliError> {
    let taken = take(broker, filter.limit).await?;
    let shown: Vec<&DlqEntry> = taken
        .iter()
        .map(|(_, e)| e)
        .filter(|e| filter.matches(e))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
    } else {
        println!(
            "{:<38} {:<16} {:<22} {:<11} {:>7} {:>7}  error",
            "id", "reason", "backfill", "partition", "attempt", "age_s"
        );
        for e in &shown {
            println!(
                "{:<38} {:<16} {:<22} {:<11} {:>7} {:>7}  {}{}",
                e.id,
                e.reason,
                e.backfill_id.as_deref().unwrap_or("-"),
                e.partition.as_deref().unwrap_or("-"),
                e.attempt.as_deref().unwrap_or("-"),
                e.age_s.map_or("-".into(), |a| a.to_string()),
                e.error.chars().take(80).collect::<String>(),
                e.run_url
                    .as_ref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            );
        }
        eprintln!("{} of {} messages shown", shown.len(), taken.len());
    }
    for (d, _) in taken {
        put_back(d).await;
    }
    Ok(())
}

async fn show(broker: &Broker, id: &str, json: bool) -> Result<(), CliError> {
    let taken = take(broker, 100_000).await?;
    let found = taken
        .iter()
        .find(|(_, e)| e.id == id)
        .map(|(_, e)| serde_json::to_string_pretty(e).unwrap_or_default());
    for (d, _) in taken {
        put_back(d).await;
    }
    match found {
        Some(text) => {
            let _ = json;
            println!("{text}");
            Ok(())
        }
        None => Err(CliError::usage(format!(
            "no message {id} in the dead-letter queue"
        ))),
    }
}

/// A change to the queue needs a choice of messages and a confirmation: `--yes` alone
/// would act on every backfill's dead letters, so a choice is required even then, and
/// `--all` says so deliberately.
fn confirm(filter: &DlqFilter, what: &str) -> Result<(), CliError> {
    if filter.ids.is_empty()
        && filter.backfill_id.is_none()
        && filter.reason.is_none()
        && !filter.all
    {
        return Err(CliError::usage(format!(
            "{what}: no messages chosen: name messages (IDs), a filter (--backfill-id, \
             --reason) or --all for every backfill's dead letters"
        )));
    }
    if filter.yes {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "{what} changes the dead-letter queue; repeat with --yes"
    )))
}

async fn replay(global: &GlobalOpts, broker: &Broker, filter: &DlqFilter) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let taken = take(broker, filter.limit).await?;
    let chosen = taken.iter().filter(|(_, e)| filter.matches(e)).count();
    let (mut replayed, mut skipped, mut done) = (0, 0, 0);
    let mut progress = crate::progress::Progress::new("replayed");
    for (d, e) in taken {
        if !filter.matches(&e) {
            put_back(d).await;
            continue;
        }
        done += 1;
        match replay_one(&ledger, broker, &d, &filter.by, &filter.why).await? {
            Ok(attempt) => {
                remove(d).await?;
                replayed += 1;
                // On a terminal the bar shows progress; elsewhere a line per message.
                if progress.is_terminal() {
                    progress.set(done as u64, chosen as u64);
                } else {
                    eprintln!(
                        "[{done}/{chosen}] {} {}: attempt {attempt} queued",
                        e.backfill_id.unwrap_or_default(),
                        e.partition.unwrap_or_default()
                    );
                }
            }
            Err(why) => {
                put_back(d).await;
                skipped += 1;
                progress.abandon();
                eprintln!("[{done}/{chosen}] {}: skipped, {why}", e.id);
            }
        }
    }
    println!("replayed {replayed}, skipped {skipped}");
    Ok(())
}

/// A fresh attempt for the partition of a dead-lettered message (the new trigger is
/// confirmed by the broker before this returns); `Err` says why it cannot be replayed.
async fn replay_one(
    ledger: &Ledger,
    broker: &Broker,
    d: &Delivery,
    by: &str,
    why: &str,
) -> Result<Result<u32, String>, CliError> {
    let Ok(msg) = PartitionMessage::decode(d.body()) else {
        return Ok(Err("not a valid partition message (purge it)".into()));
    };
    let key = PartitionKey::new(msg.backfill_id.clone(), msg.partition_date);
    let Some(p) = ledger.partition(&key).await.map_err(anyhow::Error::new)? else {
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
        Err(e) => Err(CliError::Failed(anyhow::Error::new(e))),
    }
}

async fn purge(global: &GlobalOpts, broker: &Broker, filter: &DlqFilter) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let taken = take(broker, filter.limit).await?;
    let mut purged = 0;
    for (d, e) in taken {
        if !filter.matches(&e) {
            put_back(d).await;
            continue;
        }
        if let Some(backfill_id) = e
            .backfill_id
            .as_deref()
            .and_then(|b| parse_backfill_id(b).ok())
        {
            let mut event = NewEvent::backfill(&filter.by, &backfill_id, "dlq_purged").detail(
                format!("{} ({}: {}): {}", e.id, e.reason, e.error, filter.why),
            );
            if let Some(date) = e.partition.as_deref().and_then(|p| p.parse().ok()) {
                event.partition_date = Some(date);
            }
            ledger
                .record_event(&event)
                .await
                .map_err(anyhow::Error::new)?;
        }
        remove(d).await?;
        purged += 1;
    }
    println!("purged {purged}");
    Ok(())
}
