//! The p3 probe's HTTP handler (wasm32 only).

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

/// Requests this instance has started.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Requests this instance has in progress right now.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
/// The most requests this instance has had in progress at once.
static IN_FLIGHT_MAX: AtomicU64 = AtomicU64::new(0);

/// A random id of this instance, drawn at its first request.
fn instance_id() -> String {
    static ID: OnceLock<u64> = OnceLock::new();
    ID.get_or_init(|| RandomState::new().hash_one(0u8))
        .to_string()
}

/// Counts a request in flight for as long as it lives.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        IN_FLIGHT_MAX.fetch_max(now, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json(status: u16, body: serde_json::Value) -> impl IntoResponse {
    spin_sdk::http::Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap_or_default()
}

/// The Redis address from `spin:variables/variables@3.0.0` (no fallback: a host without
/// that interface must make this probe fail, not silently use a default).
async fn redis_address() -> String {
    spin_sdk::variables::get("redis_address")
        .await
        .unwrap_or_else(|e| format!("redis://variable-unavailable.invalid:1/{e:?}"))
}

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let requests = REQUESTS.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight::enter();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let ms = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // Drop the route prefix: `/p3/incr/k` → ["incr", "k"].
    let parts: Vec<&str> = path
        .trim_start_matches('/')
        .splitn(3, '/')
        .skip(1)
        .collect();
    let instance = instance_id();
    match parts.as_slice() {
        ["incr", key] => {
            let conn = match Connection::open(redis_address().await).await {
                Ok(c) => c,
                Err(e) => return json(502, serde_json::json!({ "error": e.to_string() })),
            };
            match conn.incr(*key).await {
                Ok(value) => json(
                    200,
                    serde_json::json!({ "value": value, "instance": instance, "requests": requests }),
                ),
                Err(e) => json(502, serde_json::json!({ "error": e.to_string() })),
            }
        }
        ["slow", _key] => {
            spin_sdk::time::sleep(Duration::from_millis(ms)).await;
            json(200, waited(ms, &instance, None))
        }
        ["blpop", key] => {
            let conn = match Connection::open(redis_address().await).await {
                Ok(c) => c,
                Err(e) => return json(502, serde_json::json!({ "error": e.to_string() })),
            };
            let timeout = format!("{:.3}", ms as f64 / 1000.0);
            let args = vec![
                RedisParameter::Binary(key.as_bytes().to_vec()),
                RedisParameter::Binary(timeout.into_bytes()),
            ];
            match conn.execute("BLPOP", args).await {
                Ok(reply) => {
                    // `[key, value]`, or nil after the timeout.
                    let popped = reply.iter().rev().find_map(|v| match v {
                        RedisResult::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    });
                    json(200, waited(ms, &instance, popped))
                }
                Err(e) => json(502, serde_json::json!({ "error": e.to_string() })),
            }
        }
        ["kv", label] => {
            // set a=1, set b=2, delete a, then every key and b's value, all through
            // `spin:key-value@3.0.0` (`get-keys` is a stream and a future).
            let store = match spin_sdk::key_value::Store::open(*label).await {
                Ok(store) => store,
                Err(e) => return json(502, serde_json::json!({ "error": format!("{e:?}") })),
            };
            let steps = async {
                store.set("a", b"1").await?;
                store.set("b", b"2").await?;
                store.delete("a").await?;
                let exists_a = store.exists("a").await?;
                let b = store.get("b").await?;
                let keys = store.get_keys().await.collect().await?;
                Ok::<_, spin_sdk::key_value::Error>((exists_a, b, keys))
            };
            match steps.await {
                Ok((exists_a, b, keys)) => json(
                    200,
                    serde_json::json!({
                        "exists_a": exists_a,
                        "b": b.map(|v| String::from_utf8_lossy(&v).into_owned()),
                        "keys": keys,
                    }),
                ),
                Err(e) => json(502, serde_json::json!({ "error": format!("{e:?}") })),
            }
        }
        ["info"] | ["info", ..] => json(
            200,
            serde_json::json!({
                "instance": instance,
                "requests": requests,
                "in_flight": IN_FLIGHT.load(Ordering::SeqCst),
            }),
        ),
        _ => json(
            404,
            serde_json::json!({ "error": format!("no route {path}") }),
        ),
    }
}

fn waited(ms: u64, instance: &str, popped: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "waited_ms": ms,
        "in_flight_max": IN_FLIGHT_MAX.load(Ordering::SeqCst),
        "instance": instance,
        "popped": popped,
    })
}
