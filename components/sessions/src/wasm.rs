//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the redwasm
//! host's one-call `redwasm:http/handler`, both thin adapters over [`crate::http::handle`].
//! No logic lives here.

use std::cell::RefCell;

use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, variable};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{DEFAULT_REDIS_ADDRESS, SessionsConfig, VAR_REDIS_ADDRESS};
use crate::{Sessions, SystemClock};

thread_local! {
    /// Built once per instance: variables cannot change during an instance's life.
    static SESSIONS: RefCell<Option<Sessions<SpinRedis, SystemClock>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads.
const REQUEST_HEADERS: [&str; 3] = ["x-correlation-id", "content-type", "if-match"];

fn with_sessions<T>(f: impl FnOnce(&mut Sessions<SpinRedis, SystemClock>) -> T) -> T {
    SESSIONS.with(|cell| {
        let mut sessions = cell.borrow_mut();
        let sessions = sessions.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            Sessions::new(
                SpinRedis::new(address),
                SystemClock,
                SessionsConfig::from_lookup(variable),
            )
        });
        f(sessions)
    })
}

/// The HTTP entry point: reads the request (bounded) and answers through
/// [`crate::http::handle`].
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["POST", "PUT"],
        max_body_bytes: with_sessions(|sessions| crate::http::max_body_bytes(sessions)),
    };
    let response = match read_request(request, &shape) {
        Ok(request) => with_sessions(|sessions| crate::http::handle(sessions, &request)),
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-sessions");
}

// The same HTTP layer, called by the redwasm host in one go (`redwasm:http/handler`).
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_sessions(|sessions| crate::http::handle(sessions, request))
});
