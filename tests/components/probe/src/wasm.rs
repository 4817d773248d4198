//! The probe's HTTP handler (wasm32 only).

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, Error as RedisError, RedisParameter, RedisResult};

/// Requests this instance has served (a fresh instance starts at 0).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random id of this instance, drawn at its first request (`wasi:random` via `RandomState`).
fn instance_id() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| RandomState::new().hash_one(0u8))
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

fn json(status: u16, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let count = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
    let method = request.method();
    let path_and_query = request.path_with_query().unwrap_or_default();
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_and_query.clone(), String::new()),
    };
    let probe = path.rsplit('/').next().unwrap_or_default().to_string();
    match (method, probe.as_str()) {
        (Method::Get, "count") => json(
            200,
            // A string: JSON numbers above 2^53 would not round-trip everywhere.
            serde_json::json!({ "count": count, "instance": instance_id().to_string() }),
        ),
        (Method::Get, "trap") => core::arch::wasm32::unreachable(),
        (Method::Get, "panic") => panic!("probe: panicking on purpose"),
        (Method::Get, "spin") => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        (Method::Get, "sleep") => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            json(200, serde_json::json!({ "slept_ms": ms }))
        }
        (Method::Get, "env") => {
            let name = query.strip_prefix("name=").unwrap_or_default();
            match std::env::var(name) {
                Ok(value) => text(200, value),
                Err(_) => text(404, format!("no environment variable `{name}`")),
            }
        }
        (Method::Get, "file") => {
            let path = query.strip_prefix("path=").unwrap_or_default();
            match std::fs::read_to_string(path) {
                Ok(contents) => text(200, contents),
                Err(error) => text(404, format!("cannot read `{path}`: {error}")),
            }
        }
        (Method::Post, "echo") => match read_body(request).await {
            Ok(body) => json(200, serde_json::json!({ "length": body.len() })),
            Err(error) => text(400, format!("body could not be read: {error}")),
        },
        (Method::Post, "redis") => match read_body(request).await {
            Ok(body) => redis(&body),
            Err(error) => text(400, format!("body could not be read: {error}")),
        },
        _ => text(404, format!("no probe `{probe}` for this method")),
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

fn redis(body: &[u8]) -> Response {
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
    let address = spin_sdk::variables::get("redis_address")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let connection = match Connection::open(&address) {
        Ok(c) => c,
        Err(error) => return text(502, error_text(&error)),
    };
    match connection.execute(command, &params) {
        Ok(values) => json(
            200,
            serde_json::Value::Array(values.into_iter().map(result_json).collect()),
        ),
        Err(error) => text(502, error_text(&error)),
    }
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
