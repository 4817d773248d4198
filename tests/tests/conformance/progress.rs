//! The Progress section of the contract: `/v1/progress` start, steps, complete / fail, get,
//! delete (cleanup), problem+json for bad input, `X-Correlation-Id`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Target, header, problem, unique};

impl Target {
    async fn progress_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn progress_ok(&self, path: &str, body: Value, status: StatusCode) -> Value {
        let response = self.progress_post(path, body).await;
        let actual = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(actual, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

#[tokio::test]
async fn an_entry_runs_to_completion() {
    let t = Target::get().await;
    let id = unique("job");
    let started = t
        .progress_ok(
            "/v1/progress",
            json!({"id": id, "total_steps": 4, "message": "starting", "correlation_id": "c-1"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(started["status"], "running");
    assert_eq!(started["current_step"], 0);
    assert_eq!(started["correlation_id"], "c-1");
    for member in ["started_ms", "updated_ms"] {
        assert!(started[member].is_u64(), "{member}: {started}");
    }

    let path = format!("/v1/progress/{id}");
    let step = t
        .progress_ok(&path, json!({"step": 2}), StatusCode::OK)
        .await;
    assert_eq!(step["percent"], 50);
    assert_eq!(step["message"], "starting");
    assert!(step["estimated_completion_ms"].is_u64(), "{step}");

    let response = t.http.get(t.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "x-correlation-id").is_some());
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, step);

    let done = t
        .progress_ok(
            &format!("{path}/complete"),
            json!({"message": "done"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["percent"], 100);
    assert_eq!(done["message"], "done");

    // Finished: further changes conflict; the entry stays readable until cleaned up.
    problem(
        t.progress_post(&format!("{path}/fail"), json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    let gone = t.http.delete(t.url(&path)).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    problem(
        t.http.get(t.url(&path)).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_generated_id_and_a_failure() {
    let t = Target::get().await;
    let started = t
        .progress_ok(
            "/v1/progress",
            json!({"total_steps": 3}),
            StatusCode::CREATED,
        )
        .await;
    let id = started["id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "{started}");
    let failed = t
        .progress_ok(
            &format!("/v1/progress/{id}/fail"),
            json!({"message": "disk full"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["message"], "disk full");
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field() {
    let t = Target::get().await;
    for (body, field) in [
        (json!({"total_steps": 0}), "total_steps"),
        (json!({}), "total_steps"),
        (json!({"total_steps": 2, "colour": "red"}), "colour"),
        (json!({"total_steps": "2"}), "total_steps"),
        (json!({"total_steps": 2, "id": "a b"}), "id"),
        (
            json!({"total_steps": 2, "message": "x".repeat(2000)}),
            "message",
        ),
        (json!({"total_steps": 2, "ttl_s": 0}), "ttl_s"),
    ] {
        let body = problem(
            t.progress_post("/v1/progress", body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["field"], field, "{body}");
    }
    let id = unique("job");
    t.progress_ok(
        "/v1/progress",
        json!({"id": id, "total_steps": 2}),
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/v1/progress/{id}");
    let body = problem(
        t.progress_post(&path, json!({"step": 3})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "step");
    problem(
        t.progress_post("/v1/progress", json!({"id": id, "total_steps": 2}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        t.progress_post(
            &format!("/v1/progress/{}", unique("nope")),
            json!({"step": 1}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let malformed = t
        .http
        .post(t.url(&path))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;
    // Nothing written by the refused update.
    let read: Value = t
        .http
        .get(t.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["current_step"], 0);
}
