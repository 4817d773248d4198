//! A test-only Spin HTTP component (WASIp2) for redwasm's fault-containment and sandbox tests.
//! It is built to wasm by `tests/build.rs`; natively it is an empty crate.
//!
//! It has both HTTP entry points of redwasm's components, `wasi:http/incoming-handler` and the
//! one-call `redwasm:http/handler`, over the same probes, so the tests can run each fault on
//! either (`typed_http` in the manifest picks one). Every answer carries `x-probe-entry:
//! wasi:http` or `redwasm:http` to say which ran.
//!
//! Routes (the last path segment selects the probe, so the same code serves any route prefix,
//! e.g. `/probe/...` and `/other/...`):
//! - `POST …/redis` with `{"command":"GET","args":["k", 1]}` runs `Connection::execute`
//!   against the `redis_address` variable; 200 with the flattened reply as a JSON array
//!   (`null` for nil, numbers for integers, strings for bulk strings, `{"status":…}` for
//!   status replies), or 502 with the guest-visible error text (e.g. `denied: ...`).
//! - `GET …/trap`: executes `unreachable` (a trap).
//! - `GET …/panic`: panics (which aborts, i.e. traps, on wasm32-wasip2).
//! - `GET …/spin`: busy-loops forever.
//! - `GET …/sleep?ms=N`: sleeps N ms, then 200.
//! - `GET …/count`: increments and returns a per-instance counter and a random instance id,
//!   `{"count":N,"instance":"<id>"}` (observes instance reuse).
//! - `POST …/echo`: streams the body and returns its length; 400 naming the error when the
//!   body cannot be read (e.g. the host's body limit).
//! - `GET …/fetch?url=URL&n=N`: N outbound GETs of URL (`wasi:http`); 200
//!   `{"statuses":[..],"bytes":total}`, or 502 with the guest-visible error (`HttpRequestDenied`).
//! - `GET …/loop`: GETs `http://self/probe/loop` (itself) and answers with what it got, so
//!   the innermost failure comes back up the chain.
//! - `GET …/kv?label=L&op=set|get|delete|exists|keys&key=K&value=V`: `fermyon:spin/key-value`;
//!   200 JSON, or 502 with the guest-visible error (`AccessDenied`).
//! - `GET …/headers`: the request headers it was given among `x-probe` and `spin-path-info`
//!   (the typed entry point declares exactly these two), as `[[name, value], ...]`.

#![deny(missing_docs)]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // `#[http_component]` expansion; no hand-written unsafe.
mod wasm;
