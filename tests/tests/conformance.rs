//! Black-box conformance suite for the HTTP contract (`docs/http-api.md`), over HTTP only:
//! no Redis access, no host internals.
//!
//! # Target
//! - `REDWASM_BASE_URL=http://host:port`: tests that server (`spin up`, a deployed host, ...).
//!   Every test uses its own random namespace, so a shared server with other traffic is fine.
//! - otherwise: each test starts the in-process redwasm host ([`redwasm_tests::TestHost`])
//!   on the workspace's `spin.toml`, against its own redis-server.
//!
//! Checks of things only the redwasm host serves (`/health`, `/metrics`, its 404 for unknown
//! routes) run only when the target is the redwasm host: detected by `GET /health` answering
//! 200 JSON with a `components` array, or forced with `REDWASM_CONFORMANCE_HOST=1` / `=0`.
//!
//! ```sh
//! cargo test -p redwasm-tests --test conformance                        # in-process host
//! REDWASM_BASE_URL=http://127.0.0.1:3000 cargo test -p redwasm-tests --test conformance
//! ```
//!
//! # Layout: one module per capability
//! - `conformance/common.rs`: [`common::Target`], unique namespaces, problem+json checks;
//! - `conformance/cache.rs`: the Cache section (`/v1/cache`);
//! - `conformance/ratelimit.rs`: the Rate limits section (`/v1/ratelimit`), with the named
//!   policies of the repository's `spin.toml`;
//! - `conformance/host.rs`: `/health`, `/metrics`, host-level routing (redwasm host only).
//!
//! To add a capability (e.g. queues): add `conformance/queues.rs` with
//! `#[tokio::test]` functions that start with `let t = Target::get().await;`, and declare it
//! below like the others (`#[path = "conformance/queues.rs"] mod queues;`: this file is
//! a crate root, so its modules need the explicit path).

/// Serve the in-process host's components through `wasi:http` only (see
/// `conformance_wasi_http.rs`); here they get the one-call `redwasm:http/handler` path.
const WASI_HTTP_ONLY: bool = false;

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
