//! `GET /v1/cache/{ns}/stats` → `{"hits","misses","stale_hits","hit_ratio","keys"}`.

use super::{HttpError, HttpResponse};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    ns: &str,
) -> Result<HttpResponse, HttpError> {
    let stats = cache.stats(ns)?;
    Ok(HttpResponse::json(
        200,
        &serde_json::json!({
            "hits": stats.hits,
            "misses": stats.misses,
            "stale_hits": stats.stale_hits,
            "hit_ratio": stats.hit_ratio(),
            "keys": stats.keys,
        }),
    ))
}
