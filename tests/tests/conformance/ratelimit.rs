//! The Rate limits section (`/v1/ratelimit`), black-box. Named policies are the ones the
//! repository's `spin.toml` configures by default (`per-second`, `per-day`, `daily-tokens`),
//! so a server started on that manifest (our host or `spin up`) passes as it is.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Target, header, problem, unique};

/// `POST /v1/ratelimit/check` with `body` as JSON.
async fn post_check(t: &Target, body: &Value) -> reqwest::Response {
    t.http
        .post(t.url("/v1/ratelimit/check"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// POSTs a check and returns (status, RateLimit-Policy, RateLimit, Retry-After, body).
async fn check(
    t: &Target,
    body: Value,
) -> (
    StatusCode,
    Option<String>,
    Option<String>,
    Option<String>,
    Value,
) {
    let response = post_check(t, &body).await;
    let status = response.status();
    let policy = header(&response, "ratelimit-policy");
    let ratelimit = header(&response, "ratelimit");
    let retry_after = header(&response, "retry-after");
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, policy, ratelimit, retry_after, json)
}

/// Windows are an hour long so that a test's few requests never straddle a fixed window's
/// boundary (which would reset its count mid-test).
const HOUR_MS: u64 = 3_600_000;

fn inline(name: &str, limit: u64, window_ms: u64, algorithm: &str) -> Value {
    json!({"name": name, "limit": limit, "window_ms": window_ms, "algorithm": algorithm})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_algorithm_admits_its_limit_then_answers_429_with_headers() {
    let t = Target::get().await;
    for algorithm in [
        "sliding-window",
        "sliding-window-counter",
        "token-bucket",
        "fixed-window",
    ] {
        let key = unique("rl-conf");
        let policy = inline("conf", 3, HOUR_MS, algorithm);
        for n in 0..3u64 {
            let (status, policy_header, ratelimit, retry_after, body) =
                check(&t, json!({"key": key, "policies": [policy]})).await;
            assert_eq!(status, StatusCode::OK, "{algorithm} #{n}: {body}");
            assert_eq!(body["allowed"], true);
            assert_eq!(body["policies"][0]["name"], "conf");
            assert_eq!(body["policies"][0]["limit"], 3);
            assert_eq!(
                body["policies"][0]["remaining"],
                2 - n,
                "{algorithm}: {body}"
            );
            assert_eq!(policy_header.as_deref(), Some("\"conf\";q=3;w=3600"));
            let ratelimit = ratelimit.expect("RateLimit header");
            assert!(
                ratelimit.starts_with(&format!("\"conf\";r={};t=", 2 - n)),
                "{algorithm}: {ratelimit}"
            );
            assert_eq!(retry_after, None);
        }
        let (status, _, ratelimit, retry_after, body) =
            check(&t, json!({"key": key, "policies": [policy]})).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{algorithm}: {body}");
        assert_eq!(body["allowed"], false);
        assert_eq!(body["policies"][0]["remaining"], 0);
        let retry_ms = body["retry_after_ms"].as_u64().unwrap();
        // A sliding-window counter's current window only starts to decay once it has become
        // the previous one, so its wait can reach two windows; the others' stays within one.
        let longest_wait = if algorithm == "sliding-window-counter" {
            2 * HOUR_MS
        } else {
            HOUR_MS
        };
        assert!(
            retry_ms > 0 && retry_ms <= longest_wait,
            "{algorithm}: {body}"
        );
        let retry_s: u64 = retry_after.expect("Retry-After on 429").parse().unwrap();
        assert_eq!(retry_s, retry_ms.div_ceil(1000), "{algorithm}: {body}");
        assert!(ratelimit.unwrap().starts_with("\"conf\";r=0;t="));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_denied_multi_policy_check_consumes_from_none() {
    let t = Target::get().await;
    let key = unique("rl-atomic");
    let roomy = inline("roomy", 100, HOUR_MS, "sliding-window");
    let tight = inline("tight", 1, HOUR_MS, "fixed-window");
    let (status, _, _, _, body) = check(&t, json!({"key": key, "policies": [roomy, tight]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..5 {
        let (status, policy_header, _, _, body) =
            check(&t, json!({"key": key, "policies": [roomy, tight]})).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(
            policy_header.as_deref(),
            Some("\"roomy\";q=100;w=3600, \"tight\";q=1;w=3600")
        );
    }
    // Only the first, allowed check counted against `roomy`.
    let (status, _, _, _, body) = check(&t, json!({"key": key, "policies": [roomy]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policies"][0]["remaining"], 98, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn named_policies_state_and_reset() {
    let t = Target::get().await;
    let key = unique("rl-named");
    // `daily-tokens` (spin.toml): a 50 000-token daily budget; cost = tokens.
    let (status, _, _, _, body) = check(
        &t,
        json!({"key": key, "cost": 1200, "policies": ["per-second", "daily-tokens"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policies"][1]["name"], "daily-tokens");
    assert_eq!(body["policies"][1]["remaining"], 50_000 - 1200, "{body}");

    let state_url = t.url(&format!("/v1/ratelimit/daily-tokens/{key}"));
    for _ in 0..2 {
        // Reading the state does not consume.
        let response = t.http.get(&state_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "ratelimit-policy").is_some());
        let state: Value = response.json().await.unwrap();
        assert_eq!(state["name"], "daily-tokens");
        assert_eq!(state["limit"], 50_000);
        assert_eq!(state["remaining"], 50_000 - 1200, "{state}");
    }
    let response = t.http.delete(&state_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let state: Value = t
        .http
        .get(&state_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["remaining"], 50_000, "{state}");

    let unknown = t
        .http
        .get(t.url(&format!("/v1/ratelimit/no-such-policy/{key}")))
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_problem_naming_the_field() {
    let t = Target::get().await;
    let key = unique("rl-bad");
    let good = inline("p", 10, 1000, "fixed-window");
    let cases = [
        (json!({"policies": [good]}), "key"),
        (json!({"key": key}), "policies"),
        (json!({"key": key, "policies": []}), "policies"),
        (json!({"key": key, "policies": [good], "cost": 0}), "cost"),
        (json!({"key": key, "policies": [good], "cost": 11}), "cost"),
        (
            json!({"key": key, "policies": [inline("p", 10, 1000, "leaky")]}),
            "policies[0].algorithm",
        ),
        (
            json!({"key": key, "policies": [inline("p", 0, 1000, "fixed-window")]}),
            "policies[0].limit",
        ),
        (
            json!({"key": key, "policies": ["no-such-policy"]}),
            "policies",
        ),
        (json!({"key": key, "policies": [good], "extra": 1}), "extra"),
    ];
    for (body, field) in cases {
        let problem = problem(post_check(&t, &body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["field"], field, "{body} → {problem}");
    }
    let not_json = t
        .http
        .post(t.url("/v1/ratelimit/check"))
        .header("content-type", "text/plain")
        .body("key=u1")
        .send()
        .await
        .unwrap();
    problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let wrong_method = t
        .http
        .get(t.url("/v1/ratelimit/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
}
