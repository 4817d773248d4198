//! WASIp3 end to end: the test-only `p3probe` component (tests/components/p3probe, spin-sdk 7,
//! exporting `wasi:http/handler@0.3.0` and importing `spin:redis/redis@3.0.0`; built by
//! tests/build.rs) served by the in-process host against a real redis-server.
//!
//! - the host detects the flavour: `/health` lists the component as `wasip3`, run by the
//!   engine with component-model-async;
//! - `spin:redis/redis@3.0.0` works through HTTP: `INCR` returns increasing values, stored
//!   in the real Redis under the component's sandbox prefix;
//! - one instance serves several requests at once (`max_concurrent_per_instance`): two
//!   500 ms requests (an async sleep, and a Redis `BLPOP` with a timeout on the host's
//!   dedicated blocking connections) finish together in well under 1000 ms, the guest itself
//!   saw both requests in flight in the same instance, and `/metrics` shows a single
//!   instance created.

use std::time::{Duration, Instant};

use redwasm_tests::{TestHost, client};
use reqwest::StatusCode;
use serde_json::Value;

/// The p3 probe's `.wasm`, built by tests/build.rs.
const P3PROBE_WASM: &str = concat!(env!("REDWASM_TEST_COMPONENTS_DIR"), "/redwasm_p3probe.wasm");

/// How long each slow request waits.
const SLOW_MS: u64 = 500;
/// How long after the first slow request the second one is sent.
const STAGGER_MS: u64 = 100;
/// The pair must finish within this: served one after the other it takes at least
/// `STAGGER_MS` + 2 × `SLOW_MS` (1100 ms); overlapping, about `STAGGER_MS` + `SLOW_MS`.
const OVERLAP_LIMIT_MS: u64 = 850;

/// A manifest serving the p3 probe as `p3` on `/p3/...`, with `tool` as its
/// `[component.p3.tool.redwasm]` body. The guest reads the Redis address through
/// `spin:variables/variables@3.0.0`, so these tests also prove that interface.
fn manifest(redis_url: &str, tool: &str) -> String {
    assert!(
        std::path::Path::new(P3PROBE_WASM).exists(),
        "{P3PROBE_WASM} is missing: tests/build.rs builds it (was REDWASM_SKIP_WASM_BUILD set?)"
    );
    // JSON string literals are valid TOML basic strings.
    let source = serde_json::to_string(P3PROBE_WASM).unwrap();
    let redis = serde_json::to_string(redis_url).unwrap();
    format!(
        "spin_manifest_version = 2\n\n[application]\nname = \"p3-tests\"\nversion = \"0.1.0\"\n\n\
         [variables]\nredis_address = {{ default = \"redis://127.0.0.1:6379\" }}\n\n\
         [[trigger.http]]\nroute = \"/p3/...\"\ncomponent = \"p3\"\n\n\
         [component.p3]\nsource = {source}\nkey_value_stores = [\"default\"]\n\
         allowed_outbound_hosts = [\"{{{{ redis_address }}}}\"]\n\
         [component.p3.variables]\nredis_address = {redis}\n\
         [component.p3.tool.redwasm]\n{tool}\n"
    )
}

/// The host serving [`manifest`] against its own redis-server.
struct P3 {
    host: TestHost,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl P3 {
    async fn start(tool: &str) -> P3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spin.toml");
        let host = TestHost::start_with(|opts| {
            let url = opts.redis_url.clone().expect("TestHost sets the Redis URL");
            std::fs::write(&path, manifest(&url, tool)).unwrap();
            opts.manifest = path.clone();
        })
        .await;
        P3 {
            host,
            http: client(),
            _dir: dir,
        }
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.host.url(path)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    async fn metrics(&self) -> String {
        self.host.metrics().await
    }

    /// A redis-rs connection to the same server, to look behind the sandbox.
    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        self.host.raw_redis().await
    }
}

/// The value of one series in Prometheus text.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_reports_the_component_as_wasip3() {
    let p3 = P3::start("reuse = 4\nmax_concurrent_per_instance = 4\n").await;
    let health = p3.get_json("/health").await;
    let components = health["components"].as_array().expect("components array");
    let p3_entry = components
        .iter()
        .find(|c| c["id"] == "p3")
        .unwrap_or_else(|| panic!("no p3 component in {health}"));
    assert_eq!(p3_entry["flavour"], "wasip3", "{health}");
    assert_eq!(p3_entry["engine"], "concurrent", "{health}");
    assert_eq!(health["redis"]["connected"], true, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incr_goes_through_spin_redis_v3_into_the_sandbox() {
    let p3 = P3::start("reuse = 16\n").await;
    let mut values = Vec::new();
    for _ in 0..3 {
        let body = p3.get_json("/p3/incr/visits").await;
        values.push(body["value"].as_i64().expect("value is an integer"));
    }
    assert_eq!(values, [1, 2, 3]);

    let mut raw = p3.raw().await;
    let stored: Option<String> = redis::cmd("GET")
        .arg("p3:visits")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("3"), "the key lives under `p3:`");
    let unprefixed: Option<String> = redis::cmd("GET")
        .arg("visits")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(unprefixed, None, "nothing escapes the sandbox");
}

/// Sends a warm-up request (so the instance exists and is idle), then two `route` requests
/// of [`SLOW_MS`] each, the second [`STAGGER_MS`] after the first; returns the two bodies and
/// the wall time of the pair.
///
/// Why the stagger: wasmtime's `ProxyHandler` deliberately hands an instance a second request
/// only once its current ones are all blocked on I/O (it assumes a fresh request is CPU-bound
/// at first); a request arriving in the microseconds before that starts a new instance. The
/// second request therefore comes once the first is parked in its wait.
async fn overlapping_pair(p3: &P3, route: &str) -> (Value, Value, Duration) {
    let warm = p3.get_json("/p3/info").await;
    assert_eq!(warm["in_flight"], 1, "only the warm-up request: {warm}");
    let (path_a, path_b) = (
        format!("/p3/{route}/a?ms={SLOW_MS}"),
        format!("/p3/{route}/b?ms={SLOW_MS}"),
    );
    let started = Instant::now();
    let (a, b) = tokio::join!(p3.get_json(&path_a), async {
        tokio::time::sleep(Duration::from_millis(STAGGER_MS)).await;
        p3.get_json(&path_b).await
    });
    (a, b, started.elapsed())
}

async fn assert_overlap_in_one_instance(route: &str) {
    let p3 = P3::start("reuse = 16\nmax_concurrent_per_instance = 4\n").await;
    let (a, b, elapsed) = overlapping_pair(&p3, route).await;
    eprintln!(
        "{route}: two {SLOW_MS} ms requests, {STAGGER_MS} ms apart, took {elapsed:?}: {a} {b}"
    );
    assert!(
        elapsed >= Duration::from_millis(STAGGER_MS + SLOW_MS),
        "each request waits {SLOW_MS} ms; the pair took {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(OVERLAP_LIMIT_MS),
        "two {SLOW_MS} ms requests in one instance must overlap; the pair took {elapsed:?}"
    );
    assert_eq!(a["instance"], b["instance"], "one instance: {a} {b}");
    // Each saw the other in flight in the same instance while it waited.
    assert_eq!(a["in_flight_max"], 2, "{a}");
    assert_eq!(b["in_flight_max"], 2, "{b}");
    let metrics = p3.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "redwasm_instances_created_total{component=\"p3\"}"
        ),
        1,
        "warm-up and both slow requests ran in a single instance"
    );
    assert_eq!(
        metric(
            &metrics,
            "redwasm_http_requests_total{component=\"p3\",status=\"200\"}"
        ),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_async_sleeps_overlap_in_one_instance() {
    assert_overlap_in_one_instance("slow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_blocking_redis_pops_overlap_in_one_instance() {
    assert_overlap_in_one_instance("blpop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blocking_pop_returns_what_another_request_pushes() {
    let p3 = P3::start("reuse = 16\nmax_concurrent_per_instance = 4\n").await;
    let waiter = p3.get_json("/p3/blpop/jobs?ms=5000");
    let pusher = async {
        // Let the BLPOP reach Redis, then push through the sandbox's prefix.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut raw = p3.raw().await;
        let _: i64 = redis::cmd("RPUSH")
            .arg("p3:jobs")
            .arg("job-1")
            .query_async(&mut raw)
            .await
            .unwrap();
    };
    let started = Instant::now();
    let (popped, ()) = tokio::join!(waiter, pusher);
    assert_eq!(popped["popped"], "job-1", "{popped}");
    assert!(
        started.elapsed() < Duration::from_millis(4000),
        "the pop returned when the value arrived, not at its timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_one_request_per_instance_the_pair_is_served_side_by_side() {
    // max_concurrent_per_instance = 1: the second request gets its own instance instead of
    // queueing, so the pair still overlaps, but across two instances.
    let p3 = P3::start("reuse = 16\nmax_concurrent_per_instance = 1\n").await;
    let (a, b, elapsed) = overlapping_pair(&p3, "slow").await;
    assert!(
        elapsed < Duration::from_millis(OVERLAP_LIMIT_MS),
        "the pair took {elapsed:?}"
    );
    assert_ne!(a["instance"], b["instance"], "two instances: {a} {b}");
    assert_eq!(a["in_flight_max"], 1, "{a}");
    assert_eq!(b["in_flight_max"], 1, "{b}");
    let created = metric(
        &p3.metrics().await,
        "redwasm_instances_created_total{component=\"p3\"}",
    );
    assert!(created >= 2, "at least two instances, saw {created}");
}

/// `spin:key-value@3.0.0`: the store works from a WASIp3 guest, `get-keys` streams exactly
/// that store's keys, and an undeclared store is `AccessDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_v3_works_and_undeclared_stores_are_denied() {
    let p3 = P3::start("").await;
    let body = p3.get_json("/p3/kv/default").await;
    assert_eq!(
        body,
        serde_json::json!({"exists_a": false, "b": "2", "keys": ["b"]})
    );
    let response = p3
        .http
        .get(p3.host.url("/p3/kv/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("AccessDenied"),
        "{body}"
    );
}
