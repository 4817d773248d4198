//! `POST /v1/ratelimit/check` `{"key","cost"?,"policies":[name | policy, ...]}` → 200 or 429
//! `{"allowed","retry_after_ms","policies":[...],"bypassed","degraded"}`, with `RateLimit-Policy`,
//! `RateLimit`, and `Retry-After` on 429.

use serde_json::Value;

use super::{
    HttpError, HttpRequest, HttpResponse, MAX_BODY_BYTES, StateJson, state_json, typed_json,
    with_ratelimit_headers,
};
use crate::clock::Clock;
use crate::error::RateLimitError;
use crate::headers::ceil_seconds;
use crate::limiter::RateLimiter;
use crate::policy::policy_ref_from_json;
use crate::redis::RedisExec;

pub(super) fn handle<R: RedisExec, C: Clock>(
    limiter: &mut RateLimiter<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    if !is_json(request.header("Content-Type")) {
        return Err(HttpError::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    if request.body.len() > MAX_BODY_BYTES {
        return Err(HttpError::BodyTooLarge(MAX_BODY_BYTES as u64));
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|error| HttpError::invalid("body", format!("not valid JSON: {error}")))?;
    let Value::Object(fields) = body else {
        return Err(HttpError::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|name| !matches!(name.as_str(), "key" | "cost" | "policies"))
    {
        return Err(HttpError::invalid(
            unknown,
            "unknown member; expected \"key\", \"cost\" and \"policies\"",
        ));
    }
    let key = match fields.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(_) => return Err(HttpError::invalid("key", "must be a string")),
        None => return Err(HttpError::invalid("key", "is required")),
    };
    let cost = match fields.get("cost") {
        None => 1,
        Some(value) => value.as_u64().ok_or_else(|| {
            HttpError::invalid("cost", format!("must be a positive integer, got {value}"))
        })?,
    };
    let refs = match fields.get("policies") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| policy_ref_from_json(item, &format!("policies[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(HttpError::invalid(
                "policies",
                "must be an array of policy objects or names",
            ));
        }
        None => return Err(HttpError::invalid("policies", "is required")),
    };
    let decision = limiter
        .check(&key, &refs, cost)
        .map_err(|error| match error {
            RateLimitError::UnknownPolicy(name) => {
                HttpError::invalid("policies", format!("no configured policy named {name:?}"))
            }
            other => HttpError::RateLimit(other),
        })?;
    let status = if decision.allowed { 200 } else { 429 };
    let body = CheckJson {
        allowed: decision.allowed,
        bypassed: decision.bypassed,
        degraded: decision.degraded,
        policies: decision.policies.iter().map(state_json).collect(),
        retry_after_ms: decision.retry_after_ms,
    };
    let mut response = with_ratelimit_headers(typed_json(status, &body), &decision.policies);
    if !decision.allowed {
        let seconds = ceil_seconds(decision.retry_after_ms).max(1);
        response = response.with_header("Retry-After", &seconds.to_string());
    }
    Ok(response)
}

/// The check response body (keys in `serde_json::Value`'s order, as [`StateJson`]).
#[derive(serde::Serialize)]
struct CheckJson<'a> {
    allowed: bool,
    bypassed: bool,
    degraded: bool,
    policies: Vec<StateJson<'a>>,
    retry_after_ms: u64,
}

/// `application/json` or any `+json` type, parameters ignored.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
