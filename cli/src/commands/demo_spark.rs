//! `backfill demo --engine spark`: the rehearsal on real data (SPEC 5.11). The simulator's
//! runs execute the bundle's own job code on local Spark with Delta Lake over a generated
//! sample; two backfills are produced and worked: the range (`--days`, ending yesterday)
//! and, the day before it, one whose production partition disagrees with its
//! recomputation. Then the gate refuses that one, the range is promoted while a stand-in
//! for the live pipeline appends today's partition, one partition is rolled back, the
//! audit is written, and the tables are checked against an independent computation from
//! the raw files. Exits 0 only if every check holds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::DatabricksClient;
use backfill_ledger::{ActionState, Ledger, PartitionState};
use backfill_producer::{Order, ProduceRequest, publish_pending, register};
use backfill_reconciler::{PromotionOutcome, PromotionSettings, promote, rollback};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{demo, rehearsal};
use crate::args::{DemoArgs, GlobalOpts};
use crate::exit::CliError;
use backfill_operations::contract::contract_for_produce;

const ACTOR: &str = "demo-promoter";

pub async fn run(global: &GlobalOpts, args: DemoArgs) -> Result<(), CliError> {
    let days = args.days.unwrap_or(5);
    let start = demo::begin(global, days).await?;

    // The range ends yesterday (today belongs to the live pipeline); the day before it is
    // the one made to fail its gate.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let first = yesterday - chrono::Days::new(u64::from(days - 1));
    let gate_day = PartitionDate::new(first - chrono::Days::new(1));
    let dir = rehearsal::sample_dir(&args.engine)?;
    let spec = rehearsal::sample_spec(dir.clone(), Some(gate_day), days + 1, 7, Some(gate_day))?;
    let (sim, summary) =
        rehearsal::spark_simulator(&args.engine, &spec, demo::sim_config(&args)?).await?;
    let engine = sim.engine().context("the Spark engine stopped")?;
    let handle = sim.serve_here().await.context("serving the simulator")?;
    let parts = demo::DemoParts::connect(&start, &handle.url()).await?;
    eprintln!(
        "demo: Spark engine ({} runs at once), {} ledger, RabbitMQ namespace {}",
        args.engine.slots,
        parts.ledger.backend_name(),
        start.settings.namespace
    );

    let main_id: BackfillId = format!("demo-{}", start.stamp)
        .parse()
        .map_err(anyhow::Error::new)?;
    let gate_id: BackfillId = format!("demo-{}-gate", start.stamp)
        .parse()
        .map_err(anyhow::Error::new)?;
    let backfills = [
        (
            main_id.clone(),
            PartitionDate::new(first),
            PartitionDate::new(yesterday),
        ),
        (gate_id.clone(), gate_day, gate_day),
    ];
    for (id, from, to) in &backfills {
        produce(
            &parts.ledger,
            &parts.client,
            &parts.broker,
            &summary,
            id,
            *from,
            *to,
        )
        .await?;
    }

    let workers = CancellationToken::new();
    let tasks = parts.spawn_workers(args.concurrency, &workers)?;
    let timeout = Duration::from_secs(args.timeout_s);
    let worked = wait_until_succeeded(
        &parts.ledger,
        &backfills,
        start.started,
        timeout,
        &start.shutdown,
    )
    .await;
    let story = match worked {
        Ok(()) => {
            tell_the_story(
                &parts.ledger,
                &parts.client,
                &engine,
                &summary,
                &main_id,
                &gate_id,
            )
            .await
        }
        Err(e) => Err(e),
    };
    workers.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let ledger = parts.close().await;

    let outcome = match story {
        Ok(live) => {
            match rehearsal::expectation(&ledger, &summary, &[main_id.clone(), gate_id], live).await
            {
                Ok(expect) => {
                    println!("demo: checking the Delta tables against the raw files");
                    rehearsal::run_check(engine.settings(), &dir, &expect).await
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    engine.stop(Duration::from_secs(60)).await;
    drop(handle);
    let elapsed = start.started.elapsed().as_secs_f64();
    match outcome {
        Ok(true) => {
            println!(
                "demo: rehearsal of {main_id} passed every check in {elapsed:.1} s; tables in {}",
                summary.warehouse_dir
            );
            Ok(())
        }
        Ok(false) => Err(CliError::Negative(format!(
            "demo: rehearsal of {main_id} failed a check (after {elapsed:.1} s); tables in {}",
            summary.warehouse_dir
        ))),
        Err(e) => Err(e),
    }
}

/// Registers one backfill with the sample's pins and tables and the shipped policy, and
/// publishes its partitions.
async fn produce(
    ledger: &Ledger,
    client: &DatabricksClient,
    broker: &backfill_broker::Broker,
    summary: &backfill_simulator::SampleSummary,
    id: &BackfillId,
    start: PartitionDate,
    end: PartitionDate,
) -> Result<(), CliError> {
    let policy =
        backfill_reconciler::recorded_policy(demo::DEMO_POLICY, "policies/usage-daily.toml")
            .map_err(anyhow::Error::msg)?;
    let contract = contract_for_produce(
        client,
        &backfill_reconciler::ContractFlags {
            dq_policy: Some(policy),
            staging_table: Some(summary.staging_table.clone()),
            target_table: Some(summary.target_table.clone()),
            ..Default::default()
        },
    )
    .await?;
    let mut params = BTreeMap::from([("code_version".to_owned(), "demo".to_owned())]);
    for (table, version) in &summary.pins {
        params.insert(format!("pin.{table}"), version.to_string());
    }
    let request = ProduceRequest {
        backfill_id: id.clone(),
        job_id: 1,
        start,
        end,
        params,
        concurrency_cap: 60,
        order: Order::NewestFirst,
        created_by: "demo".into(),
        contract: Some(contract),
    };
    let (manifest_id, _) = register(ledger, client, &request)
        .await
        .map_err(anyhow::Error::new)?;
    let published = publish_pending(ledger, &broker.publisher(), id, request.order, |_, _| {})
        .await
        .map_err(anyhow::Error::new)?;
    eprintln!(
        "demo: backfill {id} {start}..{end} registered (manifest {manifest_id}); {published} partitions published"
    );
    Ok(())
}

async fn wait_until_succeeded(
    ledger: &Ledger,
    backfills: &[(BackfillId, PartitionDate, PartitionDate)],
    started: Instant,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Result<(), CliError> {
    let total: i64 = backfills
        .iter()
        .map(|(_, s, e)| PartitionDate::range_inclusive(*s, *e).len() as i64)
        .sum();
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = shutdown.cancelled() => return Err(CliError::Negative("demo: interrupted".into())),
        }
        let mut n: BTreeMap<PartitionState, i64> = BTreeMap::new();
        for (id, _, _) in backfills {
            for (state, count) in ledger.state_counts(id).await.map_err(anyhow::Error::new)? {
                *n.entry(state).or_default() += count;
            }
        }
        let get = |s: PartitionState| n.get(&s).copied().unwrap_or(0);
        eprintln!(
            "demo: {:>6.1}s  succeeded {}/{total}  running {}  pending {}  retrying {}",
            started.elapsed().as_secs_f64(),
            get(PartitionState::Succeeded),
            get(PartitionState::Running) + get(PartitionState::Triggering),
            get(PartitionState::Pending),
            get(PartitionState::Failed),
        );
        if get(PartitionState::DeadLettered) + get(PartitionState::Cancelled) > 0 {
            return Err(CliError::Negative(
                "demo: some partitions were dead-lettered or cancelled (backfill dlq list)".into(),
            ));
        }
        if get(PartitionState::Succeeded) == total {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(CliError::Negative(format!(
                "demo: not every partition succeeded after {} s",
                timeout.as_secs()
            )));
        }
    }
}

/// The gate refuses the gate-failing backfill; the range is promoted while the live
/// pipeline appends; one partition is rolled back; the audit is written. Returns the live
/// pipeline's commits.
async fn tell_the_story(
    ledger: &Ledger,
    client: &DatabricksClient,
    engine: &backfill_simulator::SparkEngine,
    summary: &backfill_simulator::SampleSummary,
    main_id: &BackfillId,
    gate_id: &BackfillId,
) -> Result<Option<serde_json::Value>, CliError> {
    let settings = PromotionSettings {
        wave_size: 30,
        poll: Duration::from_millis(500),
        timeout: Duration::from_secs(900),
    };
    let failed = |e: backfill_reconciler::ReconcileError| CliError::Failed(anyhow::Error::new(e));
    match promote(ledger, client, gate_id, &settings, ACTOR)
        .await
        .map_err(failed)?
    {
        PromotionOutcome::NotReady(report) => {
            for gap in &report.gaps {
                println!(
                    "demo: gate refused {gate_id} {}: {} ({})",
                    gap.partition,
                    gap.kind.as_str(),
                    gap.detail
                );
            }
        }
        other => {
            return Err(CliError::Negative(format!(
                "demo: the gate-failing backfill {gate_id} was not refused: {other:?}"
            )));
        }
    }

    let live = json!({"op": "live_start", "table": summary.target_table, "date": summary.cutover_date,
                      "warehouse_dir": summary.warehouse_dir, "every_ms": 1500});
    engine
        .call(live, "live_started", Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "demo: live pipeline appending {} to {}",
        summary.cutover_date, summary.target_table
    );
    let promoted = promote(ledger, client, main_id, &settings, ACTOR).await;
    let rolled = match &promoted {
        Ok(PromotionOutcome::Promoted { actions, .. }) => {
            for a in actions {
                println!("demo: {}", super::promote::action_line(a));
            }
            let backfill = ledger.backfill(main_id).await.map_err(anyhow::Error::new)?;
            let day = backfill.map(|b| b.end).context("backfill vanished")?;
            match rollback(ledger, client, main_id, &[day], &settings, ACTOR).await {
                Ok(actions)
                    if !actions.is_empty()
                        && actions.iter().all(|a| a.state == ActionState::Succeeded) =>
                {
                    for a in &actions {
                        println!(
                            "demo: rolled back {day}: run {}, {}",
                            a.run_id.map_or(0, backfill_contract::RunId::get),
                            a.detail
                        );
                    }
                    Ok(())
                }
                Ok(actions) => Err(CliError::Negative(format!(
                    "demo: the rollback of {day} did not succeed: {actions:?}"
                ))),
                Err(e) => Err(failed(e)),
            }
        }
        // Reported below, once the live pipeline is stopped.
        Ok(_) | Err(_) => Ok(()),
    };
    let stopped = engine
        .call(
            json!({"op": "live_stop"}),
            "live_stopped",
            Duration::from_secs(300),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    match promoted.map_err(failed)? {
        PromotionOutcome::Promoted { .. } => {}
        other => {
            return Err(CliError::Negative(format!(
                "demo: {main_id} was not promoted: {other:?}"
            )));
        }
    }
    rolled?;
    if let Some(error) = stopped.get("error") {
        return Err(CliError::Negative(format!(
            "demo: the live pipeline failed: {error}"
        )));
    }
    let commits = stopped["commits"].as_array().map_or(0, Vec::len);
    if commits == 0 {
        return Err(CliError::Negative(
            "demo: the live pipeline made no commit while promotion ran".into(),
        ));
    }
    println!("demo: live pipeline stopped after {commits} commits");

    let audit = backfill_reconciler::audit_json(ledger, main_id)
        .await
        .map_err(failed)?;
    let path = std::path::Path::new(&summary.raw_root)
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(format!("audit-{main_id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&audit).unwrap_or_default())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "demo: audit of {main_id}: {} events, {} data-quality verdicts, written to {}",
        audit["events"].as_array().map_or(0, Vec::len),
        audit["dq_results"].as_array().map_or(0, Vec::len),
        path.display()
    );
    Ok(Some(stopped))
}
