//! The HTTP contract's Sessions section as plain Rust: routing, validation, `ETag` /
//! `If-Match`, RFC 9457 problems, `X-Correlation-Id`.
//!
//! | route                          | methods          |
//! |--------------------------------|------------------|
//! | `/v1/sessions`                 | POST             |
//! | `/v1/sessions/{sid}`           | GET, PUT, DELETE |
//! | `/v1/users/{uid}/sessions`     | GET, DELETE      |

use serde_json::{Map, Value, json};

pub use redwasm_guest::http::{
    CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem,
};
use redwasm_guest::http::{
    JsonBodyError, check_method, invalid_input, json_object_body, method_not_allowed, not_found,
    redis_unavailable, unsupported_media_type,
};
use redwasm_guest::percent::{decode_component, parse_query};

use crate::clock::Clock;
use crate::error::SessionError;
use crate::redis::RedisExec;
use crate::sessions::Sessions;

/// `Retry-After` seconds sent with 503.
pub const RETRY_AFTER_S: u64 = 1;

/// Handles one request: routing, the endpoint, errors as problem+json, and the
/// `X-Correlation-Id` echo on every response.
pub fn handle<R: RedisExec, C: Clock>(
    sessions: &mut Sessions<R, C>,
    request: &HttpRequest,
) -> HttpResponse {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    // A body as long as the read cap was cut there (the wasm layer reads no more): it is too
    // large, whatever the JSON would have said.
    let response = if request.body.len() >= max_body_bytes(sessions) {
        error_response(HttpError::Session(SessionError::TooLarge {
            field: "data".into(),
            limit: sessions.config().max_data_bytes,
        }))
    } else {
        route(sessions, request).unwrap_or_else(error_response)
    };
    response.with_header(CORRELATION_HEADER, &correlation)
}

/// Largest request body read: the data limit, JSON overhead, and one byte to recognise more.
pub fn max_body_bytes<R: RedisExec, C: Clock>(sessions: &Sessions<R, C>) -> usize {
    usize::try_from(sessions.config().max_data_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(4096)
}

fn route<R: RedisExec, C: Clock>(
    sessions: &mut Sessions<R, C>,
    request: &HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let (path, query) = request
        .path_and_query
        .split_once('?')
        .unwrap_or((request.path_and_query.as_str(), ""));
    let not_found = || HttpError::NotFound(format!("no sessions route {path}"));
    let method = request.method.as_str();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "sessions"] => {
            require_method(method, &["POST"])?;
            let mut body = object_body(request, &["user_id", "data", "ttl_s"])?;
            let user_id = match body.remove("user_id") {
                Some(Value::String(user)) => user,
                Some(_) => return Err(HttpError::invalid("user_id", "must be a string")),
                None => return Err(HttpError::invalid("user_id", "is required")),
            };
            let data = body.remove("data").unwrap_or_else(|| json!({}));
            let ttl_s = match body.remove("ttl_s") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| HttpError::invalid("ttl_s", "must be a positive integer"))?,
                ),
            };
            let created = sessions.create(&user_id, &data, ttl_s)?;
            Ok(HttpResponse::json(
                201,
                &json!({
                    "session_id": created.session_id,
                    "expires_ms": created.expires_ms,
                    "version": created.version,
                }),
            )
            .with_header("ETag", &etag(created.version)))
        }
        ["v1", "sessions", sid] => {
            require_method(method, &["GET", "PUT", "DELETE"])?;
            let sid = segment("session_id", sid)?;
            match method {
                "GET" => {
                    let query =
                        parse_query(query).map_err(|detail| HttpError::invalid("query", detail))?;
                    let touch = match query.iter().find(|(k, _)| k == "touch") {
                        None => true,
                        Some((_, v)) if v == "true" => true,
                        Some((_, v)) if v == "false" => false,
                        Some(_) => {
                            return Err(HttpError::invalid("touch", "must be true or false"));
                        }
                    };
                    let session = sessions.get(&sid, touch)?;
                    Ok(HttpResponse::json(200, &session.to_json())
                        .with_header("ETag", &etag(session.version))
                        .with_header("Cache-Control", "no-store"))
                }
                "PUT" => {
                    let expected = match request.header("if-match") {
                        None => None,
                        Some(value) => Some(parse_etag(value).ok_or_else(|| {
                            HttpError::invalid("If-Match", "must be a version, e.g. \"3\"")
                        })?),
                    };
                    let mut body = object_body(request, &["data"])?;
                    let data = body
                        .remove("data")
                        .ok_or_else(|| HttpError::invalid("data", "is required"))?;
                    let session = sessions.update(&sid, expected, &data)?;
                    Ok(HttpResponse::json(200, &session.to_json())
                        .with_header("ETag", &etag(session.version)))
                }
                _ => match sessions.delete(&sid)? {
                    true => Ok(HttpResponse::new(204)),
                    false => Err(HttpError::Session(SessionError::NotFound)),
                },
            }
        }
        ["v1", "users", uid, "sessions"] => {
            require_method(method, &["GET", "DELETE"])?;
            let uid = segment("user_id", uid)?;
            crate::keys::validate_user_id(&uid)?;
            match method {
                "GET" => {
                    let list = sessions.list(&uid)?;
                    Ok(HttpResponse::json(200, &json!({ "sessions": list })))
                }
                _ => {
                    let revoked = sessions.revoke_all(&uid)?;
                    Ok(HttpResponse::json(200, &json!({ "revoked": revoked })))
                }
            }
        }
        _ => Err(not_found()),
    }
}

/// The `ETag` of a version: `"<version>"`.
fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// An `If-Match` value: `"3"`, `W/"3"` or `3`.
fn parse_etag(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    value.trim_matches('"').parse().ok()
}

fn require_method(method: &str, allowed: &[&str]) -> Result<(), HttpError> {
    check_method(method, allowed)
        .map_err(|(method, allow)| HttpError::MethodNotAllowed { method, allow })
}

fn segment(field: &str, raw: &str) -> Result<String, HttpError> {
    decode_component(raw, false).map_err(|detail| HttpError::invalid(field, detail))
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

/// Everything that ends a request early; rendered as RFC 9457 problem+json.
#[derive(Debug)]
enum HttpError {
    Session(SessionError),
    NotFound(String),
    MethodNotAllowed { method: String, allow: String },
    UnsupportedMediaType(String),
}

impl HttpError {
    fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Session(SessionError::invalid(field, detail))
    }
}

impl From<SessionError> for HttpError {
    fn from(error: SessionError) -> Self {
        Self::Session(error)
    }
}

fn error_response(error: HttpError) -> HttpResponse {
    match error {
        HttpError::Session(SessionError::Invalid { field, detail }) => {
            invalid_input(&field, &detail)
        }
        HttpError::Session(SessionError::TooLarge { field, limit }) => problem(
            413,
            "too-large",
            "Content too large",
            &format!("{field} is larger than the limit of {limit} bytes"),
        )
        .with_field(&field)
        .into_response(),
        HttpError::Session(SessionError::NotFound) => {
            not_found("no such session (unknown, expired or ended)")
        }
        HttpError::Session(SessionError::VersionMismatch(current)) => problem(
            412,
            "precondition-failed",
            "Precondition failed",
            &format!("If-Match names another version; the session is at version {current}"),
        )
        .into_response()
        .with_header("ETag", &etag(current)),
        HttpError::Session(SessionError::Unavailable(detail)) => {
            redis_unavailable("redwasm-sessions", &detail, RETRY_AFTER_S)
        }
        HttpError::NotFound(detail) => not_found(&detail),
        HttpError::MethodNotAllowed { method, allow } => method_not_allowed(&method, &allow),
        HttpError::UnsupportedMediaType(detail) => unsupported_media_type(&detail),
    }
}
