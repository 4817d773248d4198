//! `GET /v1/progress/{id}/events` end to end, on both of the host's paths: the SSE fan-out
//! (the component answers at once; the host's one reader follows the stream) and the
//! component streaming by itself (`wasi:http` only, as under Spin). A client that drops and
//! resumes with `Last-Event-ID` sees every update exactly once; a trimmed id gets `reset`;
//! the stream ends after the terminal event.

use std::time::Duration;

use redwasm_tests::{SseStream as Stream, TestHost, metric};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(host: &TestHost, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(host.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn step(host: &TestHost, id: &str, n: u64) {
    post(host, &format!("/v1/progress/{id}"), json!({ "step": n })).await;
}

/// The whole scenario on one host.
async fn resume_is_lossless_and_the_stream_ends(host: &TestHost) {
    post(
        host,
        "/v1/progress",
        json!({"id": "job-7", "total_steps": 10}),
    )
    .await;
    let mut stream = Stream::open(host, "job-7", None).await;
    let snapshot = stream.next().await.unwrap();
    assert_eq!(snapshot.event, "progress");
    assert_eq!(snapshot.data["current_step"], 0);

    step(host, "job-7", 1).await;
    step(host, "job-7", 2).await;
    let one = stream.next().await.unwrap();
    let two = stream.next().await.unwrap();
    assert_eq!(
        (
            one.data["current_step"].clone(),
            two.data["current_step"].clone()
        ),
        (json!(1), json!(2))
    );
    assert!(one.id != two.id && one.id != snapshot.id);
    // The client drops; updates go on without it.
    drop(stream);
    step(host, "job-7", 3).await;
    step(host, "job-7", 4).await;
    let mut resumed = Stream::open(host, "job-7", Some(&two.id)).await;
    let three = resumed.next().await.unwrap();
    let four = resumed.next().await.unwrap();
    assert_eq!(three.data["current_step"], 3, "replayed, nothing skipped");
    assert_eq!(four.data["current_step"], 4);
    // Live again, then the terminal event ends the stream.
    step(host, "job-7", 5).await;
    assert_eq!(resumed.next().await.unwrap().data["current_step"], 5);
    post(host, "/v1/progress/job-7/complete", json!({})).await;
    let done = resumed.next().await.unwrap();
    assert_eq!(done.event, "completed");
    assert_eq!(done.data["percent"], 100);
    resumed.assert_ends().await;

    // A finished entry: its snapshot, then the end.
    let mut late = Stream::open(host, "job-7", None).await;
    assert_eq!(late.next().await.unwrap().event, "completed");
    late.assert_ends().await;
    // Resuming after the terminal event: nothing more, the end.
    Stream::open(host, "job-7", Some(&done.id))
        .await
        .assert_ends()
        .await;
}

/// A resume from an id that was trimmed away gets `reset` with a fresh snapshot.
async fn a_trimmed_id_gets_reset(host: &TestHost) {
    post(
        host,
        "/v1/progress",
        json!({"id": "job-8", "total_steps": 10}),
    )
    .await;
    let mut stream = Stream::open(host, "job-8", None).await;
    let first = stream.next().await.unwrap();
    drop(stream);
    for n in 1..=3 {
        step(host, "job-8", n).await;
    }
    let mut redis = host.raw_redis().await;
    let _: i64 = redis::cmd("XTRIM")
        .arg("progress:p{job-8}:s")
        .arg("MAXLEN")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut resumed = Stream::open(host, "job-8", Some(&first.id)).await;
    let reset = resumed.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["current_step"], 3);
    step(host, "job-8", 4).await;
    assert_eq!(resumed.next().await.unwrap().data["current_step"], 4);
}

async fn bad_requests_are_problems(host: &TestHost) {
    let client = reqwest::Client::new();
    let unknown = client
        .get(host.url("/v1/progress/nope/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    post(
        host,
        "/v1/progress",
        json!({"id": "job-9", "total_steps": 1}),
    )
    .await;
    let malformed = client
        .get(host.url("/v1/progress/job-9/events"))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["field"], "Last-Event-ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_the_hosts_fan_out() {
    let host = TestHost::start().await;
    resume_is_lossless_and_the_stream_ends(&host).await;
    a_trimmed_id_gets_reset(&host).await;
    bad_requests_are_problems(&host).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_by_the_component_itself_as_under_spin() {
    let host = TestHost::start_with(|options| options.wasi_http_only = true).await;
    resume_is_lossless_and_the_stream_ends(&host).await;
    a_trimmed_id_gets_reset(&host).await;
    bad_requests_are_problems(&host).await;
    host.stop().await.unwrap();
}

/// Many clients of one entry share the host's one reader: every client gets every update,
/// and `/metrics` counts the open streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_share_one_reader() {
    let host = TestHost::start().await;
    post(
        &host,
        "/v1/progress",
        json!({"id": "big", "total_steps": 3}),
    )
    .await;
    let mut streams = Vec::new();
    for _ in 0..50 {
        let mut stream = Stream::open(&host, "big", None).await;
        assert_eq!(stream.next().await.unwrap().event, "progress");
        streams.push(stream);
    }
    assert_eq!(
        metric(&host.metrics().await, "redwasm_sse_open_streams"),
        50
    );
    step(&host, "big", 1).await;
    for stream in &mut streams {
        assert_eq!(stream.next().await.unwrap().data["current_step"], 1);
    }
    post(&host, "/v1/progress/big/fail", json!({"message": "no"})).await;
    for mut stream in streams {
        assert_eq!(stream.next().await.unwrap().event, "failed");
        stream.assert_ends().await;
    }
    // Closed streams give their slots back.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(&host.metrics().await, "redwasm_sse_open_streams") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "streams still counted open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.stop().await.unwrap();
}

/// The fan-out has budgets of its own: beyond a component's open-stream budget, 503 with a
/// problem; a closed stream gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_streams_have_a_budget() {
    let host =
        TestHost::start_with(|options| options.limits.max_event_streams_per_component = 2).await;
    post(&host, "/v1/progress", json!({"id": "b1", "total_steps": 3})).await;
    let mut first = Stream::open(&host, "b1", None).await;
    let mut second = Stream::open(&host, "b1", None).await;
    first.next().await.unwrap();
    second.next().await.unwrap();
    let refused = reqwest::get(host.url("/v1/progress/b1/events"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // Other requests of the component are not affected.
    let entry: Value = reqwest::get(host.url("/v1/progress/b1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entry["status"], "running");
    // The terminal event closes both; their slots come back.
    post(&host, "/v1/progress/b1/complete", json!({})).await;
    assert_eq!(first.next().await.unwrap().event, "completed");
    assert_eq!(second.next().await.unwrap().event, "completed");
    first.assert_ends().await;
    second.assert_ends().await;
    post(&host, "/v1/progress", json!({"id": "b2", "total_steps": 3})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = reqwest::get(host.url("/v1/progress/b2/events"))
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.stop().await.unwrap();
}

/// A queue's job state changes stream the same way (`GET /v1/queues/{queue}/events`): live
/// after connecting, and replayed after `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_job_changes_stream_as_events() {
    let host = TestHost::start().await;
    let mut live = Stream::open_path(&host, "/v1/queues/mail/events", None).await;
    let job = post(
        &host,
        "/v1/queues/mail/jobs",
        json!({"type": "welcome", "payload": {}}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let waiting = live.next().await.unwrap();
    assert_eq!(waiting.event, "waiting");
    assert_eq!(waiting.data["id"], id.as_str());
    assert!(waiting.data["ms"].is_u64(), "{:?}", waiting.data);
    drop(live);
    let cancelled = reqwest::Client::new()
        .delete(host.url(&format!("/v1/queues/mail/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success());
    let mut resumed = Stream::open_path(&host, "/v1/queues/mail/events", Some(&waiting.id)).await;
    let next = resumed.next().await.unwrap();
    assert_eq!(next.event, "cancelled", "replayed after the last seen id");
    assert_eq!(next.data["id"], id.as_str());
    host.stop().await.unwrap();
}
