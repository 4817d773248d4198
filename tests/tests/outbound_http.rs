//! Outbound HTTP from a component through the host, against local servers only: what the
//! allow-list lets out, connection reuse, and the faults a guest must not be able to turn into
//! harm (a denied host, a redirect to one, a slow or huge response). The guest is Spin's
//! conformance component `outbound-wasi-http-v0.2.0`: it GETs the URL in the `url` request
//! header and answers with the response body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use redwasm_tests::{RedisServer, TestHost, spin_conformance_dir};

/// A local server: `/hello` answers `Hello, world!`, `/slow` waits 5 s before answering,
/// `/huge` sends 4 MiB, `/redirect?to=URL` answers 302 to URL. Counts TCP connections and
/// requests.
struct Upstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (conns, reqs) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::Relaxed);
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            reqs.fetch_add(1, Ordering::Relaxed);
                            async move {
                                let (parts, body) = request.into_parts();
                                let _ = body.collect().await;
                                let path = parts.uri.path().to_string();
                                let query = parts.uri.query().unwrap_or("").to_string();
                                let response =
                                    match path.as_str() {
                                        "/slow" => {
                                            tokio::time::sleep(Duration::from_secs(5)).await;
                                            hyper::Response::new(Full::new(Bytes::from("late")))
                                        }
                                        "/huge" => hyper::Response::new(Full::new(Bytes::from(
                                            vec![b'x'; 4 * 1024 * 1024],
                                        ))),
                                        "/redirect" => hyper::Response::builder()
                                            .status(302)
                                            .header("location", query.trim_start_matches("to="))
                                            .body(Full::new(Bytes::from("moved")))
                                            .unwrap(),
                                        _ => hyper::Response::new(Full::new(Bytes::from(
                                            "Hello, world!",
                                        ))),
                                    };
                                Ok::<_, hyper::Error>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            port,
            connections,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The host serving the conformance component at `/` with `allowed_outbound_hosts` and
/// extra `[component.test.tool.redwasm]` settings.
async fn host(allowed: &[String], tool: &str) -> (TestHost, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let source = spin_conformance_dir().join("components/outbound-wasi-http-v0.2.0.wasm");
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "outbound"

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
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let data = dir.path().join("redis");
    let host = TestHost::start_on(RedisServer::start(), |options| {
        options.manifest = path;
        options.redis_data_dir = data;
    })
    .await;
    (host, dir)
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
