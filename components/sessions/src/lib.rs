//! redwasm's sessions component: the contract's Sessions section (`/v1/sessions`,
//! `/v1/users/{uid}/sessions`) over Redis, from one shared core.
//!
//! # Layout
//! - [`sessions`]: the logic — [`Sessions`] with `create`, `get` (sliding expiry), `update`
//!   (`If-Match`), `delete`, `list` and `revoke_all` per user. Plain Rust over
//!   [`redis::RedisExec`] and [`clock::Clock`].
//! - [`keys`]: the only place Redis keys are built; a session lives under the SHA-256 of its
//!   id, never the id itself.
//! - [`scripts`] + `lua/*.lua`: one script per change, each on one key (Redis Cluster).
//! - [`http`]: the HTTP contract in plain Rust; [`config`]: limits from Spin variables;
//!   [`error`].
//! - `wasm` (only on `wasm32`): Spin's HTTP handler and the redwasm host's one-call entry.
//!
//! # Semantics where the contract is silent
//! - Session ids: 128 bits from the platform CSPRNG (no fallback: without randomness,
//!   creation fails with 503), 32 lower-case hex digits.
//! - Every read slides the expiry by the session's own `ttl_s` (unless `?touch=false`), as
//!   does every update. `ETag` is `"<version>"`; `PUT` without `If-Match` is unconditional,
//!   with a stale one 412 (with the current `ETag`).
//! - The per-user index is a sorted set scored by expiry: expired entries are dropped on every
//!   write and listing, the index expires with its last session, and listing drops entries
//!   whose session is gone; so it neither keeps dead ids nor grows without bound. A listing
//!   shows `session_ref` (the first 16 hex digits of the stored hash), never ids.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub use redwasm_guest::clock;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub use redwasm_guest::redis;
pub mod scripts;
pub mod sessions;
pub use redwasm_guest::token;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[http_component]` and typed-export expansions; no hand-written unsafe.
mod wasm;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::SessionsConfig;
pub use error::SessionError;
pub use sessions::{Created, Session, Sessions};
