//! The pieces every redwasm component shares, so each component keeps only its own logic.
//! All but the `spin` module are plain Rust, compiled and tested natively.
//!
//! # Layout
//! - [`redis`]: [`redis::RedisExec`] (the seam between logic and Redis: Spin's `execute` in
//!   wasm, redis-rs in tests), flat reply values, and [`redis::Script`] (EVALSHA with a
//!   NOSCRIPT fallback to EVAL).
//! - [`clock`]: the caller's clock ([`clock::SystemClock`], [`clock::ManualClock`] for tests
//!   that never sleep).
//! - [`channels`]: the event channels (`jobs.<queue>`, `progress.<id>`, `cache.<ns>`, own
//!   ones) and the Redis streams behind them, shared by their writers and the events component.
//! - [`percent`]: percent-decoding of path segments and query strings.
//! - [`http`]: the request/response pair of the components' plain-Rust HTTP layers, RFC 9457
//!   problems and `X-Correlation-Id`; [`sse`]: server-sent events and the host's fan-out
//!   protocol; [`token`]: random tokens; [`variables`]: numeric Spin
//!   variables with defaults.
//! - `spin` (only on `wasm32`): the Spin adapters — the Redis client, reading a request,
//!   sending a response, variables.
//! - `typed_http` (only on `wasm32`): the `redwasm:http/handler` export the redwasm host
//!   calls instead of `wasi:http` (one call per request).
//! - `native` (feature `native-redis`): [`redis::RedisExec`] over redis-rs, for tests.

#![deny(missing_docs)]
// Only the generated bindings of `typed_http` (wasm32) need `unsafe`.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

pub mod channels;
pub mod clock;
pub mod http;
#[cfg(feature = "native-redis")]
pub mod native;
pub mod percent;
pub mod redis;
#[cfg(target_arch = "wasm32")]
pub mod spin;
pub mod sse;
pub mod token;
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
pub mod typed_http;
pub mod variables;
