//! Redis for guests: `fermyon:spin/redis@2.0.0` (WASIp2 components) and
//! `spin:redis/redis@3.0.0` (WASIp3 components), on connections shared by the whole process.
//!
//! # Pieces
//! - [`RedisPool`] (one per process, in an `Arc`): one reconnecting multiplexed connection
//!   per Redis address for ordinary commands, a bounded set of dedicated connections for
//!   blocking commands (`BLPOP`, `XREAD BLOCK`, `WAIT`, ...), a circuit breaker that makes
//!   calls fail fast while Redis is down and recovers on its own, a reply-size cap, counters
//!   ([`RedisPool::stats`], [`RedisPool::render_metrics`]) and [`RedisPool::health`].
//! - [`RedisCtx`] (one per component, cloned into each store): the component's
//!   `allowed_outbound_hosts` and its key-namespace sandbox.
//! - [`Connection`]: what a guest's `connection` resource holds; its methods are the whole
//!   Redis API as plain async Rust (the WIT bindings in `v2.rs`/`v3.rs` only adapt types).
//! - [`add_to_linker`]: adds both interfaces to a linker.
//!
//! `Connection::open(address)` does not open anything: it checks the address against the
//! component's `allowed_outbound_hosts` (refused: `invalid-address`, logged) and hands out the
//! shared connection for that address.
//!
//! # The key-namespace sandbox
//! On by default: every key a component names is prefixed with `<component-id>:`, so
//! components sharing a Redis cannot read or clobber each other's keys. The typed functions
//! prefix their keys; `execute` rewrites the arguments at the command's key positions from a
//! table of commands (first key, all arguments, alternating, `numkeys`, two keys, keys then a
//! timeout, `STREAMS`, `SORT` patterns, ...), and strips the prefix from key names in replies
//! (`BLPOP`/`BZPOPMIN`/`LMPOP`/`ZMPOP` keys, `XREAD` stream names, `SCAN` results). Pub/sub
//! channel names (`PUBLISH`) are prefixed too. `SCAN` is forced to `MATCH <prefix><pattern>`.
//! Commands not in the table are refused (`other("denied: ...")`), as are commands that
//! escape the namespace or administer the server (`KEYS`, `FLUSHALL`, `CONFIG`,
//! `RANDOMKEY`, `SELECT`, `MOVE`, `MIGRATE`, `SCRIPT FLUSH`, `FUNCTION`, ...).
//!
//! What the sandbox cannot confine: a Lua script (`EVAL`, `FCALL`) gets its declared keys
//! (`KEYS[i]`) prefixed, but nothing stops it from computing other key names and touching
//! them; Redis does not check undeclared key access outside cluster mode. Full confinement
//! of scripts needs a Redis ACL user per component (`~<prefix>*` key patterns), which is a
//! possible future option, not implemented. Treat scripting as trusted code.
//!
//! Whether or not the sandbox is on, commands that would change the state of the shared
//! connection for everyone (`SELECT`, `MULTI`/`EXEC`/`WATCH`, `SUBSCRIBE`, `CLIENT`, `AUTH`,
//! `HELLO`, `QUIT`, `RESET`, `MONITOR`) are refused; use `EVAL` for atomic multi-key updates.
//!
//! # Errors
//! Guest-visible errors are the WIT `error` variant ([`RedisError`]): refusals, server errors,
//! outages, timeouts and oversized replies never trap. Traps are reserved for host bugs
//! (e.g. a resource handle that is not in the table).
//!
//! # Memory
//! The reply cap ([`RedisPoolConfig::max_reply_bytes`], 8 MiB by default) is checked after
//! redis-rs has parsed the reply: it keeps large replies out of guests (no trap, no guest
//! OOM), but the host buffers the reply once before refusing it, as redis-rs cannot stream.

mod allowed;
mod pool;
mod reply;
mod sandbox;
mod v2;
mod v3;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};

pub use pool::{Health, REDIS_CA_CERT_ENV, RedisPool, RedisPoolConfig, RedisStats};

use allowed::{AllowedHosts, parse_address};
use pool::{Endpoint, Failure, failure_text, redact};
use sandbox::{Blocking, ReplyRewrite};

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

/// One component's Redis settings: its allow-list and its key prefix. Cheap to clone (one
/// per store).
#[derive(Clone)]
pub struct RedisCtx {
    pool: Arc<RedisPool>,
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    /// `Some(prefix)` when the sandbox is on.
    prefix: Option<Arc<[u8]>>,
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
        Ok(RedisCtx {
            pool,
            component: component_id.into(),
            allowed: Arc::new(allowed),
            prefix: prefix.map(|p| Arc::from(p.as_bytes())),
        })
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
        let endpoint = self
            .pool
            .endpoint(address)
            .and_then(|ep| ep.check_up().map(|()| ep));
        match endpoint {
            Ok(endpoint) => Ok(Connection {
                endpoint,
                ctx: self.clone(),
            }),
            Err(f) => Err(self.failed(f)),
        }
    }

    fn failed(&self, failure: Failure) -> RedisError {
        self.pool
            .counters()
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    /// Sandbox, route and run one command; the reply comes back with key names un-prefixed.
    async fn call(&self, command: &str, args: Vec<Vec<u8>>) -> Result<redis::Value, RedisError> {
        use std::sync::atomic::Ordering::Relaxed;
        let name = command.to_ascii_uppercase();
        let checked = match &self.ctx.prefix {
            Some(prefix) => sandbox::rewrite(prefix, &name, args).map(|r| (r.args, r.reply)),
            None => sandbox::check_unsandboxed(&name).map(|()| (args, ReplyRewrite::None)),
        };
        let (args, rewrite) = match checked {
            Ok(ok) => ok,
            Err(denied) => {
                tracing::warn!(component = %self.ctx.component, command = %name, reason = %denied, "redis: command denied");
                self.ctx.pool.counters().denied.fetch_add(1, Relaxed);
                return Err(RedisError::Other(format!("denied: {denied}")));
            }
        };
        let blocking = sandbox::blocking(&name, &args);
        let mut cmd = redis::cmd(&name);
        for arg in &args {
            cmd.arg(arg.as_slice());
        }
        self.ctx.pool.counters().commands.fetch_add(1, Relaxed);
        let mut value = self
            .endpoint
            .run(&cmd, blocking)
            .await
            .map_err(|f| self.ctx.failed(f))?;
        if let Some(prefix) = &self.ctx.prefix {
            sandbox::strip_reply(prefix, rewrite, &mut value);
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
