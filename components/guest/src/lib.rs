//! Plain-Rust pieces every redwasm component shares, so each component keeps only its own
//! logic. No Spin or wasm dependency: these compile and are tested natively.
//!
//! # Layout
//! - [`redis`]: [`redis::RedisExec`] (the seam between logic and Redis: Spin's `execute` in
//!   wasm, redis-rs in tests), flat reply values, and [`redis::Script`] (EVALSHA with a
//!   NOSCRIPT fallback to EVAL).
//! - [`percent`]: percent-decoding of path segments and query strings.
//! - `native` (feature `native-redis`): [`redis::RedisExec`] over redis-rs, for tests.

#![deny(missing_docs)]

#[cfg(feature = "native-redis")]
pub mod native;
pub mod percent;
pub mod redis;
