//! What the redwasm host serves itself: `/health`, `/metrics`, and its answers for unknown
//! routes. Each test returns early (passing) when the target is not the redwasm host, e.g.
//! `spin up`, which serves neither.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Target, header, problem, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_reports_redis_and_components() {
    let t = Target::get().await;
    if !t.is_redwasm_host {
        eprintln!("skipped: {} is not the redwasm host", t.base);
        return;
    }
    let response = t
        .http
        .get(t.url("/health"))
        .header("x-correlation-id", "corr-health")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&response, "x-correlation-id").as_deref(),
        Some("corr-health")
    );
    let body: Value = response.json().await.unwrap();
    let status = body["status"].as_str().unwrap_or_default();
    assert!(
        status == "healthy" || status == "degraded",
        "a 200 is healthy or degraded: {body}"
    );
    let redis = &body["redis"];
    assert_eq!(redis["connected"], true, "{body}");
    assert!(redis["latency_ms"].is_number(), "{body}");
    assert!(redis["version"].is_string(), "{body}");
    for member in ["used_memory", "connected_clients", "uptime_s"] {
        assert!(redis[member].is_u64(), "redis.{member}: {body}");
    }
    let components = body["components"].as_array().expect("components");
    assert!(
        components.iter().any(|c| c["id"] == "cache"),
        "the cache component is listed: {body}"
    );
    for c in components {
        let flavour = c["flavour"].as_str().unwrap_or_default();
        assert!(flavour == "wasip2" || flavour == "wasip3", "{c}");
    }
    // The in-process host serves the shipped components through the entry point this binary
    // is about (`conformance.rs`: the one-call export; `conformance_wasi_http.rs`: wasi:http),
    // so the two binaries really exercise both.
    if std::env::var("REDWASM_BASE_URL").map_or(true, |url| url.trim().is_empty()) {
        let expected = if crate::WASI_HTTP_ONLY {
            "wasi:http/incoming-handler@0.2"
        } else {
            "redwasm:http/handler@0.1.0"
        };
        for id in ["cache", "ratelimit"] {
            let c = components
                .iter()
                .find(|c| c["id"] == id)
                .unwrap_or_else(|| panic!("component {id} is listed: {body}"));
            assert_eq!(c["http_entry"], expected, "{c}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_prometheus_text_and_count_requests() {
    let t = Target::get().await;
    if !t.is_redwasm_host {
        eprintln!("skipped: {} is not the redwasm host", t.base);
        return;
    }
    // At least one component request, so the per-component series exist.
    let ns = unique("metrics");
    let miss = t
        .http
        .get(t.url(&format!("/v1/cache/{ns}/k")))
        .send()
        .await
        .unwrap();
    assert_eq!(miss.status(), StatusCode::NOT_FOUND);

    let response = t.http.get(t.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        header(&response, "content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "Prometheus text format"
    );
    let text = response.text().await.unwrap();
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample line without a value: {line}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "sample value: {line}"
        );
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        samples += 1;
    }
    assert!(samples > 0, "some samples: {text}");
    let requests: f64 = text
        .lines()
        .filter(|l| l.starts_with("redwasm_http_requests_total{component=\"cache\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(requests >= 1.0, "the cache request was counted:\n{text}");
    assert!(text.contains("redwasm_redis_commands_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_routes_get_a_404_problem() {
    let t = Target::get().await;
    if !t.is_redwasm_host {
        eprintln!("skipped: {} is not the redwasm host", t.base);
        return;
    }
    let response = t
        .http
        .get(t.url(&format!("/{}", unique("nowhere"))))
        .header("x-correlation-id", "corr-404")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "x-correlation-id").as_deref(),
        Some("corr-404")
    );
    problem(response, StatusCode::NOT_FOUND).await;
}
