//! The HTTP contract's Queues section as plain Rust: routing from the full path, validation,
//! RFC 9457 problems, `X-Correlation-Id`. The wasm layer only converts Spin's types.
//!
//! | route                                       | methods     | file        |
//! |---------------------------------------------|-------------|-------------|
//! | `/v1/queues/{queue}/jobs`                   | POST        | `jobs.rs`   |
//! | `/v1/queues/{queue}/jobs/batch`             | POST        | `jobs.rs`   |
//! | `/v1/queues/{queue}/jobs/{id}`              | GET, DELETE | `jobs.rs`   |
//! | `/v1/queues/{queue}/claim`                  | POST        | `lease.rs`  |
//! | `/v1/queues/{queue}/jobs/{id}/ack`          | POST        | `lease.rs`  |
//! | `/v1/queues/{queue}/jobs/{id}/nack`         | POST        | `lease.rs`  |
//! | `/v1/queues/{queue}/jobs/{id}/heartbeat`    | POST        | `lease.rs`  |
//! | `/v1/queues/{queue}/dead`                   | GET         | `dead.rs`   |
//! | `/v1/queues/{queue}/dead/requeue`           | POST        | `dead.rs`   |
//! | `/v1/queues/{queue}/stats`                  | GET         | `stats.rs`  |
//! | `/v1/queues/{queue}/events`                 | GET (SSE)   | here        |
//! | `/v1/queues/{queue}/schedules`              | GET         | `schedules.rs` |
//! | `/v1/queues/{queue}/schedules/{name}`       | PUT, GET, DELETE | `schedules.rs` |

mod dead;
mod jobs;
mod lease;
mod schedules;
mod stats;

pub use stats::stats_json;

pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem,
};
use redwasm_guest::http::{
    JsonBodyError, check_method, integer_query, invalid_input, json_request_body,
    method_not_allowed, not_found, redis_unavailable, unsupported_media_type,
};
use redwasm_guest::percent::{decode_component, parse_query};
use redwasm_guest::sse;

use crate::clock::Clock;
use crate::error::QueueError;
use crate::queue::Queues;
use crate::redis::RedisExec;

/// Route prefix served by this component.
pub const ROUTE_PREFIX: &str = "/v1/queues/";
/// `Retry-After` seconds sent with 503.
pub const RETRY_AFTER_S: u64 = 1;

/// How many body bytes the wasm layer must read at most: a full batch of maximal payloads,
/// plus one byte so an oversized body is still recognised.
pub fn max_body_bytes(queues: &Queues<impl RedisExec, impl Clock>) -> usize {
    let c = queues.config();
    usize::try_from(c.max_payload_bytes.saturating_mul(c.max_batch.min(16)))
        .unwrap_or(usize::MAX)
        .saturating_add(1)
}

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    request: &HttpRequest,
) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let response = route(queues, request, &correlation).unwrap_or_else(error_response);
    response.with_header(CORRELATION_HEADER, &correlation)
}

fn route<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    request: &HttpRequest,
    correlation: &str,
) -> Result<HttpResponse, HttpError> {
    let (path, query) = request
        .path_and_query
        .split_once('?')
        .unwrap_or((request.path_and_query.as_str(), ""));
    let not_found = || HttpError::NotFound(format!("no queue route {path}"));
    let rest = path.strip_prefix(ROUTE_PREFIX).ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let method = request.method.as_str();
    let queue = path_segment("queue", segments[0])?;
    crate::keys::validate_queue(&queue)?;
    let query = parse_query(query).map_err(|detail| HttpError::invalid("query", detail))?;
    match segments[1..] {
        ["jobs"] => {
            require_method(method, &["POST"])?;
            jobs::enqueue(queues, &queue, request, correlation)
        }
        ["jobs", "batch"] => {
            require_method(method, &["POST"])?;
            jobs::enqueue_batch(queues, &queue, request, correlation)
        }
        ["jobs", id] => {
            require_method(method, &["GET", "DELETE"])?;
            let id = path_segment("id", id)?;
            match method {
                "GET" => jobs::get(queues, &queue, &id),
                _ => jobs::cancel(queues, &queue, &id),
            }
        }
        ["jobs", id, action @ ("ack" | "nack" | "heartbeat")] => {
            require_method(method, &["POST"])?;
            let id = path_segment("id", id)?;
            lease::settle(queues, &queue, &id, action, request)
        }
        ["claim"] => {
            require_method(method, &["POST"])?;
            lease::claim(queues, &queue, request)
        }
        ["dead"] => {
            require_method(method, &["GET"])?;
            dead::list(queues, &queue, &query)
        }
        ["dead", "requeue"] => {
            require_method(method, &["POST"])?;
            dead::requeue(queues, &queue, request)
        }
        ["events"] => {
            require_method(method, &["GET"])?;
            events(queues, &queue, request)
        }
        ["stats"] => {
            require_method(method, &["GET"])?;
            stats::handle(queues, &queue)
        }
        ["schedules"] => {
            require_method(method, &["GET"])?;
            schedules::list(queues, &queue)
        }
        ["schedules", name] => {
            require_method(method, &["PUT", "GET", "DELETE"])?;
            let name = path_segment("name", name)?;
            schedules::one(queues, &queue, &name, request)
        }
        _ => Err(not_found()),
    }
}

/// `GET /v1/queues/{queue}/events`: every state change of the queue's jobs as SSE
/// (`event: waiting|delayed|active|completed|failed|dead|cancelled|...`, `data:
/// {"id","ms"}`), after `Last-Event-ID` when given (else live only). With the redwasm host's
/// fan-out the stream stays open; without it (Spin) the replay is sent and the client comes
/// back after `retry:` with its `Last-Event-ID`, losing nothing.
fn events<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let after = request
        .header(sse::LAST_EVENT_ID)
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let (events, last) = queues.events_start(queue, after)?;
    let response = sse::event_stream_response(&events);
    Ok(match request.header(sse::FANOUT_REQUEST_HEADER) {
        Some(_) => sse::follow(response, &crate::keys::events(queue), &last, &[]),
        None => response,
    })
}

fn require_method(method: &str, allowed: &[&str]) -> Result<(), HttpError> {
    check_method(method, allowed)
        .map_err(|(method, allow)| HttpError::MethodNotAllowed { method, allow })
}

/// Percent-decodes and validates one path segment.
fn path_segment(field: &str, raw: &str) -> Result<String, HttpError> {
    let decoded =
        decode_component(raw, false).map_err(|detail| HttpError::invalid(field, detail))?;
    crate::keys::validate_segment(field, &decoded)?;
    Ok(decoded)
}

/// The request body as JSON (`Null` for an empty body). 415 for a content type other than
/// JSON, 400 naming `body` when it does not parse.
fn json_body(request: &HttpRequest) -> Result<serde_json::Value, HttpError> {
    match json_request_body(request) {
        Ok(value) => Ok(value.unwrap_or(serde_json::Value::Null)),
        Err(JsonBodyError::UnsupportedMediaType(detail)) => {
            Err(HttpError::UnsupportedMediaType(detail))
        }
        Err(JsonBodyError::Invalid(detail)) => Err(HttpError::invalid("body", detail)),
        Err(JsonBodyError::Field { field, detail }) => Err(HttpError::invalid(&field, detail)),
    }
}

/// Everything that ends a request early; rendered as RFC 9457 problem+json.
#[derive(Debug)]
enum HttpError {
    Queue(QueueError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Queue(QueueError::invalid(field, detail))
    }
}

impl From<QueueError> for HttpError {
    fn from(error: QueueError) -> Self {
        Self::Queue(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::Queue(QueueError::Invalid { field, detail }) => invalid_input(&field, &detail),
        HttpError::Queue(QueueError::TooLarge { field, limit }) => problem(
            413,
            "too-large",
            "Content too large",
            &format!("{field} is larger than the limit of {limit}"),
        )
        .with_field(&field)
        .into_response(),
        HttpError::Queue(QueueError::NotFound) => {
            problem(404, "not-found", "Not found", "no such job").into_response()
        }
        HttpError::Queue(QueueError::Conflict(status)) => problem(
            409,
            "conflict",
            "Conflict",
            &format!("the lease is not current or the job is finished; the job is {status}"),
        )
        .into_response(),
        HttpError::Queue(QueueError::Unavailable(detail)) => {
            redis_unavailable("redwasm-queue", &detail, RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
    }
}

/// The integer query parameter `name`, if present; 400 naming it otherwise.
fn integer_param(
    query: &[(String, String)],
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, HttpError> {
    integer_query(query, name, min, max).map_err(|detail| HttpError::invalid(name, detail))
}
