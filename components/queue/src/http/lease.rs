//! The pull API for workers outside the host: `POST /claim`, and `ack`, `nack`, `heartbeat`
//! of a leased job. A lease that is not current: 409, nothing changed.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{HttpError, HttpRequest, HttpResponse, json_body};
use crate::clock::Clock;
use crate::queue::{Nacked, Queues};
use crate::redis::RedisExec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    max: Option<u64>,
    #[serde(default)]
    lease_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    lease: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retry: Option<bool>,
    #[serde(default)]
    lease_ms: Option<u64>,
}

fn body<T: serde::de::DeserializeOwned>(
    request: &HttpRequest,
    empty: Value,
) -> Result<T, HttpError> {
    let value = match json_body(request)? {
        Value::Null => empty,
        value => value,
    };
    serde_json::from_value(value).map_err(|e| HttpError::invalid("body", e.to_string()))
}

/// `POST /claim` `{"worker","max","lease_ms"}` → 200 `[job + "lease"]` (empty when nothing
/// is due).
pub(super) fn claim<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let b: ClaimBody = body(request, json!({}))?;
    let worker = b.worker.unwrap_or_else(|| "http".to_string());
    let lease_ms = b.lease_ms.unwrap_or(queues.config().default_lease_ms);
    let claimed = queues.claim(queue, &worker, b.max.unwrap_or(1), lease_ms)?;
    let out = claimed
        .into_iter()
        .map(|c| {
            let mut job = c.job.to_json();
            job["lease"] = json!(c.lease);
            job
        })
        .collect();
    Ok(HttpResponse::json(200, &Value::Array(out)))
}

/// `POST /jobs/{id}/ack|nack|heartbeat`.
pub(super) fn settle<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    id: &str,
    action: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let b: SettleBody = body(request, Value::Null)?;
    match action {
        "ack" => {
            queues.ack(queue, id, &b.lease, b.result.as_ref())?;
        }
        "nack" => {
            let error = b.error.unwrap_or_else(|| "failed".to_string());
            match queues.nack(queue, id, &b.lease, &error, b.retry.unwrap_or(true))? {
                Nacked::Retry(_) | Nacked::Dead => {}
            }
        }
        _ => {
            let lease_ms = b.lease_ms.unwrap_or(queues.config().default_lease_ms);
            let until = queues.heartbeat(queue, id, &b.lease, lease_ms)?;
            return Ok(HttpResponse::json(200, &json!({ "lease_until_ms": until })));
        }
    }
    let job = queues
        .get(queue, id)?
        .ok_or(HttpError::Queue(crate::QueueError::NotFound))?;
    Ok(HttpResponse::json(200, &job.to_json()))
}
