//! The HTTP contract's Cache section as plain Rust: a tiny request/response pair, routing from
//! the full path, one file per endpoint. Natively unit-testable; the wasm layer only converts
//! Spin's types to and from [`HttpRequest`]/[`HttpResponse`].
//!
//! Routes (segments are percent-decoded after routing, so a key literally named `stats` or
//! `invalidate` is reachable as `%73tats` / `%69nvalidate`):
//!
//! | route                              | methods            | file             |
//! |------------------------------------|--------------------|------------------|
//! | `/v1/cache/{ns}/stats`             | GET                | `stats.rs`       |
//! | `/v1/cache/{ns}/invalidate`        | POST               | `invalidate.rs`  |
//! | `/v1/cache/{ns}/{key}`             | GET, PUT, DELETE   | `entry_*.rs`     |

mod entry_delete;
mod entry_get;
mod entry_put;
mod invalidate;
use redwasm_guest::percent;
mod stats;

pub use entry_get::{CACHE_STATUS_HIT, CACHE_STATUS_MISS, CACHE_STATUS_STALE};
pub use percent::{decode_component, parse_query};
pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, MAX_CORRELATION_ID_LEN, PROBLEM_TYPE_BASE,
    Problem, correlation_id, problem,
};
use redwasm_guest::http::{
    check_method, integer_query, invalid_input, method_not_allowed, not_found, redis_unavailable,
    unsupported_media_type,
};

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::CacheConfig;
use crate::error::CacheError;
use crate::redis::RedisExec;

/// Route prefix served by this component.
pub const ROUTE_PREFIX: &str = "/v1/cache/";
/// Largest invalidation body accepted, in bytes.
pub const MAX_INVALIDATE_BODY_BYTES: usize = 64 * 1024;
/// `Retry-After` seconds sent with 503 and with a lease wait that timed out.
pub const RETRY_AFTER_S: u64 = 1;

/// How many body bytes the wasm layer must read at most (one more than any limit, so an
/// oversized body is still recognised as such and answered 413).
pub fn max_body_bytes(config: &CacheConfig) -> usize {
    let value_limit = usize::try_from(config.max_value_bytes).unwrap_or(usize::MAX);
    value_limit.max(MAX_INVALIDATE_BODY_BYTES).saturating_add(1)
}

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    request: &HttpRequest,
) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let response = route(cache, request).unwrap_or_else(error_response);
    response.with_header(CORRELATION_HEADER, &correlation)
}

/// Which endpoint a path names, with its still-encoded segments.
enum Route<'a> {
    Stats { ns: &'a str },
    Invalidate { ns: &'a str },
    Entry { ns: &'a str, key: &'a str },
}

fn resolve(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix(ROUTE_PREFIX)?;
    let mut segments = rest.split('/');
    let ns = segments.next()?;
    let second = segments.next()?;
    if segments.next().is_some() {
        return None;
    }
    Some(match second {
        "stats" => Route::Stats { ns },
        "invalidate" => Route::Invalidate { ns },
        key => Route::Entry { ns, key },
    })
}

fn route<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (path, query) = match request.path_and_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (request.path_and_query.as_str(), ""),
    };
    let Some(route) = resolve(path) else {
        return Err(HttpError::NotFound(format!("no cache route {path}")));
    };
    let method = request.method.as_str();
    match route {
        Route::Stats { ns } => {
            require_method(method, &["GET"])?;
            stats::handle(cache, &path_segment("ns", ns)?)
        }
        Route::Invalidate { ns } => {
            require_method(method, &["POST"])?;
            invalidate::handle(cache, &path_segment("ns", ns)?, request)
        }
        Route::Entry { ns, key } => {
            require_method(method, &["GET", "PUT", "DELETE"])?;
            let ns = path_segment("ns", ns)?;
            let key = path_segment("key", key)?;
            let query = parse_query(query).map_err(|detail| HttpError::invalid("query", detail))?;
            match method {
                "GET" => entry_get::handle(cache, &ns, &key, &query),
                "PUT" => entry_put::handle(cache, &ns, &key, &query, request),
                _ => entry_delete::handle(cache, &ns, &key),
            }
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
    Cache(CacheError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
    BodyTooLarge(u64),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Cache(CacheError::invalid(field, detail))
    }
}

impl From<CacheError> for HttpError {
    fn from(error: CacheError) -> Self {
        Self::Cache(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::Cache(CacheError::Invalid { field, detail }) => invalid_input(&field, &detail),
        HttpError::Cache(CacheError::TooLarge(limit)) | HttpError::BodyTooLarge(limit) => problem(
            413,
            "too-large",
            "Content too large",
            &format!("the body is larger than the limit of {limit} bytes"),
        )
        .into_response(),
        HttpError::Cache(CacheError::PreconditionFailed(detail)) => {
            problem(412, "precondition-failed", "Precondition failed", &detail).into_response()
        }
        HttpError::Cache(CacheError::Unavailable(detail)) => {
            redis_unavailable("redwasm-cache", &detail, RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
    }
}

/// The integer query parameter `name`, if present; 400 naming it when it is not an integer
/// in `min..=max`.
fn integer_param(
    query: &[(String, String)],
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, HttpError> {
    integer_query(query, name, min, max).map_err(|detail| HttpError::invalid(name, detail))
}
