//! The embedding API: another Rust program loads redwasm's components in-process and calls
//! their typed exports, with the same Redis capability (shared connection, sandbox) the HTTP
//! trigger gives them. The data is the same as over HTTP: a value `set` here is served by
//! `GET /v1/cache/{ns}/{key}` of a host using the same Redis and component id.
//!
//! # Layout
//! - [`Redwasm`]: the engine and Redis pool; loads components.
//! - `hits`: the cache's fresh-hit counts, batched and written in the background.
//! - [`cache`]: the cache component's typed API ([`Cache`]).
//! - [`ratelimit`]: the rate-limit component's typed API ([`RateLimiter`]).
//! - [`queue`]: the queue component's typed API ([`Queue`]), worker components
//!   ([`WorkerComponent`]) and [`Redwasm::run_worker`] (the queue-poll trigger's loop, with
//!   a component or a Rust closure as the handler).
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

pub mod cache;
mod hits;
pub mod queue;
pub mod ratelimit;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{ComponentSettings, ComponentSpec, LoadedComponent, Runtime};
use crate::metrics::Metrics;
use crate::redis::{RedisPool, RedisPoolConfig};
use crate::variables::VariablesCtx;

pub(crate) use crate::engine::pool::InstancePool;
pub use crate::trigger::queue::{
    AttemptOutcome, FnHandler, JobAttempt, JobHandler, WorkerOptions, WorkerReport,
};
pub use cache::{Cache, CacheError, EmbedError, Entry, LookupResult, SetOptions, Stats};
pub use queue::{ClaimedJob, Enqueued, Queue, QueueError, WorkerComponent};
pub use ratelimit::RateLimiter;

/// A redwasm runtime embedded in the calling program.
pub struct Redwasm {
    runtime: Arc<Runtime>,
    redis_url: String,
    components_dir: PathBuf,
    hit_flush_interval: Duration,
    call_timeout: Duration,
    allowed_outbound_hosts: Vec<String>,
}

impl Redwasm {
    /// Prepares the engine and a Redis pool for `redis_url` (connections open on first use).
    /// Components load from the directory the build wrote them to.
    pub async fn connect(redis_url: &str) -> anyhow::Result<Self> {
        let pool = RedisPool::new(RedisPoolConfig::default());
        pool.set_host_redis(redis_url)?;
        let runtime = Arc::new(Runtime::new(pool, Arc::new(Metrics::default()))?);
        Ok(Redwasm {
            runtime,
            redis_url: redis_url.to_string(),
            components_dir: PathBuf::from(env!("REDWASM_COMPONENTS_DIR")),
            hit_flush_interval: hits::DEFAULT_FLUSH_INTERVAL,
            call_timeout: ComponentSettings::default().request_timeout,
            allowed_outbound_hosts: Vec::new(),
        })
    }

    /// Loads components from `dir` instead of the build's output directory.
    pub fn with_components_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.components_dir = dir.into();
        self
    }

    /// How long a [`Cache`] gathers fresh-hit counts before writing them to Redis (default
    /// 100 ms). Longer batches more; [`Cache::stats`] and [`Cache::flush_stats`] write at once
    /// whatever the interval.
    pub fn with_hit_flush_interval(mut self, interval: Duration) -> Self {
        self.hit_flush_interval = interval;
        self
    }

    /// Lets components loaded after this reach `hosts` (Spin's `allowed_outbound_hosts`
    /// syntax, e.g. `https://api.example.com`, `http://127.0.0.1:*`) with outbound HTTP, on
    /// top of the Redis they were given. Default: no HTTP host.
    pub fn with_allowed_outbound_hosts(
        mut self,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_outbound_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// How long one call into a component may run (default 30 s, as an HTTP request). A
    /// call past it fails, and its instance is dropped, so a guest in a loop cannot hang
    /// the caller.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The process metrics (instances created, traps).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.runtime.metrics()
    }

    /// Loads the cache component under the id `cache` (its Redis key prefix, shared with a
    /// host serving the default manifest).
    pub async fn cache(&self) -> anyhow::Result<Cache> {
        self.cache_with_id("cache").await
    }

    /// Loads the cache component under `id` (a separate key namespace per id).
    pub async fn cache_with_id(&self, id: &str) -> anyhow::Result<Cache> {
        let component = self.load(id, "redwasm_cache.wasm", HashMap::new()).await?;
        Ok(Cache::new(
            InstancePool::new(self.runtime.clone(), component)?,
            self.hit_flush_interval,
        ))
    }

    /// Loads the rate-limit component under the id `ratelimit` (its Redis key prefix, shared
    /// with a host serving the default manifest), without named policies or bypass keys.
    pub async fn ratelimit(&self) -> anyhow::Result<RateLimiter> {
        self.ratelimit_with("ratelimit", HashMap::new()).await
    }

    /// Loads the rate-limit component under `id` with component variables, e.g.
    /// `ratelimit_policies` (a JSON array of policies) and `ratelimit_bypass_keys`.
    pub async fn ratelimit_with(
        &self,
        id: &str,
        variables: HashMap<String, String>,
    ) -> anyhow::Result<RateLimiter> {
        let component = self.load(id, "redwasm_ratelimit.wasm", variables).await?;
        Ok(RateLimiter::new(InstancePool::new(
            self.runtime.clone(),
            component,
        )?))
    }

    /// Loads the queue component under the id `queue` (its Redis key prefix, shared with a
    /// host serving the default manifest): enqueue, status, cancel, stats, and the lease API
    /// workers use.
    pub async fn queue(&self) -> anyhow::Result<Queue> {
        self.queue_with_id("queue").await
    }

    /// Loads the queue component under `id` (a separate key namespace per id).
    pub async fn queue_with_id(&self, id: &str) -> anyhow::Result<Queue> {
        let component = self.load(id, "redwasm_queue.wasm", HashMap::new()).await?;
        Ok(Queue::new(InstancePool::new(
            self.runtime.clone(),
            component,
        )?))
    }

    /// Loads a worker component (one exporting `redwasm:queue/handler`) from `source` under
    /// `id`, with `variables`; its instances trap at their memory limit, so a job that runs out
    /// of memory fails with `memory: ...`.
    pub async fn worker_component(
        &self,
        id: &str,
        source: impl Into<PathBuf>,
        variables: HashMap<String, String>,
    ) -> anyhow::Result<WorkerComponent> {
        let component = self
            .load_from(id, source.into(), variables, |s| {
                s.trap_on_memory_limit = true
            })
            .await?;
        Ok(WorkerComponent::new(InstancePool::new(
            self.runtime.clone(),
            component,
        )?))
    }

    /// Runs a queue worker loop in this process (the same loop as the host's queue-poll
    /// trigger: leases renewed while a job runs, hard timeouts, cancel, drain) until
    /// `shutdown` resolves. `handler` is a [`WorkerComponent`] or a closure wrapped in
    /// [`FnHandler`].
    pub async fn run_worker<H: JobHandler>(
        &self,
        queue: Arc<Queue>,
        handler: Arc<H>,
        options: WorkerOptions,
        shutdown: impl Future<Output = ()>,
    ) -> WorkerReport {
        crate::trigger::queue::run(
            queue,
            handler,
            self.runtime.redis().clone(),
            options,
            shutdown,
        )
        .await
    }

    /// Compiles `file` (in the components dir) as component `id`, with `redis_address` set to
    /// this runtime's Redis and `variables` added.
    pub(crate) async fn load(
        &self,
        id: &str,
        file: &str,
        variables: HashMap<String, String>,
    ) -> anyhow::Result<Arc<LoadedComponent>> {
        self.load_from(id, self.components_dir.join(file), variables, |_| {})
            .await
    }

    async fn load_from(
        &self,
        id: &str,
        source: PathBuf,
        mut variables: HashMap<String, String>,
        tweak: impl FnOnce(&mut ComponentSettings),
    ) -> anyhow::Result<Arc<LoadedComponent>> {
        variables.insert("redis_address".to_string(), self.redis_url.clone());
        let mut settings = ComponentSettings {
            request_timeout: self.call_timeout,
            ..ComponentSettings::default()
        };
        tweak(&mut settings);
        let spec = ComponentSpec {
            id: id.to_string(),
            source,
            allowed_outbound_hosts: std::iter::once(self.redis_url.clone())
                .chain(self.allowed_outbound_hosts.iter().cloned())
                .collect(),
            variables: VariablesCtx::from_values(variables),
            environment: Vec::new(),
            mounts: Vec::new(),
            // An embedded component may use the `default` store, on the embedding's Redis.
            key_value_stores: vec!["default".to_string()],
            key_value_addresses: Default::default(),
            settings,
        };
        let runtime = self.runtime.clone();
        // Compilation is CPU-bound: keep it off the async workers.
        let component = tokio::task::spawn_blocking(move || runtime.load(spec)).await??;
        if let Some(prefix) = component.redis_prefix() {
            self.runtime
                .redis()
                .prepare_sandbox(&[prefix.to_string()])
                .await?;
        }
        Ok(component)
    }
}
