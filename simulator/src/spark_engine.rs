//! The executing engine: one long-lived Python process holding one local Spark session
//! with Delta Lake (`python -m usage_backfill.rehearsal executor`), which runs the bundle's
//! own job code for the simulator's runs. JSON lines both ways: `run` and `cancel`
//! requests in; `started`, `finished`, `failed` and `cancelled` events out, which move the
//! runs' states. Other requests (the live pipeline's `live_start`, `live_stop`) are calls
//! answered by one event.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::execution::Ending;

/// How to start the executor.
#[derive(Debug, Clone)]
pub struct SparkSettings {
    /// A Python with pyspark and delta-spark (the bundle's virtual environment).
    pub python: PathBuf,
    /// The bundle's directory: its `src` goes on `PYTHONPATH`.
    pub bundle_dir: PathBuf,
    /// Runs executing at once (each in its own thread of the one Spark session).
    pub slots: usize,
    /// Spark's scratch space; the executor's log (Spark's own output) goes to
    /// `executor.log` in it.
    pub scratch: PathBuf,
    /// How long Spark may take to come up (the first start fetches Delta Lake's jars).
    pub ready_timeout: Duration,
}

impl SparkSettings {
    pub fn log_path(&self) -> PathBuf {
        self.scratch.join("executor.log")
    }

    /// `python -m usage_backfill.rehearsal ARGS` with the bundle on the path, Spark's
    /// chatter in the log.
    pub fn command(&self, args: &[&str]) -> std::io::Result<Command> {
        std::fs::create_dir_all(&self.scratch)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = Command::new(&self.python);
        cmd.arg("-m")
            .arg("usage_backfill.rehearsal")
            .args(args)
            .env("PYTHONPATH", self.bundle_dir.join("src"))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        Ok(cmd)
    }
}

/// Calls waiting for their answer: (call number, the event that answers it, where to).
type Waiters = Arc<Mutex<VecDeque<(u64, String, oneshot::Sender<Value>)>>>;

/// A handle on the running executor; cheap to clone.
#[derive(Clone)]
pub struct SparkEngine {
    requests: mpsc::UnboundedSender<String>,
    waiters: Waiters,
    calls: Arc<std::sync::atomic::AtomicU64>,
    child: Arc<tokio::sync::Mutex<Option<Child>>>,
    settings: Arc<SparkSettings>,
}

impl std::fmt::Debug for SparkEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparkEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SparkEngine {
    /// Starts the executor and waits until its Spark session is up.
    pub(crate) async fn start(settings: SparkSettings) -> Result<(Self, EngineEvents), String> {
        let slots = settings.slots.max(1).to_string();
        let scratch = settings.scratch.join("spark");
        let scratch = scratch.to_string_lossy().into_owned();
        let mut cmd = settings
            .command(&["executor", "--slots", &slots, "--scratch", &scratch])
            .map_err(|e| format!("cannot prepare {}: {e}", settings.scratch.display()))?;
        cmd.stdin(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start the Spark executor with {} ({e}); set --python to a Python with \
                 the bundle's requirements (scripts/test-bundle makes bundle/.venv)",
                settings.python.display()
            )
        })?;
        let mut stdin = child.stdin.take().ok_or("the executor has no stdin")?;
        let stdout = child.stdout.take().ok_or("the executor has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let log = settings.log_path();
        let ready = async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if serde_json::from_str::<Value>(&line).is_ok_and(|v| v["event"] == "ready") {
                    return Ok(());
                }
            }
            Err(format!(
                "the Spark executor exited before it was ready (see {})",
                log.display()
            ))
        };
        match tokio::time::timeout(settings.ready_timeout, ready).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "the Spark executor was not ready after {} s (see {})",
                    settings.ready_timeout.as_secs(),
                    log.display()
                ));
            }
        }
        let (requests, mut outbox) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = outbox.recv().await {
                if line.is_empty() {
                    break;
                }
                let written = async {
                    stdin.write_all(line.as_bytes()).await?;
                    stdin.write_all(b"\n").await?;
                    stdin.flush().await
                };
                if let Err(e) = written.await {
                    tracing::error!(error = %e, "cannot write to the Spark executor");
                    break;
                }
            }
            // Dropping stdin tells the executor to finish and stop.
        });
        let engine = Self {
            requests,
            waiters: Arc::default(),
            calls: Arc::default(),
            child: Arc::new(tokio::sync::Mutex::new(Some(child))),
            settings: Arc::new(settings),
        };
        let events = EngineEvents {
            lines,
            waiters: engine.waiters.clone(),
        };
        Ok((engine, events))
    }

    pub fn settings(&self) -> &SparkSettings {
        &self.settings
    }

    pub(crate) fn send(&self, request: &Value) {
        if self.requests.send(request.to_string()).is_err() {
            tracing::error!("the Spark executor is gone; request dropped");
        }
    }

    /// Sends `request` and waits for the executor's `reply` event (or its `error`).
    pub async fn call(
        &self,
        request: Value,
        reply: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        let id = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((id, reply.to_owned(), tx));
        self.send(&request);
        let answer = tokio::time::timeout(timeout, rx).await;
        // A call that timed out must not take a later call's answer.
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(n, _, _)| *n != id);
        match answer {
            Ok(Ok(v)) if v["event"] == "error" => Err(format!(
                "the Spark executor refused {}: {}",
                request["op"], v["error"]
            )),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(format!(
                "the Spark executor stopped before answering {reply}"
            )),
            Err(_) => Err(format!(
                "no {reply} from the Spark executor in {} s",
                timeout.as_secs()
            )),
        }
    }

    /// Closes the executor's input (it finishes what runs, stops Spark and exits) and
    /// waits for it, killing it after `grace`.
    pub async fn stop(&self, grace: Duration) {
        let Some(mut child) = self.child.lock().await.take() else {
            return;
        };
        // The writer task holds stdin; closing the request channel ends it.
        let _ = self.requests.send(String::new());
        if let Ok(Ok(_)) = tokio::time::timeout(grace, child.wait()).await {
            return;
        }
        let _ = child.kill().await;
    }
}

/// The executor's output: run events for the simulator, answers for waiting calls.
pub(crate) struct EngineEvents {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    waiters: Waiters,
}

impl EngineEvents {
    /// The next event about a run's execution (its key, and how it ended, `None` when it
    /// started), answering waiting calls on the way; `None` once the executor is gone.
    pub(crate) async fn next_run_event(&mut self) -> Option<(i64, Option<Ending>)> {
        loop {
            let line = match self.lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "reading the Spark executor");
                    return None;
                }
            };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                tracing::warn!(line, "the Spark executor wrote a line that is not JSON");
                continue;
            };
            let kind = event["event"].as_str().unwrap_or_default().to_owned();
            match (kind.as_str(), event["run_id"].as_i64()) {
                ("started" | "finished" | "failed" | "cancelled" | "error", Some(key)) => {
                    let ending = match kind.as_str() {
                        "finished" => Some(Ending::Finished(event["result"].clone())),
                        "failed" | "error" => Some(Ending::Failed(
                            event["error"]
                                .as_str()
                                .unwrap_or("the job failed")
                                .to_owned(),
                        )),
                        "cancelled" => Some(Ending::Cancelled),
                        _ => None,
                    };
                    return Some((key, ending));
                }
                _ => {
                    // An answer goes to the oldest call waiting for it; an error (a refused
                    // call) to the oldest call.
                    let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
                    let found = waiters
                        .iter()
                        .position(|(_, name, _)| *name == kind || kind == "error");
                    match found.and_then(|i| waiters.remove(i)) {
                        Some((_, _, tx)) => {
                            let _ = tx.send(event);
                        }
                        None if kind == "error" => {
                            tracing::error!(error = %event["error"], "the Spark executor refused a request");
                        }
                        None => {}
                    }
                }
            }
        }
    }
}
