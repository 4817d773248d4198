//! Redis with a password, an ACL user, and TLS (`rediss://`), end to end: the host serving
//! the workspace's `spin.toml` (the cache component, whose `allowed_outbound_hosts` is
//! `{{ redis_address }}`, i.e. the full URL with its user info) over HTTP.
//!
//! - `redis://:password@host:port` and `redis://user:password@host:port` work through the
//!   whole path (`/health`, PUT and GET through the cache component), the data really lands
//!   in that Redis, and the password shows up in neither `/health` nor `/metrics`;
//! - a wrong password makes `/health` 503 and the cache answer 503, never 500;
//! - `rediss://` against a redis-server with `--tls-port` and a throwaway CA (generated here
//!   with rcgen) works when the CA is trusted (`RedisPoolConfig::tls_ca_cert`, which
//!   `REDIS_CA_CERT` sets), and fails closed without it, or with plain `redis://` to the TLS
//!   port.

use std::path::{Path, PathBuf};

use redwasm_tests::{RedisServer, TestHost, client};
use reqwest::StatusCode;
use serde_json::Value;

const PASSWORD: &str = "s3cr3t-Pa55";

/// PUTs and GETs a cache entry through HTTP; panics unless both work.
async fn cache_round_trip(host: &TestHost, ns: &str) {
    let http = client();
    let put = http
        .put(host.url(&format!("/v1/cache/{ns}/k?ttl_s=60")))
        .header("content-type", "text/plain")
        .body("hello over auth")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        StatusCode::NO_CONTENT,
        "{}",
        put.text().await.unwrap()
    );
    let get = http
        .get(host.url(&format!("/v1/cache/{ns}/k")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.text().await.unwrap(), "hello over auth");
}

/// `/health` as (status, body).
async fn health(host: &TestHost) -> (StatusCode, Value) {
    let response = client().get(host.url("/health")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn metrics(host: &TestHost) -> String {
    host.metrics().await
}

/// An authenticated redis-rs connection on the server's plain port.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Keys the cache component wrote (it lives under the `cache:` sandbox prefix).
async fn cache_keys(url: &str) -> Vec<String> {
    let mut conn = raw(url).await;
    redis::cmd("KEYS")
        .arg("cache:*")
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_in_the_url_works_end_to_end() {
    let redis = RedisServer::start_with_args(&["--requirepass", PASSWORD]);
    let port = redis.port();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let host = TestHost::start_on(redis, |o| o.redis_url = Some(url.clone())).await;

    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"]["connected"], true, "{body}");
    cache_round_trip(&host, "auth").await;
    assert!(
        !cache_keys(&url).await.is_empty(),
        "the entry is in the password-protected Redis"
    );

    // An unauthenticated client is refused: the server really requires the password.
    let mut anonymous = raw(&host.redis.url()).await;
    let refused: redis::RedisResult<i64> = redis::cmd("DBSIZE").query_async(&mut anonymous).await;
    let error = refused.expect_err("no password, no access");
    assert!(error.to_string().contains("NOAUTH"), "{error}");

    let exposed = format!("{}\n{}", body, metrics(&host).await);
    assert!(
        !exposed.contains(PASSWORD),
        "the password must not leak into /health or /metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acl_user_and_password_in_the_url_work_end_to_end() {
    let redis =
        RedisServer::start_with_args(&["--user", "app", "on", ">app-pw", "~*", "&*", "+@all"]);
    let port = redis.port();
    let url = format!("redis://app:app-pw@127.0.0.1:{port}");
    let host = TestHost::start_on(redis, |o| o.redis_url = Some(url.clone())).await;

    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cache_round_trip(&host, "acl").await;
    assert!(!cache_keys(&url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_is_unhealthy_and_the_cache_answers_503() {
    let redis = RedisServer::start_with_args(&["--requirepass", PASSWORD]);
    let port = redis.port();
    let url = format!("redis://:not-the-password@127.0.0.1:{port}");
    let host = TestHost::start_on(redis, |o| o.redis_url = Some(url)).await;

    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["redis"]["connected"], false, "{body}");

    let response = client()
        .get(host.url("/v1/cache/auth/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers().contains_key("retry-after"),
        "503 carries Retry-After"
    );
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("not-the-password"),
        "the password must not leak into responses: {text}"
    );
}

/// A throwaway CA and a server certificate for `localhost` / `127.0.0.1`, as PEM files in
/// `dir`: (ca.pem, server.pem, server.key).
fn throwaway_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "redwasm test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, server_cert.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

/// A redis-server with a password, its plain port for the test's own checks, and a TLS port
/// with a certificate from a throwaway CA. Returns (server, TLS port, CA path, temp dir).
fn tls_redis() -> (RedisServer, u16, PathBuf, tempfile::TempDir) {
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = throwaway_pki(pki.path());
    let tls_port = redwasm_testkit::free_port().to_string();
    let (ca_s, cert_s, key_s) = (
        ca.to_str().unwrap().to_string(),
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    );
    let redis = RedisServer::start_with_args(&[
        "--requirepass",
        PASSWORD,
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert_s,
        "--tls-key-file",
        &key_s,
        "--tls-ca-cert-file",
        &ca_s,
        "--tls-auth-clients",
        "no",
    ]);
    (redis, tls_port.parse().unwrap(), ca, pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_with_a_trusted_private_ca_works_end_to_end() {
    let (redis, tls_port, ca, _pki) = tls_redis();
    let plain = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port());
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{tls_port}");
    let host = TestHost::start_on(redis, |o| {
        o.redis_url = Some(url.clone());
        o.redis_pool.tls_ca_cert = Some(ca.clone());
    })
    .await;

    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"]["connected"], true, "{body}");
    cache_round_trip(&host, "tls").await;
    assert!(
        !cache_keys(&plain).await.is_empty(),
        "the entry went over TLS into this Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_by_host_name_works_too() {
    let (redis, tls_port, ca, _pki) = tls_redis();
    let url = format!("rediss://:{PASSWORD}@localhost:{tls_port}");
    let host = TestHost::start_on(redis, |o| {
        o.redis_url = Some(url.clone());
        o.redis_pool.tls_ca_cert = Some(ca.clone());
    })
    .await;
    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cache_round_trip(&host, "tls-name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_without_trusting_the_ca_fails_closed() {
    let (redis, tls_port, _ca, _pki) = tls_redis();
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{tls_port}");
    // The system roots do not know the throwaway CA: the handshake must fail.
    let host = TestHost::start_on(redis, |o| {
        o.redis_url = Some(url.clone());
        o.redis_pool.tls_ca_cert = None;
    })
    .await;
    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["redis"]["connected"], false, "{body}");
    let response = client()
        .get(host.url("/v1/cache/tls/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_redis_to_the_tls_port_fails() {
    let (redis, tls_port, ca, _pki) = tls_redis();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{tls_port}");
    let host = TestHost::start_on(redis, |o| {
        o.redis_url = Some(url.clone());
        o.redis_pool.tls_ca_cert = Some(ca.clone());
    })
    .await;
    let (status, body) = health(&host).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}
