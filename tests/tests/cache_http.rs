//! The cache over HTTP through the in-process host, against a real redis-server.

use std::time::Duration;

use redwasm_tests::{TestHost, client};
use reqwest::StatusCode;
use serde_json::Value;

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(
        content_type, "application/problem+json",
        "a {status} must carry problem+json"
    );
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "problem status matches: {body}"
    );
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_get_delete_roundtrip_with_headers() {
    let host = TestHost::start().await;
    let http = client();

    let put = http
        .put(host.url("/v1/cache/users/42?ttl_s=60"))
        .header("content-type", "application/json")
        .header("x-correlation-id", "corr-1")
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(put.headers()["x-correlation-id"], "corr-1");

    let get = http
        .get(host.url("/v1/cache/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["content-type"], "application/json");
    assert_eq!(get.headers()["cache-status"], "redwasm; hit");
    let age: u64 = get.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(age <= 1, "just stored: age {age}");
    assert!(get.headers().contains_key("x-correlation-id"));
    assert_eq!(get.text().await.unwrap(), r#"{"name":"Ada"}"#);

    let delete = http
        .delete(host.url("/v1/cache/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let miss = http
        .get(host.url("/v1/cache/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(miss.status(), StatusCode::NOT_FOUND);
    assert_eq!(miss.headers()["cache-status"], "redwasm; fwd=miss");
    let delete_absent = http
        .delete(host.url("/v1/cache/users/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete_absent.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binary_values_and_keys_needing_percent_decoding() {
    let host = TestHost::start().await;
    let http = client();
    let value: Vec<u8> = (0..=255u8).collect();
    let put = http
        .put(host.url("/v1/cache/bin%7Bns%7D/a%2Fb%20c"))
        .body(value.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let get = http
        .get(host.url("/v1/cache/bin%7Bns%7D/a%2Fb%20c"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["content-type"], "application/octet-stream");
    assert_eq!(get.bytes().await.unwrap().to_vec(), value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_all_and_stats() {
    let host = TestHost::start().await;
    let http = client();
    for (key, tags) in [("a", "t1"), ("b", "t1,t2"), ("c", "")] {
        let url = if tags.is_empty() {
            host.url(&format!("/v1/cache/shop/{key}"))
        } else {
            host.url(&format!("/v1/cache/shop/{key}?tags={tags}"))
        };
        let put = http.put(url).body(key.to_string()).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::NO_CONTENT);
    }
    let stats: Value = http
        .get(host.url("/v1/cache/shop/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["keys"], 3);

    let invalidated: Value = http
        .post(host.url("/v1/cache/shop/invalidate"))
        .json(&serde_json::json!({"tags": ["t1"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invalidated["invalidated"], 2);
    for (key, expected) in [("a", 404), ("b", 404), ("c", 200)] {
        let got = http
            .get(host.url(&format!("/v1/cache/shop/{key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status().as_u16(), expected, "key {key}");
    }

    let stats: Value = http
        .get(host.url("/v1/cache/shop/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["hits"], 1);
    assert_eq!(stats["misses"], 2);
    assert_eq!(stats["stale_hits"], 0);
    assert_eq!(stats["keys"], 1);
    let ratio = stats["hit_ratio"].as_f64().unwrap();
    assert!((ratio - 1.0 / 3.0).abs() < 1e-6, "hit ratio {ratio}");

    let all: Value = http
        .post(host.url("/v1/cache/shop/invalidate"))
        .json(&serde_json::json!({"all": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["invalidated"], 1);
    let gone = http.get(host.url("/v1/cache/shop/c")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_while_revalidate_gives_exactly_one_revalidator() {
    let host = TestHost::start().await;
    let http = client();
    // ttl 0 with a grace period: the entry is stale at once, without sleeping.
    let put = http
        .put(host.url("/v1/cache/feed/top?ttl_s=0&swr_s=60"))
        .body("old")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let requests = (0..32).map(|_| {
        let http = http.clone();
        let url = host.url("/v1/cache/feed/top");
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    });
    let mut revalidators = 0;
    for response in futures::future::join_all(requests).await {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["cache-status"],
            "redwasm; hit; fwd=stale"
        );
        if response.headers().contains_key("redwasm-revalidate") {
            revalidators += 1;
        }
        assert_eq!(response.text().await.unwrap(), "old");
    }
    assert_eq!(revalidators, 1, "exactly one caller per expiry revalidates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_lease_requests_give_exactly_one_lease() {
    let host = TestHost::start().await;
    let http = client();
    let (lease_tx, mut lease_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let requests: Vec<_> = (0..64)
        .map(|_| {
            let http = http.clone();
            let url = host.url("/v1/cache/reports/daily?lease_ms=5000");
            let lease_tx = lease_tx.clone();
            tokio::spawn(async move {
                let response = http.get(url).send().await.unwrap();
                let status = response.status();
                let lease = response
                    .headers()
                    .get("redwasm-lease")
                    .map(|v| v.to_str().unwrap().to_string());
                if let Some(token) = &lease {
                    let _ = lease_tx.send(token.clone());
                }
                (status, lease, response.text().await.unwrap())
            })
        })
        .collect();
    drop(lease_tx);

    // The leaseholder computes and fills; the waiters then get the value.
    let token = tokio::time::timeout(Duration::from_secs(10), lease_rx.recv())
        .await
        .expect("a lease within 10 s")
        .expect("one caller got the lease");
    let fill = http
        .put(host.url("/v1/cache/reports/daily?ttl_s=60"))
        .header("if-match", token.clone())
        .body("computed")
        .send()
        .await
        .unwrap();
    assert_eq!(fill.status(), StatusCode::NO_CONTENT);

    let mut leases = 0;
    let mut filled = 0;
    for result in futures::future::join_all(requests).await {
        let (status, lease, body) = result.unwrap();
        if lease.is_some() {
            leases += 1;
            assert_eq!(status, StatusCode::NOT_FOUND);
        } else {
            assert_eq!(status, StatusCode::OK, "waiters get the fill: {body}");
            assert_eq!(body, "computed");
            filled += 1;
        }
    }
    assert_eq!(leases, 1);
    assert_eq!(filled, 63);
    assert!(
        lease_rx.recv().await.is_none(),
        "no second lease was handed out"
    );

    // The lease is spent: filling again with it fails the precondition.
    let again = http
        .put(host.url("/v1/cache/reports/daily"))
        .header("if-match", token)
        .body("late")
        .send()
        .await
        .unwrap();
    let (status, _) = problem(again).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_get_404_with_retry_after_when_no_fill_comes() {
    let host = TestHost::start().await;
    let http = client();
    let first = http
        .get(host.url("/v1/cache/slow/k?lease_ms=300"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    assert!(first.headers().contains_key("redwasm-lease"));
    let second = http
        .get(host.url("/v1/cache/slow/k?lease_ms=300"))
        .send()
        .await
        .unwrap();
    // Either the lease was still held (wait, then 404 + Retry-After) or it had expired and
    // this caller became the new leaseholder; both are 404, never 200.
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    assert!(
        second.headers().contains_key("retry-after")
            || second.headers().contains_key("redwasm-lease")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_gets_its_problem() {
    let host = TestHost::start().await;
    let http = client();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            http.put(host.url("/v1/cache/ns/k?ttl_s=abc")).body("x"),
            400,
            "ttl_s",
        ),
        (
            http.put(host.url("/v1/cache/ns/k?ttl_s=-1")).body("x"),
            400,
            "ttl_s",
        ),
        (
            http.put(host.url("/v1/cache/ns/k?swr_s=x")).body("x"),
            400,
            "swr_s",
        ),
        (
            http.get(host.url("/v1/cache/ns/k?lease_ms=abc")),
            400,
            "lease_ms",
        ),
        (
            http.get(host.url("/v1/cache/ns/k?lease_ms=999999999")),
            400,
            "lease_ms",
        ),
        (http.get(host.url("/v1/cache/ns/%01bad")), 400, "key"),
        (
            http.get(host.url(&format!("/v1/cache/ns/{}", "k".repeat(257)))),
            400,
            "key",
        ),
        (http.get(host.url("/v1/cache/%FF/k")), 400, "ns"),
        (
            http.post(host.url("/v1/cache/ns/invalidate"))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "",
        ),
        (
            http.post(host.url("/v1/cache/ns/invalidate"))
                .header("content-type", "application/json")
                .body(r#"{"tags":"t"}"#),
            400,
            "tags",
        ),
        (
            http.post(host.url("/v1/cache/ns/invalidate"))
                .header("content-type", "text/plain")
                .body(r#"{"all":true}"#),
            415,
            "",
        ),
        (http.patch(host.url("/v1/cache/ns/k")).body("x"), 405, ""),
        (http.get(host.url("/v1/cache/ns/k/extra/segments")), 404, ""),
        (http.get(host.url("/nowhere")), 404, ""),
        (
            http.put(host.url("/v1/cache/ns/k"))
                .header("if-match", "not-a-current-token")
                .body("x"),
            412,
            "",
        ),
        (
            http.put(host.url("/v1/cache/ns/big"))
                .body(vec![b'x'; 1024 * 1024 + 1]),
            413,
            "",
        ),
    ];
    for (request, expected, field) in cases {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        let (status, body) = problem(response).await;
        assert_eq!(status.as_u16(), expected, "{url}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{url}: detail names `{field}`: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_gives_503_and_the_host_recovers() {
    let mut host = TestHost::start().await;
    let http = client();
    let put = http
        .put(host.url("/v1/cache/o/k"))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);

    host.redis.stop();
    let started = std::time::Instant::now();
    let down = http.get(host.url("/v1/cache/o/k")).send().await.unwrap();
    assert!(down.headers().contains_key("retry-after"));
    let (status, _) = problem(down).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a dead Redis is reported promptly"
    );
    let health = http.get(host.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);

    host.redis.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let put = http
            .put(host.url("/v1/cache/o/k2"))
            .body("back")
            .send()
            .await
            .unwrap();
        if put.status() == StatusCode::NO_CONTENT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "host did not recover within 10 s: {}",
            put.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = http.get(host.url("/v1/cache/o/k2")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.text().await.unwrap(), "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_metrics_and_sandboxed_keys() {
    let host = TestHost::start().await;
    let http = client();
    let put = http
        .put(host.url("/v1/cache/h/k"))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);

    let health = http.get(host.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health: Value = health.json().await.unwrap();
    // `degraded` only says PING was slower than 100 ms (a loaded machine); not this test's topic.
    assert!(
        health["status"] == "healthy" || health["status"] == "degraded",
        "{health}"
    );
    assert_eq!(health["redis"]["connected"], true);
    assert!(
        health["redis"]["version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric)
    );
    assert!(health["redis"]["uptime_s"].as_u64().is_some());
    let ids: Vec<&str> = health["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"cache"), "{ids:?}");
    assert!(
        ids.is_sorted(),
        "components are listed in id order: {ids:?}"
    );

    let metrics = http
        .get(host.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("redwasm_http_requests_total{component=\"cache\",status=\"204\"} 1"),
        "{metrics}"
    );

    // Every key the component wrote lives under its sandbox prefix.
    let client = redis::Client::open(host.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.starts_with("cache:"), "key outside the sandbox: {key}");
    }
}

/// A value larger than the host's single-write budget (1 MiB) leaves the component through
/// the streaming path, and arrives whole with the right `Content-Length`; a small one in the
/// same instance through the one-write path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_values_stream_out_whole() {
    const BIG: usize = 3 * 1024 * 1024 + 17;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    let workspace = redwasm_tests::workspace_manifest();
    let source = workspace
        .parent()
        .unwrap()
        .join("target/wasm/wasm32-wasip2/release/redwasm_cache.wasm");
    let host = TestHost::start_with(|opts| {
        let redis = opts.redis_url.clone().expect("TestHost sets the Redis URL");
        // JSON string literals are valid TOML basic strings.
        let manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"big\"\n\
             [[trigger.http]]\nroute = \"/v1/cache/...\"\ncomponent = \"cache\"\n\
             [component.cache]\nsource = {source}\nallowed_outbound_hosts = [{redis}]\n\
             [component.cache.variables]\nredis_address = {redis}\n\
             cache_max_value_bytes = \"4194304\"\n\
             [component.cache.tool.redwasm]\nmax_request_body_bytes = 5242880\n",
            source = serde_json::to_string(&source).unwrap(),
            redis = serde_json::to_string(&redis).unwrap(),
        );
        std::fs::write(&path, manifest).unwrap();
        opts.manifest = path.clone();
    })
    .await;
    let http = client();
    let value: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    for (key, body) in [("big", value.clone()), ("small", b"tiny".to_vec())] {
        let put = http
            .put(host.url(&format!("/v1/cache/ns/{key}")))
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::NO_CONTENT, "PUT {key}");
        let get = http
            .get(host.url(&format!("/v1/cache/ns/{key}")))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK, "GET {key}");
        assert_eq!(
            get.headers()["content-length"].to_str().unwrap(),
            body.len().to_string()
        );
        let got = get.bytes().await.unwrap();
        assert!(got[..] == body[..], "GET {key}: {} bytes back", got.len());
    }
}

/// The cache's limits are manifest variables of `spin.toml`, so `SPIN_VARIABLE_*` (here the
/// equivalent override) changes them without touching the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn value_limit_comes_from_the_manifest_variable() {
    let host = TestHost::start_with(|options| {
        options
            .variable_overrides
            .insert("cache_max_value_bytes".into(), "16".into());
    })
    .await;
    let http = client();
    let fits = http
        .put(host.url("/v1/cache/ns/fits"))
        .body(vec![b'x'; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), StatusCode::NO_CONTENT);
    let (status, body) = problem(
        http.put(host.url("/v1/cache/ns/over"))
            .body(vec![b'x'; 17])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("16"), "{body}");
}
