//! The HTTP contract's Progress section as plain Rust: routing, validation, RFC 9457
//! problems, `X-Correlation-Id`. The wasm layer only converts Spin's types.
//!
//! | route                                  | methods      |
//! |----------------------------------------|--------------|
//! | `/v1/progress`                         | POST         |
//! | `/v1/progress/{id}`                    | GET, POST, DELETE |
//! | `/v1/progress/{id}/complete`, `/fail`  | POST         |
//! | `/v1/progress/{id}/events`             | GET (SSE)    |

use serde_json::{Map, Value};

pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem,
};
use redwasm_guest::http::{
    JsonBodyError, check_method, invalid_input, json_object_body, method_not_allowed, not_found,
    redis_unavailable, unsupported_media_type,
};
use redwasm_guest::percent::decode_component;

use crate::clock::Clock;
use crate::error::ProgressError;
use crate::progress::{EventsStart, NewEntry, Outcome, Progress, Step, TERMINAL_EVENTS};
use crate::redis::RedisExec;
use redwasm_guest::sse;

/// Route prefix served by this component (`/v1/progress` itself, and below it).
pub const ROUTE: &str = "/v1/progress";
/// `Retry-After` seconds sent with 503.
pub const RETRY_AFTER_S: u64 = 1;
/// Largest request body read (the longest message is far below it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    request: &HttpRequest,
) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let response = route(progress, request).unwrap_or_else(error_response);
    response.with_header(CORRELATION_HEADER, &correlation)
}

fn route<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let path = request
        .path_and_query
        .split_once('?')
        .map_or(request.path_and_query.as_str(), |(p, _)| p);
    let not_found = || HttpError::NotFound(format!("no progress route {path}"));
    let rest = path.strip_prefix(ROUTE).ok_or_else(not_found)?;
    let method = request.method.as_str();
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => {
            require_method(method, &["POST"])?;
            start(progress, request)
        }
        [id] => {
            require_method(method, &["GET", "POST", "DELETE"])?;
            let id = path_id(id)?;
            match method {
                "GET" => progress
                    .get(&id)?
                    .map(|entry| HttpResponse::json(200, &entry))
                    .ok_or(HttpError::Progress(ProgressError::NotFound)),
                "DELETE" => match progress.delete(&id)? {
                    true => Ok(HttpResponse::new(204)),
                    false => Err(HttpError::Progress(ProgressError::NotFound)),
                },
                _ => update(progress, &id, request),
            }
        }
        [id, "events"] => {
            require_method(method, &["GET"])?;
            let id = path_id(id)?;
            events(progress, &id, request)
        }
        [id, action @ ("complete" | "fail")] => {
            require_method(method, &["POST"])?;
            let id = path_id(id)?;
            let mut body = object_body(request, &["message"])?;
            let message = take_string(&mut body, "message")?;
            let outcome = if *action == "complete" {
                Outcome::Completed
            } else {
                Outcome::Failed
            };
            let changed = progress.finish(&id, outcome, message.as_deref())?;
            Ok(HttpResponse::json(200, &changed.entry))
        }
        _ => Err(not_found()),
    }
}

/// `POST /v1/progress`: 201 with the entry.
fn start<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let mut body = object_body(
        request,
        &["id", "correlation_id", "total_steps", "message", "ttl_s"],
    )?;
    let new = NewEntry {
        id: take_string(&mut body, "id")?,
        correlation_id: take_string(&mut body, "correlation_id")?,
        total_steps: take_u64(&mut body, "total_steps")?
            .ok_or_else(|| HttpError::invalid("total_steps", "is required"))?,
        message: take_string(&mut body, "message")?,
        ttl_s: take_u64(&mut body, "ttl_s")?,
    };
    let changed = progress.start(&new)?;
    Ok(HttpResponse::json(201, &changed.entry))
}

/// `POST /v1/progress/{id}`: 200 with the entry.
fn update<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let mut body = object_body(request, &["step", "message", "percent"])?;
    let step = Step {
        step: take_u64(&mut body, "step")?,
        message: take_string(&mut body, "message")?,
        percent: match body.remove("percent") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_f64()
                    .ok_or_else(|| HttpError::invalid("percent", "must be a number"))?,
            ),
        },
    };
    let changed = progress.update(id, &step)?;
    Ok(HttpResponse::json(200, &changed.entry))
}

/// The entry id when `request` is `GET /v1/progress/{id}/events` (an invalid id: the problem
/// to answer); `None` for every other request.
pub fn events_target(request: &HttpRequest) -> Option<Result<String, HttpResponse>> {
    let path = request
        .path_and_query
        .split_once('?')
        .map_or(request.path_and_query.as_str(), |(p, _)| p);
    let id = path
        .strip_prefix(ROUTE)?
        .strip_prefix('/')?
        .strip_suffix("/events")?;
    if request.method != "GET" || id.contains('/') {
        return None;
    }
    Some(path_id(id).map_err(error_response))
}

/// The `Last-Event-ID` a reconnecting client sent, if any.
pub fn last_event_id(request: &HttpRequest) -> Option<&str> {
    request
        .header(sse::LAST_EVENT_ID)
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// Where the stream of entry `id` starts for this request, as a problem response when it
/// cannot (404, a malformed `Last-Event-ID`).
pub fn events_start<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    id: &str,
    request: &HttpRequest,
) -> Result<EventsStart, HttpResponse> {
    progress
        .events_start(id, last_event_id(request))
        .map_err(|e| error_response(HttpError::Progress(e)))
}

/// `GET /v1/progress/{id}/events`. With the redwasm host's fan-out (its request header), the
/// body carries the first events and the host follows the entry's stream after them (see
/// `redwasm_guest::sse`); without it (a caller that cannot stream), the first events only,
/// after which the client reconnects with `Last-Event-ID` and loses nothing.
fn events<R: RedisExec, C: Clock>(
    progress: &mut Progress<R, C>,
    id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let start = match events_start(progress, id, request) {
        Ok(start) => start,
        Err(problem) => return Ok(problem),
    };
    let mut response = sse::event_stream_response(&start.events);
    if !start.finished && request.header(sse::FANOUT_REQUEST_HEADER).is_some() {
        response = sse::follow(
            response,
            &crate::keys::stream(id),
            &start.last_id,
            &TERMINAL_EVENTS,
        );
    }
    Ok(response)
}

fn require_method(method: &str, allowed: &[&str]) -> Result<(), HttpError> {
    check_method(method, allowed)
        .map_err(|(method, allow)| HttpError::MethodNotAllowed { method, allow })
}

/// The percent-decoded, validated `{id}` path segment.
fn path_id(raw: &str) -> Result<String, HttpError> {
    let id = decode_component(raw, false).map_err(|detail| HttpError::invalid("id", detail))?;
    crate::keys::validate_id(&id)?;
    Ok(id)
}

/// The body as a JSON object with only `allowed` fields (an empty body is `{}`); 415 for a
/// content type other than JSON, 400 naming the field otherwise.
fn object_body(request: &HttpRequest, allowed: &[&str]) -> Result<Map<String, Value>, HttpError> {
    json_object_body(request, allowed).map_err(|error| match error {
        JsonBodyError::UnsupportedMediaType(detail) => HttpError::UnsupportedMediaType(detail),
        JsonBodyError::Invalid(detail) => HttpError::invalid("body", detail),
        JsonBodyError::Field { field, detail } => HttpError::invalid(&field, detail),
    })
}

fn take_string(body: &mut Map<String, Value>, field: &str) -> Result<Option<String>, HttpError> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(HttpError::invalid(field, "must be a string")),
    }
}

fn take_u64(body: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, HttpError> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| HttpError::invalid(field, "must be a non-negative integer")),
    }
}

/// Everything that ends a request early; rendered as RFC 9457 problem+json.
#[derive(Debug)]
enum HttpError {
    Progress(ProgressError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Progress(ProgressError::invalid(field, detail))
    }
}

impl From<ProgressError> for HttpError {
    fn from(error: ProgressError) -> Self {
        Self::Progress(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::Progress(ProgressError::Invalid { field, detail }) => {
            invalid_input(&field, &detail)
        }
        HttpError::Progress(ProgressError::NotFound) => {
            not_found("no such progress entry (unknown or expired)")
        }
        HttpError::Progress(ProgressError::Conflict(detail)) => {
            problem(409, "conflict", "Conflict", &detail).into_response()
        }
        HttpError::Progress(ProgressError::Unavailable(detail)) => {
            redis_unavailable("redwasm-progress", &detail, RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
    }
}
