//! Connections to Redis, shared by every component of the process.
//!
//! The host's own Redis (the address `serve` or `embed` was given, [`RedisPool::set_host_redis`])
//! has an admin endpoint with the host's credentials (health, `ACL SETUSER`, `SCRIPT KILL`,
//! the rewritten `SCAN` of guests) and one endpoint per sandboxed component, authenticated as
//! that component's ACL user when the sandbox could create one (see `acl.rs`). Any other
//! address a component's `allowed_outbound_hosts` admits gets an endpoint of that component
//! (at most `max_endpoints_per_component` of them, evicted when idle), keyed by the
//! address's canonical form, so spelling variants of one address share one endpoint.
//!
//! Each [`Endpoint`] holds:
//! - a redis-rs [`ConnectionManager`]: one multiplexed, reconnecting connection that every
//!   ordinary command of every component pipelines onto (never a connection per request);
//! - a small stack of idle dedicated connections for blocking commands (BLPOP, XREAD BLOCK,
//!   ...), which would otherwise stall everybody's commands queued behind them on the shared
//!   connection. Their number is bounded process-wide by a semaphore;
//! - a circuit breaker: after a connection-level failure the endpoint is marked down, calls
//!   fail at once with `redis unavailable: ...` instead of each waiting out a connect
//!   timeout, and a background task probes the server every `probe_interval` until it
//!   answers again, then swaps in the fresh connection.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, Value};
use tokio::sync::Semaphore;

use super::acl::{AclMode, AclUser, password_tag};
use super::allowed::{Target, parse_address};
use super::reply::reply_size;
use super::sandbox::Blocking;

/// Tunables of a [`RedisPool`]. [`Default`] gives production values.
#[derive(Debug, Clone)]
pub struct RedisPoolConfig {
    /// How long one attempt to connect may take.
    pub connect_timeout: Duration,
    /// How long an ordinary command may wait for its reply on the shared connection.
    pub response_timeout: Duration,
    /// First delay between reconnect attempts of the shared connection (doubles each try).
    pub reconnect_min_delay: Duration,
    /// Cap on the delay between reconnect attempts.
    pub reconnect_max_delay: Duration,
    /// Reconnect attempts made inside one command before it gives up (the background probe
    /// keeps trying after that).
    pub reconnect_retries: usize,
    /// How often a down endpoint is probed; calls in between fail immediately.
    pub probe_interval: Duration,
    /// Dedicated connections for blocking commands, process-wide.
    pub max_blocking_connections: usize,
    /// How long a blocking command waits for a free dedicated connection before the guest
    /// gets `too-many-connections`.
    pub blocking_acquire_timeout: Duration,
    /// Added to a blocking command's own timeout before the host gives up on the reply.
    pub blocking_margin: Duration,
    /// Largest reply (total bytes of all values) handed to a guest.
    pub max_reply_bytes: usize,
    /// Distinct Redis endpoints the process keeps connections to (besides the host's own
    /// admin connection).
    pub max_endpoints: usize,
    /// Addresses other than the host's Redis one component may hold connections to at once.
    pub max_endpoints_per_component: usize,
    /// An endpoint nobody used for this long is closed when room is needed.
    pub endpoint_idle_timeout: Duration,
    /// Whether sandboxed components get their own Redis ACL user.
    pub acl: AclMode,
    /// How long a script (`EVAL`, `EVALSHA`, `FCALL`) may run before the host stops it with
    /// `SCRIPT KILL`/`FUNCTION KILL` from its own connection. Redis only accepts the kill
    /// once the script has run for its `busy-reply-threshold`; a Redis the host owns is
    /// started with that threshold set to this value.
    pub script_time_limit: Duration,
    /// A PEM file of CA certificates trusted for `rediss://` addresses, instead of the
    /// system's roots (for servers with a private CA). [`Default`] takes it from the
    /// `REDIS_CA_CERT` environment variable.
    pub tls_ca_cert: Option<PathBuf>,
}

/// The environment variable [`RedisPoolConfig::default`] reads
/// [`RedisPoolConfig::tls_ca_cert`] from.
pub const REDIS_CA_CERT_ENV: &str = "REDIS_CA_CERT";

impl Default for RedisPoolConfig {
    fn default() -> Self {
        RedisPoolConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_secs(1),
            reconnect_retries: 2,
            probe_interval: Duration::from_millis(250),
            max_blocking_connections: 16,
            blocking_acquire_timeout: Duration::from_millis(200),
            blocking_margin: Duration::from_secs(2),
            max_reply_bytes: 8 * 1024 * 1024,
            max_endpoints: 64,
            max_endpoints_per_component: 4,
            endpoint_idle_timeout: Duration::from_secs(30),
            acl: AclMode::Auto,
            script_time_limit: Duration::from_millis(500),
            tls_ca_cert: std::env::var_os(REDIS_CA_CERT_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// A snapshot of the pool's counters (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedisStats {
    /// Commands sent to Redis.
    pub commands: u64,
    /// Calls that returned an error to the guest (server errors, timeouts, outages, caps).
    pub errors: u64,
    /// Calls refused by the sandbox or the allow-list.
    pub denied: u64,
    /// Calls failed fast because the endpoint was marked down.
    pub unavailable: u64,
    /// Dedicated blocking-command connections in use right now.
    pub blocking_in_use: u64,
    /// Addresses the pool holds connections for.
    pub endpoints: u64,
    /// True when at least one endpoint exists and none is marked down.
    pub connected: bool,
    /// Scripts stopped by the watchdog.
    pub scripts_killed: u64,
    /// Scripts past their time limit that Redis could not kill (they had written).
    pub scripts_unkillable: u64,
}

/// How far the key sandbox reaches on the host's Redis (`/health`'s `sandbox`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SandboxStatus {
    /// The configured mode.
    pub mode: AclMode,
    /// True when every sandboxed component runs as its own ACL user, so scripts are
    /// confined too.
    pub scripts_confined: bool,
    /// The ACL user of each sandboxed component, by key prefix.
    pub users: BTreeMap<String, String>,
    /// Why scripts are not confined, when they are not.
    pub degraded: Option<String>,
}

/// What `GET /health` reports about one Redis address.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Health {
    /// Whether `PING` succeeded.
    pub connected: bool,
    /// Round trip of `PING` on the shared connection, in milliseconds.
    pub latency_ms: f64,
    /// `redis_version` from `INFO`.
    pub version: Option<String>,
    /// `used_memory` (bytes) from `INFO`.
    pub used_memory: Option<u64>,
    /// `connected_clients` from `INFO`.
    pub connected_clients: Option<u64>,
    /// `uptime_in_seconds` from `INFO`.
    pub uptime_s: Option<u64>,
    /// Why it is not connected.
    pub error: Option<String>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) commands: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) denied: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) blocking_in_use: AtomicU64,
    pub(crate) scripts_killed: AtomicU64,
    pub(crate) scripts_unkillable: AtomicU64,
}

struct Shared {
    config: RedisPoolConfig,
    counters: Counters,
    blocking: Arc<Semaphore>,
}

/// Redis connections shared by every component: one reconnecting multiplexed connection per
/// address, a bounded set of dedicated connections for blocking commands, a circuit breaker
/// per address, and counters. Create one per process with [`RedisPool::new`].
pub struct RedisPool {
    shared: Arc<Shared>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    host: Mutex<Option<Arc<HostRedis>>>,
    /// ACL users created on the host's Redis, by key prefix.
    acl_users: Mutex<HashMap<String, AclUser>>,
    /// Read-only key patterns granted to a prefix's ACL user (`%R~`), by key prefix.
    read_patterns: Mutex<HashMap<String, Vec<String>>>,
    sandbox: Mutex<SandboxStatus>,
    /// `sandbox.scripts_confined`, read on the command path without the lock.
    scripts_confined: AtomicBool,
}

/// The host's own Redis.
struct HostRedis {
    /// The address as the host was given it (credentials included).
    address: String,
    /// The canonical target (`redis://host:port`, `unix:///path`).
    target: String,
    info: redis::ConnectionInfo,
    /// Host credentials: health, ACL SETUSER, SCRIPT KILL, guests' rewritten SCAN.
    admin: Arc<Endpoint>,
}

/// An address in canonical form.
struct Canonical {
    /// Where it goes: scheme, lower-cased host and port (default filled in), or the
    /// normalised socket path.
    target: String,
    /// Who connects and to which database.
    who: String,
    info: redis::ConnectionInfo,
    tls: bool,
}

fn canonical(address: &str) -> Result<Canonical, Failure> {
    let target = parse_address(address).map_err(Failure::InvalidAddress)?;
    let info = address
        .into_connection_info()
        .map_err(|e| Failure::InvalidAddress(e.to_string()))?;
    let insecure = if address.contains("#insecure") {
        "#insecure"
    } else {
        ""
    };
    let (target, tls) = match target {
        Target::Tcp { scheme, host, port } => {
            let tls = scheme == "rediss";
            (format!("{scheme}://{host}:{port}{insecure}"), tls)
        }
        Target::Unix { path } => {
            let path: PathBuf = std::path::Path::new(&path).components().collect();
            (format!("unix://{}", path.display()), false)
        }
    };
    let settings = info.redis_settings();
    let who = format!(
        "db={} user={} pass={}",
        settings.db(),
        settings.username().unwrap_or_default(),
        password_tag(settings.password().unwrap_or_default())
    );
    Ok(Canonical {
        target,
        who,
        info,
        tls,
    })
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Why a call failed, before it is mapped to the guest-visible error.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The address does not parse as a Redis URL.
    InvalidAddress(String),
    /// No dedicated connection (or endpoint slot) became free in time.
    TooManyConnections,
    /// The endpoint is marked down (or just failed at the connection level).
    Unavailable(String),
    /// The server answered with an error, or the command timed out.
    Redis(redis::RedisError),
    /// The reply exceeds `max_reply_bytes`.
    ReplyTooLarge(usize, usize),
    /// A script ran past the time limit and the watchdog killed it.
    ScriptKilled(Duration),
    /// A script ran past the time limit and Redis could not kill it.
    ScriptUnkillable(Duration),
}

impl RedisPool {
    /// A pool with `config`. Nothing connects until the first command.
    pub fn new(config: RedisPoolConfig) -> Arc<Self> {
        let blocking = Arc::new(Semaphore::new(config.max_blocking_connections));
        Arc::new(RedisPool {
            shared: Arc::new(Shared {
                config,
                counters: Counters::default(),
                blocking,
            }),
            endpoints: Mutex::new(HashMap::new()),
            host: Mutex::new(None),
            acl_users: Mutex::new(HashMap::new()),
            read_patterns: Mutex::new(HashMap::new()),
            sandbox: Mutex::new(SandboxStatus::default()),
            scripts_confined: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisPoolConfig {
        &self.shared.config
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn new_endpoint(
        &self,
        display: String,
        client: redis::Client,
        owner: Option<Arc<str>>,
        acl: Option<AclHook>,
        foreign: bool,
    ) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            display,
            client,
            shared: self.shared.clone(),
            owner,
            acl,
            foreign,
            manager: Mutex::new(None),
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
            idle_blocking: Mutex::new(Vec::new()),
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// Declares the host's own Redis (the address `serve` or `embed` connects to). Guests'
    /// addresses that point at it (in any spelling) use the host's credentials and database,
    /// or their component's ACL user, never what the guest wrote.
    pub fn set_host_redis(&self, address: &str) -> anyhow::Result<()> {
        let canonical = canonical(address).map_err(|f| anyhow::anyhow!(failure_text(&f)))?;
        let client = open_client(
            canonical.info.clone(),
            canonical.tls,
            self.shared.config.tls_ca_cert.as_deref(),
        )
        .map_err(|f| anyhow::anyhow!(failure_text(&f)))?;
        let admin = self.new_endpoint(redact(address), client, None, None, false);
        *self.host.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(HostRedis {
            address: address.to_string(),
            target: canonical.target,
            info: canonical.info,
            admin,
        }));
        Ok(())
    }

    fn host(&self) -> Option<Arc<HostRedis>> {
        self.host.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The host's own Redis address, when one is declared.
    pub(crate) fn host_address(&self) -> Option<String> {
        self.host().map(|h| h.address.clone())
    }

    /// The host's admin endpoint, when a host Redis is declared.
    pub(crate) fn admin(&self) -> Option<Arc<Endpoint>> {
        self.host().map(|h| h.admin.clone())
    }

    /// Creates (or re-creates) an ACL user for each key prefix on the host's Redis, per
    /// [`RedisPoolConfig::acl`], and records what the sandbox guarantees. Call it again for
    /// components loaded later: prefixes add up. Fails only in [`AclMode::Required`] when a
    /// user cannot be created.
    pub async fn prepare_sandbox(&self, prefixes: &[String]) -> anyhow::Result<SandboxStatus> {
        let mode = self.shared.config.acl;
        let host = self.host();
        let mut created = Vec::new();
        let mut degraded = None;
        if !prefixes.is_empty() {
            match (mode, &host) {
                (AclMode::Off, _) => {
                    degraded = Some("ACL users are off (`redis_acl = \"off\"`)".to_string());
                }
                (_, None) => degraded = Some("no host Redis is declared".to_string()),
                (_, Some(host)) => {
                    for prefix in prefixes {
                        let reads = self
                            .read_patterns
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(prefix)
                            .cloned()
                            .unwrap_or_default();
                        let mut user =
                            AclUser::for_prefix(prefix, host.info.redis_settings().password())
                                .with_reads(&reads);
                        match create_user(&host.admin, &host.info, &mut user).await {
                            Ok(()) => created.push((prefix.clone(), user)),
                            Err(error) => {
                                tracing::info!(rule = %user.display(), "the ACL user an operator can create for this component");
                                degraded = Some(format!(
                                    "cannot create the Redis ACL user {} ({error}); give the \
                                     host's Redis user the right to run ACL SETUSER, or create \
                                     the users as the README says",
                                    user.name
                                ));
                                break;
                            }
                        }
                    }
                }
            }
        }
        if let Some(reason) = &degraded {
            if mode == AclMode::Required {
                anyhow::bail!("redis_acl = \"required\": {reason}");
            }
            tracing::warn!(
                %reason,
                "SANDBOX DEGRADED: component keys are prefixed, but Lua scripts (EVAL, FCALL) \
                 are not confined and can reach any key"
            );
        }
        let mut status = self.sandbox.lock().unwrap_or_else(|e| e.into_inner());
        status.mode = mode;
        if degraded.is_none() {
            let mut users = self.acl_users.lock().unwrap_or_else(|e| e.into_inner());
            for (prefix, user) in created {
                status.users.insert(prefix.clone(), user.name.clone());
                users.insert(prefix, user);
            }
            if !prefixes.is_empty() {
                tracing::info!(users = ?status.users, "sandbox: one Redis ACL user per component; scripts are confined");
            }
        } else {
            status.degraded = degraded;
        }
        status.scripts_confined = status.degraded.is_none() && !status.users.is_empty();
        self.scripts_confined
            .store(status.scripts_confined, Relaxed);
        Ok(status.clone())
    }

    /// Records read-only key patterns (full keys, owner prefix included) for the ACL user
    /// of `prefix`; [`RedisPool::prepare_sandbox`] grants them (`%R~<pattern>`).
    pub(crate) fn set_read_patterns(&self, prefix: &str, patterns: Vec<String>) {
        self.read_patterns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(prefix.to_string(), patterns);
    }

    /// Whether sandboxed components run as their own ACL users (so their scripts are
    /// confined).
    pub(crate) fn scripts_confined(&self) -> bool {
        self.scripts_confined.load(Relaxed)
    }

    /// What the sandbox guarantees (after [`RedisPool::prepare_sandbox`]).
    pub fn sandbox_status(&self) -> SandboxStatus {
        self.sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The endpoint `component` (whose keys carry `prefix`, when sandboxed) reaches at
    /// `address`, created on first use.
    pub(crate) fn endpoint_for(
        &self,
        component: &str,
        prefix: Option<&str>,
        address: &str,
    ) -> Result<Arc<Endpoint>, Failure> {
        let canonical = canonical(address)?;
        let host = self.host();
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = host.as_ref().filter(|h| h.target == canonical.target) {
            let Some(prefix) = prefix else {
                return Ok(host.admin.clone());
            };
            let key = format!("{}#component={component}", host.target);
            if let Some(ep) = map.get(&key) {
                return Ok(ep.clone());
            }
            let user = self
                .acl_users
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(prefix)
                .cloned();
            let mut info = host.info.clone();
            if let Some(user) = &user {
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_username(&user.name)
                    .set_password(&user.password);
                info = info.set_redis_settings(settings);
            }
            let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
            let client = open_client(info, tls, self.shared.config.tls_ca_cert.as_deref())?;
            self.make_room(&mut map, None)?;
            let acl = user.map(|user| AclHook {
                admin: host.admin.clone(),
                user,
            });
            let ep = self.new_endpoint(
                host.admin.display.clone(),
                client,
                Some(component.into()),
                acl,
                false,
            );
            map.insert(key, ep.clone());
            return Ok(ep);
        }
        // Another Redis. Where the host declared its own, a sandboxed component connects
        // elsewhere with no credentials and to database 0: the guest does not choose them.
        // (A pool used without a host Redis, as a library, takes the address as written.)
        let mut info = canonical.info;
        let who = if prefix.is_some() && host.is_some() {
            info = info.set_redis_settings(redis::RedisConnectionInfo::default());
            "db=0"
        } else {
            canonical.who.as_str()
        };
        let key = format!("{}#{who}#component={component}", canonical.target);
        if let Some(ep) = map.get(&key) {
            return Ok(ep.clone());
        }
        let client = open_client(
            info,
            canonical.tls,
            self.shared.config.tls_ca_cert.as_deref(),
        )?;
        self.make_room(&mut map, Some(component))?;
        let ep = self.new_endpoint(
            redact(address),
            client,
            (!component.is_empty()).then(|| component.into()),
            None,
            true,
        );
        map.insert(key, ep.clone());
        Ok(ep)
    }

    /// The endpoint for `address` as the host itself sees it (no component).
    pub(crate) fn endpoint(&self, address: &str) -> Result<Arc<Endpoint>, Failure> {
        self.endpoint_for("", None, address)
    }

    /// Makes room for one more endpoint (of `component`, for another Redis when given):
    /// endpoints nobody holds and nobody used for `endpoint_idle_timeout` are closed first.
    fn make_room(
        &self,
        map: &mut HashMap<String, Arc<Endpoint>>,
        component: Option<&str>,
    ) -> Result<(), Failure> {
        let config = &self.shared.config;
        let mine = |ep: &Arc<Endpoint>| {
            ep.foreign && component.is_some_and(|c| ep.owner.as_deref() == Some(c))
        };
        let over = |map: &HashMap<String, Arc<Endpoint>>| {
            map.len() >= config.max_endpoints
                || (component.is_some()
                    && map.values().filter(|ep| mine(ep)).count()
                        >= config.max_endpoints_per_component)
        };
        if !over(map) {
            return Ok(());
        }
        map.retain(|_, ep| {
            Arc::strong_count(ep) > 1 || ep.idle_for() < config.endpoint_idle_timeout
        });
        if over(map) {
            return Err(Failure::TooManyConnections);
        }
        Ok(())
    }

    /// Pings `address` on its shared connection and reads `INFO`, for `/health`. Never
    /// waits on a server already known to be down.
    pub async fn health(&self, address: &str) -> Health {
        let down = |error: String| Health {
            error: Some(error),
            ..Health::default()
        };
        let ep = match self.endpoint(address) {
            Ok(ep) => ep,
            Err(f) => return down(failure_text(&f)),
        };
        let start = Instant::now();
        if let Err(f) = ep.run(&redis::cmd("PING"), Blocking::No).await {
            return down(failure_text(&f));
        }
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut health = Health {
            connected: true,
            latency_ms,
            ..Health::default()
        };
        let info = match ep.run(&redis::cmd("INFO"), Blocking::No).await {
            Ok(Value::BulkString(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            Ok(Value::VerbatimString { text, .. } | Value::SimpleString(text)) => Some(text),
            _ => None,
        };
        if let Some(info) = info {
            for line in info.lines() {
                let Some((k, v)) = line.trim().split_once(':') else {
                    continue;
                };
                match k {
                    "redis_version" => health.version = Some(v.to_string()),
                    "used_memory" => health.used_memory = v.parse().ok(),
                    "connected_clients" => health.connected_clients = v.parse().ok(),
                    "uptime_in_seconds" => health.uptime_s = v.parse().ok(),
                    _ => {}
                }
            }
        }
        health
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RedisStats {
        let c = &self.shared.counters;
        let map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let host = self.host();
        let admin_down = host.as_ref().is_some_and(|h| h.admin.down.load(Relaxed));
        RedisStats {
            scripts_killed: c.scripts_killed.load(Relaxed),
            scripts_unkillable: c.scripts_unkillable.load(Relaxed),
            commands: c.commands.load(Relaxed),
            errors: c.errors.load(Relaxed),
            denied: c.denied.load(Relaxed),
            unavailable: c.unavailable.load(Relaxed),
            blocking_in_use: c.blocking_in_use.load(Relaxed),
            endpoints: map.len() as u64 + u64::from(host.is_some()),
            connected: (host.is_some() || !map.is_empty())
                && !admin_down
                && map.values().all(|ep| !ep.down.load(Relaxed)),
        }
    }

    /// The counters in the Prometheus text format (appended to the host's `/metrics`).
    pub fn render_metrics(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        series(
            "redwasm_redis_commands_total",
            "counter",
            "Commands components sent to Redis.",
            s.commands,
        );
        series(
            "redwasm_redis_errors_total",
            "counter",
            "Redis calls that returned an error to a component.",
            s.errors,
        );
        series(
            "redwasm_redis_denied_total",
            "counter",
            "Redis calls refused by the sandbox or allowed_outbound_hosts.",
            s.denied,
        );
        series(
            "redwasm_redis_unavailable_total",
            "counter",
            "Redis calls failed fast because the server was marked down.",
            s.unavailable,
        );
        series(
            "redwasm_redis_blocking_connections_in_use",
            "gauge",
            "Dedicated connections running a blocking command.",
            s.blocking_in_use,
        );
        series(
            "redwasm_redis_endpoints",
            "gauge",
            "Redis endpoints (address and user) the process holds connections for.",
            s.endpoints,
        );
        series(
            "redwasm_redis_scripts_killed_total",
            "counter",
            "Scripts stopped by the host's watchdog after their time limit.",
            s.scripts_killed,
        );
        series(
            "redwasm_redis_scripts_unkillable_total",
            "counter",
            "Scripts past their time limit that Redis could not kill (they had written).",
            s.scripts_unkillable,
        );
        series(
            "redwasm_redis_connected",
            "gauge",
            "1 when every Redis address in use is reachable.",
            u64::from(s.connected),
        );
        out
    }
}

/// One Redis address: its shared connection, idle blocking connections and breaker.
pub(crate) struct Endpoint {
    /// The address with any password masked, for logs and errors.
    display: String,
    client: redis::Client,
    shared: Arc<Shared>,
    /// The component whose endpoint this is (`None`: the host's admin endpoint).
    owner: Option<Arc<str>>,
    /// The component's ACL user, re-created on the server before every reconnect probe (a
    /// restarted Redis has forgotten it).
    acl: Option<AclHook>,
    /// An address other than the host's Redis.
    foreign: bool,
    manager: Mutex<Option<ConnectionManager>>,
    down: AtomicBool,
    probing: AtomicBool,
    last_error: Mutex<String>,
    idle_blocking: Mutex<Vec<MultiplexedConnection>>,
    /// When a guest last used the endpoint: a probe stops after [`PROBE_IDLE_LIMIT`] without
    /// callers (an address nobody uses, e.g. one with a wrong password, should not be
    /// dialled four times a second forever); the next call restarts it.
    last_used: Mutex<Instant>,
}

/// What an endpoint authenticated as a component's ACL user needs to re-create that user.
struct AclHook {
    admin: Arc<Endpoint>,
    user: AclUser,
}

/// Creates `user` through `admin`, then checks that it can log in.
async fn create_user(
    admin: &Arc<Endpoint>,
    host: &redis::ConnectionInfo,
    user: &mut AclUser,
) -> Result<(), String> {
    // A rule naming a command this server does not know (e.g. `client|setinfo` before Redis
    // 7.2) fails the whole SETUSER; without the command there is nothing to allow or deny,
    // so the rule is dropped and the rest applied.
    let mut attempts = 0;
    loop {
        match admin.run(&user.setuser(), Blocking::No).await {
            Ok(_) => break,
            Err(Failure::Redis(e)) if attempts < 16 => {
                let text = e.to_string();
                let unknown = text
                    .contains("Unknown command")
                    .then(|| {
                        user.rules
                            .iter()
                            .position(|r| text.contains(&format!("'{r}'")))
                    })
                    .flatten();
                match unknown {
                    Some(i) => {
                        tracing::debug!(rule = %user.rules[i], "ACL rule unknown to this Redis; dropped");
                        user.rules.remove(i);
                        attempts += 1;
                    }
                    None => return Err(text),
                }
            }
            Err(f) => return Err(failure_text(&f)),
        }
    }
    let settings = host
        .redis_settings()
        .clone()
        .set_username(&user.name)
        .set_password(&user.password);
    let info = host.clone().set_redis_settings(settings);
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    let client = open_client(info, tls, admin.shared.config.tls_ca_cert.as_deref())
        .map_err(|f| failure_text(&f))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(admin.shared.config.connect_timeout))
        .set_response_timeout(Some(admin.shared.config.response_timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("log in as {}: {e}", user.name))?;
    redis::cmd("PING")
        .query_async::<Value>(&mut conn)
        .await
        .map_err(|e| format!("PING as {}: {e}", user.name))?;
    Ok(())
}

/// See [`Endpoint::last_used`].
const PROBE_IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Gives the permit back and keeps the in-use gauge right even when the guest's call is
/// cancelled mid-command.
struct BlockingSlot<'a> {
    _permit: tokio::sync::OwnedSemaphorePermit,
    counters: &'a Counters,
}

impl Drop for BlockingSlot<'_> {
    fn drop(&mut self) {
        self.counters.blocking_in_use.fetch_sub(1, Relaxed);
    }
}

/// A redis-rs client for `info`; TLS connections trust only `ca_cert` when given (else the
/// system's roots).
fn open_client(
    info: redis::ConnectionInfo,
    tls: bool,
    ca_cert: Option<&std::path::Path>,
) -> Result<redis::Client, Failure> {
    let invalid = |e: redis::RedisError| Failure::InvalidAddress(e.to_string());
    match ca_cert {
        Some(path) if tls => {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::InvalidAddress(format!(
                    "cannot read the CA certificate {} ({REDIS_CA_CERT_ENV}): {e}",
                    path.display()
                ))
            })?;
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(invalid)
        }
        _ => redis::Client::open(info).map_err(invalid),
    }
}

/// Connection-level failures (refused, reset, timed out, bad handshake) open the breaker;
/// server error replies do not.
fn is_connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error()
}

pub(crate) fn failure_text(f: &Failure) -> String {
    match f {
        Failure::InvalidAddress(e) => format!("invalid address: {e}"),
        Failure::TooManyConnections => "too many connections".into(),
        Failure::Unavailable(e) => format!("redis unavailable: {e}"),
        Failure::Redis(e) => e.to_string(),
        Failure::ReplyTooLarge(size, max) => {
            format!("reply too large: {size} bytes exceeds the limit of {max} bytes")
        }
        Failure::ScriptKilled(limit) => format!(
            "script killed: it ran longer than the limit of {} ms",
            limit.as_millis()
        ),
        Failure::ScriptUnkillable(limit) => format!(
            "script ran longer than the limit of {} ms and cannot be killed (it wrote); the \
             server is busy until it ends",
            limit.as_millis()
        ),
    }
}

impl Endpoint {
    fn manager_config(&self) -> ConnectionManagerConfig {
        let c = &self.shared.config;
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(c.connect_timeout))
            .set_response_timeout(Some(c.response_timeout))
            .set_min_delay(c.reconnect_min_delay)
            .set_max_delay(c.reconnect_max_delay)
            .set_number_of_retries(c.reconnect_retries)
    }

    fn manager(&self) -> Result<ConnectionManager, Failure> {
        let mut slot = self.manager.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        // Lazy: the first command connects, so creating an endpoint never blocks.
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config())
            .map_err(Failure::Redis)?;
        *slot = Some(m.clone());
        Ok(m)
    }

    /// Fails at once when the endpoint is marked down (making sure a probe is running).
    pub(crate) fn check_up(self: &Arc<Self>) -> Result<(), Failure> {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if self.down.load(Relaxed) {
            self.ensure_probe();
            self.shared.counters.unavailable.fetch_add(1, Relaxed);
            let last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            return Err(Failure::Unavailable(format!("{}: {last}", self.display)));
        }
        Ok(())
    }

    /// Marks the endpoint down and makes sure a probe is running.
    fn trip(self: &Arc<Self>, error: &redis::RedisError) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error.to_string();
        if !self.down.swap(true, Relaxed) {
            tracing::warn!(address = %self.display, %error, "redis unavailable; failing calls fast until it answers");
            // Their sockets went to the server that just failed.
            self.idle_blocking
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        self.ensure_probe();
    }

    fn ensure_probe(self: &Arc<Self>) {
        if !self.probing.swap(true, Relaxed) {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(probe_loop(Arc::downgrade(self)));
                }
                // Without a runtime nobody could await a command either; stay consistent.
                Err(_) => self.probing.store(false, Relaxed),
            }
        }
    }

    /// The pool's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// How long since a guest last used the endpoint.
    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Whether commands here run as a component's own ACL user (so its scripts are confined).
    pub(crate) fn confined(&self) -> bool {
        self.acl.is_some()
    }

    /// Whether this is an address other than the host's Redis.
    pub(crate) fn is_foreign(&self) -> bool {
        self.foreign
    }

    /// One probe: the component's ACL user re-created (a restarted server forgot it), a
    /// fresh manager (the old one may hold a failed connection future it will never retry,
    /// e.g. after a rejected password) and a `PING`.
    async fn probe(&self) -> Result<(), String> {
        let c = &self.shared.config;
        if let Some(hook) = &self.acl {
            let mut admin = hook.admin.dedicated_connection_plain().await?;
            tokio::time::timeout(
                c.response_timeout,
                hook.user.setuser().query_async::<Value>(&mut admin),
            )
            .await
            .map_err(|_| "ACL SETUSER timed out".to_string())?
            .map_err(|e| format!("re-create the ACL user {}: {e}", hook.user.name))?;
        }
        let fresh =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config())
                .map_err(|e| e.to_string())?;
        let mut conn = fresh.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(
            c.connect_timeout + c.response_timeout,
            ping.query_async::<Value>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => {
                *self.manager.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// A new connection of this endpoint's client with the ordinary timeouts, outside the
    /// breaker and the permits (for the host's own short commands: ACL SETUSER, SCRIPT KILL).
    pub(crate) async fn dedicated_connection_plain(&self) -> Result<MultiplexedConnection, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.shared.config.connect_timeout))
            .set_response_timeout(Some(self.shared.config.response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("{}: {e}", self.display))
    }

    /// Runs one command: ordinary ones on the shared connection, blocking ones on a dedicated
    /// connection. Enforces the breaker and the reply cap.
    pub(crate) async fn run(
        self: &Arc<Self>,
        cmd: &redis::Cmd,
        blocking: Blocking,
    ) -> Result<Value, Failure> {
        self.run_with(cmd, blocking, None).await
    }

    /// [`Endpoint::run`], where a blocking command first takes one of `component_permits`
    /// (the component's own share of blocking connections) and then a process-wide one.
    pub(crate) async fn run_with(
        self: &Arc<Self>,
        cmd: &redis::Cmd,
        blocking: Blocking,
        component_permits: Option<&Arc<Semaphore>>,
    ) -> Result<Value, Failure> {
        self.check_up()?;
        let value = match blocking {
            Blocking::No => {
                let mut conn = self.manager()?;
                match cmd.query_async::<Value>(&mut conn).await {
                    Ok(v) => v,
                    Err(e) if is_connection_failure(&e) => {
                        self.trip(&e);
                        return Err(Failure::Unavailable(format!("{}: {e}", self.display)));
                    }
                    Err(e) => return Err(Failure::Redis(e)),
                }
            }
            Blocking::Forever | Blocking::For(_) => {
                self.run_blocking(cmd, blocking, component_permits).await?
            }
        };
        let max = self.shared.config.max_reply_bytes;
        let size = reply_size(&value);
        if size > max {
            return Err(Failure::ReplyTooLarge(size, max));
        }
        Ok(value)
    }

    /// A connection of its own without a response timeout, for a reader the host keeps
    /// blocked for long (the SSE fan-out's `XREAD BLOCK`); the caller bounds each command.
    pub(crate) async fn long_blocking_connection(
        self: &Arc<Self>,
    ) -> Result<MultiplexedConnection, String> {
        self.dedicated_connection()
            .await
            .map_err(|f| failure_text(&f))
    }

    async fn dedicated_connection(self: &Arc<Self>) -> Result<MultiplexedConnection, Failure> {
        // No response timeout: the command itself may legitimately block for long; the
        // caller bounds it by the command's own timeout plus a margin.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.shared.config.connect_timeout))
            .set_response_timeout(None);
        match self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(c) => Ok(c),
            Err(e) if is_connection_failure(&e) => {
                self.trip(&e);
                Err(Failure::Unavailable(format!("{}: {e}", self.display)))
            }
            Err(e) => Err(Failure::Redis(e)),
        }
    }

    async fn run_blocking(
        self: &Arc<Self>,
        cmd: &redis::Cmd,
        blocking: Blocking,
        component_permits: Option<&Arc<Semaphore>>,
    ) -> Result<Value, Failure> {
        let c = &self.shared.config;
        let acquire = async {
            // The component's own share first: a component that uses all of it waits on
            // itself, and the process-wide permits stay free for the others.
            let own = match component_permits {
                Some(sem) => Some(sem.clone().acquire_owned().await.ok()?),
                None => None,
            };
            let global = self.shared.blocking.clone().acquire_owned().await.ok()?;
            Some((own, global))
        };
        let (_own_permit, permit) =
            match tokio::time::timeout(c.blocking_acquire_timeout, acquire).await {
                Ok(Some(permits)) => permits,
                _ => return Err(Failure::TooManyConnections),
            };
        self.shared.counters.blocking_in_use.fetch_add(1, Relaxed);
        let _slot = BlockingSlot {
            _permit: permit,
            counters: &self.shared.counters,
        };
        self.run_dedicated(cmd, blocking).await
    }

    /// `BLPOP key` for at most `limit` on a dedicated connection, outside the guests'
    /// blocking permits (the host's own triggers have their own connections). True when an
    /// element was popped.
    pub(crate) async fn block_on_list(self: &Arc<Self>, key: &str, limit: Duration) -> bool {
        if self.check_up().is_err() {
            return false;
        }
        let mut cmd = redis::cmd("BLPOP");
        cmd.arg(key).arg(limit.as_secs_f64().max(0.001));
        matches!(
            self.run_dedicated(&cmd, Blocking::For(limit)).await,
            Ok(Value::Array(_))
        )
    }

    /// Runs a blocking command on an idle (or new) dedicated connection of this endpoint.
    async fn run_dedicated(
        self: &Arc<Self>,
        cmd: &redis::Cmd,
        blocking: Blocking,
    ) -> Result<Value, Failure> {
        let c = &self.shared.config;

        let idle = self
            .idle_blocking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let (mut conn, mut reused) = match idle {
            Some(conn) => (conn, true),
            None => (self.dedicated_connection().await?, false),
        };
        loop {
            let started = Instant::now();
            let call = cmd.query_async::<Value>(&mut conn);
            let result = match blocking {
                Blocking::For(d) => match tokio::time::timeout(d + c.blocking_margin, call).await {
                    Ok(r) => r,
                    // The connection is mid-command: drop it rather than reuse it.
                    Err(_) => {
                        return Err(Failure::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "blocking command timed out",
                        ))));
                    }
                },
                _ => call.await,
            };
            match result {
                Ok(v) => {
                    self.keep_idle(conn);
                    return Ok(v);
                }
                // A pooled socket can be stale (the server restarted since); a failure right
                // away on it means the command never ran, so one retry on a fresh socket is
                // safe.
                Err(e)
                    if reused
                        && e.is_connection_dropped()
                        && started.elapsed() < Duration::from_millis(100) =>
                {
                    conn = self.dedicated_connection().await?;
                    reused = false;
                }
                Err(e) if is_connection_failure(&e) => {
                    self.trip(&e);
                    return Err(Failure::Unavailable(format!("{}: {e}", self.display)));
                }
                Err(e) => {
                    self.keep_idle(conn);
                    return Err(Failure::Redis(e));
                }
            }
        }
    }

    fn keep_idle(&self, conn: MultiplexedConnection) {
        let mut idle = self.idle_blocking.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.shared.config.max_blocking_connections {
            idle.push(conn);
        }
    }
}

async fn probe_loop(endpoint: Weak<Endpoint>) {
    loop {
        let Some(ep) = endpoint.upgrade() else { return };
        let interval = ep.shared.config.probe_interval;
        drop(ep);
        tokio::time::sleep(interval).await;
        let Some(ep) = endpoint.upgrade() else { return };
        let idle = ep
            .last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if !ep.down.load(Relaxed) || idle > PROBE_IDLE_LIMIT {
            ep.probing.store(false, Relaxed);
            return;
        }
        match ep.probe().await {
            Ok(()) => {
                // Clear `probing` first: a trip racing with us then starts a new probe
                // instead of leaving the endpoint down with nobody probing.
                ep.probing.store(false, Relaxed);
                ep.down.store(false, Relaxed);
                tracing::info!(address = %ep.display, "redis reachable again");
                return;
            }
            Err(error) => {
                *ep.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
            }
        }
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`, for logs.
pub(crate) fn redact(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{authority}"),
    };
    // Query strings may carry `pass=` (unix sockets): drop them.
    out.push_str(tail.split('?').next().unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("redis://u:p@h"), "redis://u:***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("redis+unix:///tmp/s?pass=x"), "redis+unix:///tmp/s");
    }

    #[test]
    fn tls_clients_read_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let open = |address: &str, ca: Option<&std::path::Path>| {
            let c = canonical(address).unwrap();
            open_client(c.info, c.tls, ca)
        };
        // Plain addresses never read it.
        assert!(open("redis://127.0.0.1:6379", Some(&missing)).is_ok());
        // `rediss://` does, and a missing file is a clear error, not a panic.
        match open("rediss://127.0.0.1:6379", Some(&missing)) {
            Err(Failure::InvalidAddress(e)) => assert!(e.contains("REDIS_CA_CERT"), "{e}"),
            other => panic!(
                "expected an invalid-address failure, got {:?}",
                other.map(|_| ())
            ),
        }
        // Without a CA file, `rediss://` uses the system roots.
        assert!(open("REDISS://127.0.0.1:6379", None).is_ok());
    }

    #[test]
    fn spellings_of_one_address_are_one_target() {
        let target = |a: &str| canonical(a).map(|c| (c.target, c.who)).unwrap();
        let base = target("redis://127.0.0.1:6379");
        for same in [
            "redis://127.0.0.1",
            "REDIS://127.0.0.1:6379/",
            "redis://127.0.0.1:6379/0",
            "redis://127.0.0.1:6379?",
        ] {
            assert_eq!(target(same), base, "{same}");
        }
        // Same server, another database or user: same target, other credentials.
        let (t, who) = target("redis://u:p@127.0.0.1:6379/5");
        assert_eq!(t, base.0);
        assert_ne!(who, base.1);
        assert!(
            !who.contains('p') || !who.contains("pass=p"),
            "no raw password: {who}"
        );
        let unix = target("redis+unix:///tmp//x/./redis.sock");
        assert_eq!(unix.0, "unix:///tmp/x/redis.sock");
    }

    #[test]
    fn renders_metrics() {
        let pool = RedisPool::new(RedisPoolConfig::default());
        let text = pool.render_metrics();
        assert!(text.contains("redwasm_redis_commands_total 0"));
        assert!(text.contains("redwasm_redis_connected 0"));
    }
}
