//! The Spin side every component shares (only on `wasm32`): [`SpinRedis`], the
//! [`RedisExec`] over `fermyon:spin/redis@2.0.0`; [`read_request`] and [`send`], which turn
//! Spin's HTTP types into [`HttpRequest`] / out of [`HttpResponse`]; and [`variable`].
//!
//! Every function here is on the hot path of every request, so each is shaped to make few
//! import calls: only the headers a component reads are fetched, and the body stream is
//! opened only for methods that carry one.

use std::cell::RefCell;

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::redis::{Connection, Error as SpinRedisError, RedisParameter, RedisResult};
use wasi::io::streams::StreamError;

use crate::http::{CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem};
use crate::redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};

/// Largest read asked of the request body stream at once.
const READ_CHUNK: u64 = 64 * 1024;
/// Largest `blocking-write-and-flush`: WASI guarantees 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

thread_local! {
    /// One connection per instance, reused across requests; dropped after a failure so the
    /// next call reconnects (e.g. after a Redis restart).
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// A Spin variable, `None` when it is unset or cannot be read.
pub fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// [`RedisExec`] over `fermyon:spin/redis@2.0.0`. It connects lazily, so requests that never
/// reach Redis (400/404/405) never open a connection, and it reports an unreachable Redis as
/// [`RedisErrorKind::Unavailable`].
#[derive(Debug, Clone)]
pub struct SpinRedis {
    address: String,
}

impl SpinRedis {
    /// A client for the Redis at `address` (a `redis://` URL).
    pub fn new(address: String) -> Self {
        Self { address }
    }
}

impl RedisExec for SpinRedis {
    fn exec(&mut self, command: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, RedisError> {
        let connection = match CONNECTION.with(|cell| cell.borrow_mut().take()) {
            Some(connection) => connection,
            None => Connection::open(&self.address).map_err(|error| {
                RedisError::new(RedisErrorKind::Unavailable, format!("connect: {error}"))
            })?,
        };
        let params: Vec<RedisParameter> = args
            .iter()
            .map(|arg| match arg {
                Arg::Int(value) => RedisParameter::Int64(*value),
                Arg::Bytes(bytes) => RedisParameter::Binary(bytes.to_vec()),
            })
            .collect();
        let result = connection.execute(command, &params);
        // Under Spin a broken connection and a reply error look alike (`Other`), so only a
        // success or NOSCRIPT (answered by EVAL on this same connection) keeps it.
        let keep = match &result {
            Ok(_) => true,
            Err(SpinRedisError::Other(message)) => {
                RedisError::from_reply_text(message.as_str()).is_no_script()
            }
            Err(_) => false,
        };
        if keep {
            CONNECTION.with(|cell| *cell.borrow_mut() = Some(connection));
        }
        match result {
            Ok(values) => Ok(values.into_iter().map(from_spin_result).collect()),
            Err(SpinRedisError::Other(message)) => Err(RedisError::from_reply_text(message)),
            Err(error) => Err(RedisError::new(
                RedisErrorKind::Unavailable,
                error.to_string(),
            )),
        }
    }
}

fn from_spin_result(result: RedisResult) -> Value {
    match result {
        RedisResult::Nil => Value::Nil,
        RedisResult::Status(text) => Value::Status(text),
        RedisResult::Int64(value) => Value::Int(value),
        RedisResult::Binary(bytes) => Value::Bytes(bytes),
    }
}

/// What a component needs from an incoming request.
#[derive(Debug, Clone, Copy)]
pub struct RequestShape<'a> {
    /// Lower-case names of the headers the component reads; no other header is fetched.
    pub headers: &'a [&'a str],
    /// Upper-case methods whose body the component reads; for the others the body stream is
    /// never opened.
    pub body_methods: &'a [&'a str],
    /// Body bytes to read at most: one more than the largest accepted body, so an oversized
    /// body is still recognised as such and answered 413 without buffering all of it.
    pub max_body_bytes: usize,
}

/// Reads `request` into an [`HttpRequest`] as `shape` says. A body that cannot be read is a
/// finished 400 problem response (with the correlation id), returned as `Err`.
pub fn read_request(
    request: IncomingRequest,
    shape: &RequestShape<'_>,
) -> Result<HttpRequest, HttpResponse> {
    let method = request.method().to_string().to_ascii_uppercase();
    let path_and_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let fields = request.headers();
    let mut headers = Vec::with_capacity(shape.headers.len());
    for name in shape.headers {
        for value in fields.get(name) {
            headers.push((
                (*name).to_string(),
                String::from_utf8_lossy(&value).into_owned(),
            ));
        }
    }
    drop(fields);
    let mut http_request = HttpRequest {
        method,
        path_and_query,
        headers,
        body: Vec::new(),
    };
    if !shape.body_methods.contains(&http_request.method.as_str()) {
        return Ok(http_request);
    }
    match read_body(request, shape.max_body_bytes, &mut http_request.body) {
        Ok(()) => Ok(http_request),
        Err(error) => {
            let correlation = correlation_id(http_request.header(CORRELATION_HEADER));
            Err(problem(
                400,
                "invalid-input",
                "Invalid input",
                &format!("body: could not be read: {error}"),
            )
            .with_field("body")
            .into_response()
            .with_header(CORRELATION_HEADER, &correlation))
        }
    }
}

/// Reads at most `limit` body bytes into `body` with blocking reads: a WASIp2 instance serves
/// one request at a time, so blocking costs nothing, while the SDK's async stream makes
/// several more import calls (`subscribe`, `poll`) per chunk.
fn read_body(request: IncomingRequest, limit: usize, body: &mut Vec<u8>) -> Result<(), String> {
    let incoming = request
        .consume()
        .map_err(|()| "the body was already consumed".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "the body stream was already taken".to_string())?;
    while body.len() < limit {
        let want = u64::try_from(limit - body.len())
            .unwrap_or(u64::MAX)
            .min(READ_CHUNK);
        match stream.blocking_read(want) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(error.to_debug_string());
            }
        }
    }
    body.truncate(limit);
    Ok(())
}

/// Sends `response`; `component` names the sender in the log lines of what cannot be sent.
///
/// The response carries `Content-Length` (except where HTTP forbids it), and a body that fits
/// the host's write budget (1 MiB on wasmtime's and Spin's hosts) is written in one call and
/// finished *before* the response is handed over, so the host sees head and body together
/// and can send both in one socket write. A larger body is streamed after the handover with
/// blocking writes (a WASIp2 instance serves one request at a time, so blocking costs
/// nothing, while the SDK's async sink makes check-write/flush/poll calls per chunk).
pub fn send(response_out: ResponseOutparam, response: HttpResponse, component: &str) {
    let HttpResponse {
        status,
        headers,
        body: bytes,
    } = response;
    let mut list: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 1);
    list.extend(
        headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.into_bytes())),
    );
    // RFC 9110 §8.6: no Content-Length on 1xx and 204; on 304 it would describe another
    // representation.
    if !(status < 200 || status == 204 || status == 304) {
        list.push((
            "content-length".to_string(),
            bytes.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&list).unwrap_or_else(|error| {
        eprintln!("{component}: dropping response headers rejected by the host: {error}");
        Fields::new()
    });
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(status);
    let Ok(body) = outgoing.body() else {
        eprintln!("{component}: the response body was already taken");
        return;
    };
    let Ok(stream) = body.write() else {
        eprintln!("{component}: the response body stream was already taken");
        return;
    };
    let budget = stream
        .check_write()
        .ok()
        .and_then(|budget| usize::try_from(budget).ok())
        .unwrap_or(0);
    if bytes.len() <= budget {
        let written = if bytes.is_empty() {
            Ok(())
        } else {
            stream.write(&bytes)
        };
        drop(stream);
        match written {
            Ok(()) => {
                if let Err(error) = OutgoingBody::finish(body, None) {
                    eprintln!("{component}: could not finish the response body: {error:?}");
                }
                response_out.set(outgoing);
            }
            Err(error) => {
                eprintln!("{component}: could not write the response body: {error:?}");
            }
        }
        return;
    }
    response_out.set(outgoing);
    for chunk in bytes.chunks(WRITE_CHUNK) {
        if let Err(error) = stream.blocking_write_and_flush(chunk) {
            eprintln!("{component}: could not send the response body: {error:?}");
            return;
        }
    }
    drop(stream);
    if let Err(error) = OutgoingBody::finish(body, None) {
        eprintln!("{component}: could not finish the response body: {error:?}");
    }
}

/// A response whose body is written bit by bit (an event stream), with blocking writes.
pub struct BodyWriter {
    // Field order matters: the stream must be dropped before the body is finished.
    stream: Option<wasi::io::streams::OutputStream>,
    body: Option<OutgoingBody>,
}

impl BodyWriter {
    /// Sends the head of `response` (its status and headers; its body is written first) and
    /// returns the writer for the rest; `None` when the host refused the response.
    pub fn start(response_out: ResponseOutparam, response: HttpResponse) -> Option<Self> {
        let HttpResponse {
            status,
            headers,
            body: first,
        } = response;
        let list: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.into_bytes()))
            .collect();
        let fields = Fields::from_list(&list).ok()?;
        let outgoing = OutgoingResponse::new(fields);
        let _ = outgoing.set_status_code(status);
        let body = outgoing.body().ok()?;
        let stream = body.write().ok()?;
        response_out.set(outgoing);
        let mut writer = BodyWriter {
            stream: Some(stream),
            body: Some(body),
        };
        writer.write(&first).then_some(writer)
    }

    /// Writes and flushes `bytes`; false once the client is gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        bytes
            .chunks(WRITE_CHUNK)
            .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok())
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        drop(self.stream.take());
        if let Some(body) = self.body.take() {
            let _ = OutgoingBody::finish(body, None);
        }
    }
}

/// Streams server-sent events by the instance itself (under Spin, where no host follows the
/// stream): sends `head` (whose body holds the first events) and then, until `next` returns
/// `None`, an event it found or a keep-alive comment when it found none; the stream ends
/// after an event named in `ends`, or when the client is gone. `next` waits for events
/// itself (a blocking `XREAD`), at most about [`crate::sse::HEARTBEAT_S`] each time.
pub fn stream_sse(
    response_out: ResponseOutparam,
    head: HttpResponse,
    ends: &[&str],
    mut next: impl FnMut() -> Option<Vec<crate::sse::SseEvent>>,
) {
    let Some(mut writer) = BodyWriter::start(response_out, head) else {
        return;
    };
    while let Some(events) = next() {
        if events.is_empty() {
            if !writer.write(crate::sse::HEARTBEAT) {
                return;
            }
            continue;
        }
        let mut bytes = Vec::new();
        let mut finished = false;
        for event in &events {
            event.encode(&mut bytes);
            finished |= ends.contains(&event.event.as_str());
        }
        if !writer.write(&bytes) || finished {
            return;
        }
    }
}
