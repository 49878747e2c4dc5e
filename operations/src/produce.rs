//! Registering a backfill and publishing its partitions, resuming from the ledger after a
//! lost connection.

use std::time::Duration;

use backfill_contract::BackfillId;
use backfill_databricks::DatabricksClient;
use backfill_ledger::{Guards, Ledger, Registration};
use backfill_producer::{Order, ProduceError, ProduceRequest, publish_pending, register};

use crate::broker_source::BrokerSource;
use crate::error::OperationError;

/// How many times publishing reconnects after losing the broker before giving up.
const RECONNECTS: u32 = 5;
/// How long each connection to the broker is retried.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// Registers the backfill (its manifest, contract and partitions) and then its guards,
/// when given; returns the manifest id and what the registration changed.
pub async fn register_backfill(
    ledger: &Ledger,
    client: &DatabricksClient,
    request: &ProduceRequest,
    guards: Option<&Guards>,
) -> Result<(String, Registration), OperationError> {
    let registered = register(ledger, client, request).await?;
    if let Some(guards) = guards {
        ledger
            .set_guards(&request.backfill_id, guards, &request.created_by)
            .await?;
    }
    Ok(registered)
}

/// Progress of publishing: `Published` as partitions are confirmed, `Interrupted` when a
/// connection is lost midway (publishing then resumes on a new one, from the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishProgress {
    Published { done: usize, total: usize },
    Interrupted,
}

/// Publishes every partition of the backfill not yet confirmed, in `order`. Publishing
/// resumes from the ledger (partitions never confirmed), so a lost connection is survived
/// by reconnecting and publishing the rest, up to five times. Returns how many were
/// published.
pub async fn publish_resuming(
    ledger: &Ledger,
    source: &BrokerSource,
    backfill_id: &BackfillId,
    order: Order,
    mut progress: impl FnMut(PublishProgress),
) -> Result<usize, OperationError> {
    let mut published = 0;
    let mut reconnects = 0;
    loop {
        let broker = source
            .connect("backfill producer", CONNECT_PATIENCE)
            .await?;
        let result = publish_pending(
            ledger,
            &broker.publisher(),
            backfill_id,
            order,
            |done, total| progress(PublishProgress::Published { done, total }),
        )
        .await;
        if result.is_err() {
            progress(PublishProgress::Interrupted);
        }
        broker.close().await;
        match result {
            Ok(n) => {
                published += n;
                return Ok(published);
            }
            Err(ProduceError::Broker(e)) if e.is_connection_lost() && reconnects < RECONNECTS => {
                reconnects += 1;
                tracing::warn!(error = %e, "lost the broker while publishing; reconnecting to publish the rest");
            }
            Err(e) => return Err(OperationError::Publish(e)),
        }
    }
}
