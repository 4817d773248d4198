//! `PUT /v1/cache/{ns}/{key}?ttl_s=&swr_s=&tags=a,b&jitter_pct=` with `If-Match` support.

use super::{HttpError, HttpRequest, HttpResponse, decode_component, integer_param, percent};
use crate::cache::{Cache, SetOptions};
use crate::clock::Clock;
use crate::config::{MAX_JITTER_PCT, MAX_TTL_MS};
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    ns: &str,
    key: &str,
    query: &[(String, String)],
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let max_s = MAX_TTL_MS / 1000;
    let ttl_s = integer_param(query, "ttl_s", 0, max_s)?;
    let swr_s = integer_param(query, "swr_s", 0, max_s)?;
    if ttl_s == Some(0) && swr_s.unwrap_or(0) == 0 {
        return Err(HttpError::invalid(
            "ttl_s",
            "must be at least 1, or 0 together with a non-zero swr_s".to_string(),
        ));
    }
    let jitter_pct = integer_param(query, "jitter_pct", 0, u64::from(MAX_JITTER_PCT))?;
    let tags = match percent::query_value(query, "tags") {
        None | Some("") => Vec::new(),
        // Split before decoding, so a tag may contain an encoded comma (%2C).
        Some(raw) => raw
            .split(',')
            .map(|tag| {
                decode_component(tag, true).map_err(|detail| HttpError::invalid("tags", detail))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let if_match = request.header("If-Match").map(unquote);
    let options = SetOptions {
        ttl_ms: ttl_s.map(|s| s * 1000),
        swr_ms: swr_s.map(|s| s * 1000),
        jitter_pct: jitter_pct.and_then(|p| u8::try_from(p).ok()),
        tags,
        content_type: request
            .header("Content-Type")
            .map(|ct| ct.trim().to_string()),
        if_match,
    };
    cache.set(ns, key, &request.body, &options)?;
    Ok(HttpResponse::new(204))
}

/// Accepts `If-Match: token` and the entity-tag form `If-Match: "token"`.
fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}
