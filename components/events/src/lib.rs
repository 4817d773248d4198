//! redwasm's events component: the contract's Events section (`/v1/events/{channel}`) over
//! Redis Streams, from one shared core.
//!
//! # Layout
//! - [`events`]: the logic — [`Events`] with `publish`, `start` (live, replay after
//!   `Last-Event-ID`, or `reset`) and `events_after` (how the component streams by itself
//!   under Spin). Plain Rust over [`redis::RedisExec`].
//! - [`channels`]: which stream a channel is (`jobs.<queue>`, `progress.<id>`,
//!   `cache.<ns>` are other components' streams, read as they are; any other name is the
//!   component's own).
//! - [`scripts`] + `lua/*.lua`: publishing (XADD, trim, expiry) and the read-only start
//!   script (run by `EVALSHA_RO`, so it may read another component's stream).
//! - [`http`]: the HTTP contract in plain Rust; [`config`]: limits from Spin variables;
//!   [`error`].
//! - `wasm` (only on `wasm32`): Spin's HTTP handler (which streams by itself) and the redwasm
//!   host's one-call entry (whose SSE fan-out follows the stream).
//!
//! # Semantics where the contract is silent
//! - A new client gets only events published after it connected; a client resuming with
//!   `Last-Event-ID` (or `?last_event_id=` on a first `EventSource` connection) gets every
//!   later event exactly once: a replay, then live. When events after its id were trimmed
//!   away, or the id is unknown, it gets `event: reset` first instead of a silent gap.
//! - `POST` takes any JSON (stored compact, so `data:` is one line), `?event=<name>` names the
//!   SSE event (default `message`; `reset` is reserved). The other components' channels are
//!   read-only (403).
//! - `progress.<id>` streams end after `completed` or `failed`; other channels stay open.
//! - An own channel keeps about `events_stream_maxlen` events and expires
//!   `events_retention_s` after its last one, so an abandoned channel leaves nothing behind.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub use redwasm_guest::channels;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub use redwasm_guest::redis;
pub mod scripts;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[http_component]` and typed-export expansions; no hand-written unsafe.
mod wasm;

pub use config::EventsConfig;
pub use error::EventsError;
pub use events::{Events, EventsStart};
