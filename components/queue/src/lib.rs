//! redwasm's job queue component: the contract's Queues section (`/v1/queues`) over Redis,
//! from one shared core.
//!
//! # Layout
//! - [`queue`]: the logic — [`Queues`] with `enqueue` (single and batch), `get`, `cancel`,
//!   `claim` (leases, several jobs per call), `ack`, `nack` (backoff with jitter, dead
//!   letters), `heartbeat`, `dead`, `requeue`, `stats`. Plain Rust over
//!   [`redis::RedisExec`] and [`clock::Clock`].
//! - [`keys`]: the only place Redis keys are built (hash tag `{<queue>}` per queue);
//!   [`job`]: jobs in and out (validation of every field).
//! - [`scripts`] + `lua/*.lua`: one Lua script per operation, each one round trip; claim
//!   sweeps due delayed jobs and expired leases itself (bounded per call), so no separate
//!   sweeper runs.
//! - [`schedule`]: repeatable jobs (`cron` with optional seconds, UTC, or `every_ms`), fired
//!   from claims exactly once per tick however many hosts claim.
//! - [`http`]: the HTTP contract in plain Rust, one file per group of endpoints.
//! - [`config`]: limits and retention from Spin variables; [`error`].
//! - `wasm` (only on `wasm32`): Spin's HTTP handler and the redwasm host's one-call entry.
//!
//! # Semantics where the contract is silent
//! - Priorities: `"high"` = 10, `"normal"` = 0, `"low"` = −10, or any integer in
//!   −1000..=1000; higher first, FIFO within one (a per-queue sequence), O(log n) per job.
//! - `attempts` counts claims; a lease that expires spends that attempt ("stalled: lease
//!   expired"), and is dead when it was the last.
//! - Backoff: exponential `base · 2^(attempt−1)` or fixed `base`, capped by `max_ms`, then
//!   "equal jitter" (half fixed, half uniform). Default: exponential from 1 s, cap 1 h.
//! - A cancelled active job stops holding a current lease: ack, nack and heartbeat of it get
//!   409 with status `cancelled`.
//! - Retention: completed jobs by count and age (`queue_keep_completed`,
//!   `queue_keep_completed_ms`), cancelled by count, dead letters by count
//!   (`queue_keep_dead`), the events stream by approximate length; work per call bounded.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub use redwasm_guest::clock;
pub mod config;
pub mod error;
pub mod http;
pub mod job;
pub mod keys;
pub mod queue;
pub use redwasm_guest::redis;
pub mod schedule;
pub mod scripts;
pub use redwasm_guest::token;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // wit-bindgen / `#[http_component]` expansions; no hand-written unsafe.
mod wasm;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::QueueConfig;
pub use error::QueueError;
pub use job::{Backoff, Claimed, Job, NewJob};
pub use queue::{Enqueued, Nacked, Queues, Stats};
pub use schedule::{Every, Schedule};
