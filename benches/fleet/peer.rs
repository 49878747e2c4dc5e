//! The peer: the fleet against what a team would write in an afternoon, a Celery worker
//! pool (benches/peer: one task per partition, `acks_late`, prefetch 1, polling the run
//! every 50 ms, outcomes in SQLite). Both sides get a fresh simulator with instant runs,
//! the same RabbitMQ, and are timed from the start of their producer process to the
//! last partition recorded as done; the fleet is also timed through its verify
//! (`reconcile --once`), as in the throughput section. Repeats alternate the sides, so a
//! busy machine slows both alike.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backfill_simulator::{SimStats, Simulator};
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::Connection as _;

use crate::common::sim_config;
use crate::{Sizes, median, support};

/// One side's run: rates, phases and memory.
struct Run {
    /// Partitions a second from the producer's start to the last partition done.
    rate: f64,
    /// The same through the fleet's verify (the fleet only).
    rate_verified: Option<f64>,
    produce_s: f64,
    /// From the producer's exit to the last partition done.
    run_s: f64,
    /// Peak resident set: the worker's own, or the sum over the pool's processes.
    peak_rss: f64,
    /// Peak proportional set summed over the pool (shared pages counted once).
    peak_pss: Option<f64>,
    /// `run-now` and `runs/get` calls per partition.
    calls: (f64, f64),
}

fn calls_per_partition(stats: &SimStats, n: u32) -> (f64, f64) {
    let get = |k: &str| stats.calls.get(k).copied().unwrap_or(0) as f64 / f64::from(n);
    (get("jobs/run-now"), get("jobs/runs/get"))
}

/// The fleet as the throughput section runs it: one worker process (256 per lane), SQLite.
async fn fleet_run(n: u32) -> Run {
    let r = crate::load::fleet_run(n, support::sqlite_url()).await;
    Run {
        rate: f64::from(n) / (r.produce_s + r.run_s),
        rate_verified: Some(r.rate),
        produce_s: r.produce_s,
        run_s: r.run_s,
        peak_rss: r.peak_mib,
        peak_pss: None,
        calls: calls_per_partition(&r.stats, n),
    }
}

/// `scripts/ensure-peer-venv`: the Celery app's virtual environment, installed if needed.
fn peer_venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/ensure-peer-venv"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/ensure-peer-venv");
    assert!(out.status.success(), "scripts/ensure-peer-venv failed");
    PathBuf::from(support::process::text(&out.stdout).trim())
}

/// The Celery pool, in a process group of its own: killed whole when dropped.
struct Pool {
    child: Child,
    log: PathBuf,
}

impl Pool {
    fn pgid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pgid())])
            .status();
        let _ = self.child.wait();
        // Prefork children may outlive the main process by a moment: wait for the group.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !group(self.pgid()).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The pids of a process group (from /proc).
fn group(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ...", comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(2)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Resident set of a process in MiB (from /proc/PID/statm, 4 KiB pages).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / 1024.0 / 1024.0)
}

/// Proportional set of a process in MiB (from /proc/PID/smaps_rollup).
fn pss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a process group's summed RSS every 100 ms (and PSS every second) until
/// stopped; returns the peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(f64, f64)>,
}

impl Sampler {
    fn start(pgid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut rss, mut pss) = (0.0f64, 0.0f64);
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let pids = group(pgid);
                rss = rss.max(pids.iter().map(|p| rss_mib(*p)).sum());
                if i % 10 == 0 {
                    pss = pss.max(pids.iter().map(|p| pss_mib(*p)).sum());
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (rss, pss)
        });
        Self { stop, thread }
    }

    fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Deletes the run's queue and the direct exchange Celery declares beside it, also when
/// the run fails.
struct QueueGuard(String);

impl Drop for QueueGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        // Drop cannot await, and runs inside the runtime: delete from a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let conn = tokio::time::timeout(
                    Duration::from_secs(10),
                    Connection::connect(
                        &support::amqp_url_string(),
                        ConnectionProperties::default(),
                    ),
                )
                .await
                .ok()?
                .ok()?;
                let channel = conn.create_channel().await.ok()?;
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
                let _ = channel
                    .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
                let _ = conn.close(200, "bye".into()).await;
                Some(())
            })
        })
        .join();
    }
}

/// Consumers of a queue (0 while it does not exist yet).
async fn consumers(conn: &Connection, queue: &str) -> u32 {
    let Ok(channel) = conn.create_channel().await else {
        return 0;
    };
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => {
            let _ = channel.close(200, "done".into()).await;
            q.consumer_count()
        }
        // NOT_FOUND closes the channel; the connection stays up.
        Err(_) => 0,
    }
}

/// One Celery run: a fresh simulator and queue, the pool started and ready, then
/// `produce.py` timed through to `n` rows in the pool's `done` table.
async fn celery_run(venv: &Path, n: u32, concurrency: usize) -> Run {
    let sim = Simulator::spawn(sim_config(0, 0, 0, n as usize))
        .await
        .unwrap();
    let name = format!("bench-peer-{}", support::unique());
    let db = std::env::temp_dir().join(format!("{name}.db"));
    let log = std::env::temp_dir().join(format!("{name}.log"));
    // The environment of a deployed worker, not cargo's: requests scans the whole
    // environment for proxy settings on every call, so cargo's variables would tax it.
    let mut env: Vec<(&str, String)> = ["PATH", "HOME", "LANG", "TMPDIR"]
        .into_iter()
        .filter_map(|k| Some((k, std::env::var(k).ok()?)))
        .collect();
    env.extend([
        ("AMQP_URL", support::amqp_url_string()),
        ("PEER_QUEUE", name.clone()),
        ("PEER_DB", db.display().to_string()),
        ("DATABRICKS_HOST", sim.url()),
        ("DATABRICKS_TOKEN", "t".to_owned()),
    ]);
    let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    let queue = QueueGuard(name.clone());
    let child = Command::new(venv.join("bin/celery"))
        .args([
            "-A",
            "tasks",
            "worker",
            "-c",
            &concurrency.to_string(),
            "--prefetch-multiplier",
            "1",
            "-Q",
            &name,
            "-n",
            &format!("{name}@%h"),
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(&app_dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(File::create(&log).unwrap())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("start the Celery pool");
    let pool = Pool { child, log };

    // Ready once its consumer is on the queue (after the pool's processes are forked).
    let conn = Connection::connect(&support::amqp_url_string(), ConnectionProperties::default())
        .await
        .unwrap();
    let ready = Instant::now();
    while consumers(&conn, &name).await == 0 {
        assert!(
            ready.elapsed() < Duration::from_secs(120),
            "the Celery pool did not start (log: {})",
            pool.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = conn.close(200, "bye".into()).await;
    let sampler = Sampler::start(pool.pgid());

    let started = Instant::now();
    let out = Command::new(venv.join("bin/python"))
        .args(["produce.py", "bench", "2000-01-01", &n.to_string()])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(&app_dir)
        .output()
        .expect("run produce.py");
    assert!(
        out.status.success(),
        "{}",
        support::process::text(&out.stderr)
    );
    let produce_s = started.elapsed().as_secs_f64();
    let mut ledger = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    loop {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM done")
            .fetch_one(&mut ledger)
            .await
            .unwrap_or(0);
        if count >= i64::from(n) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "timed out at {count} of {n} partitions (log: {})",
            pool.log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let (peak_rss, peak_pss) = sampler.finish();
    drop(pool);
    drop(queue);

    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM done WHERE result_state = 'SUCCESS'")
            .fetch_one(&mut ledger)
            .await
            .unwrap();
    assert_eq!(succeeded, i64::from(n), "every partition succeeded");
    let _ = ledger.close().await;
    let stats = sim.sim.stats();
    assert_eq!(stats.runs_created, u64::from(n), "one run per partition");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Run {
        rate: f64::from(n) / secs,
        rate_verified: None,
        produce_s,
        run_s: secs - produce_s,
        peak_rss,
        peak_pss: Some(peak_pss),
        calls: calls_per_partition(&stats, n),
    }
}

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the table, and the median rate.
fn row(out: &mut String, what: &str, runs: &[Run]) -> f64 {
    let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    let m = median(rates.clone());
    let verified = if runs.iter().all(|r| r.rate_verified.is_some()) {
        let v: Vec<f64> = runs.iter().filter_map(|r| r.rate_verified).collect();
        format!("{:.0}/s ({})", median(v.clone()), fmt_runs(&v))
    } else {
        "no verify step".to_owned()
    };
    let peak = runs.iter().map(|r| r.peak_rss).fold(0.0, f64::max);
    let pss = runs
        .iter()
        .filter_map(|r| r.peak_pss)
        .fold(None, |a: Option<f64>, p| Some(a.map_or(p, |a| a.max(p))));
    let pss = pss.map_or("(one process)".to_owned(), |p| format!("{p:.0} MiB"));
    let _ = writeln!(
        out,
        "| {what} | **{m:.0}/s** | {} | {verified} | {:.1} s | {:.1} s | {:.2} + {:.2} | {peak:.0} MiB | {pss} |",
        fmt_runs(&rates),
        median(runs.iter().map(|r| r.produce_s).collect()),
        median(runs.iter().map(|r| r.run_s).collect()),
        median(runs.iter().map(|r| r.calls.0).collect()),
        median(runs.iter().map(|r| r.calls.1).collect()),
    );
    m
}

pub async fn peer(sizes: Sizes) -> String {
    let n = sizes.pick(300, 5000);
    let pools: &[usize] = sizes.pick(&[8][..], &[8, 16][..]);
    let venv = peer_venv();
    let mut fleet = Vec::new();
    let mut celery: Vec<Vec<Run>> = pools.iter().map(|_| Vec::new()).collect();
    let mut load = Vec::new();
    for _ in 0..sizes.repeats {
        load.push(load_average());
        fleet.push(fleet_run(n).await);
        for (runs, c) in celery.iter_mut().zip(pools) {
            runs.push(celery_run(&venv, n, *c).await);
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Peer: the fleet against a Celery pool, {n} partitions, instant runs\n"
    );
    let _ = writeln!(
        out,
        "Each side: a fresh simulator, the same RabbitMQ, timed from the start of its \
         producer process to the last partition recorded done (the fleet's ledger: \
         succeeded; Celery's `done` table: a row). Celery: `celery -A tasks worker -c N \
         --prefetch-multiplier 1`, `acks_late`, polling every 50 ms, one SQLite \
         transaction per task (benches/peer). Medians of {} run(s).\n",
        sizes.repeats
    );
    let _ = writeln!(
        out,
        "| what | partitions/s, produce to last done | runs | with the fleet's verify | produce | producer's exit to last done | run-now + runs/get per partition | peak RSS | peak PSS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let f = row(
        &mut out,
        "fleet: one `backfill` worker process (256 per lane), SQLite ledger",
        &fleet,
    );
    let mut ratios = Vec::new();
    for (runs, c) in celery.iter().zip(pools) {
        let m = row(
            &mut out,
            &format!(
                "Celery {} pool `-c {c}`, SQLite `done` table",
                celery_version()
            ),
            runs,
        );
        ratios.push((c, m));
    }
    let fv = median(fleet.iter().filter_map(|r| r.rate_verified).collect());
    let _ = writeln!(
        out,
        "\nRepeats run the fleet, then each pool. Load average (1 min) as each repeat \
         began: {} on {} cores; Celery spends more CPU per partition, so a busy machine \
         slows it more.\n",
        load.join(", "),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    for (c, m) in ratios {
        let _ = writeln!(
            out,
            "- fleet / Celery `-c {c}`: **{:.2}x** (with the fleet's verify counted against it: {:.2}x)",
            f / m,
            fv / m
        );
    }
    let _ = writeln!(
        out,
        "\nPeak RSS: the worker process's high-water mark (VmHWM); for Celery the highest \
         sum over the pool's process group (main process and its prefork children), \
         sampled every 100 ms, which counts pages the children share with their parent \
         once per process; PSS (sampled every second) counts them once. Producer and \
         reconciler processes are not counted on either side. The fleet's API calls \
         include its producer's and verify's."
    );
    out
}

/// The 1-minute load average (from /proc/loadavg).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The Celery version the peer pins (benches/peer/requirements.txt).
fn celery_version() -> String {
    let req = include_str!("../peer/requirements.txt");
    req.lines()
        .find_map(|l| l.strip_prefix("celery=="))
        .unwrap_or("5.x")
        .to_owned()
}
