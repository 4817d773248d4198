//! `GET /schedules`, `PUT|GET|DELETE /schedules/{name}`: repeatable jobs.

use serde_json::Value;

use super::{HttpError, HttpRequest, HttpResponse, json_body};
use crate::QueueError;
use crate::clock::Clock;
use crate::queue::Queues;
use crate::redis::RedisExec;

/// `GET /schedules`: every schedule with its next tick.
pub(super) fn list<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
) -> Result<HttpResponse, HttpError> {
    let schedules = queues.schedules(queue)?;
    Ok(HttpResponse::json(
        200,
        &Value::Array(schedules.iter().map(|s| s.to_json()).collect()),
    ))
}

/// `PUT|GET|DELETE /schedules/{name}`.
pub(super) fn one<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    name: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    match request.method.as_str() {
        "PUT" => {
            let body = json_body(request)?;
            let (schedule, created) = queues.put_schedule(queue, name, body)?;
            Ok(HttpResponse::json(
                if created { 201 } else { 200 },
                &schedule.to_json(),
            ))
        }
        "DELETE" => match queues.delete_schedule(queue, name)? {
            true => Ok(HttpResponse::new(204)),
            false => Err(HttpError::NotFound(format!("no schedule named {name:?}"))),
        },
        _ => queues
            .schedules(queue)?
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| HttpResponse::json(200, &s.to_json()))
            .ok_or(HttpError::Queue(QueueError::NotFound)),
    }
}
