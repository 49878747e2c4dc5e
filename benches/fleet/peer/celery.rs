//! The Celery side: its virtual environment, the pool in a process group of its own, the
//! run's queue deleted afterwards, and one timed run.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backfill_simulator::Simulator;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::Connection as _;

use super::process_group::{Sampler, group};
use super::side::{Run, calls_per_partition};
use crate::common::sim_config;
use crate::support;

/// `scripts/ensure-peer-venv`: the Celery app's virtual environment, installed if needed.
pub(super) fn peer_venv() -> PathBuf {
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
pub(super) async fn celery_run(venv: &Path, n: u32, concurrency: usize) -> Run {
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
