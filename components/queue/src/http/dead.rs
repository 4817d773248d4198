//! `GET /dead?limit=` and `POST /dead/requeue` `{"ids":[...]}` (or `{}` for all).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{HttpError, HttpRequest, HttpResponse, integer_param, json_body};
use crate::clock::Clock;
use crate::queue::Queues;
use crate::redis::RedisExec;

/// `GET /dead?limit=` (default 100, at most 1000): newest first.
pub(super) fn list<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    query: &[(String, String)],
) -> Result<HttpResponse, HttpError> {
    let limit = integer_param(query, "limit", 1, 1000)?.unwrap_or(100);
    let jobs = queues.dead(queue, limit)?;
    Ok(HttpResponse::json(
        200,
        &Value::Array(jobs.iter().map(|j| j.to_json()).collect()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequeueBody {
    #[serde(default)]
    ids: Option<Vec<String>>,
}

/// `POST /dead/requeue` → `{"requeued": n}`.
pub(super) fn requeue<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let value = match json_body(request)? {
        Value::Null => json!({}),
        value => value,
    };
    let b: RequeueBody =
        serde_json::from_value(value).map_err(|e| HttpError::invalid("body", e.to_string()))?;
    let n = queues.requeue(queue, b.ids.as_deref())?;
    Ok(HttpResponse::json(200, &json!({ "requeued": n })))
}
