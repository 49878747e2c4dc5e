//! A small map whose entries stay fresh for a fixed time after they were read: what a
//! worker remembers of the ledger and of Databricks between messages, which it can lose
//! at any time.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Values by key, each fresh for `fresh_for` after it was stored. Shared by a worker's
/// tasks; reads happen outside the lock, so two tasks may read the same key at once.
pub(crate) struct Expiring<K, V> {
    fresh_for: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> fmt::Debug for Expiring<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expiring")
            .field("fresh_for", &self.fresh_for)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Expiring<K, V> {
    pub(crate) fn new(fresh_for: Duration) -> Self {
        Self {
            fresh_for,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Entries that never go stale: values that never change once written.
    pub(crate) fn forever() -> Self {
        Self::new(Duration::MAX)
    }

    /// The value stored for `key` less than `fresh_for` ago.
    pub(crate) fn fresh(&self, key: &K) -> Option<V> {
        self.fresh_at(key, Instant::now())
    }

    /// The value stored last for `key`, however old.
    pub(crate) fn last(&self, key: &K) -> Option<V> {
        self.lock().get(key).map(|(_, v)| v.clone())
    }

    /// Stores `value` for `key`, fresh from now.
    pub(crate) fn put(&self, key: K, value: V) {
        self.put_at(key, value, Instant::now());
    }

    /// Makes `key`'s value stale (it is read again next time), keeping it as the last
    /// known.
    pub(crate) fn stale(&self, key: &K) {
        let mut entries = self.lock();
        match Instant::now().checked_sub(self.fresh_for) {
            Some(long_ago) => {
                if let Some(entry) = entries.get_mut(key) {
                    entry.0 = long_ago;
                }
            }
            None => {
                entries.remove(key);
            }
        }
    }

    /// The fresh value, or else what `read` answers, stored. A failed read stores
    /// nothing and is returned.
    pub(crate) async fn get_or_read<E>(
        &self,
        key: &K,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(v) = self.fresh(key) {
            return Ok(v);
        }
        let v = read.await?;
        self.put(key.clone(), v.clone());
        Ok(v)
    }

    /// The fresh value, or else what `read` answers; when the read fails, `failed` is
    /// told why and the last value known (however old, or the default) stands in. Either
    /// answer is stored as fresh, so a failing source is asked again only after
    /// `fresh_for`.
    pub(crate) async fn get_or_read_or_last<E>(
        &self,
        key: &K,
        read: impl Future<Output = Result<V, E>>,
        failed: impl FnOnce(E),
    ) -> V
    where
        V: Default,
    {
        if let Some(v) = self.fresh(key) {
            return v;
        }
        let v = match read.await {
            Ok(v) => v,
            Err(e) => {
                failed(e);
                self.last(key).unwrap_or_default()
            }
        };
        self.put(key.clone(), v.clone());
        v
    }

    fn fresh_at(&self, key: &K, now: Instant) -> Option<V> {
        self.lock()
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.fresh_for)
            .map(|(_, v)| v.clone())
    }

    fn put_at(&self, key: K, value: V, at: Instant) {
        self.lock().insert(key, (at, value));
    }

    /// The map; a task that panicked while holding it left nothing half-written.
    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
