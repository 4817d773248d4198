//! The cache component's typed API: `redwasm:cache/cache@0.2.0` called in-process.
//!
//! Reads go through `get-uncounted`: a fresh hit is one plain `MGET` in the component and
//! its count is batched here (`hits`), so the read path runs no Redis script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::hits::{self, HitSink, PendingHits};
use crate::engine::HostState;
use crate::engine::pool::{Exports, InstancePool, TypedExports};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/cache-0.2.0.wit",
        world: "cache-component",
        exports: { default: async },
    });
}

use bindings::CacheComponentPre;
use bindings::exports::redwasm::cache::cache as wit;

pub use wit::{CacheStats as Stats, Entry, LookupResult};

/// How long a `get_or_compute` caller that lost the lease race waits for the winner's value.
const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(5);

impl TypedExports for bindings::CacheComponent {
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        CacheComponentPre::new(instance_pre)
    }
}

impl Exports for bindings::CacheComponent {
    type Pre = CacheComponentPre<HostState>;

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
        pre.instantiate_async(store)
    }
}

/// Errors of the embedding API.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The component rejected the call (bad argument, too large, precondition, Redis down).
    #[error("cache: {0}")]
    Cache(CacheError),
    /// The component trapped or the host failed; the instance was discarded.
    #[error("component failure: {0}")]
    Component(String),
    /// `get_or_compute`'s compute function failed.
    #[error("compute failed: {0}")]
    Compute(String),
}

/// A guest-visible cache error (mirrors the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// An argument is invalid.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The value exceeds the configured limit (bytes).
    #[error("value larger than {0} bytes")]
    TooLarge(u64),
    /// A stale lease or revalidate token.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// Redis is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<wit::Error> for CacheError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Invalid(s) => CacheError::Invalid(s),
            wit::Error::TooLarge(n) => CacheError::TooLarge(n),
            wit::Error::PreconditionFailed(s) => CacheError::PreconditionFailed(s),
            wit::Error::Unavailable(s) => CacheError::Unavailable(s),
        }
    }
}

/// How to store a value (all optional; defaults are the component's).
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Time to live.
    pub ttl: Option<Duration>,
    /// Stale-while-revalidate grace after the TTL.
    pub swr: Option<Duration>,
    /// TTL jitter in percent (0-50).
    pub jitter_pct: Option<u8>,
    /// Tags for tag invalidation.
    pub tags: Vec<String>,
    /// Content type stored with the value.
    pub content_type: Option<String>,
}

impl SetOptions {
    /// Options with only a TTL in seconds.
    pub fn ttl_s(seconds: u64) -> Self {
        SetOptions {
            ttl: Some(Duration::from_secs(seconds)),
            ..SetOptions::default()
        }
    }

    fn to_wit(&self, if_match: Option<String>) -> wit::SetOptions {
        wit::SetOptions {
            ttl_ms: self.ttl.map(|d| d.as_millis() as u64),
            swr_ms: self.swr.map(|d| d.as_millis() as u64),
            jitter_pct: self.jitter_pct,
            tags: self.tags.clone(),
            content_type: self.content_type.clone(),
            if_match,
        }
    }
}

/// `(namespace, key)` of an in-process computation.
type FlightKey = (String, String);

/// The cache component, callable from Rust.
///
/// Fresh hits read by [`Cache::get`] reach the namespace's `hits` counter in batches, within
/// about 0.1 s ([`super::Redwasm::with_hit_flush_interval`]); [`Cache::stats`] writes them first, so it always includes this handle's own
/// reads. Dropping the handle writes what is left in a background task.
pub struct Cache {
    shared: Arc<Shared>,
}

struct Shared {
    instances: InstancePool<bindings::CacheComponent>,
    /// One in-process computation per key at a time; cross-process single-flight is the
    /// component's lease.
    local_flights: Mutex<HashMap<FlightKey, Arc<tokio::sync::Mutex<()>>>>,
    hits: PendingHits,
}

impl Shared {
    /// Runs `f` on a pooled instance, separating guest errors from traps.
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(
            &bindings::CacheComponent,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::Error>>,
    ) -> Result<R, EmbedError> {
        match self.instances.call(f).await {
            Ok(inner) => inner.map_err(|e| EmbedError::Cache(e.into())),
            Err(trap) => Err(EmbedError::Component(format!("{trap:?}"))),
        }
    }
}

impl HitSink for Shared {
    async fn record(&self, ns: &str, hits: u64) -> Result<(), String> {
        self.call(async |b, s| b.redwasm_cache_cache().call_record_hits(s, ns, hits).await)
            .await
            .map_err(|e| e.to_string())
    }

    fn pending(&self) -> &PendingHits {
        &self.hits
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.shared.hits.close();
        if self.shared.hits.is_empty() {
            return;
        }
        // Without a runtime (dropped after it shut down) the last batch cannot be written.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move {
                if let Err(e) = hits::flush(&*shared).await {
                    tracing::warn!(error = %e, "cache hit counts lost at shutdown");
                }
            });
        }
    }
}

impl Cache {
    /// Must run inside a tokio runtime: it spawns the hit-count flusher.
    pub(super) fn new(
        instances: InstancePool<bindings::CacheComponent>,
        hit_flush_interval: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            instances,
            local_flights: Mutex::new(HashMap::new()),
            hits: PendingHits::new(),
        });
        hits::spawn_flusher(&shared, hit_flush_interval);
        Cache { shared }
    }

    /// Reads a value (`None` on a miss). A fresh hit is one `MGET`, counted in batches.
    pub async fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>, EmbedError> {
        let read = self
            .shared
            .call(async |b, s| b.redwasm_cache_cache().call_get_uncounted(s, ns, key).await)
            .await?;
        if read.uncounted_hit {
            self.shared.hits.add(ns);
        }
        Ok(read.entry)
    }

    /// Writes the fresh hits counted so far by this handle to Redis (normally done in the
    /// background within about 0.1 s).
    pub async fn flush_stats(&self) -> Result<(), EmbedError> {
        hits::flush(&*self.shared)
            .await
            .map_err(EmbedError::Component)
    }

    /// Reads with single-flight on a miss (see the WIT `lookup`).
    pub async fn lookup(
        &self,
        ns: &str,
        key: &str,
        wait: Duration,
    ) -> Result<LookupResult, EmbedError> {
        let wait_ms = wait.as_millis() as u64;
        self.shared
            .call(async |b, s| {
                b.redwasm_cache_cache()
                    .call_get_with_lease(s, ns, key, wait_ms)
                    .await
            })
            .await
    }

    /// Stores a value.
    pub async fn set(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        options: &SetOptions,
    ) -> Result<(), EmbedError> {
        self.set_inner(ns, key, value, options.to_wit(None)).await
    }

    async fn set_inner(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        options: wit::SetOptions,
    ) -> Result<(), EmbedError> {
        self.shared
            .call(async |b, s| {
                b.redwasm_cache_cache()
                    .call_set(s, ns, key, value, &options)
                    .await
            })
            .await
    }

    /// Removes a value; true when it existed.
    pub async fn delete(&self, ns: &str, key: &str) -> Result<bool, EmbedError> {
        self.shared
            .call(async |b, s| b.redwasm_cache_cache().call_delete(s, ns, key).await)
            .await
    }

    /// Removes every value tagged with any of `tags`; returns how many.
    pub async fn invalidate_tags(&self, ns: &str, tags: &[String]) -> Result<u64, EmbedError> {
        self.shared
            .call(async |b, s| {
                b.redwasm_cache_cache()
                    .call_invalidate_tags(s, ns, tags)
                    .await
            })
            .await
    }

    /// Removes every value of `ns` in O(1); returns how many were live.
    pub async fn invalidate_all(&self, ns: &str) -> Result<u64, EmbedError> {
        self.shared
            .call(async |b, s| b.redwasm_cache_cache().call_invalidate_all(s, ns).await)
            .await
    }

    /// Hit/miss counters and live key count of `ns`, including every hit this handle has
    /// read so far (its pending counts are written first).
    pub async fn stats(&self, ns: &str) -> Result<Stats, EmbedError> {
        self.flush_stats().await?;
        self.shared
            .call(async |b, s| b.redwasm_cache_cache().call_stats(s, ns).await)
            .await
    }

    /// Returns the cached value, or computes, stores and returns it — with single-flight:
    /// concurrent callers in this process share one computation, and across processes the
    /// component's lease lets exactly one caller compute while the others wait for its value.
    /// A stale value (within its grace period) is returned at once.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        ns: &str,
        key: &str,
        options: &SetOptions,
        compute: F,
    ) -> Result<Vec<u8>, EmbedError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: std::fmt::Display,
    {
        if let Some(entry) = self.get(ns, key).await? {
            return Ok(entry.value);
        }
        let flight = {
            let mut flights = self
                .shared
                .local_flights
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            flights
                .entry((ns.to_string(), key.to_string()))
                .or_default()
                .clone()
        };
        let guard = flight.lock().await;
        let result = self.compute_once(ns, key, options, compute).await;
        drop(guard);
        {
            let mut flights = self
                .shared
                .local_flights
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let k = (ns.to_string(), key.to_string());
            // Only the map's own reference and ours remain: nobody else is waiting.
            if flights.get(&k).is_some_and(|f| Arc::strong_count(f) <= 2) {
                flights.remove(&k);
            }
        }
        result
    }

    async fn compute_once<F, Fut, E>(
        &self,
        ns: &str,
        key: &str,
        options: &SetOptions,
        compute: F,
    ) -> Result<Vec<u8>, EmbedError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: std::fmt::Display,
    {
        let lease = match self.lookup(ns, key, DEFAULT_LEASE_WAIT).await? {
            LookupResult::Hit(entry) => return Ok(entry.value),
            LookupResult::Lease(token) => Some(token),
            // The leaseholder elsewhere did not deliver in time: compute ourselves.
            LookupResult::Miss => None,
        };
        let value = compute()
            .await
            .map_err(|e| EmbedError::Compute(e.to_string()))?;
        match self.set_inner(ns, key, &value, options.to_wit(lease)).await {
            // Someone else filled it after our lease expired; our value is still correct
            // to return to our caller.
            Ok(()) | Err(EmbedError::Cache(CacheError::PreconditionFailed(_))) => Ok(value),
            Err(e) => Err(e),
        }
    }
}
