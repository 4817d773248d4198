//! `redwasm serve`: load a manifest, resolve its variables, compile its components, and serve
//! them — starting and owning a local `redis-server` when no Redis URL is given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::embed::InstancePool;
use crate::embed::queue::{Queue, WorkerComponent};
use crate::embedded_redis::{EmbeddedRedis, Hardening};
use crate::engine::{ComponentSettings, ComponentSpec, LoadedComponent, Runtime};
use crate::manifest::{ComponentHostSettings, FilesMount, Manifest, TriggerRoute};
use crate::metrics::Metrics;
use crate::outbound_http::OutboundLimits;
use crate::redis::{RedisLimits, RedisPool, RedisPoolConfig};
use crate::trigger::queue::{WorkerOptions, WorkerReport};
use crate::trigger::{HttpApp, TriggerLimits};
use crate::variables::{AppVariables, EnvironmentSource};

/// The port `serve` listens on when neither the command line nor the manifest says.
pub const DEFAULT_PORT: u16 = 3000;

/// The application variable that carries the Redis address to components.
pub const REDIS_ADDRESS_VARIABLE: &str = "redis_address";

/// What to serve and with which Redis.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// The Spin manifest.
    pub manifest: PathBuf,
    /// Redis to use (overrides the `redis_address` variable); `None` in [`serve`] starts a
    /// local redis-server, in [`build_app`] leaves the manifest's value.
    pub redis_url: Option<String>,
    /// Where an owned redis-server keeps its data.
    pub redis_data_dir: PathBuf,
    /// Extra variable values, above `SPIN_VARIABLE_*` and defaults.
    pub variable_overrides: BTreeMap<String, String>,
    /// Trigger-wide limits.
    pub limits: TriggerLimits,
    /// Redis connection settings (timeouts, the CA for `rediss://`: `REDIS_CA_CERT`).
    pub redis_pool: RedisPoolConfig,
    /// Serve every component through `wasi:http`, as Spin does, even those that export
    /// `redwasm:http/handler` (overrides their `typed_http`).
    pub wasi_http_only: bool,
    /// Key-value store label → Redis address, for stores not kept on the host's Redis.
    pub key_value_addresses: BTreeMap<String, String>,
}

impl AppOptions {
    /// Defaults for `manifest`.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        AppOptions {
            manifest: manifest.into(),
            redis_url: None,
            redis_data_dir: PathBuf::from(".redwasm/redis"),
            variable_overrides: BTreeMap::new(),
            limits: TriggerLimits::default(),
            redis_pool: RedisPoolConfig::default(),
            wasi_http_only: false,
            key_value_addresses: BTreeMap::new(),
        }
    }
}

/// Host settings of a component as the engine wants them.
fn settings(host: &ComponentHostSettings) -> ComponentSettings {
    ComponentSettings {
        max_instance_reuse: host.reuse.max(1),
        max_concurrent_per_instance: host.max_concurrent_per_instance.max(1),
        idle_instance_timeout: Duration::from_millis(host.idle_instance_timeout_ms),
        request_timeout: Duration::from_millis(host.request_timeout_ms),
        max_request_body_bytes: host.max_request_body_bytes,
        max_memory_bytes: usize::try_from(host.max_memory_bytes).unwrap_or(usize::MAX),
        sandbox: host.sandbox,
        typed_http: host.typed_http,
        redis_limits: RedisLimits {
            max_write_bytes: usize::try_from(host.max_redis_write_bytes).unwrap_or(usize::MAX),
            max_blocking: host.max_redis_blocking,
            max_commands_per_call: host.max_redis_commands_per_request,
            max_bytes_per_call: host.max_redis_bytes_per_request,
            ..RedisLimits::default()
        },
        trap_on_memory_limit: false,
        outbound_http: OutboundLimits {
            connect_timeout: Duration::from_millis(host.outbound_http_timeout_ms),
            first_byte_timeout: Duration::from_millis(host.outbound_http_timeout_ms),
            between_bytes_timeout: Duration::from_millis(host.outbound_http_timeout_ms),
            max_response_bytes: host.max_outbound_response_bytes,
            max_requests_per_call: host.max_outbound_requests_per_request,
        },
        // Resolved against the manifest (the owners' prefixes) by `load_component`.
        read_grants: Vec::new(),
    }
}

/// What a manifest builds: the HTTP app and the queue-poll triggers, on one runtime.
pub struct Built {
    /// The HTTP trigger's app.
    pub http: HttpApp,
    /// One worker per `[[application.tool.redwasm.queue_trigger]]`.
    pub workers: Vec<QueueWorker>,
}

/// A queue-poll trigger, ready to run.
pub struct QueueWorker {
    queue: Arc<Queue>,
    handler: Arc<WorkerComponent>,
    pool: Arc<RedisPool>,
    options: WorkerOptions,
}

impl QueueWorker {
    /// The trigger's settings.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// Runs until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> WorkerReport {
        crate::trigger::queue::run(self.queue, self.handler, self.pool, self.options, shutdown)
            .await
    }
}

/// Loads the manifest and compiles every routed component into an [`HttpApp`].
pub async fn build_app(options: &AppOptions) -> anyhow::Result<HttpApp> {
    Ok(build(options).await?.http)
}

/// Compiles component `id` of the manifest (`tweak` adjusts its settings).
async fn load_component(
    manifest: &Manifest,
    variables: &AppVariables,
    runtime: &Arc<Runtime>,
    options: &AppOptions,
    id: &str,
    tweak: impl FnOnce(&mut ComponentSettings),
) -> anyhow::Result<Arc<LoadedComponent>> {
    let component = manifest
        .component(id)
        .with_context(|| format!("unknown component `{id}`"))?;
    let allowed_outbound_hosts = component
        .allowed_outbound_hosts
        .iter()
        .map(|entry| variables.expand(entry))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
    let mut mounts = Vec::new();
    for mount in &component.files {
        match mount {
            FilesMount::Placement {
                source,
                destination,
            } => mounts.push((manifest.base_dir.join(source), destination.clone())),
            FilesMount::Pattern(pattern) => {
                let dir = manifest.base_dir.join(pattern);
                if dir.is_dir() {
                    mounts.push((dir, format!("/{}", pattern.trim_start_matches('/'))));
                } else {
                    tracing::warn!(component = %id, %pattern, "glob `files` patterns are not supported; mount a directory with {{ source, destination }}");
                }
            }
        }
    }
    let mut read_grants = Vec::new();
    for grant in &component.host.read_grants {
        let owner = manifest.component(&grant.component).with_context(|| {
            format!(
                "component `{id}`: read_grants names component `{}`, which the manifest does not declare",
                grant.component
            )
        })?;
        let owner_prefix = match owner.host.sandbox {
            true => format!("{}:", grant.component),
            false => String::new(),
        };
        read_grants.push((owner_prefix, grant.keys.clone()));
    }
    let mut settings = ComponentSettings {
        typed_http: component.host.typed_http && !options.wasi_http_only,
        read_grants,
        ..settings(&component.host)
    };
    tweak(&mut settings);
    let spec = ComponentSpec {
        id: id.to_string(),
        source: component.source.clone(),
        allowed_outbound_hosts,
        variables: variables
            .component_ctx(component)
            .with_context(|| format!("component `{id}`: variables"))?,
        environment: component
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        mounts,
        key_value_stores: component.key_value_stores.clone(),
        key_value_addresses: options.key_value_addresses.clone(),
        settings,
    };
    let runtime = runtime.clone();
    // Compilation is CPU-bound: keep it off the async workers.
    let component = tokio::task::spawn_blocking(move || runtime.load(spec)).await??;
    tracing::info!(component = %id, concurrent = component.is_concurrent(), "loaded");
    Ok(component)
}

/// Loads the manifest, compiles every routed component and every queue trigger's components,
/// and prepares the sandbox (one Redis ACL user per sandboxed component).
pub async fn build(options: &AppOptions) -> anyhow::Result<Built> {
    let manifest = Manifest::load(&options.manifest)?;
    for trigger in &manifest.spin_only_triggers {
        tracing::info!(%trigger, "served by Spin only; redwasm runs queue workers with its queue-poll trigger (workers.toml)");
    }
    let mut overrides = options.variable_overrides.clone();
    let redis_url = options
        .redis_url
        .clone()
        .or(manifest.host.redis_url.clone());
    if let Some(url) = &redis_url {
        overrides.insert(REDIS_ADDRESS_VARIABLE.to_string(), url.clone());
    }
    let variables = AppVariables::resolve(
        &manifest.variables,
        &EnvironmentSource::process(),
        &overrides,
    )?;

    let mut pool_config = options.redis_pool.clone();
    if let Some(mode) = manifest.host.redis_acl {
        pool_config.acl = mode;
    }
    if let Some(ms) = manifest.host.script_time_limit_ms {
        pool_config.script_time_limit = Duration::from_millis(ms);
    }
    let pool = RedisPool::new(pool_config);
    // The host's Redis is the one it was given, whether or not the manifest declares the
    // `redis_address` variable (Spin apps that only use key-value do not).
    let redis_address = redis_url
        .clone()
        .or_else(|| variables.get(REDIS_ADDRESS_VARIABLE).map(str::to_string));
    if let Some(address) = &redis_address {
        pool.set_host_redis(address)
            .with_context(|| format!("the host's Redis address `{REDIS_ADDRESS_VARIABLE}`"))?;
    }
    let runtime = Arc::new(Runtime::new(pool.clone(), Arc::new(Metrics::default()))?);
    if let Some(networks) = &manifest.host.blocked_networks {
        runtime
            .outbound_http()
            .set_blocked_networks(networks.clone());
    }

    let mut loaded = BTreeMap::new();
    let mut routes = Vec::new();
    for trigger in &manifest.http_triggers {
        let TriggerRoute::Path(route) = &trigger.route else {
            continue;
        };
        let id = &trigger.component;
        if !loaded.contains_key(id) {
            let component =
                load_component(&manifest, &variables, &runtime, options, id, |_| {}).await?;
            loaded.insert(id.clone(), component);
        }
        routes.push((route.clone(), loaded[id].clone()));
    }

    let mut workers = Vec::new();
    let mut prefixes: Vec<String> = loaded
        .values()
        .filter_map(|c| c.redis_prefix().map(str::to_string))
        .collect();
    for trigger in &manifest.host.queue_trigger {
        let queue_component = match loaded.get(&trigger.queue_component) {
            Some(c) => c.clone(),
            None => {
                load_component(
                    &manifest,
                    &variables,
                    &runtime,
                    options,
                    &trigger.queue_component,
                    |_| {},
                )
                .await?
            }
        };
        // Its own instance: a worker's stores trap at the memory limit, so the trigger can
        // tell a job that ran out of memory from other traps.
        let worker = load_component(
            &manifest,
            &variables,
            &runtime,
            options,
            &trigger.component,
            |s| {
                s.trap_on_memory_limit = true;
            },
        )
        .await?;
        prefixes.extend(worker.redis_prefix().map(str::to_string));
        prefixes.extend(queue_component.redis_prefix().map(str::to_string));
        workers.push(QueueWorker {
            queue: Arc::new(Queue::new(InstancePool::new(
                runtime.clone(),
                queue_component,
            )?)),
            handler: Arc::new(WorkerComponent::new(InstancePool::new(
                runtime.clone(),
                worker,
            )?)),
            pool: pool.clone(),
            options: WorkerOptions {
                queue: trigger.queue.clone(),
                worker: format!(
                    "{}-{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "redwasm".into()),
                    std::process::id()
                ),
                concurrency: trigger.concurrency,
                lease: Duration::from_millis(trigger.lease_ms),
                batch: trigger.batch,
                drain: Duration::from_millis(trigger.drain_ms),
            },
        });
    }
    prefixes.sort();
    prefixes.dedup();
    pool.prepare_sandbox(&prefixes).await?;
    let mut limits = options.limits.clone();
    if let Some(n) = manifest.host.max_event_streams {
        limits.max_event_streams = n;
    }
    if let Some(n) = manifest.host.max_event_streams_per_component {
        limits.max_event_streams_per_component = n;
    }
    let http = HttpApp::new(runtime, routes, redis_address, limits)?;
    Ok(Built { http, workers })
}

/// Serves the manifest on `listen` (else the manifest's `listen`, else 127.0.0.1:3000) until `shutdown` resolves. Without a Redis URL (option,
/// `REDIS_URL`, or the manifest's tool settings) it starts a local redis-server first and
/// stops it after the server has drained.
pub async fn serve(
    mut options: AppOptions,
    listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let host_settings = Manifest::load(&options.manifest)?.host;
    let listen = listen
        .or(host_settings.listen)
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
    let manifest_redis = host_settings.redis_url;
    let mut owned = None;
    if options.redis_url.is_none() && manifest_redis.is_none() {
        let hardening = Hardening {
            script_time_limit: host_settings
                .script_time_limit_ms
                .map_or(options.redis_pool.script_time_limit, Duration::from_millis),
            max_reply_bytes: options.redis_pool.max_reply_bytes as u64,
            ..Hardening::default()
        };
        let redis = EmbeddedRedis::start_hardened(
            &options.redis_data_dir,
            Duration::from_secs(15),
            &hardening,
        )
        .await
        .context("no REDIS_URL given, so redwasm starts its own redis-server")?;
        tracing::info!(url = %redis.url(), dir = %options.redis_data_dir.display(), "started redis-server");
        options.redis_url = Some(redis.url());
        owned = Some(redis);
    }
    let built = build(&options).await?;
    let app = Arc::new(built.http);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    tracing::info!("serving on http://{}", listener.local_addr()?);
    // Every trigger stops on the one shutdown: HTTP drains its requests while the queue
    // triggers drain their running jobs.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = spawn_workers(built.workers, &stopped);
    let result = crate::trigger::run(listener, app, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    for worker in workers {
        let _ = worker.await;
    }
    if let Some(redis) = owned {
        redis.stop().await;
    }
    result
}

/// Starts every queue trigger on its own task; each drains and ends once `stopped` turns
/// true. The handles yield their reports.
pub fn spawn_workers(
    workers: Vec<QueueWorker>,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<WorkerReport>> {
    workers
        .into_iter()
        .map(|worker| {
            let mut stopped = stopped.clone();
            tokio::spawn(worker.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect()
}

/// `redwasm worker`: runs only the manifest's queue-poll triggers (no HTTP), so workers
/// scale out as separate processes against one Redis, until `shutdown` resolves.
pub async fn work(options: AppOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let built = build(&options).await?;
    if built.workers.is_empty() {
        anyhow::bail!(
            "{} declares no [[application.tool.redwasm.queue_trigger]]: nothing to run",
            options.manifest.display()
        );
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = spawn_workers(built.workers, &stopped);
    shutdown.await;
    let _ = stop.send(true);
    for worker in workers {
        let report = worker.await?;
        tracing::info!(?report, "worker stopped");
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
