//! The Queues section of the HTTP contract, end to end: the host serving the workspace's
//! `spin.toml` (the queue component on `/v1/queues/...`) against a real redis-server.

use redwasm_tests::{TestHost, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    host: TestHost,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        Api {
            host: TestHost::start().await,
            http: client(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = self.host.url(&format!("/v1/queues/{path}"));
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("x-correlation-id", "corr-queue");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_eq!(
            response
                .headers()
                .get("x-correlation-id")
                .map(|v| v.to_str().unwrap()),
            Some("corr-queue"),
            "{method} {path}"
        );
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                content_type, "application/problem+json",
                "{method} {path}: {body}"
            );
            assert_eq!(body["status"], status.as_u16(), "{body}");
        }
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_goes_through_its_whole_life() {
    let api = Api::start().await;
    let (status, created) = api
        .call(
            "POST",
            "mail/jobs",
            Some(json!({"type": "welcome", "payload": {"to": "ada@example.com"}, "priority": "high",
                        "max_attempts": 2, "backoff": {"type": "fixed", "base_ms": 1}, "idempotency_key": "signup-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "waiting");
    let id = created["id"].as_str().unwrap().to_string();
    // The same idempotency key: the first job, 200.
    let (status, dup) = api
        .call(
            "POST",
            "mail/jobs",
            Some(json!({"payload": 1, "idempotency_key": "signup-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (dup["id"].as_str(), dup["duplicate"].as_bool()),
        (Some(id.as_str()), Some(true))
    );

    let (status, job) = api.call("GET", &format!("mail/jobs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["payload"], json!({"to": "ada@example.com"}));
    assert_eq!(
        (job["type"].as_str(), job["priority"].as_i64()),
        (Some("welcome"), Some(10))
    );
    assert_eq!(job["correlation_id"], "corr-queue");

    // Claim, fail once (retried), claim again, ack with a result.
    let (status, claimed) = api
        .call(
            "POST",
            "mail/claim",
            Some(json!({"worker": "w1", "max": 5, "lease_ms": 10000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let lease = claimed[0]["lease"].as_str().unwrap().to_string();
    assert_eq!(claimed[0]["status"], "active");
    let (status, failed) = api
        .call(
            "POST",
            &format!("mail/jobs/{id}/nack"),
            Some(json!({"lease": lease, "error": "smtp down"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (failed["status"].as_str(), failed["error"].as_str()),
        (Some("failed"), Some("smtp down"))
    );
    // The 1 ms backoff passes at once.
    let mut second = Value::Null;
    for _ in 0..100 {
        let (_, c) = api
            .call("POST", "mail/claim", Some(json!({"worker": "w2"})))
            .await;
        if c.as_array().is_some_and(|a| !a.is_empty()) {
            second = c[0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(second["attempts"], 2, "{second}");
    let lease2 = second["lease"].as_str().unwrap().to_string();
    // The first lease is stale: 409, nothing changes.
    let (status, _) = api
        .call(
            "POST",
            &format!("mail/jobs/{id}/ack"),
            Some(json!({"lease": lease})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, beat) = api
        .call(
            "POST",
            &format!("mail/jobs/{id}/heartbeat"),
            Some(json!({"lease": lease2, "lease_ms": 5000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(beat["lease_until_ms"].as_u64().is_some());
    let (status, done) = api
        .call(
            "POST",
            &format!("mail/jobs/{id}/ack"),
            Some(json!({"lease": lease2, "result": {"message_id": "m1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (done["status"].as_str(), &done["result"]),
        (Some("completed"), &json!({"message_id": "m1"}))
    );

    let (status, stats) = api.call("GET", "mail/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            stats["completed"].as_u64(),
            stats["processed_total"].as_u64(),
            stats["failed_total"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(stats["latency_ms"]["p99"].is_u64(), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_dead_letters_requeue_and_cancel() {
    let api = Api::start().await;
    let jobs: Vec<Value> = (0..5)
        .map(|n| json!({"payload": n, "max_attempts": 1, "priority": n}))
        .collect();
    let (status, created) = api
        .call("POST", "img/jobs/batch", Some(Value::Array(jobs)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ids: Vec<String> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    // Cancel one while waiting.
    let (status, cancelled) = api
        .call("DELETE", &format!("img/jobs/{}", ids[0]), None)
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (status, _) = api
        .call("DELETE", &format!("img/jobs/{}", ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The other four, highest priority first; all fail for good (max_attempts 1).
    let (_, claimed) = api
        .call("POST", "img/claim", Some(json!({"max": 10})))
        .await;
    let order: Vec<i64> = claimed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["payload"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [4, 3, 2, 1]);
    for job in claimed.as_array().unwrap() {
        let (status, dead) = api
            .call(
                "POST",
                &format!("img/jobs/{}/nack", job["id"].as_str().unwrap()),
                Some(json!({"lease": job["lease"], "error": "corrupt"})),
            )
            .await;
        assert_eq!(
            (status, dead["status"].as_str()),
            (StatusCode::OK, Some("dead"))
        );
    }
    let (status, dead) = api.call("GET", "img/dead?limit=2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dead.as_array().unwrap().len(), 2);
    let (_, requeued) = api
        .call("POST", "img/dead/requeue", Some(json!({"ids": [ids[1]]})))
        .await;
    assert_eq!(requeued["requeued"], 1);
    let (_, requeued) = api.call("POST", "img/dead/requeue", Some(json!({}))).await;
    assert_eq!(requeued["requeued"], 3);
    let (_, stats) = api.call("GET", "img/stats", None).await;
    assert_eq!(
        (
            stats["waiting"].as_u64(),
            stats["dead"].as_u64(),
            stats["cancelled"].as_u64()
        ),
        (Some(4), Some(0), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_a_problem_naming_the_field_and_writes_nothing() {
    let api = Api::start().await;
    // (method, path, body, expected status, the field the problem names)
    type Case<'a> = (&'a str, &'a str, Option<Value>, StatusCode, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "q/jobs",
            Some(json!({"payload": 1, "priority": "urgent"})),
            StatusCode::BAD_REQUEST,
            Some("priority"),
        ),
        (
            "POST",
            "q/jobs",
            Some(json!({"payload": 1, "delay_ms": -1})),
            StatusCode::BAD_REQUEST,
            Some("delay_ms"),
        ),
        (
            "POST",
            "q/jobs",
            Some(json!({"payload": 1, "surprise": true})),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "POST",
            "q/jobs",
            Some(json!([1])),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "POST",
            "q/jobs/batch",
            Some(json!([{"payload": 1}, {"payload": 2, "max_attempts": 0}])),
            StatusCode::BAD_REQUEST,
            Some("[1].max_attempts"),
        ),
        (
            "POST",
            "q/jobs",
            Some(json!({"payload": "x".repeat(600 * 1024)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("payload"),
        ),
        (
            "POST",
            "q/claim",
            Some(json!({"max": 0})),
            StatusCode::BAD_REQUEST,
            Some("max"),
        ),
        (
            "POST",
            "q/jobs/abc/ack",
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        ("GET", "q/jobs/unknown", None, StatusCode::NOT_FOUND, None),
        (
            "POST",
            "q/jobs/unknown/ack",
            Some(json!({"lease": "x"})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "GET",
            "q%7Bx%7D/stats",
            None,
            StatusCode::BAD_REQUEST,
            Some("queue"),
        ),
        (
            "GET",
            "q%01/stats",
            None,
            StatusCode::BAD_REQUEST,
            Some("queue"),
        ),
        (
            "PUT",
            "q/jobs",
            Some(json!({})),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
        (
            "GET",
            "q/dead?limit=0",
            None,
            StatusCode::BAD_REQUEST,
            Some("limit"),
        ),
        (
            "GET",
            "q/nothing/here/at/all",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (method, path, body, expected, field) in cases {
        let (status, problem) = api.call(method, path, body).await;
        assert_eq!(status, expected, "{method} {path}: {problem}");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{method} {path}: {problem}");
        }
    }
    // Wrong content type: 415.
    let response = api
        .http
        .post(api.host.url("/v1/queues/q/jobs"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing reached Redis but the ACL users' bookkeeping: no key at all.
    let mut raw = api.host.raw_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedules_are_created_listed_fired_and_removed() {
    let api = Api::start().await;
    let (status, created) = api
        .call(
            "PUT",
            "reports/schedules/nightly",
            Some(json!({"cron": "0 3 * * *", "job": {"type": "report", "payload": {"kind": "daily"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["cron"], "0 3 * * *");
    assert!(created["next_run_ms"].as_u64().is_some());
    let (status, replaced) = api
        .call(
            "PUT",
            "reports/schedules/nightly",
            Some(json!({"every_ms": 100, "job": {"type": "report", "payload": {"kind": "often"}}})),
        )
        .await;
    assert_eq!(
        (status, replaced["every_ms"].as_u64()),
        (StatusCode::OK, Some(100))
    );
    let (status, list) = api.call("GET", "reports/schedules", None).await;
    assert_eq!(
        (status, list.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    // A claim past the tick fires it and takes its job.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (_, claimed) = api
        .call("POST", "reports/claim", Some(json!({"max": 10})))
        .await;
    assert_eq!(claimed.as_array().unwrap().len(), 1, "{claimed}");
    assert_eq!(claimed[0]["payload"], json!({"kind": "often"}));
    assert_eq!(claimed[0]["correlation_id"], "schedule:nightly");
    let (status, problem) = api
        .call(
            "PUT",
            "reports/schedules/bad",
            Some(json!({"cron": "61 * * * *", "job": {}})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("cron"))
    );
    let (status, _) = api.call("DELETE", "reports/schedules/nightly", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call("DELETE", "reports/schedules/nightly", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = api.call("GET", "reports/schedules", None).await;
    assert_eq!(list, json!([]));
}
