//! The conformance suite (`conformance.rs`, same modules) against the in-process host serving
//! every component through `wasi:http` only (`AppOptions::wasi_http_only`), the entry point
//! Spin calls. `conformance.rs` runs it on the one-call `redwasm:http/handler` path the host
//! prefers; together they check that both entry points of each component answer alike.
//!
//! With `REDWASM_BASE_URL` set, both binaries test that server, so this one runs nothing
//! new: prefer `cargo test -p redwasm-tests --test conformance` there.

/// See the module docs.
const WASI_HTTP_ONLY: bool = true;

#[path = "conformance/cache.rs"]
mod cache;
#[path = "conformance/common.rs"]
mod common;
#[path = "conformance/host.rs"]
mod host;
#[path = "conformance/progress.rs"]
mod progress;
#[path = "conformance/ratelimit.rs"]
mod ratelimit;
#[path = "conformance/sessions.rs"]
mod sessions;
