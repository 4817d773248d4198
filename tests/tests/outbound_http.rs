//! Outbound HTTP from a component through the host, against local servers only: what the
//! allow-list lets out, connection reuse, and the faults a guest must not be able to turn into
//! harm (a denied host, a redirect to one, a slow or huge response). The guest is Spin's
//! conformance component `outbound-wasi-http-v0.2.0`: it GETs the URL in the `url` request
//! header and answers with the response body.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redwasm_tests::{TestHost, Upstream, spin_conformance_dir};

/// The host serving the conformance component at `/` with `allowed_outbound_hosts` and
/// extra `[component.test.tool.redwasm]` settings.
async fn host(allowed: &[String], tool: &str) -> (TestHost, tempfile::TempDir) {
    host_with(allowed, tool, "").await
}

/// [`host`], with `app_tool` as the `[application.tool.redwasm]` body.
async fn host_with(
    allowed: &[String],
    tool: &str,
    app_tool: &str,
) -> (TestHost, tempfile::TempDir) {
    let source = spin_conformance_dir().join("components/outbound-wasi-http-v0.2.0.wasm");
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "outbound"

[application.tool.redwasm]
{app_tool}

[[trigger.http]]
route = "/"
component = "test"

[component.test]
source = {source:?}
allowed_outbound_hosts = [{allowed}]

[component.test.tool.redwasm]
{tool}
"#,
        source = source.display().to_string(),
        allowed = allowed.join(", "),
    );
    TestHost::start_manifest(&manifest).await
}

/// GETs `url` through the guest; returns (status, body).
async fn fetch(host: &TestHost, url: &str) -> (u16, String) {
    let (status, body) = fetch_raw(host, url).await;
    (status, body.expect("read the guest's response body"))
}

/// [`fetch`], with the body read's failure (the guest's stream cut short) as `Err`.
async fn fetch_raw(host: &TestHost, url: &str) -> (u16, Result<String, reqwest::Error>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(host.url("/"))
        .header("url", url)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_requests_reuse_one_pooled_connection() {
    let upstream = Upstream::start().await;
    let (host, _dir) = host(&[format!("http://127.0.0.1:{}", upstream.port)], "").await;
    for _ in 0..20 {
        assert_eq!(
            fetch(&host, &upstream.url("/hello")).await,
            (200, "Hello, world!".to_string())
        );
    }
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 20);
    assert_eq!(
        upstream.connections.load(Ordering::Relaxed),
        1,
        "twenty sequential requests should share one connection"
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_host_never_reaches_the_network() {
    let allowed = Upstream::start().await;
    let other = Upstream::start().await;
    let (host, _dir) = host(&[format!("http://127.0.0.1:{}", allowed.port)], "").await;
    // Another port, another scheme, another spelling of the host: all denied.
    for url in [
        other.url("/hello"),
        format!("https://127.0.0.1:{}/hello", allowed.port),
        format!("http://localhost:{}/hello", allowed.port),
    ] {
        let (status, body) = fetch(&host, &url).await;
        assert_eq!(status, 500, "{url}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{url}: {body}");
    }
    assert_eq!(other.connections.load(Ordering::Relaxed), 0);
    assert_eq!(allowed.connections.load(Ordering::Relaxed), 0);
    // The host is unharmed and still serves the allowed one.
    assert_eq!(fetch(&host, &allowed.url("/hello")).await.0, 200);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_denied_host_is_not_followed() {
    let allowed = Upstream::start().await;
    let denied = Upstream::start().await;
    let (host, _dir) = host(&[format!("http://127.0.0.1:{}", allowed.port)], "").await;
    let target = denied.url("/hello");
    let (status, body) = fetch(&host, &allowed.url(&format!("/redirect?to={target}"))).await;
    assert_eq!(
        (status, body.as_str()),
        (302, "moved"),
        "the guest sees the redirect itself"
    );
    assert_eq!(denied.connections.load(Ordering::Relaxed), 0);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_huge_responses_fail_within_the_host_caps() {
    let upstream = Upstream::start().await;
    let (host, _dir) = host(
        &[format!("http://127.0.0.1:{}", upstream.port)],
        "outbound_http_timeout_ms = 300
max_outbound_response_bytes = 1048576",
    )
    .await;
    let started = std::time::Instant::now();
    let (status, body) = fetch(&host, &upstream.url("/slow")).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("ConnectionReadTimeout"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the cap, not the server, ended it"
    );

    // The guest streams what it reads; at the cap its read fails and the stream is cut.
    match fetch_raw(&host, &upstream.url("/huge")).await {
        (200, Ok(body)) => panic!("a 4 MiB body passed a 1 MiB cap ({} bytes)", body.len()),
        (_, Ok(body)) => assert!(body.len() <= 1024 * 1024),
        (_, Err(cut)) => assert!(cut.is_decode() || cut.is_body(), "{cut:?}"),
    }

    assert_eq!(fetch(&host, &upstream.url("/hello")).await.0, 200);
    host.stop().await.unwrap();
}

/// The probe at `/probe/...` with `allowed_outbound_hosts`.
async fn probe_host(allowed: &str) -> (TestHost, tempfile::TempDir) {
    let source = concat!(env!("REDWASM_TEST_COMPONENTS_DIR"), "/redwasm_probe.wasm");
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"self\"\n\n\
         [[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\n\
         [component.probe]\nsource = {source:?}\nallowed_outbound_hosts = [{allowed}]\n"
    );
    TestHost::start_manifest(&manifest).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_requests_reach_the_apps_own_routes_in_process() {
    let (host, _dir) = probe_host("\"http://self\"").await;
    let response = reqwest::get(host.url("/probe/fetch?url=http://self/probe/count&n=3"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["statuses"], serde_json::json!([200, 200, 200]));

    // A component calling itself forever is stopped by the host, which stays up.
    let started = std::time::Instant::now();
    let response = reqwest::get(host.url("/probe/loop")).await.unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("LoopDetected"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        reqwest::get(host.url("/probe/count"))
            .await
            .unwrap()
            .status(),
        200
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_requests_need_http_self_in_the_allow_list() {
    let upstream = Upstream::start().await;
    let (host, _dir) = probe_host(&format!("\"http://127.0.0.1:{}\"", upstream.port)).await;
    let response = reqwest::get(host.url("/probe/fetch?url=http://self/probe/count"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("HttpRequestDenied"), "{body}");
    host.stop().await.unwrap();
}

/// `redwasm::embed` gets the same capability: a worker component run by the embedding API
/// reaches the hosts the embedding allows, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_components_get_outbound_http_under_the_allow_list() {
    use redwasm::embed::{AttemptOutcome, JobAttempt, JobHandler, Redwasm};

    let upstream = Upstream::start().await;
    let redis = redwasm_tests::RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        .with_allowed_outbound_hosts([format!("http://127.0.0.1:{}", upstream.port)]);
    let worker = redwasm
        .worker_component(
            "probe",
            concat!(env!("REDWASM_TEST_COMPONENTS_DIR"), "/redwasm_probe.wasm"),
            Default::default(),
        )
        .await
        .unwrap();
    let attempt = |url: String| JobAttempt {
        id: "1".into(),
        queue: "q".into(),
        job_type: "fetch".into(),
        payload: serde_json::json!({ "url": url }),
        attempt: 1,
        max_attempts: 1,
        correlation_id: None,
        timeout: Duration::from_secs(5),
    };
    match worker.handle(attempt(upstream.url("/hello"))).await {
        AttemptOutcome::Completed(Some(result)) => {
            let result = match result {
                serde_json::Value::String(text) => serde_json::from_str(&text).unwrap(),
                other => other,
            };
            assert_eq!(result["body"], "Hello, world!", "{result}");
        }
        other => panic!("expected a completed fetch, got {other:?}"),
    }
    let denied = format!("http://localhost:{}/hello", upstream.port);
    match worker.handle(attempt(denied)).await {
        AttemptOutcome::Failed(error) => assert!(error.contains("HttpRequestDenied"), "{error}"),
        other => panic!("expected a denied fetch, got {other:?}"),
    }
    assert_eq!(upstream.requests.load(Ordering::Relaxed), 1);
}

/// A host name the allow-list admits but that resolves into `blocked_networks` is refused
/// after DNS, before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_into_a_blocked_network_is_refused() {
    let upstream = Upstream::start().await;
    let (host, _dir) = host_with(
        &[format!("http://localhost:{}", upstream.port)],
        "",
        "blocked_networks = [\"127.0.0.0/8\", \"::1\"]",
    )
    .await;
    let (status, body) = fetch(&host, &format!("http://localhost:{}/hello", upstream.port)).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    assert_eq!(upstream.connections.load(Ordering::Relaxed), 0);
    host.stop().await.unwrap();
}
