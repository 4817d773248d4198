//! `GET /v1/ratelimit/{policy}/{key}` → 200 `{"name","limit","remaining","reset_ms"}` with
//! `RateLimit-Policy` and `RateLimit`, without consuming. `{policy}` names a configured policy
//! (unknown → 404).

use super::{HttpError, HttpResponse, state_json, typed_json, with_ratelimit_headers};
use crate::clock::Clock;
use crate::limiter::RateLimiter;
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    limiter: &mut RateLimiter<R, C>,
    policy: &str,
    key: &str,
) -> Result<HttpResponse, HttpError> {
    let state = limiter.peek(policy, key)?;
    Ok(with_ratelimit_headers(
        typed_json(200, &state_json(&state)),
        std::slice::from_ref(&state),
    ))
}
