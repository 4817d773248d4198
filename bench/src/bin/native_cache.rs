//! `native_cache`: the native baseline of the benchmark — axum + redis-rs serving
//! `GET /v1/cache/{ns}/{key}` with exactly the Redis work the wasm cache component does on a
//! read: one `EVALSHA` of `components/cache/lua/get.lua` with the same four keys (including
//! the host's `cache:` sandbox prefix) and the same four arguments, answering a hit with the
//! same status, body and headers (`Content-Type`, `Age`, `Cache-Status`, `X-Correlation-Id`).
//!
//! `GET /plain/{key}` is the reference floor: one plain `GET cache:plain:{key}`.
//!
//! Usage: `native_cache --listen 127.0.0.1:PORT --redis-url redis://127.0.0.1:6379`.
//! Like `redwasm serve` it runs on tokio's default multi-threaded runtime (one worker per
//! core) over one multiplexed Redis connection, so the comparison isolates the wasm layer.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use redis::aio::MultiplexedConnection;

/// The cache component's read script, byte for byte.
const GET_LUA: &str = include_str!("../../../components/cache/lua/get.lua");
/// The host's sandbox prefix for the component id `cache`.
const PREFIX: &str = "cache:";
/// The component's `Cache-Status` values.
const CACHE_STATUS_HIT: &str = "redwasm; hit";
const CACHE_STATUS_STALE: &str = "redwasm; hit; fwd=stale";
const CACHE_STATUS_MISS: &str = "redwasm; fwd=miss";
const CORRELATION_HEADER: &str = "x-correlation-id";

/// Native axum + redis-rs baseline of the cache GET route.
#[derive(Parser)]
#[command(name = "native_cache")]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: SocketAddr,
    /// Redis to use.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

#[derive(Clone)]
struct AppState {
    redis: MultiplexedConnection,
    sha1: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = redis::Client::open(cli.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    // Load the script once, as the component's first EVAL would; every request is then
    // exactly one EVALSHA, as in the component.
    let sha1: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(GET_LUA)
        .query_async(&mut redis)
        .await?;
    let state = AppState { redis, sha1 };
    let app = Router::new()
        .route("/v1/cache/{ns}/{key}", get(cache_get))
        .route("/plain/{key}", get(plain_get))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    // `redwasm serve` sets TCP_NODELAY on every accepted socket; so does axum::serve.
    axum::serve(listener, app).await?;
    Ok(())
}

/// `escape_namespace` of `components/cache/src/keys.rs`.
fn escape_namespace(ns: &str) -> String {
    let mut out = String::with_capacity(ns.len() + 2);
    for c in ns.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            other => out.push(other),
        }
    }
    out
}

/// 128 random bits as 32 hex digits, as the component's `new_token`.
fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(new_token)
}

fn problem(status: StatusCode, detail: &str, correlation: &str) -> Response {
    let body = format!(
        "{{\"type\":\"about:blank\",\"title\":\"{}\",\"status\":{},\"detail\":{:?}}}",
        status.canonical_reason().unwrap_or(""),
        status.as_u16(),
        detail
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Ok(value) = HeaderValue::from_str(correlation) {
        headers.insert(CORRELATION_HEADER, value);
    }
    response
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 512 && !s.chars().any(char::is_control)
}

async fn cache_get(
    State(state): State<AppState>,
    Path((ns, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let correlation = correlation_id(&headers);
    if !valid_segment(&ns) || !valid_segment(&key) {
        return problem(StatusCode::BAD_REQUEST, "invalid ns or key", &correlation);
    }
    let base = format!("{PREFIX}c{{{}}}:", escape_namespace(&ns));
    let now = now_ms();
    let token = new_token();
    let mut redis = state.redis.clone();
    let reply: redis::RedisResult<redis::Value> = redis::cmd("EVALSHA")
        .arg(&state.sha1)
        .arg("4")
        .arg(format!("{base}e:{key}"))
        .arg(format!("{base}v"))
        .arg(format!("{base}s"))
        .arg(format!("{base}l:{key}"))
        .arg(now)
        .arg(&token)
        .arg(0_i64)
        .arg("1")
        .query_async(&mut redis)
        .await;
    let values = match reply {
        Ok(redis::Value::Array(values)) => values,
        Ok(other) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("unexpected reply {other:?}"),
                &correlation,
            );
        }
        Err(error) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("redis: {error}"),
                &correlation,
            );
        }
    };
    let status = match values.first() {
        Some(redis::Value::Int(status)) => *status,
        _ => -1,
    };
    match (status, values.get(1), values.get(2), values.get(3)) {
        (
            1 | 2,
            Some(redis::Value::BulkString(body)),
            Some(redis::Value::BulkString(content_type)),
            Some(redis::Value::Int(stored_ms)),
        ) => {
            let age_s = now.saturating_sub(*stored_ms).max(0) / 1000;
            let mut response = (StatusCode::OK, body.clone()).into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_bytes(content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::AGE, HeaderValue::from(age_s));
            headers.insert(
                "cache-status",
                HeaderValue::from_static(if status == 2 {
                    CACHE_STATUS_STALE
                } else {
                    CACHE_STATUS_HIT
                }),
            );
            if let Some(redis::Value::BulkString(token)) = values.get(4)
                && let Ok(value) = HeaderValue::from_bytes(token)
            {
                headers.insert("redwasm-revalidate", value);
            }
            if let Ok(value) = HeaderValue::from_str(&correlation) {
                headers.insert(CORRELATION_HEADER, value);
            }
            response
        }
        (0 | 3 | 4, ..) => {
            let mut response = problem(
                StatusCode::NOT_FOUND,
                &format!("no cached value for key {key:?}"),
                &correlation,
            );
            response
                .headers_mut()
                .insert("cache-status", HeaderValue::from_static(CACHE_STATUS_MISS));
            response
        }
        _ => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("unexpected reply {values:?}"),
            &correlation,
        ),
    }
}

async fn plain_get(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let mut redis = state.redis.clone();
    let reply: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
        .arg(format!("{PREFIX}plain:{key}"))
        .query_async(&mut redis)
        .await;
    match reply {
        Ok(Some(body)) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
