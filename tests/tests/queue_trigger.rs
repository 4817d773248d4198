//! The queue-poll trigger end to end: the host claims jobs through the queue component and
//! runs them in worker components, against a real redis-server. `worker` is the shipped
//! example worker (components/example-worker); `hostile` is the test-only probe, whose
//! handler loops, allocates without bound, traps or sleeps on demand.

use std::time::{Duration, Instant};

use redwasm_tests::{TestHost, client, hardened_redis};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WASM_DIR: &str = env!("REDWASM_TEST_COMPONENTS_DIR");

/// Queue `work` → the example worker (4 at once); queue `poison` → the hostile probe (one at
/// a time, 32 MiB of memory, 300 ms drain, outbound HTTP to 127.0.0.1).
fn manifest() -> String {
    let wasm = |file: &str| serde_json::to_string(&format!("{WASM_DIR}/{file}")).unwrap();
    let component = |id: &str, file: &str, tool: &str| {
        // The hostile probe may also reach HTTP servers on 127.0.0.1 (its `fetch` jobs).
        let http = if id == "hostile" {
            ", \"http://127.0.0.1:*\""
        } else {
            ""
        };
        format!(
            "[component.{id}]\nsource = {}\nallowed_outbound_hosts = [\"{{{{ redis_address }}}}\"{http}]\n\
             [component.{id}.variables]\nredis_address = \"{{{{ redis_address }}}}\"\n\
             [component.{id}.tool.redwasm]\n{tool}\n",
            wasm(file)
        )
    };
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"workers\"\n\n\
         [[application.tool.redwasm.queue_trigger]]\nqueue = \"work\"\ncomponent = \"worker\"\n\
         concurrency = 4\nlease_ms = 2000\n\n\
         [[application.tool.redwasm.queue_trigger]]\nqueue = \"poison\"\ncomponent = \"hostile\"\n\
         concurrency = 1\nlease_ms = 2000\ndrain_ms = 300\n\n\
         [variables]\nredis_address = {{ default = \"redis://127.0.0.1:6379\" }}\n\n\
         [[trigger.http]]\nroute = \"/v1/queues/...\"\ncomponent = \"queue\"\n\n{}\n{}\n{}",
        component("queue", "redwasm_queue.wasm", ""),
        component("worker", "redwasm_example_worker.wasm", ""),
        component(
            "hostile",
            "redwasm_probe.wasm",
            "max_memory_bytes = 33554432"
        ),
    )
}

struct Workers {
    host: TestHost,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Workers {
    async fn start() -> Workers {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workers.toml");
        std::fs::write(&path, manifest()).unwrap();
        let host = TestHost::start_on(hardened_redis(), |opts| opts.manifest = path.clone()).await;
        Workers {
            host,
            http: client(),
            _dir: dir,
        }
    }

    async fn enqueue(&self, queue: &str, job: Value) -> String {
        let response = self
            .http
            .post(self.host.url(&format!("/v1/queues/{queue}/jobs")))
            .json(&job)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    async fn job(&self, queue: &str, id: &str) -> Value {
        let response = self
            .http
            .get(self.host.url(&format!("/v1/queues/{queue}/jobs/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Polls the job until `done` says so (at most `limit`); returns it.
    async fn wait_for(
        &self,
        queue: &str,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.job(queue, id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job never got there: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, queue: &str, id: &str) -> Value {
        self.wait_for(queue, id, Duration::from_secs(10), |job| {
            matches!(
                job["status"].as_str(),
                Some("completed" | "dead" | "cancelled")
            )
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_run_in_the_worker_component() {
    let w = Workers::start().await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            w.enqueue(
                "work",
                json!({"type": "checksum", "payload": {"text": format!("doc-{n}"), "rounds": 1000, "record": "done"}}),
            )
            .await,
        );
    }
    for id in &ids {
        let job = w.finished("work", id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["result"]["rounds"], 1000);
        assert_eq!(job["result"]["fnv64"].as_str().unwrap().len(), 16);
    }
    // The worker recorded each completion in its own namespace.
    let mut raw = w.host.raw_redis().await;
    let done: u64 = redis::cmd("SCARD")
        .arg("worker:done")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(done, 20);
    // A failing job is retried, then dead with its reason.
    let id = w
        .enqueue(
            "work",
            json!({"type": "fail", "payload": {"message": "smtp down"}, "max_attempts": 2, "backoff": {"type": "fixed", "base_ms": 10}}),
        )
        .await;
    let job = w.finished("work", &id).await;
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_u64()),
        (Some("dead"), Some(2))
    );
    assert_eq!(job["error"], "smtp down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_job_starts_on_time_without_polling() {
    let w = Workers::start().await;
    let id = w
        .enqueue(
            "work",
            json!({"type": "echo", "payload": 1, "delay_ms": 400}),
        )
        .await;
    let job = w.finished("work", &id).await;
    let due = job["created_ms"].as_u64().unwrap() + 400;
    let started = job["started_ms"].as_u64().unwrap();
    assert!(
        started >= due && started - due < 100,
        "due at {due}, started {} ms late",
        started.saturating_sub(due)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_jobs_are_contained_and_the_worker_stays_healthy() {
    let w = Workers::start().await;
    for (kind, reason, timeout_ms) in [
        ("loop", "timeout", 300),
        ("alloc", "memory", 5000),
        ("trap", "trap", 5000),
    ] {
        let started = Instant::now();
        let id = w
            .enqueue(
                "poison",
                json!({"type": kind, "payload": {}, "max_attempts": 1, "timeout_ms": timeout_ms}),
            )
            .await;
        let job = w.finished("poison", &id).await;
        assert_eq!(job["status"], "dead", "{kind}: {job}");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(reason), "{kind}: error {error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{kind}: {:?}",
            started.elapsed()
        );
        // The next job on the same (single-slot) worker succeeds.
        let ok = w
            .enqueue("poison", json!({"type": "ok", "payload": {}}))
            .await;
        let job = w.finished("poison", &ok).await;
        assert_eq!(job["status"], "completed", "after {kind}: {job}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_an_active_job_stops_its_handler() {
    let w = Workers::start().await;
    let id = w
        .enqueue(
            "poison",
            json!({"type": "loop", "payload": {}, "timeout_ms": 60000}),
        )
        .await;
    w.wait_for("poison", &id, Duration::from_secs(5), |job| {
        job["status"] == "active"
    })
    .await;
    let response = w
        .http
        .delete(w.host.url(&format!("/v1/queues/poison/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The only slot frees as soon as the host sees the cancel (its next lease renewal):
    // the looping handler was stopped, not left running.
    let started = Instant::now();
    let ok = w
        .enqueue("poison", json!({"type": "ok", "payload": {}}))
        .await;
    let job = w.finished("poison", &ok).await;
    assert_eq!(job["status"], "completed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.job("poison", &id).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_gives_unfinished_leases_back_without_spending_the_attempt() {
    let w = Workers::start().await;
    let id = w
        .enqueue(
            "poison",
            json!({"type": "sleep", "payload": {"ms": 5000}, "timeout_ms": 60000}),
        )
        .await;
    w.wait_for("poison", &id, Duration::from_secs(5), |job| {
        job["status"] == "active"
    })
    .await;
    let Workers {
        mut host,
        http,
        _dir,
    } = w;
    let mut raw = host.raw_redis().await;
    let started = Instant::now();
    let reports = host.stop_with_reports().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain took {:?}",
        started.elapsed()
    );
    assert_eq!(
        reports.iter().map(|r| r.released).sum::<u64>(),
        1,
        "{reports:?}"
    );
    drop(http);
    let status: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(format!("queue:q{{poison}}:j:{id}"))
        .arg("status")
        .arg("attempts")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(status, [Some("waiting".to_string()), Some("0".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedules_fire_through_the_trigger() {
    let w = Workers::start().await;
    let response = w
        .http
        .put(w.host.url("/v1/queues/work/schedules/heartbeat"))
        .json(&json!({"every_ms": 200, "job": {"type": "echo", "payload": {"beat": true}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The idle trigger sleeps until the next tick (the claim reports it) and fires it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats: Value = w
            .http
            .get(w.host.url("/v1/queues/work/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["processed_total"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job reaches outbound HTTP through the same capability as an HTTP request: allowed hosts
/// answer, others are denied before the network and the job fails with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_make_outbound_http_requests_under_the_allow_list() {
    let upstream = redwasm_tests::Upstream::start().await;
    let w = Workers::start().await;
    let id = w
        .enqueue(
            "poison",
            json!({"type": "fetch", "payload": {"url": upstream.url("/hello")}}),
        )
        .await;
    let job = w.finished("poison", &id).await;
    assert_eq!(job["status"], "completed", "{job}");
    let result: Value = match &job["result"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(result["status"], 200, "{job}");
    assert_eq!(result["body"], "Hello, world!", "{job}");

    // `localhost` is not in the list (only 127.0.0.1 is): denied, nothing sent.
    let served = upstream.requests.load(std::sync::atomic::Ordering::Relaxed);
    let denied = w
        .enqueue(
            "poison",
            json!({"type": "fetch", "max_attempts": 1, "payload": {
                "url": format!("http://localhost:{}/hello", upstream.port)
            }}),
        )
        .await;
    let job = w.finished("poison", &denied).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("HttpRequestDenied"),
        "{job}"
    );
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::Relaxed),
        served
    );
}
