//! The HTTP contract's Events section as plain Rust: routing, validation, RFC 9457 problems,
//! `X-Correlation-Id`. The wasm layer only converts Spin's types.
//!
//! | route                    | methods |
//! |--------------------------|---------|
//! | `/v1/events/{channel}`   | POST (publish, `?event=<name>`), GET (SSE) |

pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem,
};
use redwasm_guest::http::{
    JsonBodyError, check_method, invalid_input, json_request_body, method_not_allowed, not_found,
    redis_unavailable, unsupported_media_type,
};
use redwasm_guest::percent::{decode_component, parse_query, query_value};
use redwasm_guest::sse;

use crate::error::EventsError;
use crate::events::{Events, EventsStart};
use crate::redis::RedisExec;

/// Route prefix served by this component.
pub const ROUTE: &str = "/v1/events";
/// `Retry-After` seconds sent with 503.
pub const RETRY_AFTER_S: u64 = 1;

/// Largest request body read: the event limit, plus room for whitespace the compact form
/// drops.
pub fn max_body_bytes<R: RedisExec>(events: &Events<R>) -> usize {
    usize::try_from(events.config().max_event_bytes.saturating_mul(2)).unwrap_or(usize::MAX)
}

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec>(events: &mut Events<R>, request: &HttpRequest) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let response = route(events, request).unwrap_or_else(error_response);
    response.with_header(CORRELATION_HEADER, &correlation)
}

fn split(request: &HttpRequest) -> (&str, &str) {
    request
        .path_and_query
        .split_once('?')
        .unwrap_or((request.path_and_query.as_str(), ""))
}

fn route<R: RedisExec>(
    events: &mut Events<R>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (path, query) = split(request);
    let not_found = || HttpError::NotFound(format!("no events route {path}"));
    let raw = path
        .strip_prefix(ROUTE)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(not_found)?;
    check_method(&request.method, &["GET", "POST"])
        .map_err(|(method, allow)| HttpError::MethodNotAllowed { method, allow })?;
    let channel =
        decode_component(raw, false).map_err(|detail| HttpError::invalid("channel", detail))?;
    let query = parse_query(query).map_err(|detail| HttpError::invalid("query", detail))?;
    if request.method == "POST" {
        return publish(events, &channel, &query, request);
    }
    let start = match events_start(events, &channel, request) {
        Ok(start) => start,
        Err(problem) => return Ok(problem),
    };
    let mut response = sse::event_stream_response(&start.events);
    if !start.finished && request.header(sse::FANOUT_REQUEST_HEADER).is_some() {
        response = sse::follow(response, &start.stream, &start.last_id, start.ends);
    }
    Ok(response)
}

/// `POST /v1/events/{channel}`: 202 `{"id"}`.
fn publish<R: RedisExec>(
    events: &mut Events<R>,
    channel: &str,
    query: &[(String, String)],
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    if request.body.len() as u64 > events.config().max_event_bytes.saturating_mul(2) {
        return Err(EventsError::TooLarge(events.config().max_event_bytes).into());
    }
    let data = json_request_body(request)
        .map_err(|error| match error {
            JsonBodyError::UnsupportedMediaType(detail) => HttpError::UnsupportedMediaType(detail),
            JsonBodyError::Invalid(detail) => HttpError::invalid("body", detail),
            JsonBodyError::Field { field, detail } => HttpError::invalid(&field, detail),
        })?
        .ok_or_else(|| HttpError::invalid("body", "is required: any JSON value"))?;
    let event = match query_value(query, "event") {
        Some(raw) => Some(
            decode_component(raw, true).map_err(|detail| HttpError::invalid("event", detail))?,
        ),
        None => None,
    };
    let id = events.publish(channel, event.as_deref(), &data)?;
    Ok(HttpResponse::json(202, &serde_json::json!({ "id": id })))
}

/// The channel name when `request` is `GET /v1/events/{channel}` (an invalid name: the
/// problem to answer); `None` for every other request.
pub fn events_target(request: &HttpRequest) -> Option<Result<String, HttpResponse>> {
    if request.method != "GET" {
        return None;
    }
    let (path, _) = split(request);
    let raw = path
        .strip_prefix(ROUTE)?
        .strip_prefix('/')
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))?;
    Some(
        decode_component(raw, false)
            .map_err(|detail| error_response(HttpError::invalid("channel", detail))),
    )
}

/// The position a client resumes from: the `Last-Event-ID` header, else the
/// `last_event_id` query parameter (for a browser's first `EventSource` connection, which
/// cannot set headers).
pub fn last_event_id(request: &HttpRequest) -> Result<Option<String>, HttpResponse> {
    if let Some(id) = request
        .header(sse::LAST_EVENT_ID)
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        return Ok(Some(id.to_string()));
    }
    let (_, query) = split(request);
    let query =
        parse_query(query).map_err(|detail| error_response(HttpError::invalid("query", detail)))?;
    match query_value(&query, "last_event_id") {
        Some(raw) => decode_component(raw, true)
            .map(|id| Some(id.trim().to_string()).filter(|id| !id.is_empty()))
            .map_err(|detail| error_response(HttpError::invalid("last_event_id", detail))),
        None => Ok(None),
    }
}

/// Where the stream of `channel` starts for this request, as a problem response when it
/// cannot (a bad channel, a malformed `Last-Event-ID`, Redis down).
pub fn events_start<R: RedisExec>(
    events: &mut Events<R>,
    channel: &str,
    request: &HttpRequest,
) -> Result<EventsStart, HttpResponse> {
    let after = last_event_id(request)?;
    events
        .start(channel, after.as_deref())
        .map_err(|e| error_response(HttpError::Events(e)))
}

/// Everything that ends a request early; rendered as RFC 9457 problem+json.
#[derive(Debug)]
enum HttpError {
    Events(EventsError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Events(EventsError::invalid(field, detail))
    }
}

impl From<EventsError> for HttpError {
    fn from(error: EventsError) -> Self {
        Self::Events(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::Events(EventsError::Invalid { field, detail }) => invalid_input(&field, &detail),
        HttpError::Events(EventsError::TooLarge(limit)) => problem(
            413,
            "too-large",
            "Payload Too Large",
            &format!("the event is larger than {limit} bytes (as compact JSON)"),
        )
        .with_field("body")
        .into_response(),
        HttpError::Events(EventsError::ReadOnly(writer)) => problem(
            403,
            "read-only-channel",
            "Forbidden",
            &format!("this channel carries the {writer} component's events; only it writes here"),
        )
        .with_field("channel")
        .into_response(),
        HttpError::Events(EventsError::Unavailable(detail)) => {
            redis_unavailable("redwasm-events", &detail, RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
    }
}
