//! The embedding API: another Rust program loads redwasm's components in-process and calls
//! their typed exports, with the same Redis capability (shared connection, sandbox) the HTTP
//! trigger gives them. The data is the same as over HTTP: a value `set` here is served by
//! `GET /v1/cache/{ns}/{key}` of a host using the same Redis and component id.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use redwasm::embed::{Redwasm, SetOptions};
//!
//! let redwasm = Redwasm::connect("redis://127.0.0.1:6379").await?;
//! let cache = redwasm.cache().await?;
//! cache.set("users", "42", b"{\"name\":\"Ada\"}", &SetOptions::ttl_s(60)).await?;
//! let user = cache
//!     .get_or_compute("users", "43", &SetOptions::ttl_s(60), || async {
//!         Ok::<_, std::io::Error>(b"{\"name\":\"Grace\"}".to_vec())
//!     })
//!     .await?;
//! assert_eq!(user, b"{\"name\":\"Grace\"}");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Store;

use crate::engine::{ComponentSettings, ComponentSpec, HostState, LoadedComponent, Runtime};
use crate::metrics::Metrics;
use crate::redis::{RedisPool, RedisPoolConfig};
use crate::variables::VariablesCtx;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/cache.wit",
        world: "cache-component",
        exports: { default: async },
    });
}

use bindings::CacheComponentPre;
use bindings::exports::redwasm::cache::cache as wit;

pub use wit::{CacheStats as Stats, Entry, LookupResult};

/// How long a `get_or_compute` caller that lost the lease race waits for the winner's value.
const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(5);
/// Calls one pooled instance serves before it is replaced (bounds guest heap growth).
const MAX_CALLS_PER_INSTANCE: usize = 10_000;

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

/// A redwasm runtime embedded in the calling program.
pub struct Redwasm {
    runtime: Arc<Runtime>,
    redis_url: String,
    components_dir: PathBuf,
}

impl Redwasm {
    /// Connects to Redis at `redis_url` (nothing is sent until the first call) and prepares
    /// the engine. Components load from the directory the build wrote them to.
    pub async fn connect(redis_url: &str) -> anyhow::Result<Self> {
        let pool = RedisPool::new(RedisPoolConfig::default());
        let runtime = Arc::new(Runtime::new(pool, Arc::new(Metrics::default()))?);
        Ok(Redwasm {
            runtime,
            redis_url: redis_url.to_string(),
            components_dir: PathBuf::from(env!("REDWASM_COMPONENTS_DIR")),
        })
    }

    /// Loads components from `dir` instead of the build's output directory.
    pub fn with_components_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.components_dir = dir.into();
        self
    }

    /// Loads the cache component under the id `cache` (its Redis key prefix, shared with a
    /// host serving the default manifest).
    pub async fn cache(&self) -> anyhow::Result<Cache> {
        self.cache_with_id("cache").await
    }

    /// Loads the cache component under `id` (a separate key namespace per id).
    pub async fn cache_with_id(&self, id: &str) -> anyhow::Result<Cache> {
        let mut values = HashMap::new();
        values.insert("redis_address".to_string(), self.redis_url.clone());
        let spec = ComponentSpec {
            id: id.to_string(),
            source: self.components_dir.join("redwasm_cache.wasm"),
            allowed_outbound_hosts: vec![self.redis_url.clone()],
            variables: VariablesCtx::from_values(values),
            settings: ComponentSettings::default(),
        };
        let runtime = self.runtime.clone();
        let component = tokio::task::spawn_blocking(move || runtime.load(spec)).await??;
        let pre = CacheComponentPre::new(component.instance_pre.clone())
            .map_err(|e| anyhow::anyhow!("the component does not export redwasm:cache: {e:?}"))?;
        Ok(Cache {
            runtime: self.runtime.clone(),
            component,
            pre,
            idle: Mutex::new(Vec::new()),
            local_flights: Mutex::new(HashMap::new()),
        })
    }
}

/// `(namespace, key)` of an in-process computation.
type FlightKey = (String, String);

struct PooledInstance {
    store: Store<HostState>,
    bindings: bindings::CacheComponent,
    calls: usize,
}

/// The cache component, callable from Rust.
pub struct Cache {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    pre: CacheComponentPre<HostState>,
    idle: Mutex<Vec<PooledInstance>>,
    /// One in-process computation per key at a time; cross-process single-flight is the
    /// component's lease.
    local_flights: Mutex<HashMap<FlightKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cache {
    async fn instance(&self) -> Result<PooledInstance, EmbedError> {
        if let Some(instance) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(instance);
        }
        let mut store = self.runtime.new_store(&self.component);
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| EmbedError::Component(format!("{e:?}")))?;
        Ok(PooledInstance {
            store,
            bindings,
            calls: 0,
        })
    }

    fn release(&self, mut instance: PooledInstance) {
        instance.calls += 1;
        if instance.calls < MAX_CALLS_PER_INSTANCE {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(instance);
        }
    }

    /// Runs `f` on a pooled instance; a trapped instance is dropped, never reused.
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(
            &bindings::CacheComponent,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::Error>>,
    ) -> Result<R, EmbedError> {
        let mut instance = self.instance().await?;
        let result = f(&instance.bindings, &mut instance.store).await;
        match result {
            Ok(inner) => {
                self.release(instance);
                inner.map_err(|e| EmbedError::Cache(e.into()))
            }
            Err(trap) => {
                self.runtime.metrics().record_trap(&self.component.spec.id);
                Err(EmbedError::Component(format!("{trap:?}")))
            }
        }
    }

    /// Reads a value (`None` on a miss).
    pub async fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>, EmbedError> {
        self.call(async |b, s| b.redwasm_cache_cache().call_get(s, ns, key).await)
            .await
    }

    /// Reads with single-flight on a miss (see the WIT `lookup`).
    pub async fn lookup(
        &self,
        ns: &str,
        key: &str,
        wait: Duration,
    ) -> Result<LookupResult, EmbedError> {
        let wait_ms = wait.as_millis() as u64;
        self.call(async |b, s| {
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
        self.call(async |b, s| {
            b.redwasm_cache_cache()
                .call_set(s, ns, key, value, &options)
                .await
        })
        .await
    }

    /// Removes a value; true when it existed.
    pub async fn delete(&self, ns: &str, key: &str) -> Result<bool, EmbedError> {
        self.call(async |b, s| b.redwasm_cache_cache().call_delete(s, ns, key).await)
            .await
    }

    /// Removes every value tagged with any of `tags`; returns how many.
    pub async fn invalidate_tags(&self, ns: &str, tags: &[String]) -> Result<u64, EmbedError> {
        self.call(async |b, s| {
            b.redwasm_cache_cache()
                .call_invalidate_tags(s, ns, tags)
                .await
        })
        .await
    }

    /// Removes every value of `ns` in O(1); returns how many were live.
    pub async fn invalidate_all(&self, ns: &str) -> Result<u64, EmbedError> {
        self.call(async |b, s| b.redwasm_cache_cache().call_invalidate_all(s, ns).await)
            .await
    }

    /// Hit/miss counters and live key count of `ns`.
    pub async fn stats(&self, ns: &str) -> Result<Stats, EmbedError> {
        self.call(async |b, s| b.redwasm_cache_cache().call_stats(s, ns).await)
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
            let mut flights = self.local_flights.lock().unwrap_or_else(|e| e.into_inner());
            flights
                .entry((ns.to_string(), key.to_string()))
                .or_default()
                .clone()
        };
        let guard = flight.lock().await;
        let result = self.compute_once(ns, key, options, compute).await;
        drop(guard);
        {
            let mut flights = self.local_flights.lock().unwrap_or_else(|e| e.into_inner());
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
