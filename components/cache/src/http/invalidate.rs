//! `POST /v1/cache/{ns}/invalidate` `{"tags":[..]}` or `{"all":true}` → `{"invalidated":n}`.

use super::{HttpError, HttpRequest, HttpResponse, MAX_INVALIDATE_BODY_BYTES};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::redis::RedisExec;
use serde_json::Value;

pub(super) fn handle<R: RedisExec, C: Clock>(
    cache: &mut Cache<R, C>,
    ns: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    if !is_json(request.header("Content-Type")) {
        return Err(HttpError::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    if request.body.len() > MAX_INVALIDATE_BODY_BYTES {
        return Err(HttpError::BodyTooLarge(MAX_INVALIDATE_BODY_BYTES as u64));
    }
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|error| HttpError::invalid("body", format!("not valid JSON: {error}")))?;
    let Value::Object(fields) = body else {
        return Err(HttpError::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|name| *name != "tags" && *name != "all") {
        return Err(HttpError::invalid(
            unknown,
            "unknown field; expected \"tags\" or \"all\"",
        ));
    }
    let all = match fields.get("all") {
        None => false,
        Some(Value::Bool(all)) => *all,
        Some(_) => return Err(HttpError::invalid("all", "must be a boolean")),
    };
    let tags = match fields.get("tags") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(tag) => Ok(tag.clone()),
                    _ => Err(HttpError::invalid("tags", "must be an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(HttpError::invalid("tags", "must be an array of strings")),
    };
    let invalidated = match (all, tags) {
        (true, None) => cache.invalidate_all(ns)?,
        (true, Some(_)) => {
            return Err(HttpError::invalid(
                "body",
                "give either \"tags\" or \"all\", not both",
            ));
        }
        (false, Some(tags)) => cache.invalidate_tags(ns, &tags)?,
        (false, None) => {
            return Err(HttpError::invalid(
                "body",
                "expected {\"tags\":[...]} or {\"all\":true}",
            ));
        }
    };
    Ok(HttpResponse::json(
        200,
        &serde_json::json!({ "invalidated": invalidated }),
    ))
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
