//! The wasmtime engine, the linker every component is linked against, and the per-store state.
//!
//! One [`Runtime`] per process: two pooling-allocator engines with epoch interruption (a
//! ticker thread advances the epochs, so a guest in a busy loop yields and can be timed out),
//! each with a linker: a plain one for WASIp2 components (WASI p2, `wasi:http` p2 with
//! outbound requests, Spin's Redis, variables and key-value v2) and one with
//! component-model-async for WASIp3 components (everything above plus the p3 and Spin v3
//! interfaces); the shared [`RedisPool`] and outbound HTTP client. [`Runtime::load`] compiles a
//! component once and pre-instantiates it. The engine knows no trigger: `pool` is the instance
//! pool every trigger (and `redwasm::embed`) calls through.

pub(crate) mod pool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::{KvCtx, KvCtxView};
use crate::metrics::Metrics;
use crate::outbound_http::{OutboundClient, OutboundHooks, OutboundHttpCtx, OutboundLimits};
use crate::redis::{RedisCtx, RedisCtxView, RedisLimits, RedisPool};
use crate::variables::VariablesCtx;

/// Component instances the plain (WASIp2) engine's pooling allocator holds.
const PLAIN_POOL_INSTANCES: u32 = 1000;
/// Component instances the concurrent (WASIp3) engine's pooling allocator holds.
const CONCURRENT_POOL_INSTANCES: u32 = 250;

/// How often the epoch advances; a running guest yields to the executor at least this often.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-component host settings (from `[component.<id>.tool.redwasm]`; defaults suit the shipped
/// components).
#[derive(Clone, Debug)]
pub struct ComponentSettings {
    /// Requests one instance may serve before it is replaced (1 = a fresh instance each time).
    pub max_instance_reuse: usize,
    /// Requests one instance may serve at once (only WASIp3 components can use more than 1).
    pub max_concurrent_per_instance: usize,
    /// How long an idle instance is kept for reuse.
    pub idle_instance_timeout: Duration,
    /// Time limit for a request to produce its response head.
    pub request_timeout: Duration,
    /// Largest request body accepted (413 above).
    pub max_request_body_bytes: u64,
    /// Largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Confine the component's Redis keys to its own prefix.
    pub sandbox: bool,
    /// Serve HTTP through the component's `redwasm:http/handler` export when it has one.
    pub typed_http: bool,
    /// What the component may do to Redis per command and per call.
    pub redis_limits: RedisLimits,
    /// Trap when the guest grows memory past `max_memory_bytes` (instead of the failed
    /// growth returning -1 to the guest), so the host can tell a job that hit the memory limit
    /// from other traps. On for queue workers.
    pub trap_on_memory_limit: bool,
    /// Caps on outbound HTTP (timeouts, response size, requests per call).
    pub outbound_http: OutboundLimits,
    /// Read-only views of other components' streams, `(owner prefix, key pattern)` (see
    /// [`RedisCtx::with_read_grants`]).
    pub read_grants: Vec<(String, String)>,
}

impl Default for ComponentSettings {
    fn default() -> Self {
        ComponentSettings {
            max_instance_reuse: 128,
            max_concurrent_per_instance: 16,
            idle_instance_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_request_body_bytes: 2 * 1024 * 1024,
            max_memory_bytes: 128 * 1024 * 1024,
            sandbox: true,
            typed_http: true,
            redis_limits: RedisLimits::default(),
            trap_on_memory_limit: false,
            outbound_http: OutboundLimits::default(),
            read_grants: Vec::new(),
        }
    }
}

/// Everything needed to load one component.
#[derive(Clone)]
pub struct ComponentSpec {
    /// The manifest id (`[component.<id>]`); also the Redis sandbox prefix.
    pub id: String,
    /// Path of the `.wasm` file.
    pub source: PathBuf,
    /// `allowed_outbound_hosts`, templates already resolved.
    pub allowed_outbound_hosts: Vec<String>,
    /// Resolved variables for `fermyon:spin/variables`.
    pub variables: VariablesCtx,
    /// Environment variables of the guest (`environment` in the manifest).
    pub environment: Vec<(String, String)>,
    /// Read-only directory mounts: (host directory, guest path) (`files` in the manifest).
    pub mounts: Vec<(PathBuf, String)>,
    /// Key-value store labels it may open (`key_value_stores` in the manifest).
    pub key_value_stores: Vec<String>,
    /// Label → Redis address for stores the host keeps elsewhere than its own Redis.
    pub key_value_addresses: BTreeMap<String, String>,
    /// Host settings.
    pub settings: ComponentSettings,
}

/// A compiled, pre-instantiated component.
pub struct LoadedComponent {
    /// What it was loaded from.
    pub spec: ComponentSpec,
    /// The engine it was compiled for; its stores must use the same.
    engine: Engine,
    /// True when it runs on the engine with component-model-async support.
    concurrent: bool,
    /// The pre-instance, for typed exports (embedding API).
    pub instance_pre: InstancePre<HostState>,
    /// The Redis context template every store of this component starts from.
    redis: RedisCtx,
    /// Its key-value stores.
    kv: KvCtx,
    /// Its outbound HTTP rules.
    outbound_http: OutboundHttpCtx,
}

impl LoadedComponent {
    /// The component's Redis key prefix, when its sandbox is on.
    pub fn redis_prefix(&self) -> Option<&str> {
        self.redis.prefix()
    }

    /// Where Redis stream `key`, as the component names it, lives (its own namespace, or a
    /// granted one): what the SSE fan-out follows.
    pub fn stream_key(&self, key: &str) -> String {
        self.redis.stream_key(key)
    }

    /// True when it runs on the engine with component-model-async support (WASIp3, or a
    /// WASIp2 component importing an async Spin interface); false for plain WASIp2.
    pub fn is_concurrent(&self) -> bool {
        self.concurrent
    }
}

/// The data of every [`Store`] the host creates.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound_http: OutboundHooks,
    redis: RedisCtx,
    kv: KvCtx,
    variables: VariablesCtx,
    limits: StoreLimits,
    /// The pooling-allocator slot this instance occupies (see [`Runtime::new_store_in_slot`]);
    /// given back when the store is dropped.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl HostState {
    /// Starts a new call into the instance (a request, an embedded call, a job): the
    /// per-call Redis budget is full again.
    pub fn begin_call(&mut self) {
        self.redis.begin_call();
        self.outbound_http.begin_call();
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        http_view(self)
    }
}

/// The `wasi:http` view of a store's data (a plain `fn` so the handler can hold it).
pub fn http_view(state: &mut HostState) -> WasiHttpCtxView<'_> {
    WasiHttpCtxView {
        ctx: &mut state.http,
        table: &mut state.table,
        hooks: &mut state.outbound_http,
    }
}

/// One engine and its linker. WASIp2 components run on an engine without concurrency support:
/// wasmtime then calls their exports and our async imports on a plain fiber instead of through
/// the component-model-async task machinery (a host task record per import call, an event
/// loop per export call).
struct Flavour {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Flavour {
    /// `concurrent`: WASIp3 + WASIp2 imports (Spin's async v3 interfaces included);
    /// otherwise WASIp2 imports only. `pool_instances`: component instances the pooling
    /// allocator reserves room for.
    fn new(concurrent: bool, pool_instances: u32) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        if concurrent {
            config.wasm_component_model_async(true);
        } else {
            config.concurrency_support(false);
        }
        config.epoch_interruption(true);
        // For profiling guests: `perf record` then resolves JIT-compiled guest frames through
        // /tmp/perf-<pid>.map instead of showing bare addresses.
        if std::env::var_os("REDWASM_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if let Some(dir) = compile_cache_dir() {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(&dir);
            match wasmtime::Cache::new(cache) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), error = %format!("{error:?}"), "compile cache disabled");
                }
            }
        }
        let mut pool = PoolingAllocationConfig::default();
        // A component instance is several core instances (its module, shims, adapters): room
        // for 8 each, so the component-instance slots (`Runtime::new_store_in_slot`) are what
        // runs out first, and waiting for one is enough.
        pool.total_component_instances(pool_instances)
            .total_core_instances(8 * pool_instances)
            .total_memories(2 * pool_instances)
            .total_tables(8 * pool_instances)
            .total_stacks(pool_instances)
            .max_memory_size(256 << 20);
        // Pre-allocated slots only pay off when they are many; fall back when the pool cannot
        // be reserved (e.g. a small virtual address limit).
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = match Engine::new(&config) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(%error, "pooling allocator unavailable, using on-demand");
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?
            }
        };

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow_err)?;
        fn redis_view(s: &mut HostState) -> RedisCtxView<'_> {
            RedisCtxView {
                ctx: &s.redis,
                table: &mut s.table,
            }
        }
        fn variables_view(s: &mut HostState) -> &mut VariablesCtx {
            &mut s.variables
        }
        fn kv_view(s: &mut HostState) -> KvCtxView<'_> {
            KvCtxView {
                ctx: &s.kv,
                table: &mut s.table,
            }
        }
        if concurrent {
            wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(anyhow_err)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(anyhow_err)?;
            crate::redis::add_to_linker(&mut linker, redis_view).map_err(anyhow_err)?;
            crate::variables::add_to_linker(&mut linker, variables_view).map_err(anyhow_err)?;
            crate::kv::add_to_linker(&mut linker, kv_view).map_err(anyhow_err)?;
        } else {
            crate::redis::add_v2_to_linker(&mut linker, redis_view).map_err(anyhow_err)?;
            crate::variables::add_v2_to_linker(&mut linker, variables_view).map_err(anyhow_err)?;
            crate::kv::add_v2_to_linker(&mut linker, kv_view).map_err(anyhow_err)?;
        }
        Ok(Flavour { engine, linker })
    }

    /// Compiles and links `spec`'s component for this engine.
    fn prepare(&self, spec: &ComponentSpec) -> anyhow::Result<(Engine, InstancePre<HostState>)> {
        let component = load_component(&self.engine, &spec.source)
            .with_context(|| format!("component `{}`", spec.id))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow_err)
            .with_context(|| format!("link component `{}`", spec.id))?;
        Ok((self.engine.clone(), instance_pre))
    }
}

/// The process-wide engines, linkers and shared Redis pool.
pub struct Runtime {
    /// WASIp2 components: no component-model-async machinery.
    plain: Flavour,
    /// WASIp3 components, and WASIp2 ones importing an async (v3) Spin interface.
    concurrent: Flavour,
    redis: Arc<RedisPool>,
    /// The one pooled HTTP client every component's outbound requests go through.
    outbound: OutboundClient,
    metrics: Arc<Metrics>,
    stop_ticker: Arc<AtomicBool>,
    /// Instance slots of each engine's pooling allocator: instantiation waits for one instead
    /// of failing when a burst of requests would need more instances than the pool holds.
    plain_slots: Arc<tokio::sync::Semaphore>,
    concurrent_slots: Arc<tokio::sync::Semaphore>,
}

impl Runtime {
    /// Builds the engines (pooling allocator, epoch interruption) and their linkers.
    pub fn new(redis: Arc<RedisPool>, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let plain = Flavour::new(false, PLAIN_POOL_INSTANCES)?;
        // WASIp3 components are the exception today: a smaller pool keeps the address space
        // the two engines reserve modest.
        let concurrent = Flavour::new(true, CONCURRENT_POOL_INSTANCES)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engines = [plain.engine.clone(), concurrent.engine.clone()];
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("redwasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        for engine in &engines {
                            engine.increment_epoch();
                        }
                    }
                })
                .context("spawn the epoch ticker")?;
        }

        Ok(Runtime {
            plain_slots: Arc::new(tokio::sync::Semaphore::new(PLAIN_POOL_INSTANCES as usize)),
            concurrent_slots: Arc::new(tokio::sync::Semaphore::new(
                CONCURRENT_POOL_INSTANCES as usize,
            )),
            plain,
            concurrent,
            redis,
            outbound: OutboundClient::new(),
            metrics,
            stop_ticker,
        })
    }

    /// The shared Redis pool.
    pub fn redis(&self) -> &Arc<RedisPool> {
        &self.redis
    }

    /// The pooled outbound HTTP client.
    pub fn outbound_http(&self) -> &OutboundClient {
        &self.outbound
    }

    /// The process metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Compiles and pre-instantiates a component. Fails when it imports something the host
    /// does not provide (the error names the import).
    pub fn load(&self, spec: ComponentSpec) -> anyhow::Result<Arc<LoadedComponent>> {
        for (host, _) in &spec.mounts {
            if !host.is_dir() {
                anyhow::bail!(
                    "component `{}`: files source {} is not a directory",
                    spec.id,
                    host.display()
                );
            }
        }
        // WASIp2 first (the cheaper engine); a component the plain engine cannot compile
        // (component-model-async ABI) or link (WASIp3 or Spin v3 imports) gets the
        // concurrent one, whose error is the one reported when both fail.
        let (engine, instance_pre, concurrent) = match self.plain.prepare(&spec) {
            Ok((engine, pre)) => (engine, pre, false),
            Err(plain_error) => {
                let (engine, pre) = self.concurrent.prepare(&spec)?;
                tracing::debug!(component = %spec.id, error = %format!("{plain_error:#}"), "needs the concurrent engine");
                (engine, pre, true)
            }
        };
        let redis = RedisCtx::new(
            self.redis.clone(),
            &spec.id,
            &spec.allowed_outbound_hosts,
            spec.settings.sandbox,
        )
        .map_err(|e| anyhow::anyhow!("component `{}`: {e}", spec.id))?
        .with_limits(spec.settings.redis_limits.clone())
        .with_read_grants(&spec.settings.read_grants)
        .map_err(|e| anyhow::anyhow!("component `{}`: read_grants: {e}", spec.id))?;
        let kv = KvCtx::new(
            redis.clone(),
            spec.key_value_stores.iter().cloned(),
            spec.key_value_addresses.clone(),
        );
        let outbound_http = OutboundHttpCtx::new(
            &spec.id,
            &spec.allowed_outbound_hosts,
            spec.settings.outbound_http.clone(),
        )
        .map_err(|e| anyhow::anyhow!("component `{}`: {e}", spec.id))?;
        Ok(Arc::new(LoadedComponent {
            spec,
            engine,
            concurrent,
            instance_pre,
            redis,
            kv,
            outbound_http,
        }))
    }

    /// A new store for one instance of `component`, once one of its engine's instance slots
    /// is free (waiting for one rather than failing at the pool's limit); the store holds the
    /// slot until it is dropped. The caller bounds the wait (its request's deadline).
    pub async fn new_store_in_slot(&self, component: &LoadedComponent) -> Store<HostState> {
        let slots = if component.concurrent {
            &self.concurrent_slots
        } else {
            &self.plain_slots
        };
        // The semaphore is never closed.
        let slot = slots.clone().acquire_owned().await.ok();
        let mut store = self.new_store(component);
        store.data_mut().slot = slot;
        store
    }

    /// A new store for one instance of `component`, with its limits and epoch deadline set.
    pub fn new_store(&self, component: &LoadedComponent) -> Store<HostState> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout()
            .inherit_stderr()
            .envs(&component.spec.environment);
        for (host, guest) in &component.spec.mounts {
            // Checked at load time; a directory removed since then leaves the guest without it.
            if let Err(error) = wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly) {
                tracing::warn!(component = %component.spec.id, dir = %host.display(), error = %format!("{error:?}"), "mount failed");
            }
        }
        let wasi = wasi.build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(component.spec.settings.max_memory_bytes)
            .instances(64)
            .trap_on_grow_failure(component.spec.settings.trap_on_memory_limit)
            .build();
        let redis = component.redis.for_store();
        let state = HostState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            outbound_http: component.outbound_http.hooks(self.outbound.clone()),
            redis: redis.clone(),
            kv: component.kv.for_store(redis),
            variables: component.spec.variables.clone(),
            limits,
            slot: None,
        };
        let mut store = Store::new(&component.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor every tick: a guest spinning in a loop cannot starve other
        // requests, and the handler's expiration (polled outside the store) can drop it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        self.metrics.record_instance(&component.spec.id);
        store
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Where compiled components are cached between runs: `$REDWASM_COMPILE_CACHE` (`off`
/// disables it), else `$XDG_CACHE_HOME/redwasm` or `~/.cache/redwasm`. A restart (and every
/// test) then loads native code instead of recompiling it.
fn compile_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("REDWASM_COMPILE_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("redwasm").join("wasmtime")),
    }
}

/// Compiles a `.wasm` component file.
fn load_component(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist (build the components: `cargo build`)",
            path.display()
        );
    }
    Component::from_file(engine, path)
        .map_err(|e| anyhow::anyhow!("compile {}: {e:?}", path.display()))
}

/// `wasmtime::Error` is not `anyhow::Error` in wasmtime 48.
pub(crate) fn anyhow_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}
