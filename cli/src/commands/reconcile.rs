//! `backfill reconcile`: prove completeness against Databricks.

use std::time::Duration;

use backfill_metrics::Group;
use backfill_reconciler::{Report, Reverify, ServiceOptions, reconcile_once, run_reconciler};

use super::signals::shutdown_on_signals;
use super::{contract, promote};
use crate::args::{GlobalOpts, PromoteArgs, ReconcileArgs};
use crate::exit::CliError;
use crate::observe;
use backfill_operations::contract::recorded_agreeing;

pub async fn run(global: &GlobalOpts, args: ReconcileArgs) -> Result<(), CliError> {
    let backfill_id = args.backfill_id.clone();
    let given = contract::flags(&args.promotion.contract)?;
    let ledger = global.ledger().await?;
    let recorded = recorded_agreeing(&ledger, &backfill_id, &given).await?;
    if recorded.is_none() && given.dq_policy.is_some() {
        return Err(CliError::usage(format!(
            "--dq-policy: backfill {backfill_id} has no recorded contract to gate on; record one with              `backfill amend --backfill-id {backfill_id} --dq-policy FILE --reason ...`"
        )));
    }
    let (client, _membership) = global.fleet_client(&ledger, "reconciler").await?;
    let actor = format!("reconciler-{}", std::process::id());
    let report = if args.once {
        Some(reconcile_once(&ledger, &client, &backfill_id, &actor).await?)
    } else {
        let shutdown = shutdown_on_signals();
        let metrics = observe::start(
            global,
            "reconciler",
            &[Group::Reconcile, Group::Api, Group::Fleet],
        )
        .await?;
        metrics.health.require(false, true);
        let client = client.with_metrics(metrics.api.clone());
        let collector =
            observe::spawn_collector(metrics.clone(), ledger.clone(), None, shutdown.clone());
        let options = ServiceOptions {
            actor: &actor,
            interval: Duration::from_secs(args.interval_s.max(1)),
            reverify: if args.reverify {
                Reverify::Everything
            } else {
                Reverify::Unverified
            },
            metrics,
        };
        let report = run_reconciler(&ledger, &client, &backfill_id, options, shutdown).await;
        collector.abort();
        report?
    };
    let Some(report) = report else {
        return Err(CliError::Negative("stopped before the first pass".into()));
    };
    print_report(&report, args.json);
    if report.complete && args.promote {
        let flags = PromoteArgs {
            backfill_id: args.backfill_id.clone(),
            approve: false,
            by: actor.clone(),
            promotion: args.promotion.clone(),
            json: args.json,
        };
        return promote::run(global, flags).await;
    }
    if report.complete {
        Ok(())
    } else {
        Err(CliError::Negative(format!(
            "incomplete: {} of {} partitions proven, {} gaps",
            report.verified,
            report.total,
            report.gaps.len()
        )))
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    println!(
        "backfill {}: {} of {} partitions proven against Databricks{} ({})",
        report.backfill_id,
        report.verified,
        report.total,
        if report.complete { " — complete" } else { "" },
        match (report.contract_version, &report.policy) {
            (Some(v), Some(p)) => format!("contract version {v}, policy sha256 {p}"),
            (Some(v), None) => format!("contract version {v}, NO data-quality policy"),
            (None, _) => "no recorded contract: completeness only".to_owned(),
        }
    );
    for gap in report.gaps.iter().take(50) {
        println!(
            "  {}  {:<20} attempt {}  run {}  {}",
            gap.partition,
            format!("{:?}", gap.kind),
            gap.attempt,
            gap.run_id.map_or("-".into(), |r| r.to_string()),
            gap.detail
        );
    }
    if report.gaps.len() > 50 {
        println!(
            "  ... {} more gaps (use --json for all)",
            report.gaps.len() - 50
        );
    }
}
