//! The wasm binding layer (compiled only for `wasm32`): Spin's HTTP trigger and the typed
//! `redwasm:cache/cache` export, both thin adapters over [`crate::http::handle`] and
//! [`crate::Cache`]. No logic lives here.

use std::cell::{OnceCell, RefCell};

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, Error as SpinRedisError, RedisParameter, RedisResult};

use crate::config::{CacheConfig, DEFAULT_REDIS_ADDRESS, VAR_REDIS_ADDRESS};
use crate::redis::{Arg, RedisError, RedisErrorKind, RedisExec, Value};
use crate::{Cache, CacheError, HttpRequest, SystemClock};

thread_local! {
    /// One connection per instance, reused across calls; dropped after a failure so the next
    /// call reconnects (e.g. after a Redis restart).
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };

    /// The Redis address and limits, read from the variables once per instance: they cannot
    /// change during an instance's life, and each read is an import call on the hot path.
    static SETTINGS: OnceCell<(String, CacheConfig)> = const { OnceCell::new() };
}

/// The request headers the HTTP layer reads; fetching only these keeps the per-request
/// import calls (and copies) few.
const REQUEST_HEADERS: [&str; 3] = ["x-correlation-id", "content-type", "if-match"];

/// [`RedisExec`] over `fermyon:spin/redis@2.0.0`, connecting lazily so requests that never
/// reach Redis (400/404/405) never open a connection, and an unreachable Redis becomes a 503.
struct SpinRedis {
    address: String,
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

fn new_cache() -> Cache<SpinRedis, SystemClock> {
    let (address, config) = SETTINGS.with(|settings| {
        settings
            .get_or_init(|| {
                (
                    variable(VAR_REDIS_ADDRESS)
                        .unwrap_or_else(|| DEFAULT_REDIS_ADDRESS.to_string()),
                    CacheConfig::from_lookup(variable),
                )
            })
            .clone()
    });
    Cache::new(SpinRedis { address }, SystemClock, config)
}

/// The HTTP entry point: converts Spin's request to [`HttpRequest`], reading at most
/// [`crate::http::max_body_bytes`] of the body so an oversized upload costs bounded memory.
#[http_component]
async fn handle_http(request: IncomingRequest, response_out: ResponseOutparam) {
    let mut cache = new_cache();
    let method = request.method().to_string().to_ascii_uppercase();
    let path_and_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let fields = request.headers();
    let headers: Vec<(String, String)> = REQUEST_HEADERS
        .iter()
        .flat_map(|name| {
            fields.get(&name.to_string()).into_iter().map(move |value| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
        })
        .collect();
    drop(fields);
    let limit = crate::http::max_body_bytes(cache.config());
    let mut body = Vec::new();
    let mut body_error = None;
    // Only PUT and POST carry a body the cache reads; not opening the stream for the others
    // saves import calls on the hot GET path.
    let reads_body = matches!(method.as_str(), "PUT" | "POST");
    let mut stream = reads_body.then(|| request.into_body_stream());
    while let Some(chunk) = match stream.as_mut() {
        Some(stream) => stream.next().await,
        None => None,
    } {
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
        None => crate::http::handle(&mut cache, &http_request),
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
        eprintln!("redwasm-cache: dropping response headers rejected by the host: {error}");
        Fields::new()
    });
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    if let Err(error) = response_out.set_with_body(outgoing, response.body).await {
        eprintln!("redwasm-cache: could not send the response: {error}");
    }
}

/// Bindings of the typed export (`wit/cache.wit`, the single file: `wit/deps` holds an async
/// package this world does not need).
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/cache.wit",
        world: "cache-component",
    });
}

use bindings::exports::redwasm::cache::cache as typed;

struct TypedCache;

impl typed::Guest for TypedCache {
    fn get(ns: String, key: String) -> Result<Option<typed::Entry>, typed::Error> {
        Ok(new_cache()
            .get(&ns, &key)
            .map_err(to_wit_error)?
            .map(to_wit_entry))
    }

    fn get_with_lease(
        ns: String,
        key: String,
        wait_ms: u64,
    ) -> Result<typed::LookupResult, typed::Error> {
        Ok(
            match new_cache()
                .lookup(&ns, &key, wait_ms)
                .map_err(to_wit_error)?
            {
                crate::Lookup::Hit(entry) => typed::LookupResult::Hit(to_wit_entry(entry)),
                crate::Lookup::Lease(token) => typed::LookupResult::Lease(token),
                crate::Lookup::Miss => typed::LookupResult::Miss,
            },
        )
    }

    fn set(
        ns: String,
        key: String,
        value: Vec<u8>,
        options: typed::SetOptions,
    ) -> Result<(), typed::Error> {
        let options = crate::SetOptions {
            ttl_ms: options.ttl_ms,
            swr_ms: options.swr_ms,
            jitter_pct: options.jitter_pct,
            tags: options.tags,
            content_type: options.content_type,
            if_match: options.if_match,
        };
        new_cache()
            .set(&ns, &key, &value, &options)
            .map_err(to_wit_error)
    }

    fn delete(ns: String, key: String) -> Result<bool, typed::Error> {
        new_cache().delete(&ns, &key).map_err(to_wit_error)
    }

    fn invalidate_tags(ns: String, tags: Vec<String>) -> Result<u64, typed::Error> {
        new_cache()
            .invalidate_tags(&ns, &tags)
            .map_err(to_wit_error)
    }

    fn invalidate_all(ns: String) -> Result<u64, typed::Error> {
        new_cache().invalidate_all(&ns).map_err(to_wit_error)
    }

    fn stats(ns: String) -> Result<typed::CacheStats, typed::Error> {
        let stats = new_cache().stats(&ns).map_err(to_wit_error)?;
        Ok(typed::CacheStats {
            hits: stats.hits,
            misses: stats.misses,
            stale_hits: stats.stale_hits,
            keys: stats.keys,
        })
    }
}

fn to_wit_entry(entry: crate::Entry) -> typed::Entry {
    typed::Entry {
        value: entry.value,
        content_type: entry.content_type,
        age_ms: entry.age_ms,
        stale: entry.stale,
        revalidate_token: entry.revalidate_token,
    }
}

fn to_wit_error(error: CacheError) -> typed::Error {
    match error {
        CacheError::Invalid { field, detail } => {
            typed::Error::Invalid(format!("{field}: {detail}"))
        }
        CacheError::TooLarge(limit) => typed::Error::TooLarge(limit),
        CacheError::PreconditionFailed(detail) => typed::Error::PreconditionFailed(detail),
        CacheError::Unavailable(detail) => typed::Error::Unavailable(detail),
    }
}

bindings::export!(TypedCache with_types_in bindings);
