//! Per-endpoint token buckets: the workspace's rate limits.

use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

/// One bucket per limited endpoint, holding at most one second's worth of requests.
#[derive(Debug, Default)]
pub struct Buckets(BTreeMap<String, Bucket>);

impl Buckets {
    pub fn new(limits: &BTreeMap<String, f64>) -> Self {
        Self(
            limits
                .iter()
                .filter(|(_, rate)| **rate > 0.0)
                .map(|(endpoint, rate)| {
                    let bucket = Bucket {
                        rate: *rate,
                        tokens: rate.max(1.0),
                        last: Instant::now(),
                    };
                    (endpoint.clone(), bucket)
                })
                .collect(),
        )
    }

    /// Takes a token for `endpoint`; on refusal, the whole seconds until one is available.
    pub fn take(&mut self, endpoint: &str) -> Result<(), u64> {
        let Some(b) = self.0.get_mut(endpoint) else {
            return Ok(());
        };
        let now = Instant::now();
        let capacity = b.rate.max(1.0);
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - b.tokens) / b.rate).ceil() as u64).max(1))
        }
    }
}
