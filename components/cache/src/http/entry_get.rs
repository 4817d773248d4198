//! `GET /v1/cache/{ns}/{key}[?lease_ms=N]`.

use super::{HttpError, HttpResponse, RETRY_AFTER_S, integer_param, problem};
use crate::cache::{Cache, Entry, Lookup};
use crate::clock::Clock;
use crate::redis::RedisExec;

/// `Cache-Status` of a fresh hit (RFC 9211).
pub const CACHE_STATUS_HIT: &str = "redwasm; hit";
/// `Cache-Status` of a hit within the grace period.
pub const CACHE_STATUS_STALE: &str = "redwasm; hit; fwd=stale";
/// `Cache-Status` of a miss.
pub const CACHE_STATUS_MISS: &str = "redwasm; fwd=miss";

pub(super) fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    ns: &str,
    key: &str,
    query: &[(String, String)],
) -> Result<HttpResponse, HttpError> {
    let max_lease_ms = cache.config().max_lease_ms;
    match integer_param(query, "lease_ms", 1, max_lease_ms)? {
        None => Ok(match cache.get(ns, key)? {
            Some(entry) => hit(entry),
            None => miss(key),
        }),
        Some(lease_ms) => Ok(match cache.lookup(ns, key, lease_ms)? {
            Lookup::Hit(entry) => hit(entry),
            Lookup::Lease(token) => miss(key).with_header("Redwasm-Lease", &token),
            Lookup::Miss => miss(key).with_header("Retry-After", &RETRY_AFTER_S.to_string()),
        }),
    }
}

fn hit(entry: Entry) -> HttpResponse {
    let status = if entry.stale {
        CACHE_STATUS_STALE
    } else {
        CACHE_STATUS_HIT
    };
    let mut response = HttpResponse::new(200)
        .with_header("Content-Type", &entry.content_type)
        .with_header("Age", &(entry.age_ms / 1000).to_string())
        .with_header("Cache-Status", status);
    if let Some(token) = &entry.revalidate_token {
        response = response.with_header("Redwasm-Revalidate", token);
    }
    response.with_body(entry.value)
}

fn miss(key: &str) -> HttpResponse {
    problem(
        404,
        "cache-miss",
        "Not found",
        &format!("no cached value for key {key:?}"),
    )
    .into_response()
    .with_header("Cache-Status", CACHE_STATUS_MISS)
}
