//! End-to-end harness: a real `redis-server` on a random loopback port and the redwasm host
//! in-process on another, serving the workspace's `spin.toml`.
//!
//! # Layout
//! - [`TestHost`]: start, base URL, Redis handle, shutdown on drop.
//! - `tests/*.rs`: one file per capability (and the black-box conformance suite).

#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

pub use redwasm_testkit::RedisServer;

/// Where `tests/build.rs` put the test-only components (`redwasm_probe.wasm`, ...).
pub const TEST_COMPONENTS_DIR: &str = env!("REDWASM_TEST_COMPONENTS_DIR");

/// The host serving the workspace manifest against its own Redis, on `127.0.0.1:<random>`.
pub struct TestHost {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The Redis the host uses (stop/restart it to test outages).
    pub redis: RedisServer,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    workers: Vec<tokio::task::JoinHandle<redwasm::trigger::queue::WorkerReport>>,
}

impl TestHost {
    /// Starts Redis and the host with default settings.
    pub async fn start() -> TestHost {
        Self::start_with(|_| {}).await
    }

    /// Starts Redis and the host, letting `configure` adjust the options first. Redis runs
    /// with the settings `redwasm serve` gives a server it owns ([`hardened_redis`]).
    pub async fn start_with(configure: impl FnOnce(&mut redwasm::serve::AppOptions)) -> TestHost {
        Self::start_on(hardened_redis(), configure).await
    }

    /// Starts the host on an already running `redis` (e.g. one started with `--requirepass`
    /// or TLS). The options start with `redis_url = redis.url()`; `configure` may replace it
    /// (a password, `rediss://`, another port) and adjust anything else.
    pub async fn start_on(
        redis: RedisServer,
        configure: impl FnOnce(&mut redwasm::serve::AppOptions),
    ) -> TestHost {
        let mut options = redwasm::serve::AppOptions::new(workspace_manifest());
        options.redis_url = Some(redis.url());
        configure(&mut options);
        let built = redwasm::serve::build(&options)
            .await
            .expect("build the app from the manifest");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The HTTP trigger and every queue trigger stop on the same signal, as in `serve`.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = redwasm::serve::spawn_workers(built.workers, &stopped);
        let server = tokio::spawn(redwasm::trigger::run(
            listener,
            Arc::new(built.http),
            async move {
                let _ = rx.await;
                let _ = stop.send(true);
            },
        ));
        TestHost {
            base,
            redis,
            shutdown: Some(tx),
            server: Some(server),
            workers,
        }
    }

    /// Starts Redis and the host on the manifest `text` (written to a temporary directory,
    /// which the caller keeps alive, and where an owned Redis would keep its data).
    pub async fn start_manifest(text: &str) -> (TestHost, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("spin.toml");
        std::fs::write(&path, text).expect("write the manifest");
        let data = dir.path().join("redis");
        let host = Self::start_on(RedisServer::start(), |options| {
            options.manifest = path;
            options.redis_data_dir = data;
        })
        .await;
        (host, dir)
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` answered 200: its body. Panics otherwise (for the host's own endpoints).
    pub async fn get_ok(&self, path: &str) -> String {
        let response = client().get(self.url(path)).send().await.expect(path);
        let status = response.status();
        let text = response.text().await.expect(path);
        assert_eq!(status, reqwest::StatusCode::OK, "GET {path}: {text}");
        text
    }

    /// A connection to the host's Redis with full rights, to look behind the sandbox.
    pub async fn raw_redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server")
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> String {
        self.get_ok("/metrics").await
    }

    /// `GET /health` (JSON).
    pub async fn health(&self) -> serde_json::Value {
        let text = self.get_ok("/health").await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("/health: {e}: {text}"))
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop_with_reports().await.map(drop)
    }

    /// Stops the HTTP trigger and every queue trigger (which drain), waits for them, and
    /// returns each queue trigger's report. Redis keeps running until the handle drops.
    pub async fn stop_with_reports(
        &mut self,
    ) -> anyhow::Result<Vec<redwasm::trigger::queue::WorkerReport>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await??;
        }
        let mut reports = Vec::new();
        for worker in std::mem::take(&mut self.workers) {
            reports.push(worker.await?);
        }
        Ok(reports)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A redis-server started as `redwasm serve` starts the one it owns: with the sandbox's
/// hardening (`busy-reply-threshold`, `proto-max-bulk-len`, output-buffer limit, ...).
pub fn hardened_redis() -> RedisServer {
    let args = redwasm::embedded_redis::Hardening::default().args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    RedisServer::start_with_args(&args)
}

/// The value of one unlabelled series in Prometheus text, e.g.
/// `redwasm_redis_denied_total`. Panics when it is absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("`{series}`: {e}"))
}

/// The workspace's `spin.toml`.
pub fn workspace_manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("spin.toml")
}

/// A reusable HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("http client")
}

/// Spin's conformance suite: `$SPIN_CONFORMANCE_DIR`, else `../shared/conformance/spin` beside
/// the repository (where the sessions' shared files live), else
/// `/work/shared/conformance/spin`.
pub fn spin_conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPIN_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    let beside =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/spin");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared/conformance/spin")
}

/// A local server: `/` and `/echo` answer with the request body (Spin's `http-echo` service),
/// `/hello` (and any other path) with `Hello, world!`, `/slow` waits 5 s before answering, `/huge` sends
/// 4 MiB, `/redirect?to=URL` answers 302 to URL. Counts TCP connections and requests.
pub struct Upstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Requests served.
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts it on a random loopback port.
    pub async fn start() -> Upstream {
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
                                let body = body.collect().await?.to_bytes();
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
                                        "/" | "/echo" => hyper::Response::new(Full::new(body)),
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

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One parsed server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `id:`.
    pub id: String,
    /// `event:`.
    pub event: String,
    /// `data:` parsed as JSON.
    pub data: serde_json::Value,
}

/// An open event stream, read event by event.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// `GET /v1/progress/{id}/events`.
    pub async fn open(host: &TestHost, id: &str, last_event_id: Option<&str>) -> SseStream {
        Self::open_path(host, &format!("/v1/progress/{id}/events"), last_event_id).await
    }

    /// `GET path` as an event stream (200, `text/event-stream`), resuming after
    /// `last_event_id` when given.
    pub async fn open_path(host: &TestHost, path: &str, last_event_id: Option<&str>) -> SseStream {
        let mut request = reqwest::Client::new().get(host.url(path));
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        assert!(
            !response.headers().contains_key("redwasm-sse-follow"),
            "the fan-out protocol headers never reach the client"
        );
        SseStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments and `retry:` skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    return Some(SseEvent {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Asserts the stream ends (no further event) soon.
    pub async fn assert_ends(mut self) {
        let next = tokio::time::timeout(Duration::from_secs(10), self.next())
            .await
            .expect("the stream ends");
        assert!(next.is_none(), "expected the end, got {next:?}");
    }
}
