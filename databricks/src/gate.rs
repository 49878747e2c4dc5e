//! A hook through which every HTTP attempt passes, so that a caller can share one API
//! budget between many clients (the worker fleet does, through its ledger).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Decides when a request to an endpoint may go, and hears about throttling.
pub trait CallGate: Send + Sync + std::fmt::Debug {
    /// Resolves `Ok` when one request to `endpoint` (`jobs/runs/get`, ...) may be sent,
    /// after waiting at most a moment; `Err(wait)` at once when the endpoint is paused for
    /// longer (the workspace throttled the fleet), so that no caller holding a broker
    /// delivery waits it out.
    fn acquire<'a>(
        &'a self,
        endpoint: &'static str,
    ) -> Pin<Box<dyn Future<Output = Result<(), Duration>> + Send + 'a>>;

    /// The workspace answered 429 (or 503 with `Retry-After`) on `endpoint`.
    fn throttled(&self, endpoint: &'static str, retry_after: Option<Duration>);
}
