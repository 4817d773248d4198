//! What every conformance module uses: the server under test, unique names, problem checks.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use redwasm_tests::TestHost;
use reqwest::StatusCode;
use serde_json::Value;

/// The server under test, for one test.
pub(crate) struct Target {
    /// `http://host:port`, no trailing slash.
    pub(crate) base: String,
    /// A client for it.
    pub(crate) http: reqwest::Client,
    /// Whether the target is the redwasm host (so `/health` and `/metrics` exist).
    pub(crate) is_redwasm_host: bool,
    /// The in-process host, when no `REDWASM_BASE_URL` was given (stopped on drop).
    _local: Option<TestHost>,
}

impl Target {
    /// `REDWASM_BASE_URL` if set, else a fresh in-process host.
    pub(crate) async fn get() -> Target {
        let http = redwasm_tests::client();
        let (base, local) = match std::env::var("REDWASM_BASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                (url.trim().trim_end_matches('/').to_string(), None)
            }
            _ => {
                let host = TestHost::start_with(|options| {
                    options.wasi_http_only = crate::WASI_HTTP_ONLY;
                })
                .await;
                (host.base.clone(), Some(host))
            }
        };
        let is_redwasm_host = match std::env::var("REDWASM_CONFORMANCE_HOST").as_deref() {
            Ok("1" | "true" | "yes") => true,
            Ok("0" | "false" | "no") => false,
            // The in-process host is the redwasm host by construction: its host-only checks
            // must run (a failed detection would otherwise let them pass unchecked).
            _ if local.is_some() => true,
            _ => detect_redwasm_host(&http, &base).await,
        };
        Target {
            base,
            http,
            is_redwasm_host,
            _local: local,
        }
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// `GET /health` answers 200 with a JSON object that lists `components`.
async fn detect_redwasm_host(http: &reqwest::Client, base: &str) -> bool {
    let Ok(response) = http.get(format!("{base}/health")).send().await else {
        return false;
    };
    if response.status() != StatusCode::OK {
        return false;
    }
    match response.json::<Value>().await {
        Ok(body) => body["components"].is_array(),
        Err(_) => false,
    }
}

/// A name no other test (or earlier run against the same server) uses: `<prefix>-<random>`.
pub(crate) fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let random = RandomState::new().hash_one((n, nanos, std::process::id()));
    format!("{prefix}-{random:016x}")
}

/// Asserts an RFC 9457 problem with `status` (`application/problem+json`,
/// `{"type","title","status","detail"}`); returns the body.
pub(crate) async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    let url = response.url().to_string();
    let actual = response.status();
    let content_type = header(&response, "content-type").unwrap_or_default();
    let text = response.text().await.unwrap();
    assert_eq!(
        actual, status,
        "{url}: expected {status}, got {actual}: {text}"
    );
    assert_eq!(
        content_type, "application/problem+json",
        "{url}: a {status} must carry problem+json"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: problem body is not JSON ({e}): {text}"));
    assert_eq!(
        body["status"],
        status.as_u16(),
        "{url}: problem status: {body}"
    );
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].is_string(),
            "{url}: problem `{member}`: {body}"
        );
    }
    body
}

/// A response header as text.
pub(crate) fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("header is text").to_string())
}
