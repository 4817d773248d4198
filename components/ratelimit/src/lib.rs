//! redwasm's rate-limiting component: the contract's Rate limits section (`/v1/ratelimit`)
//! and the typed `redwasm:ratelimit/ratelimit@0.1.0` export, from one shared core.
//!
//! # Layout
//! - [`limiter`]: the logic — [`RateLimiter`] with `check` (several policies, atomically, all
//!   or nothing), `peek`, `reset`. Plain Rust over two seams:
//!   - [`redis::RedisExec`]: "run this command, get a flat list of scalars" — Spin's
//!     `redis::Connection::execute` in wasm, redis-rs in the native tests;
//!   - [`clock::Clock`]: which clock the script uses — Redis `TIME` ([`RedisTime`], the
//!     default) or a caller's time ([`ManualClock`] in tests), never both in one check.
//! - [`policy`]: [`Policy`], [`Algorithm`], [`FailMode`], [`PolicyRef`], their bounds and
//!   JSON form; [`config`]: named policies and the bypass list from Spin variables.
//! - [`keys`]: the only place Redis keys are built (hash tag `{<key>}` per limited key).
//! - [`scripts`] + `lua/check.lua`: the one multi-policy script (evaluate all, then commit
//!   all or none), run by `EVALSHA` with an `EVAL` fallback.
//! - [`headers`]: `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11).
//! - [`http`]: the HTTP contract in plain Rust (routing, validation, problem+json,
//!   `X-Correlation-Id`), one file per endpoint.
//! - [`validate`], [`token`], [`error`]: helpers.
//! - `wasm` (only on `wasm32`): Spin's HTTP handler and the typed export, both thin adapters
//!   onto the above.
//!
//! # Semantics where the contract is silent
//! - `cost` is 1..=10^15; a cost above a policy's capacity (its `limit`, or `burst` for a
//!   token bucket) could never be allowed and is a 400 naming `cost`.
//! - `remaining` is what could be consumed now; `reset_ms` the time until the policy is fully
//!   replenished; `retry_after_ms` the time until the same check would pass.
//! - Bypassed keys and fail-open checks never touch Redis state and report every policy full.

#![deny(missing_docs)]
// Only the wasm binding layer's generated code needs `unsafe`; everything else forbids it.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub mod clock;
pub mod config;
pub mod error;
pub mod headers;
pub mod http;
pub mod keys;
pub mod limiter;
pub mod policy;
pub use redwasm_guest::redis;
pub mod scripts;
pub use redwasm_guest::token;
pub mod validate;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // wit-bindgen / `#[http_component]` expansions; no hand-written unsafe.
mod wasm;

pub use clock::{Clock, FixedTime, ManualClock, RedisTime, SystemClock};
pub use config::RateLimitConfig;
pub use error::RateLimitError;
pub use http::{HttpRequest, HttpResponse, handle};
pub use limiter::{Decision, PolicyState, RateLimiter};
pub use policy::{Algorithm, FailMode, Policy, PolicyRef, Unit};
pub use redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};
