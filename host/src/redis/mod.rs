//! Redis for guests: `fermyon:spin/redis@2.0.0` (WASIp2 components) and
//! `spin:redis/redis@3.0.0` (WASIp3 components), on connections shared by the whole process.
//!
//! # Pieces
//! - [`RedisPool`] (one per process, in an `Arc`): the host's own Redis
//!   ([`RedisPool::set_host_redis`]) with an admin connection and one reconnecting
//!   multiplexed connection per sandboxed component (authenticated as that component's ACL
//!   user), endpoints for other allowed addresses, a bounded set of dedicated connections for
//!   blocking commands (`BLPOP`, `XREAD BLOCK`, `WAIT`, ...), a circuit breaker per endpoint,
//!   a reply-size cap, counters ([`RedisPool::stats`], [`RedisPool::render_metrics`]) and
//!   [`RedisPool::health`]. Never a connection per request.
//! - [`RedisCtx`] (one per component; [`RedisCtx::for_store`] per store): the component's
//!   `allowed_outbound_hosts`, its key-namespace sandbox, its [`RedisLimits`] and per-call
//!   budget.
//! - [`Connection`]: what a guest's `connection` resource holds; its methods are the whole
//!   Redis API as plain async Rust (the WIT bindings in `v2.rs`/`v3.rs` only adapt types).
//! - [`add_to_linker`]: adds both interfaces to a linker.
//! - `acl.rs`: the per-component ACL users; `watchdog.rs`: the script time limit;
//!   `sandbox.rs`: the command rewriter and the per-command limits.
//!
//! `Connection::open(address)` does not open anything: it checks the address against the
//! component's `allowed_outbound_hosts` (refused: `invalid-address`, logged) and hands out the
//! component's connection for that address. On the host's Redis (in any spelling) the host's
//! database and the component's ACL user are used, whatever user or database the address
//! names.
//!
//! # The key-namespace sandbox
//! On by default: every key a component names is prefixed with `<component-id>:`, so
//! components sharing a Redis cannot read or clobber each other's keys. The typed functions
//! prefix their keys; `execute` rewrites the arguments at the command's key positions from a
//! table of commands (first key, all arguments, alternating, `numkeys`, two keys, keys then a
//! timeout, `STREAMS`, `SORT` patterns, ...), and strips the prefix from key names in replies
//! (`BLPOP`/`BZPOPMIN`/`LMPOP`/`ZMPOP` keys, `XREAD` stream names, `SCAN` results). Pub/sub
//! channel names (`PUBLISH`) are prefixed too. `SCAN` is forced to `MATCH <prefix><pattern>`
//! and runs on the host's connection (the component's user may not `SCAN`). Commands not in
//! the table are refused (`other("denied: ...")`), as are commands that escape the namespace
//! or administer the server (`KEYS`, `FLUSHALL`, `CONFIG`, `RANDOMKEY`, `SELECT`, `MOVE`,
//! `MIGRATE`, `RESTORE`, `SCRIPT FLUSH`, `FUNCTION`, ...).
//!
//! Lua scripts (`EVAL`, `FCALL`) get their declared keys prefixed, and are confined by Redis
//! itself: each sandboxed component runs as its own ACL user (`~<prefix>* &<prefix>*`, no
//! dangerous or administrative commands; see `acl.rs`), so a key the script builds outside
//! the prefix is refused inside Redis. When the users cannot be created (a Redis the host
//! may not administer, `redis_acl = "off"`), the sandbox is degraded, scripts are not
//! confined, and [`RedisPool::sandbox_status`] (`/health`) says so. A script running past
//! [`RedisPoolConfig::script_time_limit`] is killed from the host's connection.
//!
//! Whether or not the sandbox is on, commands that would change the state of a shared
//! connection (`SELECT`, `MULTI`/`EXEC`/`WATCH`, `SUBSCRIBE`, `CLIENT`, `AUTH`, `HELLO`,
//! `QUIT`, `RESET`, `MONITOR`) are refused; use `EVAL` for atomic multi-key updates. The
//! per-command limits ([`RedisLimits`]: write size, `SETRANGE`/`SETBIT`/`BITFIELD` offsets,
//! `WAIT` timeouts, blocking connections, commands and bytes per call) apply either way.
//!
//! # Errors
//! Guest-visible errors are the WIT `error` variant ([`RedisError`]): refusals, server errors,
//! outages, timeouts, killed scripts and oversized replies never trap. Traps are reserved for
//! host bugs (e.g. a resource handle that is not in the table).
//!
//! # Memory
//! The reply cap ([`RedisPoolConfig::max_reply_bytes`], 8 MiB by default) is checked after
//! redis-rs has parsed the reply, which it cannot stream. A Redis the host owns is started with
//! `client-output-buffer-limit normal` just above the cap, so the server drops a client
//! before sending it a larger reply (only that component's connection); on another Redis the
//! operator sets it (README, "The Redis sandbox").

mod acl;
mod allowed;
mod pool;
mod reply;
mod sandbox;
mod v2;
mod v3;
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Semaphore;

use wasmtime::component::{HasData, Linker, ResourceTable};

pub use acl::AclMode;
pub use pool::{Health, REDIS_CA_CERT_ENV, RedisPool, RedisPoolConfig, RedisStats, SandboxStatus};

use allowed::{AllowedHosts, parse_address};
pub(crate) use pool::Endpoint;
pub(crate) use pool::failure_text;
use pool::{Failure, redact};
pub(crate) use sandbox::Blocking;

/// Checks a read grant's key pattern (see [`RedisCtx::with_read_grants`]); the message
/// says what is wrong.
pub fn validate_grant_pattern(pattern: &str) -> Result<(), String> {
    sandbox::validate_grant_pattern(pattern)
}
use sandbox::{Limits, ReplyRewrite};

/// A guest-visible Redis error (the WIT `error` variant of both interface versions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// The address does not parse, or `allowed_outbound_hosts` does not allow it.
    #[error("invalid address")]
    InvalidAddress,
    /// No dedicated connection for a blocking command became free in time (or too many
    /// distinct addresses are in use).
    #[error("too many connections")]
    TooManyConnections,
    /// A value was not of the type the function returns, or the key holds the wrong type.
    #[error("type error")]
    TypeError,
    /// Anything else: `denied: ...`, `redis unavailable: ...`, server errors, timeouts,
    /// `reply too large: ...`.
    #[error("{0}")]
    Other(String),
}

/// An argument of [`Connection::execute`] (the WIT `redis-parameter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisParam {
    /// Sent as its decimal text.
    Int64(i64),
    /// Sent as is.
    Binary(Vec<u8>),
}

/// One element of [`Connection::execute`]'s flattened reply (the WIT `redis-result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisValue {
    /// A nil reply.
    Nil,
    /// A status reply (`OK`, `QUEUED`, ...).
    Status(String),
    /// An integer reply.
    Int64(i64),
    /// A bulk string.
    Binary(Vec<u8>),
}

/// What one component may do to Redis, besides where its keys live. [`Default`] gives the
/// production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisLimits {
    /// Largest single command (sum of its argument bytes), and the largest string
    /// `SETRANGE`/`SETBIT`/`BITFIELD` offsets may reach. Default 8 MiB.
    pub max_write_bytes: usize,
    /// Longest `WAIT`/`WAITAOF` timeout (`0`, forever, is clamped too). Default 1 s.
    pub max_wait: Duration,
    /// Dedicated connections for blocking commands the component may hold at once, out of
    /// the process-wide [`RedisPoolConfig::max_blocking_connections`]. Default 4.
    pub max_blocking: usize,
    /// Redis commands one call (HTTP request, embedded call) may send. Default 10 000.
    pub max_commands_per_call: u64,
    /// Bytes one call may move (arguments sent plus replies received). Default 64 MiB.
    pub max_bytes_per_call: u64,
}

impl Default for RedisLimits {
    fn default() -> Self {
        let limits = Limits::default();
        RedisLimits {
            max_write_bytes: limits.max_write_bytes,
            max_wait: limits.max_wait,
            max_blocking: 4,
            max_commands_per_call: 10_000,
            max_bytes_per_call: 64 * 1024 * 1024,
        }
    }
}

/// Commands and bytes used by the current call of one store.
#[derive(Debug, Default)]
struct CallBudget {
    commands: AtomicU64,
    bytes: AtomicU64,
}

/// One component's Redis settings: its allow-list, its key prefix and its limits. Cheap to
/// clone; [`RedisCtx::for_store`] gives each store its own per-call budget.
#[derive(Clone)]
pub struct RedisCtx {
    pool: Arc<RedisPool>,
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    /// `Some(prefix)` when the sandbox is on.
    prefix: Option<Arc<[u8]>>,
    /// Read-only views of other components' streams ([`RedisCtx::with_read_grants`]).
    grants: Arc<[sandbox::ReadGrant]>,
    limits: Arc<RedisLimits>,
    /// The component's share of blocking connections (all its stores share it).
    blocking: Arc<Semaphore>,
    budget: Arc<CallBudget>,
}

impl std::fmt::Debug for RedisCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCtx")
            .field("component", &self.component)
            .field("prefix", &self.prefix().map(String::from))
            .finish_non_exhaustive()
    }
}

impl RedisCtx {
    /// The context of component `component_id`: `allowed_outbound_hosts` as in the manifest
    /// (templates already resolved; non-Redis entries are ignored), and with `sandbox` its
    /// keys confined to the prefix `<component_id>:`.
    pub fn new(
        pool: Arc<RedisPool>,
        component_id: &str,
        allowed_outbound_hosts: &[String],
        sandbox: bool,
    ) -> anyhow::Result<Self> {
        let prefix = sandbox.then(|| format!("{component_id}:"));
        Self::with_prefix(
            pool,
            component_id,
            allowed_outbound_hosts,
            prefix.as_deref(),
        )
    }

    /// Like [`RedisCtx::new`] with an explicit key prefix (`None`: no sandbox). The prefix
    /// must not be empty nor contain `{` or `}`.
    pub fn with_prefix(
        pool: Arc<RedisPool>,
        component_id: &str,
        allowed_outbound_hosts: &[String],
        prefix: Option<&str>,
    ) -> anyhow::Result<Self> {
        if let Some(prefix) = prefix {
            sandbox::validate_prefix(prefix).map_err(anyhow::Error::msg)?;
        }
        let allowed = AllowedHosts::parse(allowed_outbound_hosts).map_err(anyhow::Error::msg)?;
        let limits = RedisLimits::default();
        Ok(RedisCtx {
            pool,
            component: component_id.into(),
            allowed: Arc::new(allowed),
            prefix: prefix.map(|p| Arc::from(p.as_bytes())),
            grants: Arc::from(Vec::new()),
            blocking: Arc::new(Semaphore::new(limits.max_blocking)),
            limits: Arc::new(limits),
            budget: Arc::default(),
        })
    }

    /// The same context with `limits` (a new share of blocking connections).
    pub fn with_limits(mut self, limits: RedisLimits) -> Self {
        self.blocking = Arc::new(Semaphore::new(limits.max_blocking.max(1)));
        self.limits = Arc::new(limits);
        self
    }

    /// The same context with read-only views of other components' streams: each grant is
    /// `(owner prefix, key pattern)`, the pattern literal text and `*` (e.g. `q{*}:ev`).
    /// A stream read (`XRANGE`, `XREVRANGE`, `XLEN`, `XINFO STREAM`, `XREAD`) of a key
    /// matching a pattern reads the owner's key; every other command, and every other key,
    /// stays in the component's own namespace. On the host's Redis the component's ACL user
    /// also gets `%R~<owner prefix><pattern>`, so its scripts can read those keys and
    /// nothing can write them. Needs the sandbox (a component without one reads any key).
    pub fn with_read_grants(mut self, grants: &[(String, String)]) -> anyhow::Result<Self> {
        if grants.is_empty() {
            return Ok(self);
        }
        let Some(prefix) = self.prefix().map(str::to_string) else {
            return Ok(self);
        };
        let mut parsed = Vec::new();
        let mut acl = Vec::new();
        for (owner_prefix, pattern) in grants {
            sandbox::validate_grant_pattern(pattern).map_err(anyhow::Error::msg)?;
            if !owner_prefix.is_empty() {
                sandbox::validate_prefix(owner_prefix).map_err(anyhow::Error::msg)?;
            }
            acl.push(format!("{owner_prefix}{pattern}"));
            parsed.push(sandbox::ReadGrant {
                pattern: pattern.as_bytes().to_vec(),
                owner_prefix: owner_prefix.as_bytes().to_vec(),
            });
        }
        self.pool.set_read_patterns(&prefix, acl);
        self.grants = Arc::from(parsed);
        Ok(self)
    }

    /// Where stream `key`, as the component names it, lives in Redis: under the owner's
    /// prefix when a read grant matches, else under the component's own (the SSE fan-out
    /// follows this key).
    pub fn stream_key(&self, key: &str) -> String {
        let Some(prefix) = self.prefix() else {
            return key.to_string();
        };
        match self
            .grants
            .iter()
            .find(|g| sandbox::grant_matches(&g.pattern, key.as_bytes()))
        {
            Some(grant) => format!("{}{key}", String::from_utf8_lossy(&grant.owner_prefix)),
            None => format!("{prefix}{key}"),
        }
    }

    /// The component's limits.
    pub fn limits(&self) -> &RedisLimits {
        &self.limits
    }

    /// A copy for one store: same component, its own per-call budget.
    pub fn for_store(&self) -> Self {
        RedisCtx {
            budget: Arc::default(),
            ..self.clone()
        }
    }

    /// Starts a new call (request, embedded call, job): the per-call budget is full again.
    pub fn begin_call(&self) {
        self.budget.commands.store(0, Relaxed);
        self.budget.bytes.store(0, Relaxed);
    }

    /// The key prefix, when the sandbox is on.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix
            .as_deref()
            .map(|p| std::str::from_utf8(p).unwrap_or_default())
    }

    /// The shared pool.
    pub fn pool(&self) -> &Arc<RedisPool> {
        &self.pool
    }

    /// `Connection::open(address)`: checks `address` against the allow-list and hands out
    /// the shared connection for it. Fails fast when the address is known to be down.
    pub fn open(&self, address: &str) -> Result<Connection, RedisError> {
        let counters = self.pool.counters();
        let target = match parse_address(address) {
            Ok(t) => t,
            Err(reason) => {
                tracing::warn!(component = %self.component, %reason, "redis: invalid address");
                counters
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(RedisError::InvalidAddress);
            }
        };
        if !self.allowed.allows(&target) {
            tracing::warn!(
                component = %self.component,
                address = %redact(address),
                "redis: address not in allowed_outbound_hosts"
            );
            counters
                .denied
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(RedisError::InvalidAddress);
        }
        self.connect(address)
    }

    /// The component's connection to `address` (already admitted), failing fast when it is
    /// known to be down.
    fn connect(&self, address: &str) -> Result<Connection, RedisError> {
        let endpoint = self
            .pool
            .endpoint_for(&self.component, self.prefix(), address)
            .and_then(|ep| ep.check_up().map(|()| ep));
        match endpoint {
            Ok(endpoint) => Ok(Connection {
                endpoint,
                ctx: self.clone(),
            }),
            Err(f) => Err(self.failed(f)),
        }
    }

    /// A connection to `address` (the host's Redis when `None`) that the host's configuration
    /// chose, not the guest: no allow-list check. Keys stay in the component's namespace.
    pub fn open_configured(&self, address: Option<&str>) -> Result<Connection, RedisError> {
        let address = match address {
            Some(address) => address.to_string(),
            None => self
                .pool
                .host_address()
                .ok_or_else(|| RedisError::Other("the host has no Redis configured".to_string()))?,
        };
        self.connect(&address)
    }

    /// The component's id.
    pub fn component(&self) -> &str {
        &self.component
    }

    fn failed(&self, failure: Failure) -> RedisError {
        self.pool.counters().errors.fetch_add(1, Relaxed);
        match failure {
            Failure::InvalidAddress(_) => RedisError::InvalidAddress,
            Failure::TooManyConnections => RedisError::TooManyConnections,
            other => RedisError::Other(failure_text(&other)),
        }
    }
}

/// An open Redis connection as a guest sees it: the shared connection for one address, seen
/// through the component's sandbox. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    endpoint: Arc<Endpoint>,
    ctx: RedisCtx,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("component", &self.ctx.component)
            .finish_non_exhaustive()
    }
}

fn to_bytes(params: Vec<RedisParam>) -> Vec<Vec<u8>> {
    params
        .into_iter()
        .map(|p| match p {
            RedisParam::Int64(i) => i.to_string().into_bytes(),
            RedisParam::Binary(b) => b,
        })
        .collect()
}

impl Connection {
    fn deny(&self, name: &str, reason: impl std::fmt::Display) -> RedisError {
        tracing::warn!(component = %self.ctx.component, command = %name, %reason, "redis: command denied");
        self.ctx.pool.counters().denied.fetch_add(1, Relaxed);
        RedisError::Other(format!("denied: {reason}"))
    }

    /// Counts `bytes` against the call's budget; refuses once it is spent.
    fn charge_bytes(&self, name: &str, bytes: u64) -> Result<(), RedisError> {
        let max = self.ctx.limits.max_bytes_per_call;
        if self.ctx.budget.bytes.fetch_add(bytes, Relaxed) + bytes > max {
            return Err(self.deny(
                name,
                format!("budget: more than {max} bytes sent and received in one call"),
            ));
        }
        Ok(())
    }

    /// Sandbox, route and run one command; the reply comes back with key names un-prefixed.
    async fn call(&self, command: &str, args: Vec<Vec<u8>>) -> Result<redis::Value, RedisError> {
        let name = command.to_ascii_uppercase();
        let checked = match &self.ctx.prefix {
            Some(prefix) => sandbox::rewrite(prefix, &name, args),
            None => sandbox::check_unsandboxed(&name).map(|()| sandbox::Rewritten {
                args,
                reply: ReplyRewrite::None,
                on_host: false,
            }),
        };
        let mut rewritten = checked.map_err(|denied| self.deny(&name, denied))?;
        let granted = match &self.ctx.prefix {
            Some(prefix) if !self.ctx.grants.is_empty() => {
                sandbox::apply_read_grants(prefix, &self.ctx.grants, &name, &mut rewritten.args)
            }
            _ => false,
        };
        let limits = &self.ctx.limits;
        sandbox::enforce_limits(
            &name,
            &mut rewritten.args,
            &Limits {
                max_write_bytes: limits.max_write_bytes,
                max_wait: limits.max_wait,
            },
        )
        .map_err(|denied| self.deny(&name, denied))?;
        let script = watchdog::script_kind(&name);
        // A script runs with the rights of the connection's Redis user. Where that is not the
        // component's own ACL user (another Redis than the host's), nothing would confine it.
        if script.is_some()
            && self.ctx.prefix.is_some()
            && !self.endpoint.confined()
            && self.ctx.pool.scripts_confined()
        {
            return Err(self.deny(
                &name,
                format!(
                    "{name}: scripts run only on the host's Redis, where the component's ACL \
                     user confines them"
                ),
            ));
        }
        let sent: u64 = rewritten.args.iter().map(|a| a.len() as u64).sum();
        let budget = &self.ctx.budget;
        let commands = budget.commands.fetch_add(1, Relaxed) + 1;
        if commands > limits.max_commands_per_call {
            return Err(self.deny(
                &name,
                format!(
                    "budget: more than {} Redis commands in one call",
                    limits.max_commands_per_call
                ),
            ));
        }
        self.charge_bytes(&name, sent)?;

        let blocking = sandbox::blocking(&name, &rewritten.args);
        let mut cmd = redis::cmd(&name);
        for arg in &rewritten.args {
            cmd.arg(arg.as_slice());
        }
        self.ctx.pool.counters().commands.fetch_add(1, Relaxed);
        // The component's user may not SCAN (a script could list every key with it); the
        // rewrite confined this one, so the host runs it with its own credentials.
        let endpoint = match rewritten.on_host && self.endpoint.confined() {
            true => self
                .ctx
                .pool
                .admin()
                .unwrap_or_else(|| self.endpoint.clone()),
            false => self.endpoint.clone(),
        };
        let run = endpoint.run_with(&cmd, blocking, Some(&self.ctx.blocking));
        let result = match script {
            Some(kind) => {
                let killer = match (endpoint.is_foreign(), self.ctx.pool.admin()) {
                    (false, Some(admin)) => admin,
                    _ => endpoint.clone(),
                };
                watchdog::guard(
                    run,
                    killer,
                    kind,
                    self.ctx.pool.config().script_time_limit,
                    &self.ctx.component,
                )
                .await
            }
            None => run.await,
        };
        let mut value = result.map_err(|f| self.ctx.failed(f))?;
        self.charge_bytes(&name, reply::reply_size(&value) as u64)?;
        if let Some(prefix) = &self.ctx.prefix {
            sandbox::strip_reply(prefix, rewritten.reply, &mut value);
        }
        if granted && rewritten.reply == ReplyRewrite::Streams {
            sandbox::strip_granted_streams(&self.ctx.grants, &mut value);
        }
        Ok(value)
    }

    fn type_error(&self) -> RedisError {
        self.ctx
            .pool
            .counters()
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RedisError::TypeError
    }

    /// The typed functions report a key of the wrong type as `type-error` (`execute` keeps
    /// the server's message).
    async fn typed_call(
        &self,
        command: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<redis::Value, RedisError> {
        match self.call(command, args).await {
            Err(RedisError::Other(msg))
                if msg.contains("WRONGTYPE") || msg.contains("not an integer") =>
            {
                Err(RedisError::TypeError)
            }
            other => other,
        }
    }

    fn integer(&self, value: redis::Value) -> Result<i64, RedisError> {
        match value {
            redis::Value::Int(i) => Ok(i),
            _ => Err(self.type_error()),
        }
    }

    fn count(&self, value: redis::Value) -> Result<u32, RedisError> {
        let n = self.integer(value)?;
        u32::try_from(n).map_err(|_| self.type_error())
    }

    /// `PUBLISH channel payload` (the channel is namespaced like a key).
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), RedisError> {
        self.typed_call("PUBLISH", vec![channel.as_bytes().to_vec(), payload])
            .await
            .map(drop)
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RedisError> {
        match self
            .typed_call("GET", vec![key.as_bytes().to_vec()])
            .await?
        {
            redis::Value::Nil => Ok(None),
            redis::Value::BulkString(b) => Ok(Some(b)),
            _ => Err(self.type_error()),
        }
    }

    /// `SET key value`.
    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), RedisError> {
        self.typed_call("SET", vec![key.as_bytes().to_vec(), value])
            .await
            .map(drop)
    }

    /// `INCR key`; `type-error` when the value is not an integer.
    pub async fn incr(&self, key: &str) -> Result<i64, RedisError> {
        let v = self
            .typed_call("INCR", vec![key.as_bytes().to_vec()])
            .await?;
        self.integer(v)
    }

    /// `DEL key...`: the number of keys removed.
    pub async fn del(&self, keys: Vec<String>) -> Result<u32, RedisError> {
        let args = keys.into_iter().map(String::into_bytes).collect();
        let v = self.typed_call("DEL", args).await?;
        self.count(v)
    }

    /// `SADD key value...`: the number of values added.
    pub async fn sadd(&self, key: &str, values: Vec<String>) -> Result<u32, RedisError> {
        let mut args = vec![key.as_bytes().to_vec()];
        args.extend(values.into_iter().map(String::into_bytes));
        let v = self.typed_call("SADD", args).await?;
        self.count(v)
    }

    /// `SMEMBERS key`; `type-error` when a member is not UTF-8.
    pub async fn smembers(&self, key: &str) -> Result<Vec<String>, RedisError> {
        match self
            .typed_call("SMEMBERS", vec![key.as_bytes().to_vec()])
            .await?
        {
            redis::Value::Array(items) | redis::Value::Set(items) => items
                .into_iter()
                .map(|item| match item {
                    redis::Value::BulkString(b) => {
                        String::from_utf8(b).map_err(|_| self.type_error())
                    }
                    _ => Err(self.type_error()),
                })
                .collect(),
            _ => Err(self.type_error()),
        }
    }

    /// `SREM key value...`: the number of values removed.
    pub async fn srem(&self, key: &str, values: Vec<String>) -> Result<u32, RedisError> {
        let mut args = vec![key.as_bytes().to_vec()];
        args.extend(values.into_iter().map(String::into_bytes));
        let v = self.typed_call("SREM", args).await?;
        self.count(v)
    }

    /// Any command: sandboxed (keys prefixed, dangerous commands refused), blocking commands
    /// on a dedicated connection, the reply flattened as Spin does (nested arrays become
    /// consecutive elements).
    pub async fn execute(
        &self,
        command: &str,
        args: Vec<RedisParam>,
    ) -> Result<Vec<RedisValue>, RedisError> {
        if command.is_empty() || command.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(RedisError::Other(format!(
                "invalid command name `{command}` (pass arguments separately)"
            )));
        }
        let value = self.call(command, to_bytes(args)).await?;
        reply::flatten(value).map_err(|msg| {
            self.ctx
                .pool
                .counters()
                .errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            RedisError::Other(msg)
        })
    }

    /// Whether this call would run on a dedicated connection (exposed for tests and logs).
    pub fn is_blocking(command: &str, args: &[RedisParam]) -> bool {
        let name = command.to_ascii_uppercase();
        sandbox::blocking(&name, &to_bytes(args.to_vec())) != Blocking::No
    }
}

/// What the Redis bindings need from a store: the component's context and the store's
/// resource table. Build it in the closure given to [`add_to_linker`].
pub struct RedisCtxView<'a> {
    /// The component's Redis context.
    pub ctx: &'a RedisCtx,
    /// The store's resource table (holds the guests' `connection` resources).
    pub table: &'a mut ResourceTable,
}

/// The [`HasData`] marker for the Redis bindings.
struct HasRedis;

impl HasData for HasRedis {
    type Data<'a> = RedisCtxView<'a>;
}

/// Adds `fermyon:spin/redis@2.0.0` and `spin:redis/redis@3.0.0` to `linker`. The engine must
/// have async support (and component-model-async for v3).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> RedisCtxView<'_>,
) -> wasmtime::Result<()> {
    v2::add_to_linker(linker, f)?;
    v3::add_to_linker(linker, f)?;
    Ok(())
}

/// Adds only `fermyon:spin/redis@2.0.0`: for an engine without component-model-async, which
/// cannot host v3's async functions.
pub fn add_v2_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    f: fn(&mut T) -> RedisCtxView<'_>,
) -> wasmtime::Result<()> {
    v2::add_to_linker(linker, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct State {
        ctx: RedisCtx,
        table: ResourceTable,
    }

    #[test]
    fn both_versions_link_into_one_linker() {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model_async(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let mut linker: Linker<State> = Linker::new(&engine);
        add_to_linker(&mut linker, |s: &mut State| RedisCtxView {
            ctx: &s.ctx,
            table: &mut s.table,
        })
        .unwrap();
        let pool = RedisPool::new(RedisPoolConfig::default());
        let state = State {
            ctx: RedisCtx::new(pool, "c", &[], true).unwrap(),
            table: ResourceTable::new(),
        };
        assert_eq!(state.ctx.prefix(), Some("c:"));
        assert!(state.table.is_empty());
    }
}
