//! Shared test fixtures: the native [`RedisExec`] over redis-rs, and limiters wired to a real
//! `redis-server` (from `redwasm-testkit`) with a [`ManualClock`].

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::time::Duration;

use redwasm_ratelimit::{
    Arg, ManualClock, RateLimitConfig, RateLimiter, RedisError, RedisErrorKind, RedisExec,
    RedisTime, Value,
};
use redwasm_testkit::RedisServer;

/// A fixed, realistic start time (2025-01-01T00:00:00Z) for manual clocks.
pub const T0_MS: u64 = 1_735_689_600_000;

/// [`RedisExec`] over a synchronous redis-rs connection, flattening array replies the way
/// Spin's `execute` does. Connects lazily and reconnects after I/O errors.
pub struct RedisRs {
    client: redis::Client,
    connection: Option<redis::Connection>,
}

impl RedisRs {
    /// An executor for `url` (nothing is opened yet).
    pub fn new(url: &str) -> Self {
        Self {
            client: redis::Client::open(url).expect("valid redis url"),
            connection: None,
        }
    }
}

impl RedisExec for RedisRs {
    fn exec(&mut self, command: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, RedisError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))
                .map_err(|e| RedisError::new(RedisErrorKind::Unavailable, e.to_string()))?,
        };
        let mut cmd = redis::cmd(command);
        for arg in args {
            match arg {
                Arg::Int(value) => cmd.arg(*value),
                Arg::Bytes(bytes) => cmd.arg(*bytes),
            };
        }
        match cmd.query::<redis::Value>(&mut connection) {
            Ok(value) => {
                self.connection = Some(connection);
                let mut out = Vec::new();
                flatten(value, &mut out)?;
                Ok(out)
            }
            Err(error)
                if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() =>
            {
                Err(RedisError::new(
                    RedisErrorKind::Unavailable,
                    error.to_string(),
                ))
            }
            Err(error) => {
                self.connection = Some(connection);
                let text = match error.code() {
                    Some(code) => format!("{code} {error}"),
                    None => error.to_string(),
                };
                Err(RedisError::from_reply_text(text))
            }
        }
    }
}

fn flatten(value: redis::Value, out: &mut Vec<Value>) -> Result<(), RedisError> {
    match value {
        redis::Value::Nil => out.push(Value::Nil),
        redis::Value::Int(value) => out.push(Value::Int(value)),
        redis::Value::BulkString(bytes) => out.push(Value::Bytes(bytes)),
        redis::Value::SimpleString(text) => out.push(Value::Status(text)),
        redis::Value::Okay => out.push(Value::Status("OK".into())),
        redis::Value::Boolean(flag) => out.push(Value::Int(i64::from(flag))),
        redis::Value::Double(value) => out.push(Value::Bytes(value.to_string().into_bytes())),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        redis::Value::ServerError(error) => {
            return Err(RedisError::from_reply_text(format!("{error:?}")));
        }
        other => out.push(Value::Bytes(format!("{other:?}").into_bytes())),
    }
    Ok(())
}

/// A running server plus a manual clock shared by every limiter made from this fixture.
pub struct Fixture {
    pub server: RedisServer,
    pub clock: ManualClock,
    pub config: RateLimitConfig,
}

impl Fixture {
    /// A fresh server, a clock at [`T0_MS`], no named policies.
    pub fn new() -> Self {
        Self::with_config(RateLimitConfig::default())
    }

    /// Like [`Fixture::new`] with a configuration.
    pub fn with_config(config: RateLimitConfig) -> Self {
        Self {
            server: RedisServer::start(),
            clock: ManualClock::new(T0_MS),
            config,
        }
    }

    /// A limiter with its own connection, on the shared manual clock.
    pub fn limiter(&self) -> RateLimiter<RedisRs, ManualClock> {
        RateLimiter::new(
            RedisRs::new(&self.server.url()),
            self.clock.clone(),
            self.config.clone(),
        )
    }

    /// A limiter with its own connection, on Redis server time.
    pub fn redis_time_limiter(&self) -> RateLimiter<RedisRs, RedisTime> {
        RateLimiter::new(
            RedisRs::new(&self.server.url()),
            RedisTime,
            self.config.clone(),
        )
    }

    /// A plain redis-rs connection for inspecting the server directly.
    pub fn inspect(&self) -> redis::Connection {
        redis::Client::open(self.server.url())
            .expect("url")
            .get_connection()
            .expect("connect")
    }
}
