//! `backfill produce`: register a backfill and publish its partitions.

use std::collections::BTreeMap;

use backfill_ledger::Guards;
use backfill_operations::contract::contract_for_produce;
use backfill_operations::guards::merge_guards;
use backfill_operations::produce::{PublishProgress, publish_resuming, register_backfill};
use backfill_producer::{Order, ProduceRequest};

use super::contract::{flags, warn_without_policy};
use super::guards::guard_error;
use crate::args::{GlobalOpts, ProduceArgs};
use crate::exit::CliError;
use crate::progress::Progress;

pub fn request_from(args: &ProduceArgs) -> Result<ProduceRequest, CliError> {
    let mut params = BTreeMap::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(CliError::usage(format!(
                "--param {p:?} must look like KEY=VALUE"
            )));
        };
        params.insert(k.to_owned(), v.to_owned());
    }
    if let Some(v) = &args.code_version {
        params.insert("code_version".to_owned(), v.clone());
    }
    for pin in &args.pins {
        let Some((table, version)) = pin
            .split_once('=')
            .filter(|(t, v)| !t.is_empty() && !v.is_empty())
        else {
            return Err(CliError::usage(format!(
                "--pin {pin:?} must look like TABLE=VERSION"
            )));
        };
        params.insert(format!("pin.{table}"), version.to_owned());
    }
    let request = ProduceRequest {
        backfill_id: args.backfill_id.clone(),
        job_id: args.job_id,
        start: args.start,
        end: args.end,
        params,
        concurrency_cap: args.concurrency_cap,
        order: args.order,
        created_by: args.created_by.clone(),
        contract: None,
    };
    request.validate().map_err(|e| match e {
        backfill_producer::ProduceError::Request(problem) => CliError::usage(format!(
            "invalid request: {}",
            crate::exit::request_problem(&problem)
        )),
        e => CliError::usage(e.to_string()),
    })?;
    Ok(request)
}

fn print_plan(request: &ProduceRequest) {
    let dates = request.partitions();
    println!(
        "plan: backfill {} of job {}: {} partitions from {} to {}, {}, cap {}",
        request.backfill_id,
        request.job_id,
        dates.len(),
        request.start,
        request.end,
        if request.order == Order::NewestFirst {
            "newest first"
        } else {
            "oldest first"
        },
        request.concurrency_cap
    );
    for (i, d) in dates.iter().enumerate().take(5) {
        println!("  {:>4}. {d}", i + 1);
    }
    if dates.len() > 5 {
        println!(
            "  ... {} more, last {}",
            dates.len() - 5,
            dates[dates.len() - 1]
        );
    }
    println!("dry run: nothing registered or published");
}

pub async fn run(global: &GlobalOpts, args: ProduceArgs) -> Result<(), CliError> {
    let request = request_from(&args)?;
    if args.dry_run {
        print_plan(&request);
        return Ok(());
    }
    let given = flags(&args.contract)?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "producer").await?;
    let contract = contract_for_produce(&client, &given).await?;
    if contract.dq_policy.is_none() {
        warn_without_policy(&request.backfill_id);
    }
    let request = ProduceRequest {
        contract: Some(contract),
        ..request
    };
    let change = args.guards.change(false);
    let guards = if change.any() {
        Some(merge_guards(Guards::default(), &change).map_err(guard_error)?)
    } else {
        None
    };
    let (manifest_id, registration) =
        register_backfill(&ledger, &client, &request, guards.as_ref()).await?;
    let source = global.broker_source()?;
    let mut progress = Progress::new("published");
    let published = publish_resuming(
        &ledger,
        &source,
        &request.backfill_id,
        request.order,
        |step| match step {
            PublishProgress::Published { done, total } => progress.set(done as u64, total as u64),
            PublishProgress::Interrupted => {
                progress.abandon();
                progress = Progress::new("published");
            }
        },
    )
    .await?;
    println!(
        "backfill {}: {} ({} new partitions, {} published, manifest {})",
        request.backfill_id,
        if registration.created {
            "registered"
        } else {
            "already registered"
        },
        registration.new_partitions,
        published,
        manifest_id
    );
    Ok(())
}
