//! Rate limits over HTTP through the in-process host, against a real redis-server: routes,
//! the draft-11 `RateLimit-Policy` / `RateLimit` headers (parsed), 429 + `Retry-After`,
//! bypass, named vs inline policies, every bad input, Redis outages, and concurrency.

use std::sync::Arc;

use redwasm_tests::{TestHost, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One item of a Structured Fields list as the draft uses it: `"name";k=v;k=v` with integer
/// parameters.
#[derive(Debug, PartialEq)]
struct Item {
    name: String,
    params: Vec<(String, u64)>,
}

impl Item {
    fn param(&self, key: &str) -> u64 {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} in {self:?}"))
            .1
    }
}

/// Parses a List of Items whose bare items are sf-strings (strictly: quoted names with no
/// escapes, lower-case keys, integer values, `, ` or `,` separators).
fn parse_list(header: &str) -> Vec<Item> {
    header
        .split(',')
        .map(|member| {
            let member = member.trim();
            let mut parts = member.split(';');
            let name = parts.next().unwrap();
            assert!(
                name.len() >= 2 && name.starts_with('"') && name.ends_with('"'),
                "sf-string: {name}"
            );
            let name = &name[1..name.len() - 1];
            assert!(!name.contains('"') && !name.contains('\\'), "{name}");
            let params = parts
                .map(|param| {
                    let (key, value) = param.split_once('=').expect("key=value");
                    assert!(key.chars().all(|c| c.is_ascii_lowercase()), "key {key}");
                    (
                        key.to_string(),
                        value.parse::<u64>().expect("integer value"),
                    )
                })
                .collect();
            Item {
                name: name.to_string(),
                params,
            }
        })
        .collect()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .to_string()
}

async fn check(host: &TestHost, body: Value) -> reqwest::Response {
    client()
        .post(host.url("/v1/ratelimit/check"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Asserts a problem+json response with `status` (and `field`, if given); returns the body.
async fn problem(response: reqwest::Response, status: StatusCode, field: Option<&str>) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-correlation-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_named_policies_with_parsed_headers() {
    let host = TestHost::start().await;
    let response = check(
        &host,
        json!({"key":"user:42","cost":1200,"policies":["per-second","per-day","daily-tokens"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    let policy = parse_list(&header(&response, "ratelimit-policy"));
    let state = parse_list(&header(&response, "ratelimit"));
    assert!(response.headers().get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["allowed"], true);
    assert_eq!(body["retry_after_ms"], 0);
    let names: Vec<&str> = policy.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["per-second", "per-day", "daily-tokens"]);
    assert_eq!(
        policy
            .iter()
            .map(|i| (i.param("q"), i.param("w")))
            .collect::<Vec<_>>(),
        [(10, 1), (1000, 86_400), (50_000, 86_400)]
    );
    let remaining: Vec<u64> = state.iter().map(|i| i.param("r")).collect();
    assert_eq!(
        remaining,
        [9, 999, 48_800],
        "requests count 1, tokens count the cost"
    );
    for (i, item) in state.iter().enumerate() {
        let member = &body["policies"][i];
        assert_eq!(member["name"], item.name.as_str());
        assert_eq!(member["remaining"], item.param("r"));
        let reset_ms = member["reset_ms"].as_u64().unwrap();
        assert_eq!(
            item.param("t"),
            reset_ms.div_ceil(1000),
            "t = reset rounded up"
        );
        assert!(reset_ms > 0);
    }
    assert_eq!(body["policies"][2]["limit"], 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denied_checks_are_429_with_retry_after_and_consume_nothing() {
    let host = TestHost::start().await;
    let small = json!({"name":"small","limit":2,"window_ms":60000,"algorithm":"sliding-window","unit":"request"});
    let budget = json!({"name":"budget","limit":100,"window_ms":60000,"algorithm":"fixed-window"});
    for _ in 0..2 {
        let ok = check(
            &host,
            json!({"key":"k","cost":1,"policies":[small, budget]}),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let denied = check(
        &host,
        json!({"key":"k","cost":5,"policies":[small, budget]}),
    )
    .await;
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&denied, "content-type"), "application/json");
    let retry_after: u64 = header(&denied, "retry-after").parse().unwrap();
    let state = parse_list(&header(&denied, "ratelimit"));
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["allowed"], false);
    let retry_ms = body["retry_after_ms"].as_u64().unwrap();
    assert!(retry_ms > 55_000 && retry_ms <= 60_000, "{retry_ms}");
    assert_eq!(retry_after, retry_ms.div_ceil(1000));
    assert_eq!(state[0].param("r"), 0);
    assert_eq!(
        state[1].param("r"),
        98,
        "the budget was not charged for the denied check"
    );
    assert_eq!(body["policies"][1]["remaining"], 98);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_and_delete_a_named_policys_state() {
    let host = TestHost::start().await;
    let http = client();
    let get = || async {
        http.get(host.url("/v1/ratelimit/per-second/user%3A7"))
            .send()
            .await
            .unwrap()
    };
    let fresh = get().await;
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(
        parse_list(&header(&fresh, "ratelimit-policy"))[0].param("q"),
        10
    );
    let body: Value = fresh.json().await.unwrap();
    assert_eq!(
        body,
        json!({"name":"per-second","limit":10,"remaining":10,"reset_ms":0})
    );

    for _ in 0..3 {
        let r = check(&host, json!({"key":"user:7","policies":["per-second"]})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    for _ in 0..2 {
        let peeked = get().await;
        assert_eq!(parse_list(&header(&peeked, "ratelimit"))[0].param("r"), 7);
        let body: Value = peeked.json().await.unwrap();
        assert_eq!(body["remaining"], 7, "GET does not consume");
    }
    let deleted = http
        .delete(host.url("/v1/ratelimit/per-second/user:7"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(deleted.headers().contains_key("x-correlation-id"));
    let body: Value = get().await.json().await.unwrap();
    assert_eq!(body["remaining"], 10);

    let unknown = http
        .get(host.url("/v1/ratelimit/nope/user:7"))
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND, None).await;
    let unknown = http
        .delete(host.url("/v1/ratelimit/nope/user:7"))
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND, None).await;
    let put = http
        .put(host.url("/v1/ratelimit/per-second/user:7"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&put, "allow"), "GET, DELETE");
    problem(put, StatusCode::METHOD_NOT_ALLOWED, None).await;
    let get_check = http
        .get(host.url("/v1/ratelimit/check"))
        .send()
        .await
        .unwrap();
    problem(get_check, StatusCode::METHOD_NOT_ALLOWED, None).await;
    for path in ["/v1/ratelimit/a/b/c", "/v1/ratelimit/"] {
        let r = http.get(host.url(path)).send().await.unwrap();
        problem(r, StatusCode::NOT_FOUND, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bypass_keys_and_configured_policies_come_from_variables() {
    let host = TestHost::start_with(|options| {
        options.variable_overrides.insert(
            "ratelimit_policies".into(),
            r#"[{"name":"strict","limit":1,"window_ms":60000,"algorithm":"fixed-window"}]"#.into(),
        );
        options.variable_overrides.insert(
            "ratelimit_bypass_keys".into(),
            r#"["admin:1","ops"]"#.into(),
        );
    })
    .await;
    for _ in 0..5 {
        let r = check(&host, json!({"key":"admin:1","policies":["strict"]})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["bypassed"], true);
    }
    assert_eq!(
        check(&host, json!({"key":"user:1","policies":["strict"]}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        check(&host, json!({"key":"user:1","policies":["strict"]}))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The same definition inline is the same counter; another name is another counter.
    let same = json!({"name":"strict","limit":1,"window_ms":60000,"algorithm":"fixed-window"});
    assert_eq!(
        check(&host, json!({"key":"user:1","policies":[same]}))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = json!({"name":"other","limit":1,"window_ms":60000,"algorithm":"fixed-window"});
    assert_eq!(
        check(&host, json!({"key":"user:1","policies":[other]}))
            .await
            .status(),
        StatusCode::OK
    );
    // The defaults from spin.toml were replaced.
    let r = check(&host, json!({"key":"user:1","policies":["per-second"]})).await;
    let body = problem(r, StatusCode::BAD_REQUEST, Some("policies")).await;
    assert!(body["detail"].as_str().unwrap().contains("per-second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_configuration_is_a_500_only_where_it_is_used() {
    let host = TestHost::start_with(|options| {
        options
            .variable_overrides
            .insert("ratelimit_policies".into(), "[{\"name\":\"x\"}]".into());
    })
    .await;
    let r = check(&host, json!({"key":"k","policies":["x"]})).await;
    let body = problem(r, StatusCode::INTERNAL_SERVER_ERROR, None).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("ratelimit_policies"),
        "{body}"
    );
    let inline = json!({"name":"i","limit":1,"window_ms":1000,"algorithm":"token-bucket"});
    let r = check(&host, json!({"key":"k","policies":[inline]})).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_is_a_400_problem_naming_the_field() {
    let host = TestHost::start().await;
    let p = json!({"name":"p","limit":5,"window_ms":1000,"algorithm":"fixed-window"});
    let with = |member: &str, value: Value| {
        let mut policy = p.clone();
        policy[member] = value;
        json!({"key":"k","policies":[policy]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!([1]), "body"),
        (json!({"policies":[p]}), "key"),
        (json!({"key":"","policies":[p]}), "key"),
        (json!({"key":"x".repeat(257),"policies":[p]}), "key"),
        (json!({"key":"a\u{1}b","policies":[p]}), "key"),
        (json!({"key":7,"policies":[p]}), "key"),
        (json!({"key":"k","cost":0,"policies":[p]}), "cost"),
        (json!({"key":"k","cost":-1,"policies":[p]}), "cost"),
        (json!({"key":"k","cost":1.5,"policies":[p]}), "cost"),
        (json!({"key":"k","cost":"1","policies":[p]}), "cost"),
        (json!({"key":"k","cost":6,"policies":[p]}), "cost"),
        (json!({"key":"k"}), "policies"),
        (json!({"key":"k","policies":{}}), "policies"),
        (json!({"key":"k","policies":[]}), "policies"),
        (json!({"key":"k","policies":[p, p]}), "policies[1]"),
        (json!({"key":"k","policies":[3]}), "policies[0]"),
        (json!({"key":"k","policies":["bad name"]}), "policies[0]"),
        (json!({"key":"k","policies":["unknown"]}), "policies"),
        (json!({"key":"k","policies":[p],"extra":1}), "extra"),
        (with("name", json!("")), "policies[0].name"),
        (with("limit", json!(0)), "policies[0].limit"),
        (with("limit", json!("5")), "policies[0].limit"),
        (with("window_ms", json!(0)), "policies[0].window_ms"),
        (
            with("algorithm", json!("leaky-bucket")),
            "policies[0].algorithm",
        ),
        (with("burst", json!(10)), "policies[0].burst"),
        (
            with("fail_mode", json!("sometimes")),
            "policies[0].fail_mode",
        ),
        (with("unit", json!("bytes")), "policies[0].unit"),
        (with("colour", json!("red")), "policies[0].colour"),
    ];
    for (body, field) in cases {
        let response = check(&host, body.clone()).await;
        let problem_body = problem(response, StatusCode::BAD_REQUEST, Some(field)).await;
        assert!(
            problem_body["detail"].as_str().unwrap().contains(field),
            "{body} -> {problem_body}"
        );
    }
    let http = client();
    let not_json = http
        .post(host.url("/v1/ratelimit/check"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    problem(not_json, StatusCode::BAD_REQUEST, Some("body")).await;
    let wrong_type = http
        .post(host.url("/v1/ratelimit/check"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, None).await;
    let huge = http
        .post(host.url("/v1/ratelimit/check"))
        .header("content-type", "application/json")
        .body(format!("{{\"key\":\"{}\"}}", "x".repeat(70_000)))
        .send()
        .await
        .unwrap();
    problem(huge, StatusCode::PAYLOAD_TOO_LARGE, None).await;
    for path in ["/v1/ratelimit/per-second/%zz", "/v1/ratelimit/bad%20name/k"] {
        let r = http.get(host.url(path)).send().await.unwrap();
        problem(r, StatusCode::BAD_REQUEST, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_over_http_get_exactly_the_limit() {
    let host = Arc::new(TestHost::start().await);
    let policy = json!({"name":"c","limit":100,"window_ms":86400000,"algorithm":"sliding-window"});
    let body = Arc::new(json!({"key":"shared","policies":[policy]}).to_string());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let http = client();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (host, body, next, http) = (host.clone(), body.clone(), next.clone(), http.clone());
            tokio::spawn(async move {
                let (mut ok, mut limited) = (0u32, 0u32);
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 300 {
                    let r = http
                        .post(host.url("/v1/ratelimit/check"))
                        .header("content-type", "application/json")
                        .body(body.as_str().to_owned())
                        .send()
                        .await
                        .unwrap();
                    match r.status() {
                        StatusCode::OK => ok += 1,
                        StatusCode::TOO_MANY_REQUESTS => limited += 1,
                        other => panic!("unexpected {other}"),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for task in tasks {
        let (o, l) = task.await.unwrap();
        ok += o;
        limited += l;
    }
    assert_eq!((ok, limited), (100, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_is_503_for_fail_closed_and_200_for_fail_open() {
    let mut host = TestHost::start().await;
    let closed = json!({"name":"c","limit":5,"window_ms":1000,"algorithm":"fixed-window"});
    let open = json!({"name":"o","limit":5,"window_ms":1000,"algorithm":"token-bucket","fail_mode":"open"});
    assert_eq!(
        check(&host, json!({"key":"k","policies":[closed]}))
            .await
            .status(),
        StatusCode::OK
    );
    host.redis.stop();
    let started = std::time::Instant::now();
    let r = check(&host, json!({"key":"k","policies":[closed]})).await;
    assert_eq!(header(&r, "retry-after"), "1");
    problem(r, StatusCode::SERVICE_UNAVAILABLE, None).await;
    let r = check(&host, json!({"key":"k","policies":[open]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["allowed"].clone(), body["degraded"].clone()),
        (json!(true), json!(true))
    );
    let r = check(&host, json!({"key":"k","policies":[open, closed]})).await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE, None).await;
    assert!(
        started.elapsed().as_secs() < 5,
        "no waiting on a dead connection"
    );
    // Bad input is still a 400 while Redis is down.
    let r = check(&host, json!({"key":"","policies":[open]})).await;
    problem(r, StatusCode::BAD_REQUEST, Some("key")).await;
}
