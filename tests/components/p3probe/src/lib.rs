//! A test-only WASIp3 HTTP component (spin-sdk 7: `wasi:http/handler@0.3.0` export,
//! `spin:redis/redis@3.0.0` import) for redwasm's WASIp3 tests. Built to wasm by
//! `tests/build.rs`; natively it is an empty crate.
//!
//! The Redis address comes from the guest environment variable `REDIS_ADDRESS` (the manifest's
//! `environment`), not from a Spin variable: spin-sdk 7 reads variables through
//! `spin:variables/variables@3.0.0`, which this probe has no need to depend on.
//!
//! Routes (everything after the first path segment, so any route prefix works):
//! - `GET …/incr/{key}`: `INCR key` → 200 `{"value":N,"instance":"<id>","requests":n}`.
//! - `GET …/slow/{key}?ms=N`: awaits an async sleep of N ms (`wasi:clocks` p3 `wait-for`).
//! - `GET …/blpop/{key}?ms=N`: awaits `BLPOP key <N/1000>` (nil after the timeout).
//!
//! Both slow routes answer `{"waited_ms","in_flight_max","instance","popped"}`:
//! `in_flight_max` is the largest number of requests this instance had in progress at once
//! while the request waited, so two overlapping requests in one instance see 2.
//! - `GET …/kv/{label}`: on store `label` (`spin:key-value@3.0.0`): set `a`, set `b`, delete
//!   `a`, then `{"exists_a","b","keys"}`; 502 `{"error"}` (e.g. `AccessDenied`).
//! - `GET …/info`: `{"instance","requests","in_flight"}`.

#![deny(missing_docs)]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[http_service]` expansion; no hand-written unsafe.
mod wasm;
