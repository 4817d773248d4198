//! Batched counting of the cache's fresh hits on the embedding API's read path.
//!
//! [`super::Cache::get`] reads through the component's `get-uncounted`: a fresh hit costs one
//! plain `MGET` and is not counted by the component. Its count lands here, per namespace, and
//! a background task writes the sums with `record-hits` (one `HINCRBY` per namespace) at most
//! [`FLUSH_INTERVAL`] after the first hit of a batch. A flush that fails keeps its counts for
//! the next one, so Redis outages delay counts instead of dropping them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

/// How long the flusher gathers hits before writing them, unless configured.
pub(super) const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// First pause after a failed flush; doubles up to [`MAX_RETRY_DELAY`].
const MIN_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Longest pause between retries of a failing flush.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Hits not yet written, and the signal that wakes the flusher.
pub(super) struct PendingHits {
    counts: Mutex<HashMap<String, u64>>,
    /// Serialises flushes, so a caller that flushes knows every earlier hit is written once
    /// its own flush returns (no batch is still in flight in another task).
    turn: tokio::sync::Mutex<()>,
    signal: Arc<Signal>,
}

struct Signal {
    notify: Notify,
    closed: AtomicBool,
}

/// Where the flusher writes a batch: the cache, through a pooled instance.
pub(super) trait HitSink: Send + Sync + 'static {
    /// Adds `hits` to `ns`'s counters.
    fn record(&self, ns: &str, hits: u64) -> impl Future<Output = Result<(), String>> + Send;
    /// The batch of `self`.
    fn pending(&self) -> &PendingHits;
}

impl PendingHits {
    pub(super) fn new() -> Self {
        PendingHits {
            counts: Mutex::new(HashMap::new()),
            turn: tokio::sync::Mutex::new(()),
            signal: Arc::new(Signal {
                notify: Notify::new(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Counts one hit of `ns` and wakes the flusher.
    pub(super) fn add(&self, ns: &str) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            match counts.get_mut(ns) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(ns.to_string(), 1);
                }
            }
        }
        self.signal.notify.notify_one();
    }

    /// True when no hit waits to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Stops the flusher task (the owner flushes what is left itself).
    pub(super) fn close(&self) {
        self.signal.closed.store(true, Ordering::Release);
        self.signal.notify.notify_one();
    }

    fn give_back(&self, batch: impl IntoIterator<Item = (String, u64)>) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (ns, hits) in batch {
            *counts.entry(ns).or_default() += hits;
        }
    }
}

/// Writes every pending hit of `sink`. On a failure the unwritten counts are kept (a write
/// whose reply was lost may then be counted twice: counts are at-least-once).
pub(super) async fn flush<S: HitSink>(sink: &S) -> Result<(), String> {
    let pending = sink.pending();
    let _turn = pending.turn.lock().await;
    let batch = std::mem::take(&mut *pending.counts.lock().unwrap_or_else(|e| e.into_inner()));
    let mut batch = batch.into_iter();
    while let Some((ns, hits)) = batch.next() {
        if let Err(e) = sink.record(&ns, hits).await {
            pending.give_back(std::iter::once((ns, hits)).chain(batch));
            return Err(e);
        }
    }
    Ok(())
}

/// Spawns the flusher of `sink` on the current tokio runtime. It holds only a weak
/// reference, and stops when [`PendingHits::close`] is called or `sink` is gone.
pub(super) fn spawn_flusher<S: HitSink>(sink: &Arc<S>, interval: Duration) {
    let signal = sink.pending().signal.clone();
    let sink: Weak<S> = Arc::downgrade(sink);
    tokio::spawn(async move {
        let mut retry_delay = MIN_RETRY_DELAY;
        loop {
            signal.notify.notified().await;
            if signal.closed.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(interval).await;
            let Some(sink) = sink.upgrade() else { return };
            match flush(&*sink).await {
                Ok(()) => retry_delay = MIN_RETRY_DELAY,
                Err(e) => {
                    tracing::warn!(error = %e, "cache hit counts not written yet; retrying");
                    drop(sink);
                    tokio::time::sleep(retry_delay).await;
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                    signal.notify.notify_one();
                }
            }
        }
    });
}
