//! `backfill topology show | delete`: a namespace's queues as the broker sees them, and
//! the removal of a retired fleet's queues and exchanges (quorum queues are never deleted
//! by the broker on its own).

use anyhow::Context;
use backfill_broker::{QueueState, Retirement, inspect, retire};
use serde::Serialize;

use crate::args::{GlobalOpts, TopologyArgs, TopologyCommand, TopologyDeleteArgs};
use crate::exit::CliError;

#[derive(Debug, Serialize)]
struct QueueRow {
    queue: String,
    exists: bool,
    messages: u32,
    consumers: u32,
}

fn rows(states: &[QueueState]) -> Vec<QueueRow> {
    states
        .iter()
        .map(|s| QueueRow {
            queue: s.name.clone(),
            exists: s.counts.is_some(),
            messages: s.counts.map_or(0, |c| c.messages),
            consumers: s.counts.map_or(0, |c| c.consumers),
        })
        .collect()
}

fn table(rows: &[QueueRow]) -> String {
    let width = rows.iter().map(|r| r.queue.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:width$}  {:>8}  {:>9}\n",
        "queue", "messages", "consumers"
    );
    for r in rows {
        if r.exists {
            out += &format!(
                "{:width$}  {:>8}  {:>9}\n",
                r.queue, r.messages, r.consumers
            );
        } else {
            out += &format!("{:width$}  {:>8}\n", r.queue, "absent");
        }
    }
    out
}

pub async fn run(global: &GlobalOpts, args: TopologyArgs) -> Result<(), CliError> {
    let url = global.amqp()?;
    let topology = global.topology()?;
    let unreachable = || {
        format!(
            "cannot reach RabbitMQ at {} (--amqp-url / AMQP_URL)",
            url.redacted()
        )
    };
    match args.command {
        TopologyCommand::Show => {
            let states = inspect(&url, &topology).await.with_context(unreachable)?;
            let rows = rows(&states);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                print!("{}", table(&rows));
            }
            Ok(())
        }
        TopologyCommand::Delete(TopologyDeleteArgs { yes, force }) => {
            if !yes {
                return Err(CliError::usage(format!(
                    "deleting namespace {:?} removes its queues and exchanges; repeat with --yes",
                    topology.namespace()
                )));
            }
            let outcome = retire(&url, &topology, force)
                .await
                .with_context(unreachable)?;
            report(topology.namespace(), &outcome, args.json)
        }
    }
}

fn report(namespace: &str, outcome: &Retirement, json: bool) -> Result<(), CliError> {
    if json {
        let doc = match outcome {
            Retirement::Deleted {
                queues,
                messages_dropped,
            } => serde_json::json!({
                "namespace": namespace, "deleted": queues, "messages_dropped": messages_dropped
            }),
            Retirement::Refused { busy } => serde_json::json!({
                "namespace": namespace, "refused": rows(busy)
            }),
            Retirement::NothingThere => serde_json::json!({
                "namespace": namespace, "deleted": [], "messages_dropped": 0
            }),
        };
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    match outcome {
        Retirement::Deleted {
            queues,
            messages_dropped,
        } => {
            if !json {
                println!(
                    "deleted namespace {namespace:?}: {} queues and 2 exchanges{}",
                    queues.len(),
                    if *messages_dropped > 0 {
                        format!(" ({messages_dropped} messages dropped, forced)")
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        Retirement::NothingThere => {
            if !json {
                println!("namespace {namespace:?} has no queues; nothing to delete");
            }
            Ok(())
        }
        Retirement::Refused { busy } => Err(CliError::Negative(format!(
            "refused: namespace {namespace:?} is still in use (nothing was deleted):\n{}\
             drain or stop it first, or repeat with --force to drop these messages",
            table(&rows(busy))
        ))),
    }
}
