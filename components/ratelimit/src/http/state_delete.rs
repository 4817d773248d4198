//! `DELETE /v1/ratelimit/{policy}/{key}` → 204 (also when there was no state): the configured
//! policy's counters for the key are forgotten (unknown policy → 404).

use super::{HttpError, HttpResponse};
use crate::clock::Clock;
use crate::limiter::RateLimiter;
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    limiter: &mut RateLimiter<R, C>,
    policy: &str,
    key: &str,
) -> Result<HttpResponse, HttpError> {
    limiter.reset(policy, key)?;
    Ok(HttpResponse::new(204))
}
