//! Where and how to reach a workspace, and how one request is retried in process.

use std::time::Duration;

use secrecy::SecretString;

/// How one request is retried in process (not to be confused with a partition's
/// redelivery through the broker, which the worker decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRetry {
    /// Tries in all, the first included.
    pub max_tries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RequestRetry {
    fn default() -> Self {
        Self {
            max_tries: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// The longest `Retry-After` honoured by default: a server asking for an hour (or a
/// garbled huge value) would otherwise pause every worker for that long. After this the
/// request is tried again and, if still throttled, paused again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// The longest `Retry-After` waited out inside one request's own retries; a longer one is
/// returned to the caller, who sends its message round the delay tiers instead of
/// holding a broker delivery.
pub const IN_REQUEST_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where and how to reach a workspace.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://<workspace>` (or the simulator's `http://127.0.0.1:PORT`).
    pub host: String,
    pub token: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RequestRetry,
    /// The longest `Retry-After` honoured (longer ones are cut to this).
    pub max_retry_after: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("token", &"***")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientConfig {
    pub fn new(host: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            token: SecretString::from(token.into()),
            timeout: Duration::from_secs(30),
            retry: RequestRetry::default(),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}
