//! The probe's HTTP handler (wasm32 only).

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, Error as RedisError, RedisParameter, RedisResult};

/// Requests this instance has served (a fresh instance starts at 0).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random id of this instance, drawn at its first request (`wasi:random` via `RandomState`).
fn instance_id() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| RandomState::new().hash_one(0u8))
}

/// A probe's answer, whichever entry point asked.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
}

fn text(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        content_type: "text/plain",
        body: body.into(),
    }
}

fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: body.to_string(),
    }
}

/// The request headers the typed entry point asks for (`GET …/headers` echoes them).
const TYPED_HEADERS: [&str; 2] = ["x-probe", "spin-path-info"];

/// The wasi:http entry point (what Spin calls).
#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let method = request.method().to_string().to_ascii_uppercase();
    let path_and_query = request.path_with_query().unwrap_or_default();
    let headers: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .filter(|(name, _)| TYPED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = if matches!(method.as_str(), "POST" | "PUT") {
        read_body(request).await
    } else {
        Ok(Vec::new())
    };
    let answer = answer(&method, &path_and_query, &headers, body);
    Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type)
        .header("x-probe-entry", "wasi:http")
        .body(answer.body)
        .build()
}

// The one-call entry point the redwasm host prefers.
redwasm_guest::serve_typed_http!(TYPED_HEADERS, |request| {
    let answer = answer(
        &request.method,
        &request.path_and_query,
        &request.headers,
        Ok(request.body.clone()),
    );
    redwasm_guest::http::HttpResponse::new(answer.status)
        .with_header("content-type", answer.content_type)
        .with_header("x-probe-entry", "redwasm:http")
        .with_body(answer.body.into_bytes())
});

/// Every probe: `method` upper-case, `headers` only [`TYPED_HEADERS`], `body` as read.
fn answer(
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: Result<Vec<u8>, String>,
) -> Answer {
    let count = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let probe = path.rsplit('/').next().unwrap_or_default();
    match (method, probe) {
        ("GET", "count") => json(
            200,
            // A string: JSON numbers above 2^53 would not round-trip everywhere.
            serde_json::json!({ "count": count, "instance": instance_id().to_string() }),
        ),
        ("GET", "headers") => json(
            200,
            serde_json::Value::Array(
                headers
                    .iter()
                    .map(|(name, value)| serde_json::json!([name, value]))
                    .collect(),
            ),
        ),
        ("GET", "trap") => core::arch::wasm32::unreachable(),
        ("GET", "panic") => panic!("probe: panicking on purpose"),
        ("GET", "spin") => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        ("GET", "sleep") => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            json(200, serde_json::json!({ "slept_ms": ms }))
        }
        ("GET", "env") => {
            let name = query.strip_prefix("name=").unwrap_or_default();
            match std::env::var(name) {
                Ok(value) => text(200, value),
                Err(_) => text(404, format!("no environment variable `{name}`")),
            }
        }
        ("GET", "file") => {
            let path = query.strip_prefix("path=").unwrap_or_default();
            match std::fs::read_to_string(path) {
                Ok(contents) => text(200, contents),
                Err(error) => text(404, format!("cannot read `{path}`: {error}")),
            }
        }
        ("POST", "echo") => match body {
            Ok(body) => json(200, serde_json::json!({ "length": body.len() })),
            Err(error) => text(400, format!("body could not be read: {error}")),
        },
        ("GET", "fetch") => {
            let url = query_param(query, "url").unwrap_or_default();
            let n = query_param(query, "n")
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(1);
            let mut statuses = Vec::new();
            let mut bytes = 0usize;
            for _ in 0..n {
                match fetch(&url) {
                    Ok((status, body)) => {
                        statuses.push(status);
                        bytes += body.len();
                    }
                    Err(error) => return text(502, error),
                }
            }
            json(
                200,
                serde_json::json!({ "statuses": statuses, "bytes": bytes }),
            )
        }
        ("GET", "kv") => kv(query),
        // Calls itself through `self` until the host says stop: the innermost answer (the
        // host's `LoopDetected`) comes back up the chain.
        ("GET", "loop") => match fetch("http://self/probe/loop") {
            Ok((status, body)) => text(status, String::from_utf8_lossy(&body).into_owned()),
            Err(error) => text(502, error),
        },
        ("POST", "redis") => match body {
            Ok(body) => redis(&body),
            Err(error) => text(400, format!("body could not be read: {error}")),
        },
        _ => text(404, format!("no probe `{probe}` for this method")),
    }
}

/// `name`'s value in a query string (no percent-decoding but `%3A`/`%2F`, enough for URLs).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        kv.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .map(|v| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

/// One outbound GET through `wasi:http/outgoing-handler`: (status, body) or the error text.
fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let request = spin_sdk::http::Request::get(url);
    let response: Result<spin_sdk::http::Response, _> =
        spin_sdk::http::run(spin_sdk::http::send(request));
    match response {
        Ok(response) => Ok((*response.status(), response.into_body())),
        Err(error) => Err(format!("{error:?}")),
    }
}

/// `GET …/kv?label=L&op=set|get|delete|exists|keys&key=K&value=V` on
/// `fermyon:spin/key-value`: 200 JSON, or 502 with the guest-visible error.
fn kv(query: &str) -> Answer {
    use spin_sdk::key_value::Store;
    let label = query_param(query, "label").unwrap_or_else(|| "default".into());
    let key = query_param(query, "key").unwrap_or_default();
    let store = match Store::open(&label) {
        Ok(store) => store,
        Err(error) => return text(502, format!("{error:?}")),
    };
    let outcome = match query_param(query, "op").as_deref() {
        Some("set") => {
            let value = query_param(query, "value").unwrap_or_default();
            store
                .set(&key, value.as_bytes())
                .map(|()| serde_json::json!({}))
        }
        Some("get") => store.get(&key).map(
            |v| serde_json::json!({ "value": v.map(|v| String::from_utf8_lossy(&v).into_owned()) }),
        ),
        Some("delete") => store.delete(&key).map(|()| serde_json::json!({})),
        Some("exists") => store
            .exists(&key)
            .map(|e| serde_json::json!({ "exists": e })),
        Some("keys") => store.get_keys().map(|k| serde_json::json!({ "keys": k })),
        other => return text(400, format!("unknown op {other:?}")),
    };
    match outcome {
        Ok(body) => json(200, body),
        Err(error) => text(502, format!("{error:?}")),
    }
}

async fn read_body(request: IncomingRequest) -> Result<Vec<u8>, String> {
    let mut stream = request.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(body)
}

fn redis(body: &[u8]) -> Answer {
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(body) else {
        return text(400, "body must be JSON");
    };
    let Some(command) = input["command"].as_str() else {
        return text(400, "`command` must be a string");
    };
    let mut params = Vec::new();
    for arg in input["args"].as_array().cloned().unwrap_or_default() {
        match arg {
            serde_json::Value::String(s) => params.push(RedisParameter::Binary(s.into_bytes())),
            serde_json::Value::Number(n) if n.is_i64() => {
                params.push(RedisParameter::Int64(n.as_i64().unwrap_or_default()))
            }
            other => return text(400, format!("unsupported argument {other}")),
        }
    }
    // `address`: any address (the host decides what it may reach); `repeat`: run the command
    // that many times in this one request (the reply is the last one's).
    let address = match input["address"].as_str() {
        Some(address) => address.to_string(),
        None => spin_sdk::variables::get("redis_address")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string()),
    };
    let repeat = input["repeat"].as_u64().unwrap_or(1).max(1);
    let connection = match Connection::open(&address) {
        Ok(c) => c,
        Err(error) => return text(502, error_text(&error)),
    };
    let mut last = Vec::new();
    for _ in 0..repeat {
        match connection.execute(command, &params) {
            Ok(values) => last = values,
            Err(error) => return text(502, error_text(&error)),
        }
    }
    json(
        200,
        serde_json::Value::Array(last.into_iter().map(result_json).collect()),
    )
}

fn error_text(error: &RedisError) -> String {
    match error {
        RedisError::Other(message) => message.clone(),
        other => format!("{other:?}"),
    }
}

fn result_json(value: RedisResult) -> serde_json::Value {
    match value {
        RedisResult::Nil => serde_json::Value::Null,
        RedisResult::Status(s) => serde_json::json!({ "status": s }),
        RedisResult::Int64(i) => serde_json::json!(i),
        RedisResult::Binary(b) => serde_json::json!(String::from_utf8_lossy(&b)),
    }
}

/// A hostile `redwasm:ratelimit` export, for the embedding API's deadline test: `check` on
/// the key `loop` never returns; any other call fails with `invalid`.
mod hostile {
    wit_bindgen::generate!({
        path: "../../../wit/ratelimit.wit",
        world: "ratelimit-component",
    });
}

use hostile::exports::redwasm::ratelimit::ratelimit as hostile_typed;

struct Hostile;

impl hostile_typed::Guest for Hostile {
    fn check(
        key: String,
        _policies: Vec<hostile_typed::PolicyRef>,
        _cost: u64,
    ) -> Result<hostile_typed::CheckResult, hostile_typed::Error> {
        if key == "loop" {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Err(hostile_typed::Error::Invalid(format!(
            "probe: no check for `{key}`"
        )))
    }

    fn check_at(
        key: String,
        policies: Vec<hostile_typed::PolicyRef>,
        cost: u64,
        _now_ms: u64,
    ) -> Result<hostile_typed::CheckResult, hostile_typed::Error> {
        Self::check(key, policies, cost)
    }

    fn peek(
        _policy_name: String,
        key: String,
    ) -> Result<hostile_typed::PolicyState, hostile_typed::Error> {
        Err(hostile_typed::Error::Invalid(format!(
            "probe: no peek for `{key}`"
        )))
    }

    fn reset(_policy_name: String, key: String) -> Result<(), hostile_typed::Error> {
        Err(hostile_typed::Error::Invalid(format!(
            "probe: no reset for `{key}`"
        )))
    }
}

hostile::export!(Hostile with_types_in hostile);

/// A hostile `redwasm:queue/handler` export, for the queue trigger's poison tests. Job types:
/// `loop` never returns, `alloc` allocates without bound, `trap` traps, `sleep` blocks for
/// `payload.ms`, `fail` fails, `fetch` GETs `payload.url` `payload.n` times (outbound HTTP
/// from a job), `kv` sets and gets `payload.n` keys of the `default` store; anything else
/// succeeds with `{"ok": true}`.
mod hostile_worker {
    wit_bindgen::generate!({
        path: "../../../wit/queue-0.1.0.wit",
        world: "worker",
    });
}

use hostile_worker::exports::redwasm::queue::handler as hostile_handler;

struct HostileWorker;

impl hostile_handler::Guest for HostileWorker {
    fn handle(job: hostile_handler::Job) -> Result<Option<String>, hostile_handler::JobError> {
        let payload: serde_json::Value =
            serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null);
        match job.job_type.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => core::arch::wasm32::unreachable(),
            "sleep" => {
                let ms = payload["ms"].as_u64().unwrap_or(0);
                std::thread::sleep(Duration::from_millis(ms));
                Ok(Some(serde_json::json!({ "slept_ms": ms }).to_string()))
            }
            "fail" => Err(hostile_handler::JobError::Failed(
                "probe: failing on purpose".into(),
            )),
            "fetch" => {
                // `n` GETs in a row (the bench's unit of work); the last answer is reported.
                let url = payload["url"].as_str().unwrap_or_default();
                let mut last = None;
                for _ in 0..payload["n"].as_u64().unwrap_or(1) {
                    match fetch(url) {
                        Ok(answer) => last = Some(answer),
                        Err(error) => return Err(hostile_handler::JobError::Failed(error)),
                    }
                }
                let (status, body) = last.unwrap_or_default();
                Ok(Some(
                    serde_json::json!({
                        "status": status,
                        "body": String::from_utf8_lossy(&body),
                    })
                    .to_string(),
                ))
            }
            "kv" => {
                // `n` rounds of set + get of `kv-<i>` on the `default` store.
                let store = spin_sdk::key_value::Store::open_default()
                    .map_err(|e| hostile_handler::JobError::Failed(format!("{e:?}")))?;
                let n = payload["n"].as_u64().unwrap_or(1);
                for i in 0..n {
                    let key = format!("kv-{}", i % 64);
                    let round = store.set(&key, b"value").and_then(|()| store.get(&key));
                    if let Err(e) = round {
                        return Err(hostile_handler::JobError::Failed(format!("{e:?}")));
                    }
                }
                Ok(Some(serde_json::json!({ "rounds": n }).to_string()))
            }
            _ => Ok(Some(
                serde_json::json!({ "ok": true, "attempt": job.attempt }).to_string(),
            )),
        }
    }
}

hostile_worker::export!(HostileWorker with_types_in hostile_worker);
