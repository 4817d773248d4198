//! `native_cache`: the native baseline of the benchmark — axum + redis-rs serving
//! `GET /v1/cache/{ns}/{key}` with exactly the Redis work the wasm cache component does on a
//! counted read over HTTP: one `EVALSHA` of `components/cache/lua/get.lua` with the same five
//! keys (including the host's `cache:` sandbox prefix) and the same four arguments, decoding
//! the stored entry with the component's own `record` module, answering a hit with the
//! same status, body and headers (`Content-Type`, `Age`, `Cache-Status`, `X-Correlation-Id`).
//!
//! `GET /plain/{key}` is the reference floor: one plain `GET cache:plain:{key}`.
//!
//! `POST /v1/ratelimit/check` is the baseline of the rate-limit component's check: the body
//! parsed as JSON the same way (`{"key","cost"?,"policies":[inline policy, ...]}`; named
//! policies are not supported here), then one `EVALSHA` of
//! `components/ratelimit/lua/check.lua` with the same keys (with the host's `ratelimit:`
//! sandbox prefix) and arguments (Redis `TIME` clock, `commit`), answering 200/429 with the
//! same JSON body and `Content-Type`, `RateLimit-Policy`, `RateLimit`, `Retry-After` (429)
//! and `X-Correlation-Id` headers.
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
use axum::routing::{get, post};
use clap::Parser;
use redis::aio::MultiplexedConnection;
use redwasm_cache::record::Record;

/// The cache component's read script, byte for byte.
const GET_LUA: &str = include_str!("../../../components/cache/lua/get.lua");
/// The rate-limit component's script, byte for byte.
const CHECK_LUA: &str = include_str!("../../../components/ratelimit/lua/check.lua");
/// The host's sandbox prefix for the component id `ratelimit`.
const RL_PREFIX: &str = "ratelimit:";
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
    check_sha1: String,
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
    let check_sha1: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(CHECK_LUA)
        .query_async(&mut redis)
        .await?;
    let state = AppState {
        redis,
        sha1,
        check_sha1,
    };
    let app = Router::new()
        .route("/v1/cache/{ns}/{key}", get(cache_get))
        .route("/plain/{key}", get(plain_get))
        .route("/v1/ratelimit/check", post(ratelimit_check))
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
        .arg("5")
        .arg(format!("{base}d:{key}"))
        .arg(format!("{base}v"))
        .arg(format!("{base}s"))
        .arg(format!("{base}l:{key}"))
        .arg(format!("{base}r:{key}"))
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
    let record = match values.get(1) {
        Some(redis::Value::BulkString(stored)) if matches!(status, 1 | 2) => Record::decode(stored),
        _ => None,
    };
    match (status, record) {
        (1 | 2, Some(record)) => {
            let age_s = now.saturating_sub(record.stored_ms as i64).max(0) / 1000;
            let mut response = (StatusCode::OK, record.body.to_vec()).into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(record.content_type) {
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
            if let Some(redis::Value::BulkString(token)) = values.get(2)
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

/// One inline policy of a check body, as `components/ratelimit/src/policy.rs` reads it.
struct RlPolicy {
    name: String,
    limit: u64,
    window_ms: u64,
    code: &'static str,
    capacity: u64,
    per_request: bool,
}

fn rl_policy(value: &serde_json::Value) -> Result<RlPolicy, String> {
    let obj = value.as_object().ok_or("policy must be an object")?;
    let name = obj
        .get("name")
        .and_then(|v| v.as_str())
        .filter(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .ok_or("invalid policy name")?
        .to_string();
    let limit = obj
        .get("limit")
        .and_then(|v| v.as_u64())
        .filter(|l| (1..=1_000_000_000_000_000).contains(l))
        .ok_or("invalid limit")?;
    let window_ms = obj
        .get("window_ms")
        .and_then(|v| v.as_u64())
        .filter(|w| (1..=366 * 86_400_000).contains(w))
        .ok_or("invalid window_ms")?;
    let code = match obj.get("algorithm").and_then(|v| v.as_str()) {
        Some("sliding-window") => "sw",
        Some("sliding-window-counter") => "swc",
        Some("token-bucket") => "tb",
        Some("fixed-window") => "fw",
        _ => return Err("invalid algorithm".into()),
    };
    let burst = obj.get("burst").and_then(|v| v.as_u64());
    let capacity = if code == "tb" {
        burst.unwrap_or(limit)
    } else {
        limit
    };
    let per_request = obj.get("unit").and_then(|v| v.as_str()) == Some("request");
    Ok(RlPolicy {
        name,
        limit,
        window_ms,
        code,
        capacity,
        per_request,
    })
}

async fn ratelimit_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let correlation = correlation_id(&headers);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        });
    if !is_json {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON",
            &correlation,
        );
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("not valid JSON: {e}"),
                &correlation,
            );
        }
    };
    let Some(fields) = parsed.as_object() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "must be a JSON object",
            &correlation,
        );
    };
    let Some(key) = fields
        .get("key")
        .and_then(|v| v.as_str())
        .filter(|k| valid_segment(k))
    else {
        return problem(StatusCode::BAD_REQUEST, "invalid key", &correlation);
    };
    let cost = match fields.get("cost") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(c) if c >= 1 => c,
            _ => return problem(StatusCode::BAD_REQUEST, "invalid cost", &correlation),
        },
    };
    let policies = match fields.get("policies").and_then(|v| v.as_array()) {
        Some(items) if (1..=16).contains(&items.len()) => {
            match items.iter().map(rl_policy).collect::<Result<Vec<_>, _>>() {
                Ok(p) => p,
                Err(e) => return problem(StatusCode::BAD_REQUEST, &e, &correlation),
            }
        }
        _ => return problem(StatusCode::BAD_REQUEST, "invalid policies", &correlation),
    };
    let escaped = escape_namespace(key);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&state.check_sha1)
        .arg((policies.len() * 2).to_string());
    for p in &policies {
        let base = format!(
            "{RL_PREFIX}rl{{{escaped}}}:{}:{}:{}:",
            p.name, p.code, p.window_ms
        );
        cmd.arg(format!("{base}a")).arg(format!("{base}b"));
    }
    cmd.arg("").arg("commit").arg(policies.len().to_string());
    for p in &policies {
        let units = if p.per_request { 1 } else { cost };
        if units > p.capacity {
            return problem(
                StatusCode::BAD_REQUEST,
                "cost exceeds a policy's capacity",
                &correlation,
            );
        }
        cmd.arg(p.code)
            .arg(p.limit.to_string())
            .arg(p.window_ms.to_string())
            .arg(p.capacity.to_string())
            .arg(units.to_string());
    }
    let mut redis = state.redis.clone();
    let reply: redis::RedisResult<Vec<i64>> = cmd.query_async(&mut redis).await;
    let values = match reply {
        Ok(v) if v.len() == 3 + 3 * policies.len() => v,
        Ok(v) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("unexpected reply {v:?}"),
                &correlation,
            );
        }
        Err(e) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("redis: {e}"),
                &correlation,
            );
        }
    };
    let allowed = values[0] == 1;
    let retry_after_ms = values[1].max(0) as u64;
    let states: Vec<(&RlPolicy, u64, u64)> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p,
                values[4 + 3 * i].max(0) as u64,
                values[5 + 3 * i].max(0) as u64,
            )
        })
        .collect();
    let body = serde_json::json!({
        "allowed": allowed,
        "retry_after_ms": retry_after_ms,
        "policies": states.iter().map(|(p, remaining, reset_ms)| serde_json::json!({
            "name": p.name,
            "limit": p.limit,
            "remaining": remaining,
            "reset_ms": reset_ms,
        })).collect::<Vec<_>>(),
        "bypassed": false,
        "degraded": false,
    });
    let policy_header = states
        .iter()
        .map(|(p, _, _)| {
            format!(
                "\"{}\";q={};w={}",
                p.name,
                p.limit,
                p.window_ms.div_ceil(1000).max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let ratelimit_header = states
        .iter()
        .map(|(p, remaining, reset_ms)| {
            format!("\"{}\";r={remaining};t={}", p.name, reset_ms.div_ceil(1000))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let status = if allowed {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&policy_header) {
        h.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ratelimit_header) {
        h.insert("ratelimit", v);
    }
    if !allowed {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_ms.div_ceil(1000).max(1)),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&correlation) {
        h.insert(CORRELATION_HEADER, v);
    }
    response
}
