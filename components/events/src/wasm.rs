//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the redwasm
//! host's one-call `redwasm:http/handler`, both thin adapters over [`crate::http::handle`].
//! No logic lives here.

use std::cell::RefCell;

use redwasm_guest::http::{CORRELATION_HEADER, HttpRequest, correlation_id};
use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, stream_sse, variable};
use redwasm_guest::sse;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::Events;
use crate::config::{DEFAULT_REDIS_ADDRESS, EventsConfig, VAR_REDIS_ADDRESS};

thread_local! {
    /// Built once per instance: variables cannot change during an instance's life.
    static EVENTS: RefCell<Option<Events<SpinRedis>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads.
const REQUEST_HEADERS: [&str; 4] = [
    "x-correlation-id",
    "content-type",
    sse::LAST_EVENT_ID,
    sse::FANOUT_REQUEST_HEADER,
];

fn with_events<T>(f: impl FnOnce(&mut Events<SpinRedis>) -> T) -> T {
    EVENTS.with(|cell| {
        let mut events = cell.borrow_mut();
        let events = events.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            Events::new(SpinRedis::new(address), EventsConfig::from_lookup(variable))
        });
        f(events)
    })
}

/// The HTTP entry point: reads the request (POST bodies, bounded) and answers through
/// [`crate::http::handle`]; an event stream is streamed by the instance itself.
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["POST"],
        max_body_bytes: with_events(|events| crate::http::max_body_bytes(events)),
    };
    let response = match read_request(request, &shape) {
        Ok(request) => match crate::http::events_target(&request) {
            // Under Spin there is no fan-out: the instance streams the events itself.
            Some(Ok(channel)) => return stream_events(&channel, &request, response_out),
            Some(Err(problem)) => problem,
            None => with_events(|events| crate::http::handle(events, &request)),
        },
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-events");
}

/// `GET /v1/events/{channel}` streamed by the instance: the first events, then every later
/// one as it is appended (a blocking `XREAD` of the channel's stream), a keep-alive comment
/// when nothing happened for `HEARTBEAT_S`, until an ending event or the client leaving.
fn stream_events(channel: &str, request: &HttpRequest, response_out: ResponseOutparam) {
    let correlation = correlation_id(request.header(CORRELATION_HEADER));
    let start = with_events(|events| crate::http::events_start(events, channel, request));
    let start = match start {
        Ok(start) => start,
        Err(problem) => {
            let problem = problem.with_header(CORRELATION_HEADER, &correlation);
            return send(response_out, problem, "redwasm-events");
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
        return send(response_out, head, "redwasm-events");
    }
    let mut last = start.last_id;
    stream_sse(response_out, head, start.ends, || {
        match with_events(|events| {
            events.events_after(channel, &start.stream, &last, sse::HEARTBEAT_S * 1000)
        }) {
            Ok((events, position)) => {
                last = position;
                Some(events)
            }
            Err(error) => {
                eprintln!("redwasm-events: event stream ended: {error}");
                None
            }
        }
    });
}

// The same HTTP layer, called by the redwasm host in one go (`redwasm:http/handler`).
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_events(|events| crate::http::handle(events, request))
});
