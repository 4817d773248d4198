//! Connections to Redis, shared by every component of the process.
//!
//! One [`Endpoint`] per distinct address string holds:
//! - a redis-rs [`ConnectionManager`]: one multiplexed, reconnecting connection that every
//!   ordinary command of every component pipelines onto (never a connection per request);
//! - a small stack of idle dedicated connections for blocking commands (BLPOP, XREAD BLOCK,
//!   ...), which would otherwise stall everybody's commands queued behind them on the shared
//!   connection. Their number is bounded process-wide by a semaphore;
//! - a circuit breaker: after a connection-level failure the endpoint is marked down, calls
//!   fail at once with `redis unavailable: ...` instead of each waiting out a connect
//!   timeout, and a background task probes the server every `probe_interval` until it
//!   answers again, then swaps in the fresh connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::Semaphore;

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
    /// Distinct Redis addresses the process keeps connections to.
    pub max_endpoints: usize,
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
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisPoolConfig {
        &self.shared.config
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The endpoint for `address`, created on first use.
    pub(crate) fn endpoint(&self, address: &str) -> Result<Arc<Endpoint>, Failure> {
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ep) = map.get(address) {
            return Ok(ep.clone());
        }
        if map.len() >= self.shared.config.max_endpoints {
            return Err(Failure::TooManyConnections);
        }
        let client = open_client(address, self.shared.config.tls_ca_cert.as_deref())?;
        let ep = Arc::new(Endpoint {
            display: redact(address),
            client,
            shared: self.shared.clone(),
            manager: Mutex::new(None),
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
            idle_blocking: Mutex::new(Vec::new()),
            last_used: Mutex::new(Instant::now()),
        });
        map.insert(address.to_string(), ep.clone());
        Ok(ep)
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
            Err(f) => return down(format!("{f:?}")),
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
        RedisStats {
            commands: c.commands.load(Relaxed),
            errors: c.errors.load(Relaxed),
            denied: c.denied.load(Relaxed),
            unavailable: c.unavailable.load(Relaxed),
            blocking_in_use: c.blocking_in_use.load(Relaxed),
            endpoints: map.len() as u64,
            connected: !map.is_empty() && map.values().all(|ep| !ep.down.load(Relaxed)),
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

/// A redis-rs client for `address`; `rediss://` addresses trust only `ca_cert` when given
/// (else the system's roots).
fn open_client(address: &str, ca_cert: Option<&std::path::Path>) -> Result<redis::Client, Failure> {
    let invalid = |e: redis::RedisError| Failure::InvalidAddress(e.to_string());
    let tls = address
        .get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"));
    match ca_cert {
        Some(path) if tls => {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::InvalidAddress(format!(
                    "cannot read the CA certificate {} ({REDIS_CA_CERT_ENV}): {e}",
                    path.display()
                ))
            })?;
            redis::Client::build_with_tls(
                address,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(invalid)
        }
        _ => redis::Client::open(address).map_err(invalid),
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

    /// One probe: a fresh manager (the old one may hold a failed connection future it will
    /// never retry, e.g. after a rejected password) and a `PING`.
    async fn probe(&self) -> Result<(), String> {
        let c = &self.shared.config;
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

    /// Runs one command: ordinary ones on the shared connection, blocking ones on a dedicated
    /// connection. Enforces the breaker and the reply cap.
    pub(crate) async fn run(
        self: &Arc<Self>,
        cmd: &redis::Cmd,
        blocking: Blocking,
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
            Blocking::Forever | Blocking::For(_) => self.run_blocking(cmd, blocking).await?,
        };
        let max = self.shared.config.max_reply_bytes;
        let size = reply_size(&value);
        if size > max {
            return Err(Failure::ReplyTooLarge(size, max));
        }
        Ok(value)
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
    ) -> Result<Value, Failure> {
        let c = &self.shared.config;
        let permit = match tokio::time::timeout(
            c.blocking_acquire_timeout,
            self.shared.blocking.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(Failure::TooManyConnections),
        };
        self.shared.counters.blocking_in_use.fetch_add(1, Relaxed);
        let _slot = BlockingSlot {
            _permit: permit,
            counters: &self.shared.counters,
        };

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
        // Plain addresses never read it.
        assert!(open_client("redis://127.0.0.1:6379", Some(&missing)).is_ok());
        // `rediss://` does, and a missing file is a clear error, not a panic.
        match open_client("rediss://127.0.0.1:6379", Some(&missing)) {
            Err(Failure::InvalidAddress(e)) => assert!(e.contains("REDIS_CA_CERT"), "{e}"),
            other => panic!(
                "expected an invalid-address failure, got {:?}",
                other.map(|_| ())
            ),
        }
        // Without a CA file, `rediss://` uses the system roots.
        assert!(open_client("REDISS://127.0.0.1:6379", None).is_ok());
    }

    #[test]
    fn renders_metrics() {
        let pool = RedisPool::new(RedisPoolConfig::default());
        let text = pool.render_metrics();
        assert!(text.contains("redwasm_redis_commands_total 0"));
        assert!(text.contains("redwasm_redis_connected 0"));
    }
}
