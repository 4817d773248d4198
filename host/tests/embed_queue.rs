//! The queue embedding API against a real redis-server: enqueue, status, cancel, stats, and
//! a worker loop whose handler is a Rust closure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redwasm::embed::{AttemptOutcome, FnHandler, JobAttempt, QueueError, Redwasm, WorkerOptions};
use redwasm_testkit::RedisServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closure_worker_runs_jobs_with_the_triggers_guarantees() {
    let redis = RedisServer::start();
    let redwasm = Redwasm::connect(&redis.url()).await.unwrap();
    let queue = Arc::new(redwasm.queue().await.unwrap());

    let jobs: Vec<_> = (0..10)
        .map(|n| json!({"type": "add", "payload": {"n": n}}))
        .collect();
    let ids: Vec<String> = queue
        .enqueue_batch("math", &jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    // One that runs past its timeout, and one cancelled before it runs.
    let slow = queue
        .enqueue(
            "math",
            &json!({"type": "slow", "payload": {}, "timeout_ms": 200, "max_attempts": 1}),
        )
        .await
        .unwrap()
        .id;
    let cancelled = queue
        .enqueue(
            "math",
            &json!({"type": "add", "payload": {"n": 99}, "delay_ms": 60000}),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        queue.cancel("math", &cancelled).await.unwrap()["status"],
        "cancelled"
    );
    assert!(matches!(
        queue.cancel("math", &cancelled).await,
        Err(QueueError::Conflict(status)) if status == "cancelled"
    ));

    let sum = Arc::new(AtomicU64::new(0));
    let handler = {
        let sum = sum.clone();
        Arc::new(FnHandler(move |job: JobAttempt| {
            let sum = sum.clone();
            async move {
                if job.job_type == "slow" {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let n = job.payload["n"].as_u64().unwrap_or(0);
                sum.fetch_add(n, Ordering::SeqCst);
                AttemptOutcome::Completed(Some(json!({ "doubled": n * 2 })))
            }
        }))
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let queue = queue.clone();
        let options = WorkerOptions {
            concurrency: 4,
            ..WorkerOptions::new("math")
        };
        tokio::spawn(async move {
            redwasm
                .run_worker(queue, handler, options, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = queue.stats("math").await.unwrap();
        if stats["processed_total"] == 10 && stats["dead"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sum.load(Ordering::SeqCst), 45);
    let first = queue.get("math", &ids[3]).await.unwrap().unwrap();
    assert_eq!(first["result"], json!({"doubled": 6}));
    let slow = queue.get("math", &slow).await.unwrap().unwrap();
    assert!(
        slow["error"].as_str().unwrap().starts_with("timeout"),
        "{slow}"
    );
    let _ = stop.send(());
    let report = worker.await.unwrap();
    assert_eq!((report.completed, report.failed), (10, 1));
}
