//! The Spin side every component shares (only on `wasm32`): [`SpinRedis`], the
//! [`RedisExec`] over `fermyon:spin/redis@2.0.0`; [`read_request`] and [`send`], which turn
//! Spin's HTTP types into [`HttpRequest`] / out of [`HttpResponse`]; and [`variable`].
//!
//! Every function here is on the hot path of every request, so each is shaped to make few
//! import calls: only the headers a component reads are fetched, and the body stream is
//! opened only for methods that carry one.

use std::cell::RefCell;

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::redis::{Connection, Error as SpinRedisError, RedisParameter, RedisResult};

use crate::http::{CORRELATION_HEADER, HttpRequest, HttpResponse, correlation_id, problem};
use crate::redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};

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
pub async fn read_request(
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
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                http_request.body.extend_from_slice(&chunk);
                if http_request.body.len() >= shape.max_body_bytes {
                    http_request.body.truncate(shape.max_body_bytes);
                    break;
                }
            }
            Err(error) => {
                let correlation = correlation_id(http_request.header(CORRELATION_HEADER));
                return Err(problem(
                    400,
                    "invalid-input",
                    "Invalid input",
                    &format!("body: could not be read: {error}"),
                )
                .with_field("body")
                .into_response()
                .with_header(CORRELATION_HEADER, &correlation));
            }
        }
    }
    Ok(http_request)
}

/// Sends `response`; `component` names the sender in the log lines of what cannot be sent.
pub async fn send(response_out: ResponseOutparam, response: HttpResponse, component: &str) {
    let list: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.into_bytes()))
        .collect();
    let fields = Fields::from_list(&list).unwrap_or_else(|error| {
        eprintln!("{component}: dropping response headers rejected by the host: {error}");
        Fields::new()
    });
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    if let Err(error) = response_out.set_with_body(outgoing, response.body).await {
        eprintln!("{component}: could not send the response: {error}");
    }
}
