//! Settings shared by every command. Every setting has an environment fallback; secrets
//! never show their values in `--help`.

use clap::Args;

use super::values::DelayTiers;
use crate::telemetry::LogFormat;

/// Settings shared by every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalOpts {
    /// RabbitMQ URL, or the URLs of a cluster's nodes separated by commas (each process
    /// tries them in turn, in its own shuffled order).
    #[arg(
        long,
        global = true,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub amqp_url: String,
    /// Ledger database: sqlite://FILE or postgres://... (default sqlite://backfill.db in
    /// the working directory, which a process then names on start-up).
    #[arg(long, global = true, env = "LEDGER_URL", hide_env_values = true)]
    pub ledger_url: Option<String>,
    /// Prefix of every queue and exchange, so several fleets can share one broker.
    #[arg(
        long,
        global = true,
        env = "BACKFILL_NAMESPACE",
        default_value = "backfill"
    )]
    pub namespace: String,
    /// Databricks workspace URL (the local simulator by default).
    #[arg(
        long,
        global = true,
        env = "DATABRICKS_HOST",
        default_value = "http://127.0.0.1:8089"
    )]
    pub databricks_host: String,
    /// Databricks personal access token. Required for a workspace; may be left out only
    /// for a simulator on this machine (loopback), which takes any token.
    #[arg(long, global = true, env = "DATABRICKS_TOKEN", hide_env_values = true)]
    pub databricks_token: Option<String>,
    /// The longest `Retry-After` from Databricks honoured, in seconds (longer ones are
    /// cut to this; a throttled message waits in the delay tiers, never in a delivery).
    #[arg(
        long,
        global = true,
        env = "DATABRICKS_MAX_RETRY_AFTER_S",
        default_value_t = 120
    )]
    pub max_retry_after_s: u64,
    /// Databricks requests per second for the whole fleet, per endpoint: every process
    /// that calls Databricks (workers, reconciler, promote, cancel, produce) takes an equal
    /// share through the ledger.
    #[arg(
        long,
        global = true,
        env = "WORKER_API_BUDGET",
        default_value = "jobs/run-now=10,jobs/runs/get=50"
    )]
    pub api_budget: backfill_worker::ApiBudget,
    /// Delay tiers of the broker topology, comma-separated (for example 1s,5s,30s,2m,10m,1h).
    #[arg(long, global = true, env = "BACKFILL_DELAY_TIERS")]
    pub delay_tiers: Option<DelayTiers>,
    /// Serve /metrics, /healthz and /readyz on HOST:PORT (long-running commands: worker,
    /// reconcile, sim, demo).
    #[arg(long, global = true, env = "METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}
