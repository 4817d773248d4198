//! Which clock a check uses. There is exactly one per check, never a mix:
//!
//! - [`RedisTime`] (production, the default): the script reads Redis `TIME`. Every host that
//!   checks the same key uses the same clock, so clock skew between hosts (or between Spin
//!   instances on different machines) cannot shorten or stretch windows. `TIME` inside a
//!   script needs effects replication, the default since Redis 5.
//! - A caller's clock ([`ManualClock`], [`SystemClock`]): the script uses the `now_ms` the
//!   caller passes. For deterministic tests (rollover and refill without sleeping) and for
//!   embedders that own their clock. Mixing it with Redis time on the same keys would let the
//!   difference between the clocks move windows, so pick one per deployment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" for the scripts.
pub trait Clock {
    /// Milliseconds since the Unix epoch, or `None` to let Redis decide (`TIME` in the
    /// script).
    fn now_ms(&self) -> Option<u64>;
}

/// Redis server time: the script calls `TIME`. One clock for every host.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisTime;

impl Clock for RedisTime {
    fn now_ms(&self) -> Option<u64> {
        None
    }
}

/// This machine's wall clock, passed to the script.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Option<u64> {
        Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        )
    }
}

/// A caller's time that only moves when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Sets the time.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The current reading.
    pub fn get_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Option<u64> {
        Some(self.get_ms())
    }
}

/// A fixed caller time (what the typed `check-at` uses).
#[derive(Debug, Clone, Copy)]
pub struct FixedTime(pub u64);

impl Clock for FixedTime {
    fn now_ms(&self) -> Option<u64> {
        Some(self.0)
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> Option<u64> {
        (**self).now_ms()
    }
}
