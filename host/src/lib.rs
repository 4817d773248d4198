//! The redwasm host: runs redwasm's WebAssembly components (and any Spin HTTP component) on
//! wasmtime, supplies them Redis and variables, and serves them over HTTP.
//!
//! # Layout
//! - [`manifest`]: the Spin manifest (`spin.toml`, `spin_manifest_version = 2`), typed.
//! - [`routes`]: Spin's route syntax and the router built from the manifest.
//! - [`template`]: `{{ name }}` templates, variable-name rules and their errors (a leaf).
//! - [`variables`]: `fermyon:spin/variables@2.0.0` from the manifest and `SPIN_VARIABLE_*`.
//! - [`redis`]: `fermyon:spin/redis@2.0.0` and `spin:redis/redis@3.0.0`: shared multiplexed
//!   connections, a bounded pool for blocking commands, and the key-namespace sandbox.
//! - [`kv`]: `fermyon:spin/key-value@2.0.0` and `spin:key-value@3.0.0`, one Redis hash per
//!   store inside the component's namespace.
//! - [`outbound_http`]: outbound `wasi:http` under `allowed_outbound_hosts`, one pooled client.
//! - [`engine`]: the wasmtime engines (plain for WASIp2, component-model-async for WASIp3),
//!   their linkers and the per-store state shared by every trigger.
//! - [`trigger`]: the HTTP trigger (hyper server, instance reuse, limits, shutdown).
//! - [`embedded_redis`]: a `redis-server` the host starts and owns when no `REDIS_URL` is set.
//! - [`embed`]: the typed Rust API other programs use to call the components directly.
//! - [`metrics`]: counters rendered as Prometheus text at `/metrics`.

#![deny(missing_docs)]

pub mod embed;
pub mod embedded_redis;
pub mod engine;
pub mod kv;
pub mod manifest;
pub mod metrics;
pub mod outbound_http;
pub mod redis;
pub mod routes;
pub mod serve;
pub mod template;
pub mod trigger;
pub mod variables;
