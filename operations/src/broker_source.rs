//! Which broker and namespace an operation talks to.

use std::time::Duration;

use backfill_broker::{AmqpUrl, Broker, Topology};

use crate::error::OperationError;

/// A broker (one node or a cluster's) and the namespace's topology on it.
#[derive(Debug, Clone)]
pub struct BrokerSource {
    pub url: AmqpUrl,
    pub topology: Topology,
}

impl BrokerSource {
    /// Connects, retrying for up to `patience`; [`OperationError::BrokerUnreachable`]
    /// when the broker cannot be reached.
    pub async fn connect(&self, name: &str, patience: Duration) -> Result<Broker, OperationError> {
        Broker::connect(&self.url, &self.topology, name, patience)
            .await
            .map_err(|source| OperationError::BrokerUnreachable {
                url: self.url.redacted(),
                source,
            })
    }
}
