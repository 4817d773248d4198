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
