//! The Cache section of the contract: `/v1/cache/{ns}/{key}` PUT/GET/DELETE, `Age` and
//! `Cache-Status`, stale-while-revalidate, single-flight leases, tag and namespace
//! invalidation, stats, problem+json for bad input, `X-Correlation-Id`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Target, header, problem, unique};

/// `/v1/cache/{ns}/{rest}`.
fn path(ns: &str, rest: &str) -> String {
    format!("/v1/cache/{ns}/{rest}")
}

impl Target {
    async fn put(&self, ns: &str, key_and_query: &str, body: &str) -> reqwest::Response {
        self.http
            .put(self.url(&path(ns, key_and_query)))
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn put_ok(&self, ns: &str, key_and_query: &str, body: &str) {
        let response = self.put(ns, key_and_query, body).await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "PUT {ns}/{key_and_query}: {}",
            response.text().await.unwrap()
        );
    }

    async fn get_cache(&self, ns: &str, key_and_query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&path(ns, key_and_query)))
            .send()
            .await
            .unwrap()
    }

    async fn stats(&self, ns: &str) -> Value {
        let response = self.get_cache(ns, "stats").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            header(&response, "content-type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
        response.json().await.unwrap()
    }

    async fn invalidate(&self, ns: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.url(&path(ns, "invalidate")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "invalidate {body}");
        response.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_get_delete_with_age_and_cache_status() {
    let t = Target::get().await;
    let ns = unique("basic");
    let put = t
        .http
        .put(t.url(&path(&ns, "42?ttl_s=60")))
        .header("content-type", "application/json")
        .body(r#"{"name":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);

    let hit = t.get_cache(&ns, "42").await;
    assert_eq!(hit.status(), StatusCode::OK);
    assert_eq!(
        header(&hit, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&hit, "cache-status").as_deref(),
        Some("redwasm; hit")
    );
    let age: u64 = header(&hit, "age")
        .expect("a hit carries Age")
        .parse()
        .expect("Age is whole seconds");
    assert!(age <= 2, "just stored: Age {age}");
    assert_eq!(hit.text().await.unwrap(), r#"{"name":"Ada"}"#);

    let delete = t.http.delete(t.url(&path(&ns, "42"))).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let miss = t.get_cache(&ns, "42").await;
    assert_eq!(miss.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&miss, "cache-status").as_deref(),
        Some("redwasm; fwd=miss")
    );
    let delete_absent = t.http.delete(t.url(&path(&ns, "42"))).send().await.unwrap();
    assert_eq!(
        delete_absent.status(),
        StatusCode::NO_CONTENT,
        "DELETE of an absent key is 204"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_are_bytes_with_their_content_type_and_keys_are_url_decoded() {
    let t = Target::get().await;
    let ns = unique("bytes");
    let value: Vec<u8> = (0..=255u8).rev().collect();
    let put = t
        .http
        .put(t.url(&path(&ns, "a%2Fb%20c")))
        .header("content-type", "image/x-test")
        .body(value.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let get = t.get_cache(&ns, "a%2Fb%20c").await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(
        header(&get, "content-type").as_deref(),
        Some("image/x-test")
    );
    assert_eq!(get.bytes().await.unwrap().to_vec(), value);

    // A 256-byte key is fine; the same key in another namespace is another entry.
    let long = "k".repeat(256);
    t.put_ok(&ns, &long, "long").await;
    let other = unique("bytes-other");
    assert_eq!(
        t.get_cache(&other, &long).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.get_cache(&ns, &long).await.text().await.unwrap(), "long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_expires_after_its_ttl() {
    let t = Target::get().await;
    let ns = unique("ttl");
    t.put_ok(&ns, "k?ttl_s=1", "short-lived").await;
    assert_eq!(t.get_cache(&ns, "k").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let miss = t.get_cache(&ns, "k").await;
    assert_eq!(miss.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&miss, "cache-status").as_deref(),
        Some("redwasm; fwd=miss")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_while_revalidate_hands_out_exactly_one_revalidate_token() {
    let t = Target::get().await;
    let ns = unique("stale");
    t.put_ok(&ns, "feed?ttl_s=1&swr_s=60", "old").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let readers = (0..12).map(|_| t.get_cache(&ns, "feed"));
    let mut tokens = Vec::new();
    for response in futures::future::join_all(readers).await {
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "stale entries are served"
        );
        assert_eq!(
            header(&response, "cache-status").as_deref(),
            Some("redwasm; hit; fwd=stale")
        );
        if let Some(token) = header(&response, "redwasm-revalidate") {
            tokens.push(token);
        }
        assert_eq!(response.text().await.unwrap(), "old");
    }
    assert_eq!(tokens.len(), 1, "exactly one caller per expiry revalidates");

    // The revalidator refreshes with its token; readers then get a fresh hit.
    let refresh = t
        .http
        .put(t.url(&path(&ns, "feed?ttl_s=60")))
        .header("if-match", tokens[0].clone())
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::NO_CONTENT);
    let fresh = t.get_cache(&ns, "feed").await;
    assert_eq!(
        header(&fresh, "cache-status").as_deref(),
        Some("redwasm; hit")
    );
    assert_eq!(fresh.text().await.unwrap(), "new");

    let stats = t.stats(&ns).await;
    assert_eq!(stats["stale_hits"], 12, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lease_requests_give_exactly_one_lease_and_waiters_get_the_fill() {
    let t = Target::get().await;
    let ns = unique("lease");
    let (lease_tx, mut lease_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let http = t.http.clone();
            let url = t.url(&path(&ns, "report?lease_ms=8000"));
            let lease_tx = lease_tx.clone();
            tokio::spawn(async move {
                let response = http.get(url).send().await.unwrap();
                let status = response.status();
                let lease = header(&response, "redwasm-lease");
                if let Some(token) = &lease {
                    let _ = lease_tx.send(token.clone());
                }
                (status, lease, response.text().await.unwrap())
            })
        })
        .collect();
    drop(lease_tx);

    let token = tokio::time::timeout(Duration::from_secs(10), lease_rx.recv())
        .await
        .expect("a lease within 10 s")
        .expect("one caller got the lease");
    // Give the other callers time to start waiting before the fill.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fill = t
        .http
        .put(t.url(&path(&ns, "report?ttl_s=60")))
        .header("if-match", token.clone())
        .body("computed")
        .send()
        .await
        .unwrap();
    assert_eq!(fill.status(), StatusCode::NO_CONTENT);

    let (mut leases, mut filled) = (0, 0);
    for result in futures::future::join_all(callers).await {
        let (status, lease, body) = result.unwrap();
        if lease.is_some() {
            leases += 1;
            assert_eq!(status, StatusCode::NOT_FOUND, "the leaseholder gets a 404");
        } else {
            assert_eq!(status, StatusCode::OK, "waiters get the fill: {body}");
            assert_eq!(body, "computed");
            filled += 1;
        }
    }
    assert_eq!((leases, filled), (1, 15));
    assert!(lease_rx.recv().await.is_none(), "no second lease");

    // The lease is spent: filling with it again fails the precondition.
    let again = t
        .http
        .put(t.url(&path(&ns, "report")))
        .header("if-match", token)
        .body("late")
        .send()
        .await
        .unwrap();
    problem(again, StatusCode::PRECONDITION_FAILED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_without_a_fill_gets_404() {
    let t = Target::get().await;
    let ns = unique("lease-timeout");
    let first = t.get_cache(&ns, "k?lease_ms=400").await;
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    assert!(
        header(&first, "redwasm-lease").is_some(),
        "the first caller leases"
    );
    let second = t.get_cache(&ns, "k?lease_ms=400").await;
    // The lease was still held (wait, then 404 + Retry-After) or had just expired (this
    // caller leases): a 404 either way, never a 200.
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    assert!(
        header(&second, "retry-after").is_some() || header(&second, "redwasm-lease").is_some(),
        "a timed-out waiter gets Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tag_invalidation_removes_tagged_entries_only() {
    let t = Target::get().await;
    let ns = unique("tags");
    t.put_ok(&ns, "a?tags=t1", "a").await;
    t.put_ok(&ns, "b?tags=t1,t2", "b").await;
    t.put_ok(&ns, "c?tags=t2", "c").await;
    t.put_ok(&ns, "d", "d").await;
    assert_eq!(t.stats(&ns).await["keys"], 4);

    assert_eq!(
        t.invalidate(&ns, json!({"tags": ["t1"]})).await,
        json!({"invalidated": 2})
    );
    for (key, expected) in [("a", 404), ("b", 404), ("c", 200), ("d", 200)] {
        let status = t.get_cache(&ns, key).await.status();
        assert_eq!(status.as_u16(), expected, "key {key}");
    }
    assert_eq!(
        t.invalidate(&ns, json!({"tags": ["t2"]})).await["invalidated"],
        1,
        "only `c` is left with t2"
    );
    assert_eq!(
        t.invalidate(&ns, json!({"tags": ["never-used"]})).await["invalidated"],
        0
    );
    assert_eq!(t.stats(&ns).await["keys"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalidate_all_empties_one_namespace_only() {
    let t = Target::get().await;
    let ns = unique("all");
    let neighbour = unique("all-neighbour");
    for key in ["x", "y", "z"] {
        t.put_ok(&ns, key, key).await;
    }
    t.put_ok(&neighbour, "x", "kept").await;
    assert_eq!(
        t.invalidate(&ns, json!({"all": true})).await,
        json!({"invalidated": 3})
    );
    for key in ["x", "y", "z"] {
        assert_eq!(t.get_cache(&ns, key).await.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(t.stats(&ns).await["keys"], 0);
    let kept = t.get_cache(&neighbour, "x").await;
    assert_eq!(
        kept.status(),
        StatusCode::OK,
        "other namespaces are untouched"
    );
    // The namespace is usable again at once.
    t.put_ok(&ns, "x", "again").await;
    assert_eq!(t.get_cache(&ns, "x").await.text().await.unwrap(), "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_count_hits_misses_and_keys() {
    let t = Target::get().await;
    let ns = unique("stats");
    let empty = t.stats(&ns).await;
    for member in ["hits", "misses", "stale_hits", "keys"] {
        assert_eq!(empty[member], 0, "`{member}` of a new namespace: {empty}");
    }
    assert_eq!(empty["hit_ratio"].as_f64(), Some(0.0), "{empty}");

    t.put_ok(&ns, "a", "1").await;
    for _ in 0..3 {
        assert_eq!(t.get_cache(&ns, "a").await.status(), StatusCode::OK);
    }
    assert_eq!(
        t.get_cache(&ns, "nope").await.status(),
        StatusCode::NOT_FOUND
    );
    let stats = t.stats(&ns).await;
    assert_eq!(stats["hits"], 3, "{stats}");
    assert_eq!(stats["misses"], 1, "{stats}");
    assert_eq!(stats["stale_hits"], 0, "{stats}");
    assert_eq!(stats["keys"], 1, "{stats}");
    let ratio = stats["hit_ratio"].as_f64().expect("hit_ratio is a number");
    assert!((ratio - 0.75).abs() < 1e-9, "hit_ratio {ratio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_problem_naming_the_field() {
    let t = Target::get().await;
    let ns = unique("bad");
    let h = &t.http;
    let u = |rest: &str| t.url(&path(&ns, rest));
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            h.put(u("k?ttl_s=abc")).body("x"),
            StatusCode::BAD_REQUEST,
            "ttl_s",
        ),
        (
            h.put(u("k?ttl_s=-1")).body("x"),
            StatusCode::BAD_REQUEST,
            "ttl_s",
        ),
        (
            h.put(u("k?swr_s=x")).body("x"),
            StatusCode::BAD_REQUEST,
            "swr_s",
        ),
        (
            h.get(u("k?lease_ms=abc")),
            StatusCode::BAD_REQUEST,
            "lease_ms",
        ),
        (h.get(u("%01bad")), StatusCode::BAD_REQUEST, "key"),
        (h.get(u(&"k".repeat(257))), StatusCode::BAD_REQUEST, "key"),
        (
            h.get(t.url("/v1/cache/%FF/k")),
            StatusCode::BAD_REQUEST,
            "ns",
        ),
        (
            h.post(u("invalidate"))
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            h.post(u("invalidate"))
                .header("content-type", "application/json")
                .body(r#"{"tags":"t"}"#),
            StatusCode::BAD_REQUEST,
            "tags",
        ),
        (
            h.post(u("invalidate"))
                .header("content-type", "text/plain")
                .body(r#"{"all":true}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
        (
            h.patch(u("k")).body("x"),
            StatusCode::METHOD_NOT_ALLOWED,
            "",
        ),
        (h.get(u("k/extra/segments")), StatusCode::NOT_FOUND, ""),
        (
            h.put(u("k"))
                .header("if-match", "not-a-current-token")
                .body("x"),
            StatusCode::PRECONDITION_FAILED,
            "",
        ),
        (
            h.put(u("big")).body(vec![b'x'; 1024 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (request, expected, field) in cases {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        let body = problem(response, expected).await;
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{url}: the detail names `{field}`: {body}"
        );
    }
    // Nothing of the rejected writes was stored.
    assert_eq!(t.stats(&ns).await["keys"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correlation_id_is_echoed_or_generated() {
    let t = Target::get().await;
    let ns = unique("corr");
    let with_id = |request: reqwest::RequestBuilder, id: &str| {
        request.header("x-correlation-id", id.to_string())
    };

    let put = with_id(t.http.put(t.url(&path(&ns, "k"))).body("v"), "corr-put-1")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&put, "x-correlation-id").as_deref(),
        Some("corr-put-1")
    );

    for (request, id) in [
        (t.http.get(t.url(&path(&ns, "k"))), "corr-hit"),
        (t.http.get(t.url(&path(&ns, "missing"))), "corr-miss"),
        (t.http.get(t.url(&path(&ns, "k?lease_ms=x"))), "corr-400"),
        (t.http.get(t.url(&path(&ns, "stats"))), "corr-stats"),
    ] {
        let response = with_id(request, id).send().await.unwrap();
        assert_eq!(
            header(&response, "x-correlation-id").as_deref(),
            Some(id),
            "{} echoes the id",
            response.url()
        );
    }

    // Without one, or with an invalid one (over 128 characters), a new one is generated.
    let generated = t.get_cache(&ns, "k").await;
    let id = header(&generated, "x-correlation-id").expect("always a correlation id");
    assert!(
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()),
        "generated id `{id}`"
    );
    let too_long = "x".repeat(129);
    let replaced = with_id(t.http.get(t.url(&path(&ns, "k"))), &too_long)
        .send()
        .await
        .unwrap();
    let id = header(&replaced, "x-correlation-id").expect("always a correlation id");
    assert_ne!(id, too_long, "an over-long id is replaced");
    assert!(!id.is_empty() && id.len() <= 128);
}
