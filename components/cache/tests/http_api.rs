//! The HTTP contract (Cache section) through the plain-Rust HTTP layer, against a real
//! redis-server: statuses, headers, problem+json bodies, every bad input.

mod common;

use common::Fixture;
use redwasm_cache::http::{CACHE_STATUS_HIT, CACHE_STATUS_MISS, CACHE_STATUS_STALE};
use redwasm_cache::{CacheConfig, HttpRequest, HttpResponse, handle};

fn send(fx: &Fixture, request: HttpRequest) -> HttpResponse {
    let mut cache = fx.cache();
    handle(&mut cache, &request)
}

fn put(fx: &Fixture, path: &str, body: &str) -> HttpResponse {
    send(
        fx,
        HttpRequest::new("PUT", path)
            .with_header("Content-Type", "text/plain")
            .with_body(body),
    )
}

fn get(fx: &Fixture, path: &str) -> HttpResponse {
    send(fx, HttpRequest::new("GET", path))
}

fn invalidate(fx: &Fixture, ns: &str, body: &str) -> HttpResponse {
    send(
        fx,
        HttpRequest::new("POST", &format!("/v1/cache/{ns}/invalidate"))
            .with_header("Content-Type", "application/json")
            .with_body(body),
    )
}

/// Asserts a problem+json response with `status`, and that `detail`/`field` mention `field`.
#[track_caller]
fn assert_problem(response: &HttpResponse, status: u16, field: Option<&str>) {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("Content-Type"),
        Some("application/problem+json")
    );
    let body = response.json_body();
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "{member} in {body}");
    }
    assert_eq!(body["status"], status);
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
    }
    assert!(response.header("X-Correlation-Id").is_some());
}

#[test]
fn put_then_get_returns_body_content_type_age_and_cache_status() {
    let fx = Fixture::new();
    let response = put(&fx, "/v1/cache/ns/greeting?ttl_s=60", "hello");
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    fx.clock.advance_ms(3_200);
    let response = get(&fx, "/v1/cache/ns/greeting");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(response.header("Content-Type"), Some("text/plain"));
    assert_eq!(response.header("Age"), Some("3"));
    assert_eq!(response.header("Cache-Status"), Some(CACHE_STATUS_HIT));
}

#[test]
fn miss_is_404_with_cache_status_and_after_ttl_too() {
    let fx = Fixture::new();
    let response = get(&fx, "/v1/cache/ns/absent");
    assert_problem(&response, 404, None);
    assert_eq!(response.header("Cache-Status"), Some(CACHE_STATUS_MISS));

    put(&fx, "/v1/cache/ns/k?ttl_s=1", "v");
    fx.clock.advance_ms(1_000);
    assert_eq!(get(&fx, "/v1/cache/ns/k").status, 404);
}

#[test]
fn stale_within_swr_is_served_with_one_revalidate_header() {
    let fx = Fixture::new();
    put(&fx, "/v1/cache/ns/k?ttl_s=1&swr_s=30", "old");
    fx.clock.advance_ms(1_500);
    let first = get(&fx, "/v1/cache/ns/k");
    let second = get(&fx, "/v1/cache/ns/k");
    for response in [&first, &second] {
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"old");
        assert_eq!(response.header("Cache-Status"), Some(CACHE_STATUS_STALE));
    }
    let token = first
        .header("Redwasm-Revalidate")
        .expect("first reader revalidates");
    assert_eq!(second.header("Redwasm-Revalidate"), None);

    // The revalidator PUTs with If-Match (quoted form accepted too).
    let refresh = send(
        &fx,
        HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s=60")
            .with_header("If-Match", &format!("\"{token}\""))
            .with_body("new"),
    );
    assert_eq!(refresh.status, 204);
    let fresh = get(&fx, "/v1/cache/ns/k");
    assert_eq!(fresh.body, b"new");
    assert_eq!(fresh.header("Cache-Status"), Some(CACHE_STATUS_HIT));
    assert_eq!(
        fresh.header("Content-Type"),
        Some("application/octet-stream")
    );
}

#[test]
fn lease_flow_one_lease_then_if_match_fill_then_waiters_hit_or_time_out() {
    let fx = Fixture::new();
    let leased = get(&fx, "/v1/cache/ns/k?lease_ms=500");
    assert_problem(&leased, 404, None);
    let token = leased
        .header("Redwasm-Lease")
        .expect("lease token")
        .to_string();

    // A second caller waits the whole lease_ms (manual clock) and gets 404 + Retry-After.
    let waited = get(&fx, "/v1/cache/ns/k?lease_ms=500");
    assert_eq!(waited.status, 404);
    assert_eq!(waited.header("Redwasm-Lease"), None);
    assert_eq!(waited.header("Retry-After"), Some("1"));
    assert_eq!(waited.header("Cache-Status"), Some(CACHE_STATUS_MISS));

    let wrong = send(
        &fx,
        HttpRequest::new("PUT", "/v1/cache/ns/k")
            .with_header("If-Match", "wrong")
            .with_body("x"),
    );
    assert_problem(&wrong, 412, None);

    let fill = send(
        &fx,
        HttpRequest::new("PUT", "/v1/cache/ns/k")
            .with_header("If-Match", &token)
            .with_body("v"),
    );
    assert_eq!(fill.status, 204);
    let hit = get(&fx, "/v1/cache/ns/k?lease_ms=500");
    assert_eq!(hit.status, 200);
    assert_eq!(hit.body, b"v");

    // The lease was released by the fill: reusing the token fails.
    let reuse = send(
        &fx,
        HttpRequest::new("PUT", "/v1/cache/ns/k")
            .with_header("If-Match", &token)
            .with_body("v2"),
    );
    assert_problem(&reuse, 412, None);
}

#[test]
fn delete_is_204_whether_or_not_the_key_exists() {
    let fx = Fixture::new();
    put(&fx, "/v1/cache/ns/k", "v");
    assert_eq!(
        send(&fx, HttpRequest::new("DELETE", "/v1/cache/ns/k")).status,
        204
    );
    assert_eq!(get(&fx, "/v1/cache/ns/k").status, 404);
    assert_eq!(
        send(&fx, HttpRequest::new("DELETE", "/v1/cache/ns/k")).status,
        204
    );
}

#[test]
fn invalidate_by_tags_and_all_report_counts() {
    let fx = Fixture::new();
    put(&fx, "/v1/cache/ns/a?tags=x,y", "1");
    put(&fx, "/v1/cache/ns/b?tags=y", "2");
    put(&fx, "/v1/cache/ns/c?tags=z%2Cw", "3");
    put(&fx, "/v1/cache/ns/d", "4");

    let response = invalidate(&fx, "ns", r#"{"tags":["y"]}"#);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.json_body(), serde_json::json!({"invalidated": 2}));
    assert_eq!(get(&fx, "/v1/cache/ns/a").status, 404);

    // "z,w" was one tag (encoded comma).
    assert_eq!(
        invalidate(&fx, "ns", r#"{"tags":["z,w"]}"#).json_body()["invalidated"],
        1
    );
    assert_eq!(
        invalidate(&fx, "ns", r#"{"all":true}"#).json_body()["invalidated"],
        1
    );
    assert_eq!(get(&fx, "/v1/cache/ns/d").status, 404);
    assert_eq!(
        invalidate(&fx, "ns", r#"{"tags":[]}"#).json_body()["invalidated"],
        0
    );
}

#[test]
fn stats_reports_counters_ratio_and_live_keys() {
    let fx = Fixture::new();
    put(&fx, "/v1/cache/ns/a?ttl_s=1&swr_s=10", "1");
    put(&fx, "/v1/cache/ns/b", "2");
    get(&fx, "/v1/cache/ns/b");
    get(&fx, "/v1/cache/ns/b");
    get(&fx, "/v1/cache/ns/missing");
    fx.clock.advance_ms(1_000);
    get(&fx, "/v1/cache/ns/a");
    let response = get(&fx, "/v1/cache/ns/stats");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json_body(),
        serde_json::json!({"hits": 3, "misses": 1, "stale_hits": 1, "hit_ratio": 0.75, "keys": 2})
    );
    let empty = get(&fx, "/v1/cache/fresh-ns/stats").json_body();
    assert_eq!(empty["hit_ratio"], 0.0);
}

#[test]
fn reserved_segment_names_are_reachable_as_keys_when_percent_encoded() {
    let fx = Fixture::new();
    assert_eq!(
        put(&fx, "/v1/cache/ns/%73tats", "a key named stats").status,
        204
    );
    let response = get(&fx, "/v1/cache/ns/%73tats");
    assert_eq!(response.body, b"a key named stats");
    assert!(get(&fx, "/v1/cache/ns/stats").json_body()["keys"].is_u64());
}

#[test]
fn percent_encoded_keys_and_namespaces_with_braces_round_trip() {
    let fx = Fixture::new();
    assert_eq!(put(&fx, "/v1/cache/a%7Bb%7D/x%2Fy%20z", "1").status, 204);
    assert_eq!(
        put(&fx, "/v1/cache/a%257Bb%257D/x%2Fy%20z", "2").status,
        204
    );
    assert_eq!(get(&fx, "/v1/cache/a%7Bb%7D/x%2Fy%20z").body, b"1");
    assert_eq!(get(&fx, "/v1/cache/a%257Bb%257D/x%2Fy%20z").body, b"2");
    let mut cache = fx.cache();
    assert_eq!(cache.get("a{b}", "x/y z").unwrap().unwrap().value, b"1");
}

#[test]
fn bad_inputs_are_400_problems_naming_the_field() {
    let fx = Fixture::new();
    let long = "k".repeat(257);
    let many_tags = (0..33).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let cases: Vec<(HttpRequest, &str)> = vec![
        (HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s=abc"), "ttl_s"),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s=0"), "ttl_s"),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s=-5"), "ttl_s"),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s="), "ttl_s"),
        (
            HttpRequest::new("PUT", "/v1/cache/ns/k?ttl_s=99999999999999999999999"),
            "ttl_s",
        ),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?swr_s=x"), "swr_s"),
        (
            HttpRequest::new("PUT", "/v1/cache/ns/k?jitter_pct=51"),
            "jitter_pct",
        ),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?tags=a,,b"), "tags"),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?tags=a,%0A"), "tags"),
        (HttpRequest::new("PUT", "/v1/cache/ns/k?tags=%zz"), "tags"),
        (
            HttpRequest::new("PUT", &format!("/v1/cache/ns/k?tags={}", many_tags)),
            "tags",
        ),
        (
            HttpRequest::new("PUT", "/v1/cache/ns/k").with_header("If-Match", "bad token"),
            "if-match",
        ),
        (
            HttpRequest::new("PUT", "/v1/cache/ns/k").with_header("Content-Type", "text/\u{7f}"),
            "content-type",
        ),
        (
            HttpRequest::new("GET", "/v1/cache/ns/k?lease_ms=0"),
            "lease_ms",
        ),
        (
            HttpRequest::new("GET", "/v1/cache/ns/k?lease_ms=30001"),
            "lease_ms",
        ),
        (
            HttpRequest::new("GET", "/v1/cache/ns/k?lease_ms=soon"),
            "lease_ms",
        ),
        (HttpRequest::new("GET", "/v1/cache//k"), "ns"),
        (HttpRequest::new("GET", "/v1/cache/ns/"), "key"),
        (
            HttpRequest::new("GET", &format!("/v1/cache/ns/{long}")),
            "key",
        ),
        (HttpRequest::new("GET", "/v1/cache/ns/a%00b"), "key"),
        (HttpRequest::new("GET", "/v1/cache/ns/a%0Ab"), "key"),
        (HttpRequest::new("GET", "/v1/cache/ns/%ff"), "key"),
        (HttpRequest::new("GET", "/v1/cache/ns/%4"), "key"),
        (HttpRequest::new("GET", "/v1/cache/n%1Fs/k"), "ns"),
        (HttpRequest::new("GET", "/v1/cache/n%1Fs/stats"), "ns"),
        (HttpRequest::new("GET", "/v1/cache/ns/k?%zz=1"), "query"),
    ];
    for (request, field) in cases {
        let path = request.path_and_query.clone();
        let response = send(&fx, request);
        assert_eq!(
            response.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_problem(&response, 400, Some(field));
    }
    // Nothing was stored by any of them.
    assert_eq!(get(&fx, "/v1/cache/ns/stats").json_body()["keys"], 0);
}

#[test]
fn bad_invalidate_bodies_are_400_and_wrong_content_type_is_415() {
    let fx = Fixture::new();
    let cases = [
        ("{not json", "body"),
        ("[1,2]", "body"),
        ("{}", "body"),
        (r#"{"all":false}"#, "body"),
        (r#"{"all":true,"tags":["a"]}"#, "body"),
        (r#"{"all":"yes"}"#, "all"),
        (r#"{"tags":"a"}"#, "tags"),
        (r#"{"tags":[1]}"#, "tags"),
        (r#"{"tags":[""]}"#, "tags"),
        (r#"{"tagz":["a"]}"#, "tagz"),
    ];
    for (body, field) in cases {
        let response = invalidate(&fx, "ns", body);
        assert_problem(&response, 400, Some(field));
    }
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request =
            HttpRequest::new("POST", "/v1/cache/ns/invalidate").with_body(r#"{"all":true}"#);
        if let Some(content_type) = content_type {
            request = request.with_header("Content-Type", content_type);
        }
        assert_problem(&send(&fx, request), 415, None);
    }
    let ok = send(
        &fx,
        HttpRequest::new("POST", "/v1/cache/ns/invalidate")
            .with_header(
                "content-type",
                "application/merge-patch+json; charset=utf-8",
            )
            .with_body(r#"{"all":true}"#),
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let fx = Fixture::new();
    for path in [
        "/",
        "/v1/cache",
        "/v1/cache/",
        "/v1/cache/ns",
        "/v1/cache/ns/k/extra",
        "/v2/cache/ns/k",
    ] {
        assert_problem(&get(&fx, path), 404, None);
    }
    let cases = [
        ("POST", "/v1/cache/ns/k", "GET, PUT, DELETE"),
        ("PATCH", "/v1/cache/ns/k", "GET, PUT, DELETE"),
        ("HEAD", "/v1/cache/ns/k", "GET, PUT, DELETE"),
        ("PUT", "/v1/cache/ns/stats", "GET"),
        ("DELETE", "/v1/cache/ns/stats", "GET"),
        ("GET", "/v1/cache/ns/invalidate", "POST"),
    ];
    for (method, path, allow) in cases {
        let response = send(&fx, HttpRequest::new(method, path));
        assert_problem(&response, 405, None);
        assert_eq!(response.header("Allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn too_large_values_are_413_and_nothing_is_stored() {
    let fx = Fixture::with_config(CacheConfig {
        max_value_bytes: 16,
        ..CacheConfig::default()
    });
    assert_eq!(put(&fx, "/v1/cache/ns/k", &"x".repeat(16)).status, 204);
    let response = put(&fx, "/v1/cache/ns/big", &"x".repeat(17));
    assert_problem(&response, 413, None);
    assert!(
        response.json_body()["detail"]
            .as_str()
            .unwrap()
            .contains("16")
    );
    assert_eq!(get(&fx, "/v1/cache/ns/big").status, 404);
    let huge_invalidate = invalidate(
        &fx,
        "ns",
        &format!(r#"{{"tags":["{}"]}}"#, "a".repeat(70_000)),
    );
    assert_problem(&huge_invalidate, 413, None);
}

#[test]
fn correlation_id_is_echoed_or_generated_on_every_response() {
    let fx = Fixture::new();
    let echoed = send(
        &fx,
        HttpRequest::new("GET", "/v1/cache/ns/k").with_header("x-correlation-id", "req-42"),
    );
    assert_eq!(echoed.header("X-Correlation-Id"), Some("req-42"));
    let generated = send(&fx, HttpRequest::new("GET", "/nowhere"));
    let id = generated.header("X-Correlation-Id").unwrap();
    assert_eq!(id.len(), 32);
    let too_long = send(
        &fx,
        HttpRequest::new("PUT", "/v1/cache/ns/k").with_header("X-Correlation-Id", &"x".repeat(129)),
    );
    assert_eq!(too_long.status, 204);
    assert_ne!(
        too_long.header("X-Correlation-Id"),
        Some("x".repeat(129).as_str())
    );
}

#[test]
fn redis_down_is_503_with_retry_after_and_recovers() {
    let mut fx = Fixture::new();
    assert_eq!(put(&fx, "/v1/cache/ns/k", "v").status, 204);
    fx.server.stop();
    let requests = [
        HttpRequest::new("GET", "/v1/cache/ns/k"),
        HttpRequest::new("GET", "/v1/cache/ns/k?lease_ms=100"),
        HttpRequest::new("PUT", "/v1/cache/ns/k").with_body("v"),
        HttpRequest::new("DELETE", "/v1/cache/ns/k"),
        HttpRequest::new("GET", "/v1/cache/ns/stats"),
        HttpRequest::new("POST", "/v1/cache/ns/invalidate")
            .with_header("Content-Type", "application/json")
            .with_body(r#"{"all":true}"#),
    ];
    for request in requests {
        let label = format!("{} {}", request.method, request.path_and_query);
        let response = send(&fx, request);
        assert_problem(&response, 503, None);
        assert_eq!(response.header("Retry-After"), Some("1"), "{label}");
    }
    // Bad input is still a 400, not a 503: it never reaches Redis.
    assert_problem(
        &get(&fx, "/v1/cache/ns/k?lease_ms=x"),
        400,
        Some("lease_ms"),
    );
    fx.server.restart();
    assert_eq!(put(&fx, "/v1/cache/ns/k", "back").status, 204);
    assert_eq!(get(&fx, "/v1/cache/ns/k").body, b"back");
}

#[test]
fn arbitrary_garbage_never_panics_and_never_yields_5xx() {
    let fx = Fixture::new();
    let paths = [
        "/v1/cache/%/%",
        "/v1/cache/%%%/k",
        "/v1/cache/ns/k?&&&=&=",
        "/v1/cache/ns/k?tags=%",
        "/v1/cache/ns/k?ttl_s=1e3",
        "/v1/cache/\u{1}/k",
        "/v1/cache/ns/k#frag",
        "?",
        "/v1/cache/ns/k?lease_ms=18446744073709551616",
        "/v1/cache/ns/é?tags=ü,ß",
    ];
    for path in paths {
        for method in ["GET", "PUT", "DELETE", "POST", "BREW"] {
            let response = send(
                &fx,
                HttpRequest::new(method, path).with_body(vec![0xff, 0xfe]),
            );
            assert!(
                (200..500).contains(&response.status),
                "{method} {path} -> {}",
                response.status
            );
        }
    }
}
