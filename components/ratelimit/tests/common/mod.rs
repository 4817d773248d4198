//! Shared test fixtures: the native [`RedisExec`] over redis-rs, and limiters wired to a real
//! `redis-server` (from `redwasm-testkit`) with a [`ManualClock`].

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use redwasm_ratelimit::{ManualClock, RateLimitConfig, RateLimiter, RedisTime};
use redwasm_testkit::RedisServer;

/// A fixed, realistic start time (2025-01-01T00:00:00Z) for manual clocks.
pub const T0_MS: u64 = 1_735_689_600_000;

pub use redwasm_guest::native::RedisRs;

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
