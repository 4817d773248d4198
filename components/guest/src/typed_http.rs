//! `redwasm:http/handler@0.1.0` (`wit/http-handler-0.1.0.wit`, only on `wasm32`): the
//! whole-request entry point the redwasm host calls instead of `wasi:http` when a component
//! exports it. A component exports it over its plain-Rust HTTP layer with
//! [`serve_typed_http!`](crate::serve_typed_http); Spin keeps calling `wasi:http`.

wit_bindgen::generate!({
    path: "../../wit/http-handler-0.1.0.wit",
    world: "http-handler",
    pub_export_macro: true,
    export_macro_name: "export_typed_http",
    default_bindings_module: "redwasm_guest::typed_http",
});

pub use exports::redwasm::http::handler::{Guest, Request, Response};

use crate::http::{HttpRequest, HttpResponse};

/// The plain-Rust request of a typed call (moves, no copies).
pub fn into_request(request: Request) -> HttpRequest {
    HttpRequest {
        method: request.method,
        path_and_query: request.path_with_query,
        headers: request.headers,
        body: request.body,
    }
}

/// The typed response of a plain-Rust one (moves, no copies).
pub fn from_response(response: HttpResponse) -> Response {
    Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

/// Exports `redwasm:http/handler` from a component: `$headers` names the request headers its
/// HTTP layer reads (`&[&str]`), `$handle` is a non-capturing closure
/// `|&HttpRequest| -> HttpResponse` over that layer, the same one its `wasi:http` handler calls.
#[macro_export]
macro_rules! serve_typed_http {
    ($headers:expr, $handle:expr) => {
        struct TypedHttp;

        impl $crate::typed_http::Guest for TypedHttp {
            fn request_headers() -> Vec<String> {
                $crate::typed_http::header_names(&$headers)
            }

            fn handle(request: $crate::typed_http::Request) -> $crate::typed_http::Response {
                let handle: fn(&$crate::http::HttpRequest) -> $crate::http::HttpResponse = $handle;
                let request = $crate::typed_http::into_request(request);
                $crate::typed_http::from_response(handle(&request))
            }
        }

        $crate::typed_http::export_typed_http!(TypedHttp);
    };
}

/// `request-headers`' answer for a component that reads `names`.
pub fn header_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_ascii_lowercase()).collect()
}
