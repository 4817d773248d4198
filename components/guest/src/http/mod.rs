//! The tiny HTTP request/response pair every component's plain-Rust HTTP layer works on, and
//! the pieces every endpoint shares: RFC 9457 problems and `X-Correlation-Id`.

mod correlation;
mod problem;

pub use correlation::{CORRELATION_HEADER, MAX_CORRELATION_ID_LEN, correlation_id};
pub use problem::{
    PROBLEM_TYPE_BASE, Problem, invalid_input, method_not_allowed, not_found, problem,
    redis_unavailable, unsupported_media_type,
};

/// An HTTP request, already read into memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// Path and query as received, e.g. `/v1/cache/ns/k?ttl_s=60`.
    pub path_and_query: String,
    /// Headers in order; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body (the wasm layer stops reading one byte past the component's limit, so an
    /// oversized body is still recognised as such).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: &str, path_and_query: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path_and_query: path_and_query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a status and nothing else.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(value.to_string())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body parsed as JSON (`Null` when it is not JSON); handy in tests.
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Why a request body is not the JSON an endpoint wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonBodyError {
    /// A `Content-Type` other than JSON (415); the detail to answer with.
    UnsupportedMediaType(String),
    /// The body does not parse (400 naming `body`); the parser's message.
    Invalid(String),
    /// A field is wrong (400 naming it): not an object (`body`), or an unknown field.
    Field {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
}

/// The request body as a JSON object with only `allowed` fields (an empty body is `{}`), as
/// [`json_request_body`] reads it.
pub fn json_object_body(
    request: &HttpRequest,
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, JsonBodyError> {
    let Some(value) = json_request_body(request)? else {
        return Ok(serde_json::Map::new());
    };
    let serde_json::Value::Object(map) = value else {
        return Err(JsonBodyError::Field {
            field: "body".into(),
            detail: "must be a JSON object".into(),
        });
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(JsonBodyError::Field {
            field: unknown.clone(),
            detail: format!("unknown field; expected one of {}", allowed.join(", ")),
        });
    }
    Ok(map)
}

/// The request body as JSON, `None` when it is empty. A `Content-Type` other than
/// `application/json` (parameters aside) is refused; no header is taken as JSON.
pub fn json_request_body(
    request: &HttpRequest,
) -> Result<Option<serde_json::Value>, JsonBodyError> {
    if let Some(content_type) = request.header("content-type") {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(JsonBodyError::UnsupportedMediaType(format!(
                "send JSON (application/json), not {essence}"
            )));
        }
    }
    if request.body.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&request.body)
        .map(Some)
        .map_err(|e| JsonBodyError::Invalid(e.to_string()))
}

/// Ok when `method` is one of `allowed`; else the 405 `(method, "A, B")` to answer.
pub fn check_method(method: &str, allowed: &[&str]) -> Result<(), (String, String)> {
    if allowed.contains(&method) {
        return Ok(());
    }
    Err((method.to_string(), allowed.join(", ")))
}

/// The integer query parameter `name` (percent-decoded), if present; `Err(detail)` when it
/// is not an integer in `min..=max`.
pub fn integer_query(
    query: &[(String, String)],
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, String> {
    let Some(raw) = crate::percent::query_value(query, name) else {
        return Ok(None);
    };
    let text = crate::percent::decode_component(raw, true)?;
    match text.parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
        _ => Err(format!("must be an integer in {min}..={max}, got {text:?}")),
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
