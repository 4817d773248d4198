//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the typed
//! `redwasm:ratelimit/ratelimit` export, both thin adapters over [`crate::http::handle`] and
//! [`crate::RateLimiter`]. No logic lives here.

use std::cell::RefCell;

use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, variable};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{DEFAULT_REDIS_ADDRESS, VAR_REDIS_ADDRESS};
use crate::{
    FixedTime, Policy, PolicyRef, RateLimitConfig, RateLimitError, RateLimiter, RedisTime,
};

thread_local! {
    /// The limiter, built once per instance: the policies and the bypass list cannot change
    /// during an instance's life, and reading and parsing them on every request would be
    /// import calls and JSON parsing on the hot path.
    static LIMITER: RefCell<Option<RateLimiter<SpinRedis, RedisTime>>> =
        const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads; no other header is fetched.
const REQUEST_HEADERS: [&str; 2] = ["x-correlation-id", "content-type"];

/// Runs `f` on this instance's limiter (Redis `TIME` clock).
fn with_limiter<T>(f: impl FnOnce(&mut RateLimiter<SpinRedis, RedisTime>) -> T) -> T {
    LIMITER.with(|cell| {
        let mut limiter = cell.borrow_mut();
        let limiter = limiter.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            RateLimiter::new(
                SpinRedis::new(address),
                RedisTime,
                RateLimitConfig::from_lookup(variable),
            )
        });
        f(limiter)
    })
}

/// The HTTP entry point: reads the request (only a POST body, at most
/// [`crate::http::MAX_BODY_BYTES`] + 1 bytes) and answers through [`crate::http::handle`].
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["POST"],
        max_body_bytes: crate::http::MAX_BODY_BYTES + 1,
    };
    let response = match read_request(request, &shape) {
        Ok(request) => with_limiter(|limiter| crate::http::handle(limiter, &request)),
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-ratelimit");
}

// The same HTTP layer as `handle_http`, called by the redwasm host in one go
// (`redwasm:http/handler`): the host has read the whole body and passes only REQUEST_HEADERS.
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_limiter(|limiter| crate::http::handle(limiter, request))
});

/// Bindings of the typed export (`wit/ratelimit.wit`, the single file).
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/ratelimit.wit",
        world: "ratelimit-component",
    });
}

use bindings::exports::redwasm::ratelimit::ratelimit as typed;

struct TypedRateLimit;

impl typed::Guest for TypedRateLimit {
    fn check(
        key: String,
        policies: Vec<typed::PolicyRef>,
        cost: u64,
    ) -> Result<typed::CheckResult, typed::Error> {
        let refs: Vec<PolicyRef> = policies.into_iter().map(from_wit_ref).collect();
        with_limiter(|limiter| limiter.check(&key, &refs, cost))
            .map(to_wit_check)
            .map_err(to_wit_error)
    }

    fn check_at(
        key: String,
        policies: Vec<typed::PolicyRef>,
        cost: u64,
        now_ms: u64,
    ) -> Result<typed::CheckResult, typed::Error> {
        let refs: Vec<PolicyRef> = policies.into_iter().map(from_wit_ref).collect();
        // A caller-supplied clock is for tests and embedders; a limiter on it shares the
        // instance's Redis client and configuration but never its clock.
        let (redis, config) =
            with_limiter(|limiter| (limiter.redis().clone(), limiter.config().clone()));
        RateLimiter::new(redis, FixedTime(now_ms), config)
            .check(&key, &refs, cost)
            .map(to_wit_check)
            .map_err(to_wit_error)
    }

    fn peek(policy_name: String, key: String) -> Result<typed::PolicyState, typed::Error> {
        with_limiter(|limiter| limiter.peek(&policy_name, &key))
            .map(to_wit_state)
            .map_err(to_wit_error)
    }

    fn reset(policy_name: String, key: String) -> Result<(), typed::Error> {
        with_limiter(|limiter| limiter.reset(&policy_name, &key)).map_err(to_wit_error)
    }
}

fn to_wit_check(decision: crate::Decision) -> typed::CheckResult {
    typed::CheckResult {
        allowed: decision.allowed,
        retry_after_ms: decision.retry_after_ms,
        policies: decision.policies.into_iter().map(to_wit_state).collect(),
        bypassed: decision.bypassed,
        degraded: decision.degraded,
    }
}

fn from_wit_ref(policy: typed::PolicyRef) -> PolicyRef {
    match policy {
        typed::PolicyRef::Named(name) => PolicyRef::Named(name),
        typed::PolicyRef::Inline(p) => PolicyRef::Inline(Policy {
            name: p.name,
            limit: p.limit,
            window_ms: p.window_ms,
            algorithm: match p.algorithm {
                typed::Algorithm::SlidingWindow => crate::Algorithm::SlidingWindow,
                typed::Algorithm::SlidingWindowCounter => crate::Algorithm::SlidingWindowCounter,
                typed::Algorithm::TokenBucket => crate::Algorithm::TokenBucket,
                typed::Algorithm::FixedWindow => crate::Algorithm::FixedWindow,
            },
            burst: p.burst,
            fail_mode: match p.fail_mode {
                Some(typed::FailMode::Open) => crate::FailMode::Open,
                Some(typed::FailMode::Closed) | None => crate::FailMode::Closed,
            },
            unit: match p.unit {
                Some(typed::Unit::Request) => crate::Unit::Request,
                Some(typed::Unit::Cost) | None => crate::Unit::Cost,
            },
        }),
    }
}

fn to_wit_state(state: crate::PolicyState) -> typed::PolicyState {
    typed::PolicyState {
        name: state.name,
        limit: state.limit,
        remaining: state.remaining,
        reset_ms: state.reset_ms,
    }
}

fn to_wit_error(error: RateLimitError) -> typed::Error {
    match error {
        RateLimitError::Invalid { field, detail } => {
            typed::Error::Invalid(format!("{field}: {detail}"))
        }
        RateLimitError::UnknownPolicy(name) => typed::Error::UnknownPolicy(name),
        RateLimitError::Config(detail) => typed::Error::Config(detail),
        RateLimitError::Unavailable(detail) => typed::Error::Unavailable(detail),
    }
}

bindings::export!(TypedRateLimit with_types_in bindings);
