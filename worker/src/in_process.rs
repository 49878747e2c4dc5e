//! Waits a worker makes itself rather than round the delay tiers, so that a message
//! acts when due and not a tier later: a message that arrives less than a tier early,
//! and a close look at a run due to end sooner than the shortest tier.

use std::time::Duration;

use crate::received::Received;

/// The longest gap a worker waits out itself, whatever the delay tiers.
const CLOSE_WAIT_LIMIT: Duration = Duration::from_secs(1);

/// The longest wait a worker makes in-process rather than through the delay tiers: the
/// shortest tier, at most [`CLOSE_WAIT_LIMIT`].
fn in_process_limit(m: &Received) -> Duration {
    m.publisher.shortest_delay().min(CLOSE_WAIT_LIMIT)
}

/// Whether a message that arrived `wait` early is waited for here (see `dispatch`): a
/// wait no tier would shorten.
pub(crate) fn waited_on_arrival(m: &Received, wait: Duration) -> bool {
    wait <= in_process_limit(m)
}

/// Whether a wait is shorter than any delay tier: made in the worker (a close look at a
/// run), not round the tiers. A wait as long as the shortest tier goes round it, so a
/// delivery is not held for a whole tier.
pub(crate) fn below_shortest_tier(m: &Received, wait: Duration) -> bool {
    wait < in_process_limit(m)
}
