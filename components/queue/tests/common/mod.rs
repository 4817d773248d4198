//! Shared test fixtures: queues wired to a real `redis-server` (from `redwasm-testkit`) with
//! a [`ManualClock`], and a plain connection to look behind them.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

pub use redwasm_guest::native::RedisRs;
use redwasm_queue::{ManualClock, QueueConfig, Queues};
use redwasm_testkit::RedisServer;

/// A fixed, realistic start time (2025-01-01T00:00:00Z) for manual clocks.
pub const T0_MS: u64 = 1_735_689_600_000;

/// A running server plus a manual clock shared by every queue made from this fixture.
pub struct Fixture {
    pub server: RedisServer,
    pub clock: ManualClock,
    pub config: QueueConfig,
}

impl Fixture {
    /// A fresh server, a clock at [`T0_MS`], default limits.
    pub fn new() -> Self {
        Self::with_config(QueueConfig::default())
    }

    /// Like [`Fixture::new`] with custom limits.
    pub fn with_config(config: QueueConfig) -> Self {
        Self {
            server: RedisServer::start(),
            clock: ManualClock::new(T0_MS),
            config,
        }
    }

    /// Queues with their own connection, on the shared manual clock.
    pub fn queues(&self) -> Queues<RedisRs, ManualClock> {
        Queues::new(
            RedisRs::new(&self.server.url()),
            self.clock.clone(),
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
