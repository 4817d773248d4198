//! RFC 9457 `application/problem+json` responses the host itself produces.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::Body;

/// A problem response: `{"type","title","status","detail"}`.
pub(crate) fn problem(status: StatusCode, detail: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("urn:redwasm:problem:{}", slug(status)),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The `type` slug of a status: its reason phrase in kebab case (`payload-too-large`), the
/// same scheme the components use.
fn slug(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "-")
}

/// A complete body from bytes.
pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_has_rfc9457_shape() {
        let response = problem(StatusCode::PAYLOAD_TOO_LARGE, "body over 10 bytes");
        assert_eq!(response.status(), 413);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], 413);
        assert_eq!(json["title"], "Payload Too Large");
        assert_eq!(json["detail"], "body over 10 bytes");
        assert_eq!(json["type"], "urn:redwasm:problem:payload-too-large");
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let response = problem(StatusCode::SERVICE_UNAVAILABLE, "redis down");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
