//! Crash safety of the queue-poll trigger: `redwasm worker` as a child process runs jobs
//! whose handler (the example worker) records each completion in Redis; the test SIGKILLs
//! the worker twice mid-run and restarts it, then restarts redis-server itself (AOF on,
//! `appendfsync always`) mid-run. Every job must complete at least once; none may be lost or
//! left stuck. Jobs are enqueued through the embedding API (`redwasm::embed::Queue`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redwasm::embed::Redwasm;
use redwasm_testkit::RedisServer;
use serde_json::{Value, json};

const COMPONENTS: &str = env!("REDWASM_COMPONENTS_DIR");

fn manifest(dir: &Path) -> PathBuf {
    let wasm = |file: &str| serde_json::to_string(&format!("{COMPONENTS}/{file}")).unwrap();
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"crash\"\n\n\
         [[application.tool.redwasm.queue_trigger]]\nqueue = \"crash\"\ncomponent = \"worker\"\n\
         concurrency = 16\nlease_ms = 1000\nbatch = 32\ndrain_ms = 100\n\n\
         [variables]\nredis_address = {{ default = \"redis://127.0.0.1:6379\" }}\n\n\
         [[trigger.http]]\nroute = \"/v1/queues/...\"\ncomponent = \"queue\"\n\n\
         [component.queue]\nsource = {}\nallowed_outbound_hosts = [\"{{{{ redis_address }}}}\"]\n\
         [component.queue.variables]\nredis_address = \"{{{{ redis_address }}}}\"\n\n\
         [component.worker]\nsource = {}\nallowed_outbound_hosts = [\"{{{{ redis_address }}}}\"]\n\
         [component.worker.variables]\nredis_address = \"{{{{ redis_address }}}}\"\n",
        wasm("redwasm_queue.wasm"),
        wasm("redwasm_example_worker.wasm"),
    );
    let path = dir.join("workers.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn_worker(manifest: &Path, redis_url: &str, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_redwasm"))
        .args(["worker", "--manifest"])
        .arg(manifest)
        .args(["--redis-url", redis_url])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start `redwasm worker`")
}

fn done(redis: &RedisServer, set: &str) -> u64 {
    let Ok(client) = redis::Client::open(redis.url()) else {
        return 0;
    };
    let Ok(mut conn) = client.get_connection() else {
        return 0;
    };
    redis::cmd("SCARD")
        .arg(format!("worker:{set}"))
        .query(&mut conn)
        .unwrap_or(0)
}

/// Polls until `set` holds at least `n` job ids; panics after `limit` with the worker's log.
async fn wait_done(redis: &RedisServer, set: &str, n: u64, limit: Duration, log: &Path) {
    let deadline = Instant::now() + limit;
    loop {
        let count = done(redis, set);
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {n} jobs done after {limit:?}; worker log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn jobs(n: usize, set: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"type": "checksum", "max_attempts": 20, "backoff": {"type": "fixed", "base_ms": 10},
                   "payload": {"text": format!("job-{i}"), "rounds": 200000, "record": set}})
        })
        .collect()
}

async fn assert_nothing_stuck(queue: &redwasm::embed::Queue) {
    let stats = queue.stats("crash").await.unwrap();
    for state in ["waiting", "delayed", "active", "failed", "dead"] {
        assert_eq!(stats[state], 0, "{state}: {stats}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_job_is_lost_when_the_worker_or_redis_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis =
        RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let manifest = manifest(dir.path());
    let log = dir.path().join("worker.log");
    let embedded = Redwasm::connect(&redis.url()).await.unwrap();
    let queue = embedded.queue().await.unwrap();

    // Part 1: the worker process is killed twice mid-run.
    for batch in jobs(2000, "done").chunks(500) {
        queue.enqueue_batch("crash", batch).await.unwrap();
    }
    let mut worker = spawn_worker(&manifest, &redis.url(), &log);
    for kill_at in [300, 1000] {
        wait_done(&redis, "done", kill_at, Duration::from_secs(60), &log).await;
        worker.kill().unwrap(); // SIGKILL: no drain, leases left behind
        worker.wait().unwrap();
        assert!(
            done(&redis, "done") < 2000,
            "the kill came too late to test anything"
        );
        worker = spawn_worker(&manifest, &redis.url(), &log);
    }
    wait_done(&redis, "done", 2000, Duration::from_secs(90), &log).await;
    // Every job completed (the leases of the killed runs expired and were claimed again).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = queue.stats("crash").await.unwrap();
        if stats["active"] == 0 && stats["waiting"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs left: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_nothing_stuck(&queue).await;
    let processed = queue.stats("crash").await.unwrap()["processed_total"]
        .as_u64()
        .unwrap();
    assert!(processed >= 2000, "processed_total {processed}");

    // Part 2: redis-server itself is killed and restarted mid-run (AOF, fsync always).
    for batch in jobs(1000, "done2").chunks(500) {
        queue.enqueue_batch("crash", batch).await.unwrap();
    }
    wait_done(&redis, "done2", 200, Duration::from_secs(60), &log).await;
    redis.stop();
    redis.restart();
    wait_done(&redis, "done2", 1000, Duration::from_secs(90), &log).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match queue.stats("crash").await {
            Ok(stats) if stats["active"] == 0 && stats["waiting"] == 0 => break,
            other => assert!(Instant::now() < deadline, "jobs left: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_nothing_stuck(&queue).await;
    worker.kill().unwrap();
    worker.wait().unwrap();
}
