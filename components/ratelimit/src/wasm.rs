//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the typed
//! `redwasm:ratelimit/ratelimit` export, both thin adapters over [`crate::http::handle`] and
//! [`crate::RateLimiter`]. No logic lives here.

use std::cell::RefCell;

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, Error as SpinRedisError, RedisParameter, RedisResult};

use crate::config::{DEFAULT_REDIS_ADDRESS, VAR_REDIS_ADDRESS};
use crate::redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};
use crate::{
    Clock, FixedTime, HttpRequest, Policy, PolicyRef, RateLimitConfig, RateLimitError, RateLimiter,
    RedisTime,
};

thread_local! {
    /// One connection per instance, reused across calls; dropped after a failure so the next
    /// call reconnects (e.g. after a Redis restart).
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// [`RedisExec`] over `fermyon:spin/redis@2.0.0`, connecting lazily so requests that never
/// reach Redis (400/404/405, bypassed keys) never open a connection. An unreachable Redis is
/// reported by the host at once (`redis unavailable`), and mapped to the policy's fail mode.
struct SpinRedis {
    address: String,
}

impl SpinRedis {
    fn from_variables() -> Self {
        Self {
            address: variable(VAR_REDIS_ADDRESS)
                .unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string()),
        }
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
        let keep = !matches!(&result, Err(error) if !is_no_script(error));
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

fn is_no_script(error: &SpinRedisError) -> bool {
    matches!(error, SpinRedisError::Other(message) if RedisError::from_reply_text(message.clone()).is_no_script())
}

fn from_spin_result(result: RedisResult) -> Value {
    match result {
        RedisResult::Nil => Value::Nil,
        RedisResult::Status(text) => Value::Status(text),
        RedisResult::Int64(value) => Value::Int(value),
        RedisResult::Binary(bytes) => Value::Bytes(bytes),
    }
}

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

fn new_limiter<C: Clock>(clock: C) -> RateLimiter<SpinRedis, C> {
    RateLimiter::new(
        SpinRedis::from_variables(),
        clock,
        RateLimitConfig::from_lookup(variable),
    )
}

/// The HTTP entry point: converts Spin's request to [`HttpRequest`], reading at most
/// [`crate::http::MAX_BODY_BYTES`] + 1 body bytes so an oversized body costs bounded memory.
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let mut limiter = new_limiter(RedisTime);
    let method = request.method().to_string().to_ascii_uppercase();
    let path_and_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let headers: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let limit = crate::http::MAX_BODY_BYTES + 1;
    let mut body = Vec::new();
    let mut stream = request.into_body_stream();
    let mut body_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() >= limit {
                    body.truncate(limit);
                    break;
                }
            }
            Err(error) => {
                body_error = Some(error.to_string());
                break;
            }
        }
    }
    let http_request = HttpRequest {
        method,
        path_and_query,
        headers,
        body,
    };
    let response = match body_error {
        None => crate::http::handle(&mut limiter, &http_request),
        Some(error) => crate::http::problem(
            400,
            "invalid-input",
            "Invalid input",
            &format!("body: could not be read: {error}"),
        )
        .with_field("body")
        .into_response()
        .with_header(
            crate::http::CORRELATION_HEADER,
            &crate::http::correlation_id(http_request.header(crate::http::CORRELATION_HEADER)),
        ),
    };
    send(response_out, response).await;
}

async fn send(response_out: ResponseOutparam, response: crate::HttpResponse) {
    let list: Vec<(String, Vec<u8>)> = response
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&list).unwrap_or_else(|error| {
        eprintln!("redwasm-ratelimit: dropping response headers rejected by the host: {error}");
        Fields::new()
    });
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    if let Err(error) = response_out.set_with_body(outgoing, response.body).await {
        eprintln!("redwasm-ratelimit: could not send the response: {error}");
    }
}

/// Bindings of the typed export (`wit/ratelimit.wit`, the single file).
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/ratelimit.wit",
        world: "ratelimit-component",
    });
}

use bindings::exports::redwasm::ratelimit::ratelimit as typed;

struct TypedRateLimit;

impl typed::Guest for TypedRateLimit {
    fn check(
        key: String,
        policies: Vec<typed::PolicyRef>,
        cost: u64,
    ) -> Result<typed::CheckResult, typed::Error> {
        check_with(RedisTime, key, policies, cost)
    }

    fn check_at(
        key: String,
        policies: Vec<typed::PolicyRef>,
        cost: u64,
        now_ms: u64,
    ) -> Result<typed::CheckResult, typed::Error> {
        check_with(FixedTime(now_ms), key, policies, cost)
    }

    fn peek(policy_name: String, key: String) -> Result<typed::PolicyState, typed::Error> {
        new_limiter(RedisTime)
            .peek(&policy_name, &key)
            .map(to_wit_state)
            .map_err(to_wit_error)
    }

    fn reset(policy_name: String, key: String) -> Result<(), typed::Error> {
        new_limiter(RedisTime)
            .reset(&policy_name, &key)
            .map_err(to_wit_error)
    }
}

fn check_with<C: Clock>(
    clock: C,
    key: String,
    policies: Vec<typed::PolicyRef>,
    cost: u64,
) -> Result<typed::CheckResult, typed::Error> {
    let refs: Vec<PolicyRef> = policies.into_iter().map(from_wit_ref).collect();
    let decision = new_limiter(clock)
        .check(&key, &refs, cost)
        .map_err(to_wit_error)?;
    Ok(typed::CheckResult {
        allowed: decision.allowed,
        retry_after_ms: decision.retry_after_ms,
        policies: decision.policies.into_iter().map(to_wit_state).collect(),
        bypassed: decision.bypassed,
        degraded: decision.degraded,
    })
}

fn from_wit_ref(policy: typed::PolicyRef) -> PolicyRef {
    match policy {
        typed::PolicyRef::Named(name) => PolicyRef::Named(name),
        typed::PolicyRef::Inline(p) => PolicyRef::Inline(Policy {
            name: p.name,
            limit: p.limit,
            window_ms: p.window_ms,
            algorithm: match p.algorithm {
                typed::Algorithm::SlidingWindow => crate::Algorithm::SlidingWindow,
                typed::Algorithm::SlidingWindowCounter => crate::Algorithm::SlidingWindowCounter,
                typed::Algorithm::TokenBucket => crate::Algorithm::TokenBucket,
                typed::Algorithm::FixedWindow => crate::Algorithm::FixedWindow,
            },
            burst: p.burst,
            fail_mode: match p.fail_mode {
                Some(typed::FailMode::Open) => crate::FailMode::Open,
                Some(typed::FailMode::Closed) | None => crate::FailMode::Closed,
            },
            unit: match p.unit {
                Some(typed::Unit::Request) => crate::Unit::Request,
                Some(typed::Unit::Cost) | None => crate::Unit::Cost,
            },
        }),
    }
}

fn to_wit_state(state: crate::PolicyState) -> typed::PolicyState {
    typed::PolicyState {
        name: state.name,
        limit: state.limit,
        remaining: state.remaining,
        reset_ms: state.reset_ms,
    }
}

fn to_wit_error(error: RateLimitError) -> typed::Error {
    match error {
        RateLimitError::Invalid { field, detail } => {
            typed::Error::Invalid(format!("{field}: {detail}"))
        }
        RateLimitError::UnknownPolicy(name) => typed::Error::UnknownPolicy(name),
        RateLimitError::Config(detail) => typed::Error::Config(detail),
        RateLimitError::Unavailable(detail) => typed::Error::Unavailable(detail),
    }
}

bindings::export!(TypedRateLimit with_types_in bindings);
