//! `POST /jobs`, `POST /jobs/batch`, `GET /jobs/{id}`, `DELETE /jobs/{id}`.

use serde_json::{Value, json};

use super::{HttpError, HttpRequest, HttpResponse, json_body};
use crate::clock::Clock;
use crate::job::NewJob;
use crate::queue::{Enqueued, Queues};
use crate::redis::RedisExec;

fn parse(
    queues: &Queues<impl RedisExec, impl Clock>,
    value: Value,
    at: &str,
    correlation: &str,
) -> Result<NewJob, HttpError> {
    let mut job = NewJob::from_json(
        value,
        at,
        queues.now_ms(),
        queues.config().max_payload_bytes,
    )?;
    job.correlation_id = correlation.to_string();
    Ok(job)
}

fn item(outcome: &Enqueued) -> Value {
    let mut out = json!({ "id": outcome.id, "status": outcome.status });
    if outcome.duplicate {
        out["duplicate"] = json!(true);
    }
    out
}

/// `POST /jobs`: 201 `{"id","status"}`; a repeated idempotency key: 200 with
/// `"duplicate": true`.
pub(super) fn enqueue<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    request: &HttpRequest,
    correlation: &str,
) -> Result<HttpResponse, HttpError> {
    let body = json_body(request)?;
    if !body.is_object() {
        return Err(HttpError::invalid("body", "must be a JSON object"));
    }
    let job = parse(queues, body, "", correlation)?;
    let outcome = queues.enqueue(queue, &[job])?;
    let outcome = outcome.first().ok_or_else(|| {
        HttpError::Queue(crate::QueueError::Unavailable("no enqueue result".into()))
    })?;
    let status = if outcome.duplicate { 200 } else { 201 };
    Ok(HttpResponse::json(status, &item(outcome)))
}

/// `POST /jobs/batch`: an array of jobs, all validated before any is written; 201 with one
/// result per job, in order.
pub(super) fn enqueue_batch<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    request: &HttpRequest,
    correlation: &str,
) -> Result<HttpResponse, HttpError> {
    let Value::Array(items) = json_body(request)? else {
        return Err(HttpError::invalid("body", "must be a JSON array of jobs"));
    };
    if items.len() as u64 > queues.config().max_batch {
        return Err(HttpError::Queue(crate::QueueError::TooLarge {
            field: "body".into(),
            limit: queues.config().max_batch,
        }));
    }
    let jobs = items
        .into_iter()
        .enumerate()
        .map(|(i, value)| parse(queues, value, &format!("[{i}]."), correlation))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = queues.enqueue(queue, &jobs)?;
    Ok(HttpResponse::json(
        201,
        &Value::Array(outcomes.iter().map(item).collect()),
    ))
}

/// `GET /jobs/{id}`.
pub(super) fn get<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    match queues.get(queue, id)? {
        Some(job) => Ok(HttpResponse::json(200, &job.to_json())),
        None => Err(HttpError::Queue(crate::QueueError::NotFound)),
    }
}

/// `DELETE /jobs/{id}`: 200 with the cancelled job; 409 when it already finished.
pub(super) fn cancel<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let job = queues.cancel(queue, id)?;
    Ok(HttpResponse::json(200, &job.to_json()))
}
