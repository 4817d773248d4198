//! The Sessions section of the contract: create, read with `ETag` (sliding unless
//! `?touch=false`), `PUT` with `If-Match` (412 when stale), delete, a user's list and
//! revoke-all, problem+json for bad input.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Target, header, problem, unique};

impl Target {
    async fn create_session(&self, user: &str, data: Value) -> Value {
        let response = self
            .http
            .post(self.url("/v1/sessions"))
            .json(&json!({"user_id": user, "data": data, "ttl_s": 600}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn a_session_is_read_updated_and_ended() {
    let t = Target::get().await;
    let user = unique("user");
    let created = t.create_session(&user, json!({"cart": []})).await;
    let sid = created["session_id"].as_str().unwrap().to_string();
    assert_eq!(sid.len(), 32);
    assert_eq!(created["version"], 1);
    let path = format!("/v1/sessions/{sid}");

    let read = t.http.get(t.url(&path)).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(header(&read, "etag").as_deref(), Some("\"1\""));
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["user_id"], user.as_str());
    assert_eq!(body["data"], json!({"cart": []}));
    let untouched: Value = t
        .http
        .get(t.url(&format!("{path}?touch=false")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(untouched["expires_ms"], body["expires_ms"]);

    let updated = t
        .http
        .put(t.url(&path))
        .header("if-match", "\"1\"")
        .json(&json!({"data": {"cart": [7]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(header(&updated, "etag").as_deref(), Some("\"2\""));
    // A second writer still holding version 1 loses.
    let stale = t
        .http
        .put(t.url(&path))
        .header("if-match", "\"1\"")
        .json(&json!({"data": {"cart": [8]}}))
        .send()
        .await
        .unwrap();
    problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let now: Value = t
        .http
        .get(t.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["data"], json!({"cart": [7]}));

    let gone = t.http.delete(t.url(&path)).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    problem(
        t.http.get(t.url(&path)).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn log_out_everywhere_ends_that_users_sessions_only() {
    let t = Target::get().await;
    let (ada, bob) = (unique("ada"), unique("bob"));
    let mut ada_sids = Vec::new();
    for _ in 0..3 {
        ada_sids.push(t.create_session(&ada, json!({})).await["session_id"].clone());
    }
    let bob_sid = t.create_session(&bob, json!({})).await["session_id"].clone();
    let list: Value = t
        .http
        .get(t.url(&format!("/v1/users/{ada}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 3, "{list}");
    let revoked: Value = t
        .http
        .delete(t.url(&format!("/v1/users/{ada}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked, json!({"revoked": 3}));
    for sid in ada_sids {
        let response = t
            .http
            .get(t.url(&format!("/v1/sessions/{}", sid.as_str().unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let bob_read = t
        .http
        .get(t.url(&format!("/v1/sessions/{}", bob_sid.as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(bob_read.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_session_input_is_a_problem_naming_the_field() {
    let t = Target::get().await;
    for (body, status, field) in [
        (json!({"data": {}}), StatusCode::BAD_REQUEST, "user_id"),
        (
            json!({"user_id": "a b"}),
            StatusCode::BAD_REQUEST,
            "user_id",
        ),
        (
            json!({"user_id": "u", "data": [1]}),
            StatusCode::BAD_REQUEST,
            "data",
        ),
        (
            json!({"user_id": "u", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (
            json!({"user_id": "u", "data": {"x": "y".repeat(70 * 1024)}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "data",
        ),
    ] {
        let response = t
            .http
            .post(t.url("/v1/sessions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = problem(response, status).await;
        assert_eq!(problem["field"], field, "{problem}");
    }
    let malformed = t
        .http
        .get(t.url("/v1/sessions/not-a-session-id"))
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;
    let created = t.create_session(&unique("u"), json!({})).await;
    let bad_if_match = t
        .http
        .put(t.url(&format!(
            "/v1/sessions/{}",
            created["session_id"].as_str().unwrap()
        )))
        .header("if-match", "yesterday")
        .json(&json!({"data": {}}))
        .send()
        .await
        .unwrap();
    let problem = problem(bad_if_match, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "If-Match");
}
