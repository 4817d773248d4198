//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the redwasm
//! host's one-call `redwasm:http/handler`, both thin adapters over [`crate::http::handle`].
//! No logic lives here.

use std::cell::RefCell;

use redwasm_guest::http::{CORRELATION_HEADER, HttpRequest, correlation_id};
use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, stream_sse, variable};
use redwasm_guest::sse;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{DEFAULT_REDIS_ADDRESS, ProgressConfig, VAR_REDIS_ADDRESS};
use crate::{Progress, SystemClock};

thread_local! {
    /// Built once per instance: variables cannot change during an instance's life.
    static PROGRESS: RefCell<Option<Progress<SpinRedis, SystemClock>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads.
const REQUEST_HEADERS: [&str; 4] = [
    "x-correlation-id",
    "content-type",
    sse::LAST_EVENT_ID,
    sse::FANOUT_REQUEST_HEADER,
];

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
        Ok(request) => match crate::http::events_target(&request) {
            // Under Spin there is no fan-out: the instance streams the events itself.
            Some(Ok(id)) => return stream_events(&id, &request, response_out),
            Some(Err(problem)) => problem,
            None => with_progress(|progress| crate::http::handle(progress, &request)),
        },
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-progress");
}

/// `GET /v1/progress/{id}/events` streamed by the instance: the first events, then every
/// later one as it is appended (a blocking `XREAD` of the entry's stream), a keep-alive
/// comment when nothing happened for `HEARTBEAT_S`, until the terminal event, the entry's
/// expiry, or the client leaving.
fn stream_events(id: &str, request: &HttpRequest, response_out: ResponseOutparam) {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let start = with_progress(|progress| crate::http::events_start(progress, id, request));
    let start = match start {
        Ok(start) => start,
        Err(problem) => {
            let problem = problem.with_header(CORRELATION_HEADER, &correlation);
            return send(response_out, problem, "redwasm-progress");
        }
    };
    let mut first = sse::preamble();
    for event in &start.events {
        event.encode(&mut first);
    }
    let head = sse::event_stream_head()
        .with_header(CORRELATION_HEADER, &correlation)
        .with_body(first);
    if start.finished {
        return send(response_out, head, "redwasm-progress");
    }
    let mut last = start.last_id;
    stream_sse(
        response_out,
        head,
        &crate::TERMINAL_EVENTS,
        || match with_progress(|progress| progress.events_after(id, &last, sse::HEARTBEAT_S * 1000))
        {
            Ok(Some(events)) => {
                if let Some(event) = events.last() {
                    last = event.id.clone();
                }
                Some(events)
            }
            Ok(None) | Err(_) => None,
        },
    );
}

// The same HTTP layer, called by the redwasm host in one go (`redwasm:http/handler`).
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_progress(|progress| crate::http::handle(progress, request))
});
