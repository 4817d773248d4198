//! RFC 9457 problem details.

use super::HttpResponse;

/// Base of the `type` URIs of our problems.
pub const PROBLEM_TYPE_BASE: &str = "urn:redwasm:problem:";

/// A problem document under construction.
#[derive(Debug, Clone)]
pub struct Problem {
    status: u16,
    body: serde_json::Map<String, serde_json::Value>,
}

/// A problem `{"type","title","status","detail"}` with `type` = `urn:redwasm:problem:<slug>`.
pub fn problem(status: u16, slug: &str, title: &str, detail: &str) -> Problem {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), format!("{PROBLEM_TYPE_BASE}{slug}").into());
    body.insert("title".into(), title.into());
    body.insert("status".into(), status.into());
    body.insert("detail".into(), detail.into());
    Problem { status, body }
}

impl Problem {
    /// Adds the `field` extension member naming the offending input.
    pub fn with_field(mut self, field: &str) -> Self {
        self.body.insert("field".into(), field.into());
        self
    }

    /// The response, with `Content-Type: application/problem+json`.
    pub fn into_response(self) -> HttpResponse {
        HttpResponse::new(self.status)
            .with_header("Content-Type", "application/problem+json")
            .with_body(serde_json::Value::Object(self.body).to_string())
    }
}

/// 400 `invalid-input`: `<field>: <detail>`, with the `field` member.
pub fn invalid_input(field: &str, detail: &str) -> HttpResponse {
    problem(
        400,
        "invalid-input",
        "Invalid input",
        &format!("{field}: {detail}"),
    )
    .with_field(field)
    .into_response()
}

/// 404 `not-found`.
pub fn not_found(detail: &str) -> HttpResponse {
    problem(404, "not-found", "Not found", detail).into_response()
}

/// 405 `method-not-allowed`, with `Allow`.
pub fn method_not_allowed(method: &str, allow: &str) -> HttpResponse {
    problem(
        405,
        "method-not-allowed",
        "Method not allowed",
        &format!("{method} is not allowed here; use {allow}"),
    )
    .into_response()
    .with_header("Allow", allow)
}

/// 415 `unsupported-media-type`.
pub fn unsupported_media_type(detail: &str) -> HttpResponse {
    problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        detail,
    )
    .into_response()
}

/// 503 `redis-unavailable` with `Retry-After`. The Redis error text goes to stderr (the
/// host's logs, under `component`); clients get a stable message.
pub fn redis_unavailable(component: &str, detail: &str, retry_after_s: u64) -> HttpResponse {
    eprintln!("{component}: redis unavailable: {detail}");
    problem(
        503,
        "redis-unavailable",
        "Service unavailable",
        "Redis is unavailable; retry later",
    )
    .into_response()
    .with_header("Retry-After", &retry_after_s.to_string())
}
