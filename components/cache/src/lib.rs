//! redwasm's cache component: a Redis-backed HTTP cache (the contract's Cache section,
//! `/v1/cache`) and the typed `redwasm:cache/cache@0.2.0` export, from one shared core.
//!
//! # Layout
//! - [`cache`]: the logic — [`Cache`] with `get`, `lookup` (single-flight), `set`, `delete`,
//!   `invalidate_tags`, `invalidate_all`, `stats`. Plain Rust over two seams:
//!   - [`redis::RedisExec`]: "run this command, get a flat list of scalars" — Spin's
//!     `redis::Connection::execute` in wasm, redis-rs in the native tests;
//!   - [`clock::Clock`]: the caller's time, passed to every script as `now_ms` (Redis `TIME`
//!     is never used), with [`ManualClock`] for deterministic expiry tests.
//! - [`keys`]: the only place Redis keys are built (hash tag `{<ns>}` per namespace);
//!   [`record`]: the stored form of an entry (one string: a small header, then the body).
//! - [`scripts`] + `lua/*.lua`: one Lua script per operation, run by `EVALSHA` with an
//!   `EVAL` fallback; each read is one round trip. [`Cache::get_uncounted`] serves a fresh
//!   hit with a plain `MGET` instead, leaving the hit for its caller to report in batches
//!   ([`Cache::record_hits`]): the embedding API's hot path.
//! - [`http`]: the HTTP contract in plain Rust (routing, validation, problem+json,
//!   `X-Correlation-Id`), one file per endpoint.
//! - [`config`]: limits from Spin variables; [`validate`], [`token`], [`error`]: helpers.
//! - `wasm` (only on `wasm32`): Spin's HTTP handler and the typed export, both thin
//!   adapters onto the above.
//!
//! # Semantics where the contract is silent
//! - `hits` counts every read answered with a value (stale ones too); `stale_hits` is the
//!   stale subset; `hit_ratio = hits / (hits + misses)`; `keys` counts live entries (fresh or
//!   within grace). A lease wait counts once, as the miss it started as.
//! - TTL jitter only lengthens: the effective TTL is uniform in `ttl ..= ttl * (1 + pct/100)`.
//! - A revalidate token is accepted by `If-Match` while the stale entry it was issued for is
//!   still the live entry (same write, same namespace version, grace not over); a lease token
//!   while the lease lives. Any successful write of the key releases its lease and resets its
//!   revalidation claim.
//! - `lease_ms` / `wait-ms` must be `1..=cache_max_lease_ms`; the lease lives that long.
//! - Keys named `stats` or `invalidate` are reachable over HTTP percent-encoded
//!   (`%73tats`), since routing looks at the raw segment.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub mod cache;
pub use redwasm_guest::clock;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod record;
pub use redwasm_guest::redis;
pub mod scripts;
pub use redwasm_guest::token;
pub mod validate;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // wit-bindgen / `#[http_component]` expansions; no hand-written unsafe.
mod wasm;

pub use cache::{Cache, Entry, Lookup, Read, SetOptions, Stats};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::CacheConfig;
pub use error::CacheError;
pub use http::{HttpRequest, HttpResponse, handle};
pub use redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};
