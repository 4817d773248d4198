//! `/v1/events/{channel}` end to end, on both of the host's paths (the SSE fan-out, and the
//! component streaming by itself as under Spin): lossless resume, `reset` after trimming,
//! the queue's, progress's and cache's channels read through read-only grants (which Redis
//! itself enforces), and bad input that writes nothing.

use redwasm_tests::{SseStream, TestHost, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(host: &TestHost, path: &str, body: Value) -> Value {
    let response = client()
        .post(host.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn publish(host: &TestHost, channel: &str, body: Value) -> String {
    let response = client()
        .post(host.url(&format!("/v1/events/{channel}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// A client drops and resumes with `Last-Event-ID` (and with `?last_event_id=`): every
/// event exactly once, in order.
async fn resume_is_lossless(host: &TestHost) {
    let mut live = SseStream::open_path(host, "/v1/events/chat", None).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(publish(host, "chat", json!({ "n": n })).await);
    }
    for (n, id) in ids.iter().enumerate() {
        let event = live.next().await.unwrap();
        assert_eq!((&event.id, event.event.as_str()), (id, "message"));
        assert_eq!(event.data, json!({ "n": n }));
    }
    drop(live);
    let later = [
        publish(host, "chat", json!("four")).await,
        publish(host, "chat", json!([5])).await,
    ];
    let mut resumed = SseStream::open_path(host, "/v1/events/chat", Some(&ids[2])).await;
    assert_eq!(resumed.next().await.unwrap().id, later[0]);
    let fifth = resumed.next().await.unwrap();
    assert_eq!(
        (fifth.id.as_str(), fifth.data.clone()),
        (later[1].as_str(), json!([5]))
    );
    // Live after the replay, with a named event.
    let typed = client()
        .post(host.url("/v1/events/chat?event=typing"))
        .json(&json!({"who": "ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(typed.status(), StatusCode::ACCEPTED);
    let typing = resumed.next().await.unwrap();
    assert_eq!(typing.event, "typing");
    assert_eq!(typing.data, json!({"who": "ada"}));
    // A browser's first EventSource connection resumes through the query.
    let mut by_query = SseStream::open_path(
        host,
        &format!("/v1/events/chat?last_event_id={}", later[0]),
        None,
    )
    .await;
    assert_eq!(by_query.next().await.unwrap().id, later[1]);
    assert_eq!(by_query.next().await.unwrap().event, "typing");
}

/// A client whose id was trimmed away gets `reset`, then what follows.
async fn a_trimmed_id_gets_reset(host: &TestHost) {
    let first = publish(host, "trim", json!(0)).await;
    for n in 1..50 {
        publish(host, "trim", json!(n)).await;
    }
    let mut redis = host.raw_redis().await;
    let _: i64 = redis::cmd("XTRIM")
        .arg("events:e{trim}:s")
        .arg("MAXLEN")
        .arg(5)
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut stream = SseStream::open_path(host, "/v1/events/trim", Some(&first)).await;
    let reset = stream.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["last_event_id"], first.as_str());
    let next = publish(host, "trim", json!("after")).await;
    let event = stream.next().await.unwrap();
    assert_eq!((event.id, event.data), (next, json!("after")));
}

/// The queue's, progress's and cache's events on their channels.
async fn other_components_channels(host: &TestHost) {
    let mut jobs = SseStream::open_path(host, "/v1/events/jobs.mail", None).await;
    let job = post(
        host,
        "/v1/queues/mail/jobs",
        json!({"type": "welcome", "payload": {}}),
    )
    .await;
    let waiting = jobs.next().await.unwrap();
    assert_eq!(waiting.event, "waiting");
    assert_eq!(waiting.data["id"], job["id"]);

    post(
        host,
        "/v1/progress",
        json!({"id": "imp-1", "total_steps": 4}),
    )
    .await;
    let mut progress = SseStream::open_path(host, "/v1/events/progress.imp-1", None).await;
    post(host, "/v1/progress/imp-1", json!({"step": 2})).await;
    let step = progress.next().await.unwrap();
    assert_eq!(step.event, "progress");
    assert_eq!(step.data["current_step"], 2);
    post(host, "/v1/progress/imp-1/complete", json!({})).await;
    assert_eq!(progress.next().await.unwrap().event, "completed");
    progress.assert_ends().await;

    let mut cache = SseStream::open_path(host, "/v1/events/cache.users", None).await;
    let put = client()
        .put(host.url("/v1/cache/users/42?tags=people"))
        .body("ada")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    post(
        host,
        "/v1/cache/users/invalidate",
        json!({"tags": ["people"]}),
    )
    .await;
    let invalidated = cache.next().await.unwrap();
    assert_eq!(invalidated.event, "invalidate");
    assert_eq!(
        invalidated.data,
        json!({"ns": "users", "tags": ["people"], "invalidated": 1})
    );
    client()
        .put(host.url("/v1/cache/users/43"))
        .body("grace")
        .send()
        .await
        .unwrap();
    let deleted = client()
        .delete(host.url("/v1/cache/users/43"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let delete = cache.next().await.unwrap();
    assert_eq!(delete.event, "delete");
    assert_eq!(delete.data, json!({"ns": "users", "key": "43"}));
    post(host, "/v1/cache/users/invalidate", json!({"all": true})).await;
    let all = cache.next().await.unwrap();
    assert_eq!(all.data["all"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_the_hosts_fan_out() {
    let host = TestHost::start().await;
    resume_is_lossless(&host).await;
    a_trimmed_id_gets_reset(&host).await;
    other_components_channels(&host).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_by_the_component_itself_as_under_spin() {
    // Each stream the component serves by itself holds a blocking Redis connection (until a
    // write finds its client gone): more than the default four per component here.
    let workspace = redwasm_tests::workspace_manifest();
    let dir = workspace.parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(&workspace)
        .unwrap()
        .replace("source = \"target/", &format!("source = \"{dir}/target/"))
        + "\n[component.events.tool.redwasm]\nmax_redis_blocking = 12\n";
    let manifest = tempfile::tempdir().unwrap();
    let path = manifest.path().join("spin.toml");
    std::fs::write(&path, text).unwrap();
    let host = TestHost::start_with(|options| {
        options.wasi_http_only = true;
        options.manifest = path;
    })
    .await;
    resume_is_lossless(&host).await;
    a_trimmed_id_gets_reset(&host).await;
    other_components_channels(&host).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_grants_are_enforced_by_redis_itself() {
    let host = TestHost::start().await;
    let mut redis = host.raw_redis().await;
    let dry_run = |command: &'static [&'static str]| {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("DRYRUN").arg("redwasm.events");
        for arg in command {
            cmd.arg(*arg);
        }
        cmd
    };
    let allowed = |reply: &redis::Value| {
        matches!(reply, redis::Value::Okay)
            || matches!(reply, redis::Value::SimpleString(s) if s == "OK")
    };
    for (command, expect) in [
        (&["XRANGE", "queue:q{mail}:ev", "-", "+"][..], true),
        (&["XREAD", "STREAMS", "progress:p{x}:s", "0"][..], true),
        (&["XRANGE", "cache:c{users}:ev", "-", "+"][..], true),
        (&["XADD", "queue:q{mail}:ev", "*", "f", "v"][..], false),
        (&["DEL", "progress:p{x}:s"][..], false),
        (&["HGETALL", "queue:q{mail}:j:1"][..], false),
        (&["GET", "cache:c{users}:v"][..], false),
        (&["XADD", "events:e{chat}:s", "*", "f", "v"][..], true),
    ] {
        let reply: redis::Value = dry_run(command).query_async(&mut redis).await.unwrap();
        assert_eq!(allowed(&reply), expect, "{command:?}: {reply:?}");
    }
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_problems_and_write_nothing() {
    let host = TestHost::start().await;
    let c = client();
    let problem = |status: StatusCode, field: Option<&'static str>| {
        move |response: reqwest::Response| async move {
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
            let body: Value = response.json().await.unwrap();
            if let Some(field) = field {
                assert_eq!(body["field"], field, "{body}");
            }
        }
    };
    let url = |path: &str| host.url(path);
    problem(StatusCode::FORBIDDEN, Some("channel"))(
        c.post(url("/v1/events/jobs.mail"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("body"))(
        c.post(url("/v1/events/chat"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("body"))(
        c.post(url("/v1/events/chat"))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, None)(
        c.post(url("/v1/events/chat"))
            .header("content-type", "text/plain")
            .body("hi")
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("event"))(
        c.post(url("/v1/events/chat?event=reset"))
            .json(&json!(1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::PAYLOAD_TOO_LARGE, Some("body"))(
        c.post(url("/v1/events/chat"))
            .json(&json!("x".repeat(70 * 1024)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("channel"))(
        c.get(url("/v1/events/bad%0Aname")).send().await.unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("channel"))(
        c.get(url("/v1/events/jobs.a%7Bb")).send().await.unwrap(),
    )
    .await;
    problem(StatusCode::BAD_REQUEST, Some("Last-Event-ID"))(
        c.get(url("/v1/events/chat"))
            .header("last-event-id", "yesterday")
            .send()
            .await
            .unwrap(),
    )
    .await;
    problem(StatusCode::METHOD_NOT_ALLOWED, None)(
        c.delete(url("/v1/events/chat")).send().await.unwrap(),
    )
    .await;
    problem(StatusCode::NOT_FOUND, None)(c.get(url("/v1/events/a/b")).send().await.unwrap()).await;
    let mut redis = host.raw_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("events:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.is_empty(), "nothing written: {keys:?}");
    host.stop().await.unwrap();
}
