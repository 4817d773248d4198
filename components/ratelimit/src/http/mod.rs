//! The HTTP contract's Rate limits section as plain Rust: a tiny request/response pair,
//! routing from the full path, one file per endpoint. Natively unit-testable; the wasm layer
//! only converts Spin's types to and from [`HttpRequest`]/[`HttpResponse`].
//!
//! | route                            | methods | file              |
//! |----------------------------------|---------|-------------------|
//! | `/v1/ratelimit/check`            | POST    | `check.rs`        |
//! | `/v1/ratelimit/{policy}/{key}`   | GET     | `state_get.rs`    |
//! | `/v1/ratelimit/{policy}/{key}`   | DELETE  | `state_delete.rs` |

mod check;
use redwasm_guest::percent;
mod state_delete;
mod state_get;

pub use percent::decode_component;
pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, MAX_CORRELATION_ID_LEN, PROBLEM_TYPE_BASE,
    Problem, correlation_id, problem,
};
use redwasm_guest::http::{
    check_method, invalid_input, method_not_allowed, not_found, redis_unavailable,
    unsupported_media_type,
};

use crate::clock::Clock;
use crate::error::RateLimitError;
use crate::headers;
use crate::limiter::{PolicyState, RateLimiter};
use crate::redis::RedisExec;

/// Route prefix served by this component.
pub const ROUTE_PREFIX: &str = "/v1/ratelimit/";
/// Largest check body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// `Retry-After` seconds sent with 503.
pub const UNAVAILABLE_RETRY_AFTER_S: u64 = 1;

/// `response` with `RateLimit-Policy` and `RateLimit` for `policies`.
fn with_ratelimit_headers(response: HttpResponse, policies: &[PolicyState]) -> HttpResponse {
    response
        .with_header(headers::RATELIMIT_POLICY, &headers::policy_header(policies))
        .with_header(headers::RATELIMIT, &headers::ratelimit_header(policies))
}

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec, C: Clock>(
    limiter: &mut RateLimiter<R, C>,
    request: &HttpRequest,
) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let response = route(limiter, request).unwrap_or_else(error_response);
    response.with_header(CORRELATION_HEADER, &correlation)
}

/// Which endpoint a path names, with its still-encoded segments.
enum Route<'a> {
    Check,
    State { policy: &'a str, key: &'a str },
}

fn resolve(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix(ROUTE_PREFIX)?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["check"] => Some(Route::Check),
        [policy, key] => Some(Route::State { policy, key }),
        _ => None,
    }
}

fn route<R: RedisExec, C: Clock>(
    limiter: &mut RateLimiter<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let path = request
        .path_and_query
        .split_once('?')
        .map_or(request.path_and_query.as_str(), |(path, _)| path);
    let Some(route) = resolve(path) else {
        return Err(HttpError::NotFound(format!("no rate-limit route {path}")));
    };
    let method = request.method.as_str();
    match route {
        Route::Check => {
            require_method(method, &["POST"])?;
            check::handle(limiter, request)
        }
        Route::State { policy, key } => {
            require_method(method, &["GET", "DELETE"])?;
            let policy = path_segment("policy", policy)?;
            crate::validate::policy_name("policy", &policy)?;
            let key = path_segment("key", key)?;
            let result = if method == "GET" {
                state_get::handle(limiter, &policy, &key)
            } else {
                state_delete::handle(limiter, &policy, &key)
            };
            // An unknown policy in the path is an unknown resource.
            result.map_err(|error| match error {
                HttpError::RateLimit(RateLimitError::UnknownPolicy(name)) => {
                    HttpError::NotFound(format!("no configured policy named {name:?}"))
                }
                other => other,
            })
        }
    }
}

fn require_method(method: &str, allowed: &[&str]) -> Result<(), HttpError> {
    check_method(method, allowed)
        .map_err(|(method, allow)| HttpError::MethodNotAllowed { method, allow })
}

/// Percent-decodes and validates one path segment.
fn path_segment(field: &str, raw: &str) -> Result<String, HttpError> {
    let decoded =
        decode_component(raw, false).map_err(|detail| HttpError::invalid(field, detail))?;
    crate::validate::segment(field, &decoded)?;
    Ok(decoded)
}

/// Everything that ends a request early; rendered as RFC 9457 problem+json.
#[derive(Debug)]
enum HttpError {
    RateLimit(RateLimitError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
    BodyTooLarge(u64),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::RateLimit(RateLimitError::invalid(field, detail))
    }
}

impl From<RateLimitError> for HttpError {
    fn from(error: RateLimitError) -> Self {
        Self::RateLimit(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::RateLimit(RateLimitError::Invalid { field, detail }) => {
            invalid_input(&field, &detail)
        }
        HttpError::RateLimit(RateLimitError::UnknownPolicy(name)) => problem(
            400,
            "unknown-policy",
            "Unknown policy",
            &format!("policies: no configured policy named {name:?}"),
        )
        .with_field("policies")
        .into_response(),
        HttpError::RateLimit(RateLimitError::Config(detail)) => {
            eprintln!("redwasm-ratelimit: invalid configuration: {detail}");
            problem(
                500,
                "invalid-configuration",
                "Invalid configuration",
                &format!("the rate limiter's configuration is invalid: {detail}"),
            )
            .into_response()
        }
        HttpError::RateLimit(RateLimitError::Unavailable(detail)) => {
            redis_unavailable("redwasm-ratelimit", &detail, UNAVAILABLE_RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
        HttpError::BodyTooLarge(limit) => problem(
            413,
            "too-large",
            "Content too large",
            &format!("the body is larger than the limit of {limit} bytes"),
        )
        .into_response(),
    }
}

/// The body member for one policy state: `{"name","limit","remaining","reset_ms"}`.
/// A policy's state as the response body shows it (keys in the order `serde_json::Value`
/// would print them, so the typed and the untyped form are byte-identical).
#[derive(serde::Serialize)]
struct StateJson<'a> {
    limit: u64,
    name: &'a str,
    remaining: u64,
    reset_ms: u64,
}

fn state_json(state: &PolicyState) -> StateJson<'_> {
    StateJson {
        limit: state.limit,
        name: &state.name,
        remaining: state.remaining,
        reset_ms: state.reset_ms,
    }
}

/// A `200`-style JSON response serialized straight from a typed value (no intermediate
/// `serde_json::Value` tree: this is the check hot path).
fn typed_json(status: u16, value: &impl serde::Serialize) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    HttpResponse::new(status)
        .with_header("Content-Type", "application/json")
        .with_body(body)
}
