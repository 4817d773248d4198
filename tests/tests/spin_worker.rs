//! The queue under Spin 4.0.2, unchanged `.wasm` files: `spin up` on the workspace's
//! `spin.toml` serves the queue component, and its `[[trigger.redis]]` fires the example
//! worker on the notification every enqueue publishes; the worker drains the due jobs through
//! the queue's own Lua. Spin is `$SPIN_BIN`, `../shared/tools/spin` next to the workspace, or
//! `spin` on `PATH`; without it the test says it was skipped.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redwasm_tests::{RedisServer, client, workspace_manifest};
use serde_json::{Value, json};

fn spin_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SPIN_BIN") {
        return Some(PathBuf::from(bin));
    }
    let workspace = workspace_manifest().parent()?.to_path_buf();
    let shared = workspace.join("../shared/tools/spin");
    if shared.is_file() {
        return Some(shared);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// `spin up` in its own process group, so the trigger processes it starts die with it.
struct Spin(Child);

impl Drop for Spin {
    fn drop(&mut self) {
        // `--` so the negative pid (the whole group) is not read as an option.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spins_redis_trigger_runs_the_worker() {
    let Some(spin) = spin_binary() else {
        eprintln!("skipped: no Spin binary ($SPIN_BIN, ../shared/tools/spin or spin on PATH)");
        return;
    };
    let redis = RedisServer::start();
    let logs = tempfile::tempdir().unwrap();
    let port = redwasm_testkit::free_port();
    let _spin = Spin(
        Command::new(&spin)
            .arg("up")
            .arg("--from")
            .arg(workspace_manifest())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--log-dir")
            .arg(logs.path())
            .env("SPIN_VARIABLE_REDIS_ADDRESS", redis.url())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start spin up"),
    );
    let http = client();
    let base = format!("http://127.0.0.1:{port}/v1/queues/work");
    // Spin compiles the components first.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{base}/stats")).send().await
            && response.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spin up did not serve within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let jobs: Vec<Value> = (0..20)
        .map(|i| json!({"type": "checksum", "payload": {"text": format!("s{i}"), "rounds": 100}}))
        .collect();
    let created: Value = http
        .post(format!("{base}/jobs/batch"))
        .json(&jobs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 20);
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        loop {
            let job: Value = http
                .get(format!("{base}/jobs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if job["status"] == "completed" {
                assert_eq!(job["result"]["rounds"], 100, "{job}");
                break;
            }
            assert!(Instant::now() < deadline, "not completed under Spin: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
