//! redwasm's progress component: the contract's Progress section (`/v1/progress`) over Redis,
//! from one shared core.
//!
//! # Layout
//! - [`progress`]: the logic — [`Progress`] with `start`, `update`, `finish` (complete /
//!   fail), `get`, `delete`. Plain Rust over [`redis::RedisExec`] and [`clock::Clock`].
//! - [`keys`]: the only place Redis keys are built (hash tag `{<id>}` per entry).
//! - [`scripts`] + `lua/*.lua`: each change is one script: the entry hash, the appended event
//!   in the entry's capped stream, and both keys' expiry, atomically.
//! - [`http`]: the HTTP contract in plain Rust; [`config`]: limits from Spin variables;
//!   [`error`].
//! - `wasm` (only on `wasm32`): Spin's HTTP handler and the redwasm host's one-call entry.
//!
//! # Semantics where the contract is silent
//! - `POST /v1/progress` may name the `id` (e.g. a queue job's id, so a job's progress lives
//!   under its job id); a taken id is 409. Without one, a random 128-bit id.
//! - Steps may go up or down (0..=total_steps); `percent` defaults to step / total; the ETA
//!   extrapolates the average time per step so far.
//! - The entry and its events expire `ttl_s` after the **last** change; a finished entry
//!   (completed or failed) takes no more changes (409) and stays readable until it expires.
//! - Every change appends `{event, data}` to the entry's stream (trimmed to about
//!   `progress_stream_maxlen`), the source the SSE endpoint will replay from.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub use redwasm_guest::clock;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod progress;
pub use redwasm_guest::redis;
pub mod scripts;
pub use redwasm_guest::token;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[http_component]` and typed-export expansions; no hand-written unsafe.
mod wasm;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ProgressConfig;
pub use error::ProgressError;
pub use progress::{Changed, EventsStart, NewEntry, Outcome, Progress, Step, TERMINAL_EVENTS};
