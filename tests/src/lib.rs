//! End-to-end harness: a real `redis-server` on a random loopback port and the redwasm host
//! in-process on another, serving the workspace's `spin.toml`.
//!
//! # Layout
//! - [`TestHost`]: start, base URL, Redis handle, shutdown on drop.
//! - `tests/*.rs`: one file per capability (and the black-box conformance suite).

#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

pub use redwasm_testkit::RedisServer;

/// The host serving the workspace manifest against its own Redis, on `127.0.0.1:<random>`.
pub struct TestHost {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The Redis the host uses (stop/restart it to test outages).
    pub redis: RedisServer,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestHost {
    /// Starts Redis and the host with default settings.
    pub async fn start() -> TestHost {
        Self::start_with(|_| {}).await
    }

    /// Starts Redis and the host, letting `configure` adjust the options first.
    pub async fn start_with(configure: impl FnOnce(&mut redwasm::serve::AppOptions)) -> TestHost {
        Self::start_on(RedisServer::start(), configure).await
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
        let app = redwasm::serve::build_app(&options)
            .await
            .expect("build the app from spin.toml");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(redwasm::trigger::run(listener, Arc::new(app), async {
            let _ = rx.await;
        }));
        TestHost {
            base,
            redis,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
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
