//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the redwasm
//! host's one-call `redwasm:http/handler`, both thin adapters over [`crate::http::handle`].
//! No logic lives here.

use std::cell::RefCell;

use redwasm_guest::spin::{RequestShape, SpinRedis, read_request, send, variable};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

use crate::config::{DEFAULT_REDIS_ADDRESS, QueueConfig, VAR_REDIS_ADDRESS};
use crate::{Queues, SystemClock};

thread_local! {
    /// The queues, built once per instance: variables cannot change during an instance's life.
    static QUEUES: RefCell<Option<Queues<SpinRedis, SystemClock>>> = const { RefCell::new(None) };
}

/// The request headers the HTTP layer reads.
const REQUEST_HEADERS: [&str; 4] = [
    "x-correlation-id",
    "content-type",
    redwasm_guest::sse::LAST_EVENT_ID,
    redwasm_guest::sse::FANOUT_REQUEST_HEADER,
];

fn with_queues<T>(f: impl FnOnce(&mut Queues<SpinRedis, SystemClock>) -> T) -> T {
    QUEUES.with(|cell| {
        let mut queues = cell.borrow_mut();
        let queues = queues.get_or_insert_with(|| {
            let address =
                variable(VAR_REDIS_ADDRESS).unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string());
            Queues::new(
                SpinRedis::new(address),
                SystemClock,
                QueueConfig::from_lookup(variable),
            )
        });
        f(queues)
    })
}

/// The HTTP entry point: reads the request (POST bodies, bounded) and answers through
/// [`crate::http::handle`].
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let shape = RequestShape {
        headers: &REQUEST_HEADERS,
        body_methods: &["POST", "PUT"],
        max_body_bytes: with_queues(|queues| crate::http::max_body_bytes(queues)),
    };
    let response = match read_request(request, &shape) {
        Ok(request) => with_queues(|queues| crate::http::handle(queues, &request)),
        Err(problem) => problem,
    };
    send(response_out, response, "redwasm-queue");
}

// The same HTTP layer, called by the redwasm host in one go (`redwasm:http/handler`).
redwasm_guest::serve_typed_http!(REQUEST_HEADERS, |request| {
    with_queues(|queues| crate::http::handle(queues, request))
});

/// Bindings of the typed export (`wit/queue-0.1.0.wit`, the single file).
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/queue-0.1.0.wit",
        world: "queue-component",
    });
}

use bindings::exports::redwasm::queue::queue as typed;

use crate::QueueError;

struct TypedQueue;

fn to_wit_error(error: QueueError) -> typed::Error {
    match error {
        QueueError::Invalid { field, detail } => {
            typed::Error::Invalid(format!("{field}: {detail}"))
        }
        QueueError::TooLarge { field, limit } => {
            typed::Error::TooLarge(format!("{field}: larger than the limit of {limit}"))
        }
        QueueError::NotFound => typed::Error::NotFound,
        QueueError::Conflict(status) => typed::Error::Conflict(status),
        QueueError::Unavailable(detail) => typed::Error::Unavailable(detail),
    }
}

impl typed::Guest for TypedQueue {
    fn enqueue(
        queue: String,
        jobs: Vec<String>,
        correlation_id: String,
    ) -> Result<Vec<typed::Enqueued>, typed::Error> {
        with_queues(|queues| {
            let now = queues.now_ms();
            let limit = queues.config().max_payload_bytes;
            let parsed = jobs
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    let value = serde_json::from_str(text)
                        .map_err(|e| QueueError::invalid(&format!("[{i}]"), e.to_string()))?;
                    let mut job = crate::NewJob::from_json(value, &format!("[{i}]."), now, limit)?;
                    job.correlation_id = correlation_id.clone();
                    Ok(job)
                })
                .collect::<Result<Vec<_>, QueueError>>()?;
            queues.enqueue(&queue, &parsed)
        })
        .map(|out| {
            out.into_iter()
                .map(|e| typed::Enqueued {
                    id: e.id,
                    status: e.status,
                    duplicate: e.duplicate,
                })
                .collect()
        })
        .map_err(to_wit_error)
    }

    fn get(queue: String, id: String) -> Result<Option<String>, typed::Error> {
        with_queues(|queues| queues.get(&queue, &id))
            .map(|job| job.map(|j| j.to_json().to_string()))
            .map_err(to_wit_error)
    }

    fn cancel(queue: String, id: String) -> Result<String, typed::Error> {
        with_queues(|queues| queues.cancel(&queue, &id))
            .map(|j| j.to_json().to_string())
            .map_err(to_wit_error)
    }

    fn claim(
        queue: String,
        worker: String,
        max: u32,
        lease_ms: u64,
    ) -> Result<typed::ClaimResult, typed::Error> {
        let (jobs, next_due_ms) =
            with_queues(|queues| queues.claim_next(&queue, &worker, u64::from(max), lease_ms))
                .map_err(to_wit_error)?;
        Ok(typed::ClaimResult {
            jobs: jobs
                .into_iter()
                .map(|c| typed::Claimed {
                    id: c.job.id.clone(),
                    timeout_ms: c.job.timeout_ms,
                    job: c.job.to_json().to_string(),
                    lease: c.lease,
                })
                .collect(),
            next_due_ms,
        })
    }

    fn ack(
        queue: String,
        id: String,
        lease: String,
        result: Option<String>,
    ) -> Result<(), typed::Error> {
        let result = result
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
        with_queues(|queues| queues.ack(&queue, &id, &lease, result.as_ref())).map_err(to_wit_error)
    }

    fn ack_many(
        queue: String,
        items: Vec<typed::AckItem>,
    ) -> Result<Vec<Option<String>>, typed::Error> {
        let items: Vec<(String, String, Option<serde_json::Value>)> = items
            .into_iter()
            .map(|item| {
                let result = item.outcome.map(|text| {
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                });
                (item.id, item.lease, result)
            })
            .collect();
        let outcomes =
            with_queues(|queues| queues.ack_many(&queue, &items)).map_err(to_wit_error)?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(()) => None,
                Err(QueueError::Conflict(status)) => Some(status),
                Err(_) => Some("unknown".to_string()),
            })
            .collect())
    }

    fn nack(
        queue: String,
        id: String,
        lease: String,
        error: String,
        retry: bool,
    ) -> Result<Option<u64>, typed::Error> {
        with_queues(|queues| queues.nack(&queue, &id, &lease, &error, retry))
            .map(|outcome| match outcome {
                crate::Nacked::Retry(at) => Some(at),
                crate::Nacked::Dead => None,
            })
            .map_err(to_wit_error)
    }

    fn heartbeat(
        queue: String,
        id: String,
        lease: String,
        lease_ms: u64,
    ) -> Result<u64, typed::Error> {
        with_queues(|queues| queues.heartbeat(&queue, &id, &lease, lease_ms)).map_err(to_wit_error)
    }

    fn release(queue: String, id: String, lease: String) -> Result<(), typed::Error> {
        with_queues(|queues| queues.release(&queue, &id, &lease)).map_err(to_wit_error)
    }

    fn stats(queue: String) -> Result<String, typed::Error> {
        with_queues(|queues| crate::http::stats_json(queues, &queue))
            .map(|v| v.to_string())
            .map_err(to_wit_error)
    }
}

bindings::export!(TypedQueue with_types_in bindings);
