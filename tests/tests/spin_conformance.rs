//! Spin's own conformance suite (`../shared/conformance/spin`, from
//! github.com/spinframework/conformance-tests) against the redwasm host, with Spin's
//! assertions: the status, every response header (a header the test does not list fails it;
//! `optional` ones may be absent; a listed value must match), and the body.
//!
//! Every test directory is run; none is skipped. Each test gets its own host (on a manifest
//! with `%{source=..}` and `%{port=..}` filled in) and its own Redis, plus the services its
//! preconditions ask for: `redis` (another redis-server), `http-echo` (a local server answering
//! with the request body), `key-value-store` (the host's Redis backs every store).
//!
//! The suite's directory: [`redwasm_tests::spin_conformance_dir`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redwasm_tests::{RedisServer, TestHost, Upstream};
use serde_json::Value;

/// The suite's tests this file runs, one `#[tokio::test]` each. `every_suite_test_is_run`
/// fails when the suite has one that is not here.
const TESTS: &[&str] = &[
    "key-value",
    "key-value-no-permission",
    "outbound-redis",
    "outbound-redis-no-permission",
    "outbound-redis-variable-permission",
    "outbound-wasi-http-v0.2.0",
    "outbound-wasi-http-v0.2.0-no-perms",
    "request-shape",
    "variables",
];

fn suite_dir() -> PathBuf {
    redwasm_tests::spin_conformance_dir()
}

#[test]
fn every_suite_test_is_run() {
    let dir = suite_dir().join("tests");
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = TESTS.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        found, listed,
        "the suite's tests and the ones this file runs differ"
    );
}

/// Fills `%{source=NAME}` and `%{port=N}` in `text`; `ports` maps a port the suite names to
/// the service's real one.
fn substitute(text: &str, components: &Path, ports: &[(u16, u16)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unterminated %{") + start;
        let inner = &rest[start + 2..end];
        let (kind, value) = inner.split_once('=').expect("%{kind=value}");
        match kind {
            "source" => out.push_str(
                &components
                    .join(format!("{value}.wasm"))
                    .display()
                    .to_string(),
            ),
            "port" => {
                let wanted: u16 = value.parse().unwrap();
                let (_, real) = ports
                    .iter()
                    .find(|(named, _)| *named == wanted)
                    .unwrap_or_else(|| panic!("no service for %{{port={wanted}}}"));
                out.push_str(&real.to_string());
            }
            other => panic!("unknown substitution {other}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs suite test `name` and checks every invocation as Spin's runner does.
async fn run(name: &str) {
    let suite = suite_dir();
    let dir = suite.join("tests").join(name);
    let raw_test = std::fs::read_to_string(dir.join("test.json5")).unwrap();
    let test: Value = json5::from_str(&raw_test).expect("parse test.json5");

    // Services the preconditions ask for; each named port is mapped to the real one.
    let mut ports: Vec<(u16, u16)> = Vec::new();
    let mut _redis_service = None;
    let mut echo = None;
    for precondition in test["preconditions"].as_array().into_iter().flatten() {
        match precondition["kind"].as_str() {
            Some("redis") => {
                let redis = RedisServer::start();
                ports.push((6379, redis.port()));
                _redis_service = Some(redis);
            }
            Some("http-echo") => {
                let server = Upstream::start().await;
                ports.push((80, server.port));
                echo = Some(server);
            }
            // The host's own Redis (fresh for this test, so the store starts empty) backs
            // every key-value store.
            Some("key-value-store") => {}
            other => panic!("unknown precondition {other:?}"),
        }
    }

    let manifest = substitute(
        &std::fs::read_to_string(dir.join("spin.toml")).unwrap(),
        &suite.join("components"),
        &ports,
    );
    let (host, _workdir) = TestHost::start_manifest(&manifest).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (n, invocation) in test["invocations"].as_array().unwrap().iter().enumerate() {
        let request = &invocation["request"];
        let method = request["method"].as_str().unwrap_or("GET");
        let path = substitute(request["path"].as_str().unwrap(), Path::new(""), &ports);
        let mut builder = client.request(method.parse().unwrap(), host.url(&path));
        for header in request["headers"].as_array().into_iter().flatten() {
            let value = substitute(header["value"].as_str().unwrap(), Path::new(""), &ports);
            builder = builder.header(header["name"].as_str().unwrap(), value);
        }
        if let Some(body) = request["body"].as_str() {
            builder = builder.body(body.to_string());
        }
        let response = builder.send().await.expect("send the invocation");

        let expected = &invocation["response"];
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let context = format!("{name} invocation {n}: status {status}, body {body:?}");
        assert_eq!(
            status,
            expected["status"].as_u64().unwrap_or(200) as u16,
            "{context}"
        );
        let listed: Vec<&Value> = expected["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for (header, value) in &headers {
            let spec = listed.iter().find(|h| {
                h["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(header.as_str()))
            });
            let Some(spec) = spec else {
                panic!("{context}: unexpected response header {header}: {value:?}");
            };
            if let Some(want) = spec["value"].as_str() {
                let want = substitute(want, Path::new(""), &ports);
                assert_eq!(value.to_str().unwrap(), want, "{context}: header {header}");
            }
        }
        for spec in &listed {
            let name = spec["name"].as_str().unwrap();
            if !spec["optional"].as_bool().unwrap_or(false) {
                assert!(
                    headers.contains_key(name),
                    "{context}: missing header {name}"
                );
            }
        }
        assert_eq!(
            body,
            expected["body"].as_str().unwrap_or(""),
            "{context}: body"
        );
    }
    if let Some(echo) = echo {
        assert!(
            echo.connections.load(std::sync::atomic::Ordering::Relaxed) <= 1,
            "{name}: one outbound request should use at most one connection"
        );
    }
    host.stop().await.unwrap();
}

macro_rules! suite_tests {
    ($($fn_name:ident => $test:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $fn_name() {
                run($test).await;
            }
        )*
    };
}

suite_tests! {
    key_value => "key-value",
    key_value_no_permission => "key-value-no-permission",
    outbound_redis => "outbound-redis",
    outbound_redis_no_permission => "outbound-redis-no-permission",
    outbound_redis_variable_permission => "outbound-redis-variable-permission",
    outbound_wasi_http_v0_2_0 => "outbound-wasi-http-v0.2.0",
    outbound_wasi_http_v0_2_0_no_perms => "outbound-wasi-http-v0.2.0-no-perms",
    request_shape => "request-shape",
    variables => "variables",
}
