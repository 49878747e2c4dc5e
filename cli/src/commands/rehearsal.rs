//! What `sim --engine spark`, `demo --engine spark` and `rehearsal-check` share: the
//! executing simulator over a sample, and the check of the resulting Delta tables against
//! an independent computation from the raw files (the bundle's `rehearsal check`), fed
//! with what the ledger says was promoted, rolled back and never promoted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use backfill_contract::{BackfillId, PartitionDate};
use backfill_ledger::{ActionState, Ledger};
use backfill_simulator::{SampleSpec, SampleSummary, SimConfig, Simulator, SparkSettings};
use serde_json::{Value, json};

use crate::args::{EngineArgs, RehearsalCheckArgs};
use crate::exit::CliError;

/// The file the check reads what the ledger says, in the sample's directory.
const EXPECT_FILE: &str = "rehearsal-expect.json";

/// The sample's directory: the one given, else a new one under `backfill-rehearsal/`.
pub fn sample_dir(engine: &EngineArgs) -> Result<PathBuf, CliError> {
    let dir = engine.sample.clone().unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        PathBuf::from("backfill-rehearsal").join(stamp.to_string())
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create --sample {}", dir.display()))?;
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}

fn python(python: Option<&PathBuf>, bundle_dir: &Path) -> PathBuf {
    python
        .cloned()
        .unwrap_or_else(|| bundle_dir.join(".venv").join("bin").join("python"))
}

pub fn spark_settings(engine: &EngineArgs, dir: &Path) -> SparkSettings {
    settings(
        engine.python.as_ref(),
        &engine.bundle_dir,
        engine.slots.max(1),
        dir,
    )
}

fn settings(given: Option<&PathBuf>, bundle_dir: &Path, slots: usize, dir: &Path) -> SparkSettings {
    let bundle_dir = std::path::absolute(bundle_dir).unwrap_or(bundle_dir.to_path_buf());
    SparkSettings {
        python: python(given, &bundle_dir),
        bundle_dir,
        slots,
        scratch: dir.join("scratch"),
        ready_timeout: Duration::from_secs(300),
    }
}

/// The sample (generated when the directory holds none) and a simulator whose runs of the
/// bundle's jobs execute over it.
pub async fn spark_simulator(
    engine: &EngineArgs,
    spec: &SampleSpec,
    mut config: SimConfig,
) -> Result<(Simulator, SampleSummary), CliError> {
    if engine.slots == 0 {
        return Err(CliError::usage("--slots must be at least 1"));
    }
    let settings = spark_settings(engine, &spec.dir);
    eprintln!(
        "rehearsal: sample in {} (Spark's log: {})",
        spec.dir.display(),
        settings.log_path().display()
    );
    let summary = backfill_simulator::prepare_sample(&settings, spec)
        .await
        .map_err(anyhow::Error::msg)?;
    summary.apply(&mut config);
    for job in config.jobs.iter().filter(|j| j.task.is_none()) {
        eprintln!(
            "rehearsal: WARNING: job {} ({}) names no bundle job (`task`): its runs report invented numbers",
            job.job_id, job.name
        );
    }
    let sim = Simulator::with_spark(config, settings)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok((sim, summary))
}

/// `--sample-start`/`--sample-days` (or the demo's range) as the generator's spec.
pub fn sample_spec(
    dir: PathBuf,
    start: Option<PartitionDate>,
    days: u32,
    seed: u64,
    gate_failing_day: Option<PartitionDate>,
) -> Result<SampleSpec, CliError> {
    if days == 0 {
        return Err(CliError::usage("--sample-days must be at least 1"));
    }
    let start = match start {
        Some(s) => s,
        None => {
            let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
            PartitionDate::new(yesterday - chrono::Days::new(u64::from(days - 1)))
        }
    };
    let end = PartitionDate::new(start.date() + chrono::Days::new(u64::from(days - 1)));
    Ok(SampleSpec {
        dir,
        start: start.to_string(),
        end: end.to_string(),
        days,
        seed,
        gate_failing_day: gate_failing_day.map(|d| d.to_string()),
    })
}

/// What the ledger says happened to the target, for the check: per backfill, the
/// partitions whose latest promotion stands, those rolled back (to the version before it),
/// those never promoted, and every proven attempt's staging version.
pub async fn expectation(
    ledger: &Ledger,
    summary: &SampleSummary,
    backfills: &[BackfillId],
    mut live: Option<Value>,
) -> Result<Value, CliError> {
    // The live pipeline writes the first day it owns.
    if let Some(Value::Object(l)) = live.as_mut() {
        l.entry("date")
            .or_insert_with(|| json!(summary.cutover_date));
    }
    let (mut promoted, mut rolled_back, mut never, mut attempts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in backfills {
        let backfill = ledger
            .backfill(id)
            .await
            .map_err(anyhow::Error::new)?
            .ok_or_else(|| CliError::usage(format!("backfill {id} is not registered")))?;
        let mut latest: BTreeMap<String, backfill_ledger::PromotionItem> = BTreeMap::new();
        for item in ledger
            .promotion_items(id)
            .await
            .map_err(anyhow::Error::new)?
        {
            if item.state == ActionState::Succeeded
                && latest
                    .get(&item.partition_date)
                    .is_none_or(|l| l.seq < item.seq)
            {
                latest.insert(item.partition_date.clone(), item);
            }
        }
        for date in PartitionDate::range_inclusive(backfill.start, backfill.end) {
            let date = date.to_string();
            match latest.get(&date) {
                None => never.push(json!(date)),
                Some(item) if item.rolled_back_by.is_some() => rolled_back.push(json!({
                    "partition_date": date,
                    "restore_version": item.version_before,
                    "promoted_version": item.version_after,
                })),
                Some(_) => promoted.push(json!(date)),
            }
        }
        // Every attempt the ledger knows, with the staging version its proof records (none
        // for an attempt never proven): a staging commit of any other attempt is a run the
        // fleet did not account for.
        let proofs: BTreeMap<(String, i64), Option<i64>> = ledger
            .proofs(id)
            .await
            .map_err(anyhow::Error::new)?
            .into_iter()
            .map(|p| ((p.partition_date, p.attempt), p.staging_version))
            .collect();
        for partition in ledger.partitions(id).await.map_err(anyhow::Error::new)? {
            let date = partition.date.to_string();
            for attempt in 1..=i64::from(partition.attempt.get()) {
                attempts.push(json!({
                    "backfill_id": id.to_string(),
                    "partition_date": date,
                    "attempt": attempt,
                    "staging_version": proofs.get(&(date.clone(), attempt)).copied().flatten(),
                }));
            }
        }
    }
    Ok(json!({
        "target_table": summary.target_table,
        "staging_table": summary.staging_table,
        "backfill_id": backfills.first().map(ToString::to_string),
        "backfill_ids": backfills.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "baseline_target_version": summary.baseline_target_version,
        "promoted": promoted,
        "rolled_back": rolled_back,
        "never_promoted": never,
        "live": live,
        "attempts": attempts,
    }))
}

/// Writes the expectation next to the sample and runs the bundle's independent check,
/// its lines going to stdout. True when every check held.
pub async fn run_check(
    settings: &SparkSettings,
    sample_dir: &Path,
    expect: &Value,
) -> Result<bool, CliError> {
    let path = sample_dir.join(EXPECT_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(expect).unwrap_or_default())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let sample = sample_dir.join(backfill_simulator::SAMPLE_FILE);
    let (sample, path) = (sample.to_string_lossy(), path.to_string_lossy());
    let mut cmd = settings
        .command(&["check", "--sample", &sample, "--expect", &path])
        .context("preparing the check")?;
    cmd.stdout(std::process::Stdio::inherit());
    let status = cmd
        .status()
        .await
        .with_context(|| format!("cannot run the check with {}", settings.python.display()))?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(CliError::Failed(anyhow::anyhow!(
            "the check could not run ({status}); see {}",
            settings.log_path().display()
        ))),
    }
}

/// `backfill rehearsal-check`: checks the target and staging tables of a rehearsal's
/// sample against the ledger's record of the given backfills.
pub async fn check(
    global: &crate::args::GlobalOpts,
    args: RehearsalCheckArgs,
) -> Result<(), CliError> {
    let summary = SampleSummary::read(&args.sample).map_err(CliError::usage)?;
    let live = match &args.live {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("--live {}: {e}", path.display())))?;
            Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| CliError::usage(format!("--live {}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    let ids = &args.backfill_ids;
    let ledger = global.ledger().await?;
    let expect = expectation(&ledger, &summary, ids, live).await?;
    let sample = std::path::absolute(&args.sample).unwrap_or(args.sample.clone());
    let settings = settings(args.python.as_ref(), &args.bundle_dir, 1, &sample);
    if run_check(&settings, &sample, &expect).await? {
        Ok(())
    } else {
        Err(CliError::Negative(
            "rehearsal check: the tables do not hold what the ledger says".into(),
        ))
    }
}
