//! `backfill produce`: register a backfill and publish its partitions.

use std::collections::BTreeMap;
use std::time::Duration;

use backfill_contract::PartitionDate;
use backfill_producer::{Order, ProduceError, ProduceRequest, publish_pending, register};

use super::parse_backfill_id;
use crate::CliError;
use crate::args::{GlobalOpts, ProduceArgs};

pub fn request_from(args: &ProduceArgs) -> Result<ProduceRequest, CliError> {
    let date = |flag: &str, text: &str| -> Result<PartitionDate, CliError> {
        text.parse()
            .map_err(|e| CliError::usage(format!("{flag}: {e}")))
    };
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
        backfill_id: parse_backfill_id(&args.backfill_id)?,
        job_id: args.job_id,
        start: date("--start", &args.start)?,
        end: date("--end", &args.end)?,
        params,
        concurrency_cap: args.concurrency_cap,
        order: args
            .order
            .parse::<Order>()
            .map_err(|e| CliError::usage(format!("--order: {e}")))?,
        created_by: args.created_by.clone(),
        contract: None,
    };
    request
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(request)
}

pub async fn run(global: &GlobalOpts, args: ProduceArgs) -> Result<(), CliError> {
    let request = request_from(&args)?;
    let dates = request.partitions();
    if args.dry_run {
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
        return Ok(());
    }
    let given = super::contract::flags(&args.contract)?;
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "producer").await?;
    let contract = super::contract::for_produce(&client, &given).await?;
    if contract.dq_policy.is_none() {
        super::contract::warn_without_policy(&request.backfill_id);
    }
    let request = ProduceRequest {
        contract: Some(contract),
        ..request
    };
    let guards = if args.guards.any() {
        Some(super::control::merge_guards(
            backfill_ledger::Guards::default(),
            &args.guards,
        )?)
    } else {
        None
    };
    let (manifest_id, registration) =
        register(&ledger, &client, &request)
            .await
            .map_err(|e| match e {
                ProduceError::Invalid(m) => CliError::usage(m),
                other => CliError::Failed(anyhow::Error::new(other)),
            })?;
    if let Some(guards) = &guards {
        ledger
            .set_guards(&request.backfill_id, guards, &request.created_by)
            .await
            .map_err(anyhow::Error::new)?;
    }
    // Publishing resumes from the ledger (partitions never confirmed), so a lost
    // connection is survived by reconnecting and publishing the rest.
    let mut published = 0;
    let mut reconnects = 0;
    loop {
        let broker = global
            .broker("backfill producer", Duration::from_secs(60))
            .await?;
        let mut progress = crate::progress::Progress::new("published");
        let result = publish_pending(
            &ledger,
            &broker.publisher(),
            &request.backfill_id,
            request.order,
            |done, total| progress.set(done as u64, total as u64),
        )
        .await;
        if result.is_err() {
            progress.abandon();
        }
        broker.close().await;
        match result {
            Ok(n) => {
                published += n;
                break;
            }
            Err(ProduceError::Broker(e)) if e.is_connection_lost() && reconnects < 5 => {
                reconnects += 1;
                tracing::warn!(error = %e, "lost the broker while publishing; reconnecting to publish the rest");
            }
            Err(e) => {
                return Err(CliError::Failed(
                    anyhow::Error::new(e).context("publishing partitions"),
                ));
            }
        }
    }
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

/// `backfill rerun`: new attempts for terminal partitions, each recorded with who and why.
pub async fn rerun(global: &GlobalOpts, args: crate::args::RerunArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let dates = super::parse_partitions(&args.partitions)?;
    let ledger = global.ledger().await?;
    let broker = global
        .broker("backfill rerun", Duration::from_secs(60))
        .await?;
    for date in dates {
        let attempt = backfill_producer::request_rerun(
            &ledger,
            &broker.publisher(),
            &backfill_id,
            date,
            &args.by,
            &args.reason,
        )
        .await
        .map_err(|e| match e {
            ProduceError::Invalid(m) => CliError::usage(m),
            other => CliError::Failed(anyhow::Error::new(other)),
        })?;
        println!("{date}: attempt {attempt} queued");
    }
    broker.close().await;
    Ok(())
}

/// `backfill plan`: makespan and cost, with warnings; touches nothing.
pub fn plan(args: crate::args::PlanArgs) -> Result<(), CliError> {
    let partitions = match (args.partitions, &args.start, &args.end) {
        (Some(n), _, _) => n,
        (None, Some(start), Some(end)) => {
            let start: PartitionDate = start
                .parse()
                .map_err(|e| CliError::usage(format!("--start: {e}")))?;
            let end: PartitionDate = end
                .parse()
                .map_err(|e| CliError::usage(format!("--end: {e}")))?;
            PartitionDate::range_inclusive(start, end).len() as u64
        }
        _ => return Err(CliError::usage("give --partitions, or --start and --end")),
    };
    let input = backfill_producer::PlanInput {
        partitions,
        concurrency: args.concurrency,
        run_hours: args.run_minutes / 60.0,
        price_per_run_hour: args.price_per_run_hour,
        budget: args.budget,
        window_hours: args.window_hours,
    };
    let plan = backfill_producer::plan(&input).map_err(CliError::usage)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
    } else {
        println!(
            "{partitions} partitions at {} at a time, {:.0} min each: {} waves, makespan {:.1} h, cost {:.2}",
            args.concurrency, args.run_minutes, plan.waves, plan.makespan_hours, plan.cost
        );
        if let Some(c) = plan.min_concurrency_for_window {
            println!(
                "the smallest concurrency that fits the {:.0} h window: {c}",
                args.window_hours
            );
        }
        for w in &plan.warnings {
            println!("WARNING: {w}");
        }
    }
    Ok(())
}
