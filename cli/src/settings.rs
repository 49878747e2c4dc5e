//! Turning global options into connections, with errors that name the setting.

use std::time::Duration;

use anyhow::Context;
use backfill_broker::{AmqpUrl, Broker, Topology, parse_duration};
use backfill_databricks::{ClientConfig, DatabricksClient};
use backfill_ledger::Ledger;

use crate::CliError;
use crate::args::GlobalOpts;

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
            Some(text) => {
                let tiers = text
                    .split(',')
                    .map(parse_duration)
                    .collect::<Result<Vec<Duration>, _>>()
                    .map_err(|e| {
                        CliError::usage(format!("--delay-tiers / BACKFILL_DELAY_TIERS: {e}"))
                    })?;
                topology.with_delay_tiers(tiers).map_err(|e| {
                    CliError::usage(format!("--delay-tiers / BACKFILL_DELAY_TIERS: {e}"))
                })
            }
        }
    }

    pub fn client(&self) -> Result<DatabricksClient, CliError> {
        DatabricksClient::new(ClientConfig::new(
            self.databricks_host.clone(),
            self.databricks_token.clone(),
        ))
        .map_err(|e| CliError::usage(format!("--databricks-host / --databricks-token: {e}")))
    }

    pub async fn ledger(&self) -> Result<Ledger, CliError> {
        if !(self.ledger_url.starts_with("sqlite:") || self.ledger_url.starts_with("postgres")) {
            return Err(CliError::usage(
                "--ledger-url / LEDGER_URL must start with sqlite:// or postgres://",
            ));
        }
        Ok(Ledger::connect(&self.ledger_url)
            .await
            .context("cannot open the ledger (--ledger-url / LEDGER_URL)")?)
    }

    /// Connects to the broker, retrying for up to `patience`, with advice when it is absent.
    pub async fn broker(&self, name: &str, patience: Duration) -> Result<Broker, CliError> {
        let url = self.amqp()?;
        let topology = self.topology()?;
        Broker::connect(&url, &topology, name, patience)
            .await
            .with_context(|| {
                format!(
                    "cannot reach RabbitMQ at {} (--amqp-url / AMQP_URL); is it running? \
                     Locally: `rabbitmq-server -detached`",
                    url.redacted()
                )
            })
            .map_err(CliError::Failed)
    }
}
