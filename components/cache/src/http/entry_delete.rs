//! `DELETE /v1/cache/{ns}/{key}` → 204, also when absent.

use super::{HttpError, HttpResponse};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    ns: &str,
    key: &str,
) -> Result<HttpResponse, HttpError> {
    cache.delete(ns, key)?;
    Ok(HttpResponse::new(204))
}
