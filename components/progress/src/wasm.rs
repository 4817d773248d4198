//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the redwasm
//! host's one-call `redwasm:http/handler`, both thin adapters over [`crate::http::handle`].
//! No logic lives here.

use std::cell::RefCell;

use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, variable};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{DEFAULT_REDIS_ADDRESS, ProgressConfig, VAR_REDIS_ADDRESS};
use crate::{Progress, SystemClock};

thread_local! {
    /// Built once per instance: variables cannot change during an instance's life.
    static PROGRESS: RefCell<Option<Progress<SpinRedis, SystemClock>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads.
const REQUEST_HEADERS: [&str; 2] = ["x-correlation-id", "content-type"];

fn with_progress<T>(f: impl FnOnce(&mut Progress<SpinRedis, SystemClock>) -> T) -> T {
    PROGRESS.with(|cell| {
        let mut progress = cell.borrow_mut();
        let progress = progress.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            Progress::new(
                SpinRedis::new(address),
                SystemClock,
                ProgressConfig::from_lookup(variable),
            )
        });
        f(progress)
    })
}

/// The HTTP entry point: reads the request (POST bodies, bounded) and answers through
/// [`crate::http::handle`].
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["POST"],
        max_body_bytes: crate::http::MAX_BODY_BYTES,
    };
    let response = match read_request(request, &shape) {
        Ok(request) => with_progress(|progress| crate::http::handle(progress, &request)),
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-progress");
}

// The same HTTP layer, called by the redwasm host in one go (`redwasm:http/handler`).
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_progress(|progress| crate::http::handle(progress, request))
});
