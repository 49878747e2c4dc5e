//! Turning global options into connections, with errors that name the setting.

use std::time::Duration;

use anyhow::Context;
use backfill_broker::{AmqpUrl, Broker, Topology};
use backfill_databricks::{ClientConfig, DatabricksClient};
use backfill_ledger::Ledger;
use backfill_operations::BrokerSource;

use backfill_worker::FleetBudget;

use crate::args::GlobalOpts;
use crate::exit::CliError;

/// The embedded ledger: a SQLite file in the working directory.
pub const DEFAULT_LEDGER_URL: &str = "sqlite://backfill.db";

impl GlobalOpts {
    pub fn amqp(&self) -> Result<AmqpUrl, CliError> {
        AmqpUrl::new(self.amqp_url.clone())
            .map_err(|e| CliError::usage(format!("--amqp-url / AMQP_URL: {e}")))
    }

    pub fn topology(&self) -> Result<Topology, CliError> {
        let topology = Topology::new(self.namespace.clone())
            .map_err(|e| CliError::usage(format!("--namespace / BACKFILL_NAMESPACE: {e}")))?;
        match &self.delay_tiers {
            None => Ok(topology),
            Some(tiers) => topology
                .with_delay_tiers(tiers.0.clone())
                .map_err(|e| CliError::usage(format!("--delay-tiers / BACKFILL_DELAY_TIERS: {e}"))),
        }
    }

    pub fn client(&self) -> Result<DatabricksClient, CliError> {
        let token = match &self.databricks_token {
            Some(token) => token.clone(),
            // Never send a made-up token to a real workspace.
            None if is_loopback(&self.databricks_host) => "simulator-token".to_owned(),
            None => {
                return Err(CliError::usage(format!(
                    "--databricks-token / DATABRICKS_TOKEN is required for {}",
                    self.databricks_host
                )));
            }
        };
        if self.max_retry_after_s == 0 {
            return Err(CliError::usage(
                "--max-retry-after-s / DATABRICKS_MAX_RETRY_AFTER_S must be at least 1",
            ));
        }
        let mut config = ClientConfig::new(self.databricks_host.clone(), token);
        config.max_retry_after = std::time::Duration::from_secs(self.max_retry_after_s);
        DatabricksClient::new(config)
            .map_err(|e| CliError::usage(format!("--databricks-host / --databricks-token: {e}")))
    }

    pub async fn ledger(&self) -> Result<Ledger, CliError> {
        let url = match &self.ledger_url {
            Some(url) => url.clone(),
            None => {
                // The embedded default: say where it is, so a worker started without the
                // fleet's LEDGER_URL is noticed at once.
                let here = std::env::current_dir().unwrap_or_default();
                eprintln!(
                    "note: no --ledger-url / LEDGER_URL given; using the SQLite ledger {}",
                    here.join("backfill.db").display()
                );
                DEFAULT_LEDGER_URL.to_owned()
            }
        };
        if !(url.starts_with("sqlite:") || url.starts_with("postgres")) {
            return Err(CliError::usage(
                "--ledger-url / LEDGER_URL must start with sqlite:// or postgres://",
            ));
        }
        Ok(Ledger::connect(&url)
            .await
            .context("cannot open the ledger (--ledger-url / LEDGER_URL)")?)
    }

    /// A Databricks client that takes its share of the fleet's API budget like a worker
    /// (and shares the throttling pauses), for as long as the returned membership lives.
    pub async fn fleet_client(
        &self,
        ledger: &Ledger,
        role: &str,
    ) -> Result<(DatabricksClient, FleetMembership), CliError> {
        let client = self.client()?;
        let id = format!("{role}-{}", std::process::id());
        let gate = FleetBudget::new(
            ledger.clone(),
            &id,
            self.api_budget.clone(),
            Duration::from_secs(1),
        );
        gate.set_max_pause(client.max_retry_after());
        let heartbeat = {
            let gate = gate.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = gate.refresh().await {
                        tracing::debug!(error = %e, "heartbeat failed; keeping the last known share");
                    }
                    tokio::time::sleep(gate.heartbeat_interval()).await;
                }
            })
        };
        let client = client.with_gate(gate.clone());
        Ok((client, FleetMembership { heartbeat }))
    }

    /// The broker and namespace the settings name.
    pub fn broker_source(&self) -> Result<BrokerSource, CliError> {
        Ok(BrokerSource {
            url: self.amqp()?,
            topology: self.topology()?,
        })
    }

    /// Connects to the broker, retrying for up to `patience`, with advice when it is absent.
    pub async fn broker(&self, name: &str, patience: Duration) -> Result<Broker, CliError> {
        Ok(self.broker_source()?.connect(name, patience).await?)
    }
}

/// Whether a Databricks host URL names this machine (a local simulator).
fn is_loopback(host_url: &str) -> bool {
    let rest = host_url.split_once("://").map_or(host_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A command's place in the fleet's API budget, for as long as it lives (its share
/// lapses three heartbeats after).
#[derive(Debug)]
pub struct FleetMembership {
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for FleetMembership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_is_loopback() {
        for local in [
            "http://127.0.0.1:8089",
            "http://localhost:8089/",
            "http://[::1]:8089",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "https://adb-1.azuredatabricks.net",
            "http://sim:8089",
            "https://127.0.0.1.example.com",
            "http://10.0.0.1:8089",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
