//! The one bound on every broker operation that lapin may otherwise await for ever on a
//! dead connection (acks, nacks, cancels, publishes, declares).

use std::time::Duration;

use crate::BrokerError;

/// `fut`, or a timeout error naming `op` after ten seconds.
pub(crate) async fn with_timeout<T>(
    op: &'static str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, BrokerError> {
    const LIMIT: Duration = Duration::from_secs(10);
    tokio::time::timeout(LIMIT, fut)
        .await
        .map_err(|_| BrokerError::Timeout {
            op,
            seconds: LIMIT.as_secs(),
        })
}
