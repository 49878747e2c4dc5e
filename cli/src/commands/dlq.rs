//! `backfill dlq list | show | replay | purge`: the confirmation and the printing around
//! `backfill_operations::dlq`.

use std::time::Duration;

use backfill_broker::Broker;
use backfill_operations::dlq::{self, DlqActor, DlqEntry, Replayed};

use crate::args::{DlqArgs, DlqCommand, DlqFilter, GlobalOpts};
use crate::exit::CliError;

impl DlqFilter {
    fn chosen(&self) -> Result<dlq::DlqFilter, CliError> {
        Ok(dlq::DlqFilter {
            ids: self.ids.clone(),
            backfill_id: self.backfill_id.clone(),
            reason: self.reason.clone(),
        })
    }

    fn actor(&self) -> DlqActor<'_> {
        DlqActor {
            by: &self.by,
            why: &self.why,
        }
    }
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
        DlqCommand::Show { id } => show(&broker, &id).await,
        DlqCommand::Replay(filter) => replay(global, &broker, &filter).await,
        DlqCommand::Purge(filter) => purge(global, &broker, &filter).await,
    };
    broker.close().await;
    result
}

async fn list(broker: &Broker, filter: &DlqFilter, json: bool) -> Result<(), CliError> {
    let listing = dlq::list(broker, &filter.chosen()?, filter.limit)
        .await
        .map_err(anyhow::Error::new)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listing.shown).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<38} {:<16} {:<22} {:<11} {:>7} {:>7}  error",
        "id", "reason", "backfill", "partition", "attempt", "age_s"
    );
    for e in &listing.shown {
        print_line(e);
    }
    eprintln!(
        "{} of {} messages shown",
        listing.shown.len(),
        listing.looked_at
    );
    Ok(())
}

fn print_line(e: &DlqEntry) {
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

async fn show(broker: &Broker, id: &str) -> Result<(), CliError> {
    match dlq::show(broker, id).await.map_err(anyhow::Error::new)? {
        Some(e) => {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
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
    let mut progress = crate::progress::Progress::new("replayed");
    let totals = dlq::replay(
        &ledger,
        broker,
        &filter.chosen()?,
        filter.limit,
        &filter.actor(),
        |step| match step.outcome {
            // On a terminal the bar shows progress; elsewhere a line per message.
            Replayed::Queued { .. } if progress.is_terminal() => {
                progress.set(step.done as u64, step.chosen as u64);
            }
            Replayed::Queued { attempt } => eprintln!(
                "[{}/{}] {} {}: attempt {attempt} queued",
                step.done,
                step.chosen,
                step.entry.backfill_id.as_deref().unwrap_or_default(),
                step.entry.partition.as_deref().unwrap_or_default()
            ),
            Replayed::Skipped { why } => {
                progress.abandon();
                eprintln!(
                    "[{}/{}] {}: skipped, {why}",
                    step.done, step.chosen, step.entry.id
                );
            }
        },
    )
    .await
    .map_err(anyhow::Error::new)?;
    println!("replayed {}, skipped {}", totals.replayed, totals.skipped);
    Ok(())
}

async fn purge(global: &GlobalOpts, broker: &Broker, filter: &DlqFilter) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let purged = dlq::purge(
        &ledger,
        broker,
        &filter.chosen()?,
        filter.limit,
        &filter.actor(),
    )
    .await
    .map_err(anyhow::Error::new)?;
    println!("purged {purged}");
    Ok(())
}
