//! `redwasm:http/handler@0.1.0` (`wit/http-handler-0.1.0.wit`): a whole request in, a whole
//! response out, in one call.
//!
//! Under `wasi:http` a guest makes about twenty resource calls per request (method, path,
//! header fields, body streams, response fields, outparam), and each one crosses the
//! component boundary. A component that also exports this interface is served through it
//! instead (unless its `typed_http` setting is off): the host reads the body first (within
//! the component's limit), passes only the headers the component declared, and turns the
//! returned record into the response.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

use super::{Body, Failure, full};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/http-handler-0.1.0.wit",
        world: "http-handler",
        exports: { default: async },
    });
}

use bindings::exports::redwasm::http::handler as wit;
pub(super) use bindings::{HttpHandler, HttpHandlerPre};

/// The call's argument, with its whole body but no headers yet (see [`pick_headers`]), and
/// the request's headers. A body that cannot be read is [`Failure::BadBody`] (over the limit,
/// the trigger answers 413).
pub(super) async fn read_request(
    request: Request<Body>,
) -> Result<(HeaderMap, wit::Request), Failure> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| Failure::BadBody(error.to_string()))?
        .to_bytes();
    let request = wit::Request {
        method: parts.method.as_str().to_ascii_uppercase(),
        path_with_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string()),
        headers: Vec::new(),
        body: Vec::from(body),
    };
    Ok((parts.headers, request))
}

/// The `wanted` headers of `headers`, in the guest's form.
pub(super) fn pick_headers(headers: &HeaderMap, wanted: &[HeaderName]) -> Vec<(String, String)> {
    let mut picked = Vec::with_capacity(wanted.len());
    for name in wanted {
        for value in headers.get_all(name) {
            picked.push((
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    picked
}

/// The HTTP response of the guest's record. The host frames the body itself, so the guest's
/// `content-length` and `transfer-encoding` are ignored; a header that is not valid HTTP is
/// dropped with a log line, as a wasi:http host refuses it.
pub(super) fn into_response(
    component: &str,
    response: wit::Response,
) -> Result<Response<Body>, Failure> {
    // A 1xx cannot be a final response.
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|status| !status.is_informational())
        .ok_or_else(|| {
            Failure::Component(format!(
                "the guest answered with status {}",
                response.status
            ))
        })?;
    let mut out = Response::new(full(Bytes::from(response.body)));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    headers.reserve(response.headers.len());
    for (name, value) in response.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
                    headers.append(name, value);
                }
            }
            _ => tracing::warn!(component, header = %name, "dropping an invalid response header"),
        }
    }
    Ok(out)
}

/// The header names a component declared in `request-headers`, parsed; invalid ones are
/// skipped with a log line (the guest can never receive them).
pub(super) fn header_names(component: &str, names: Vec<String>) -> Vec<HeaderName> {
    names
        .into_iter()
        .filter_map(|name| match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => Some(header),
            Err(_) => {
                tracing::warn!(component, header = %name, "ignoring an invalid name in request-headers");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_request_carries_only_wanted_headers_and_the_whole_body() {
        let request = Request::builder()
            .method("put")
            .uri("http://h/v1/cache/ns/k?ttl_s=5")
            .header("content-type", "text/plain")
            .header("x-other", "secret")
            .header("x-correlation-id", "a")
            .header("x-correlation-id", "b")
            .body(full("hello"))
            .unwrap();
        let wanted = header_names(
            "c",
            vec![
                "x-correlation-id".into(),
                "content-type".into(),
                "bad name".into(),
            ],
        );
        assert_eq!(wanted.len(), 2);
        let Ok((headers, mut req)) = read_request(request).await else {
            panic!("the body is readable");
        };
        assert!(req.headers.is_empty());
        req.headers = pick_headers(&headers, &wanted);
        assert_eq!(req.method, "PUT");
        assert_eq!(req.path_with_query, "/v1/cache/ns/k?ttl_s=5");
        assert_eq!(
            req.headers,
            vec![
                ("x-correlation-id".to_string(), "a".to_string()),
                ("x-correlation-id".to_string(), "b".to_string()),
                ("content-type".to_string(), "text/plain".to_string()),
            ]
        );
        assert_eq!(req.body, b"hello");
    }

    #[tokio::test]
    async fn the_response_drops_framing_and_invalid_headers() {
        let response = into_response(
            "c",
            wit::Response {
                status: 201,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("content-length".into(), "999".into()),
                    ("bad name".into(), "x".into()),
                    ("x-ok".into(), "bad\nvalue".into()),
                    ("cache-status".into(), "redwasm; hit".into()),
                ],
                body: b"{}".to_vec(),
            },
        );
        let Ok(response) = response else {
            panic!("a valid status");
        };
        assert_eq!(response.status(), StatusCode::CREATED);
        let names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type", "cache-status"]);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{}");

        for status in [1000, 100, 99] {
            let bad_status = into_response(
                "c",
                wit::Response {
                    status,
                    headers: vec![],
                    body: vec![],
                },
            );
            assert!(
                matches!(bad_status, Err(Failure::Component(_))),
                "status {status}"
            );
        }
    }
}
