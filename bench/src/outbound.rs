//! The outbound section: what a component's outbound HTTP and key-value calls cost through
//! the host, against native code doing the same I/O, in process.
//!
//! - Outbound GET: the test probe's worker export (`redwasm::embed`, job type `fetch`) makes
//!   [`CALL_WORK`] GETs in a row to a local hyper server per call, [`TASKS`] calls at once;
//!   native: a hyper-util pooled client does the same GETs from [`TASKS`] tasks. The TCP
//!   connections the server accepted are counted on each side (reuse shows as a handful, not
//!   one per request).
//! - Key-value: the probe's `kv` job does [`CALL_WORK`] rounds of `set` + `get` on its
//!   `default` store (one Redis hash, `HSET` + `HGET`); native: the same two commands on a
//!   multiplexed redis-rs connection, from [`TASKS`] tasks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::*;

use redwasm::embed::{AttemptOutcome, JobAttempt, JobHandler, Redwasm, WorkerComponent};
use tokio::task::JoinSet;

/// Requests (or set + get rounds) per component call, and per native task iteration.
const CALL_WORK: u64 = 50;
/// Concurrent calls on each side.
const TASKS: usize = 8;

fn attempt(job_type: &str, payload: serde_json::Value) -> JobAttempt {
    JobAttempt {
        id: "bench".into(),
        queue: "bench".into(),
        job_type: job_type.into(),
        payload,
        attempt: 1,
        max_attempts: 1,
        correlation_id: None,
        timeout: Duration::from_secs(60),
    }
}

/// Runs `calls` component calls of `job_type`, [`TASKS`] at once; returns operations/s.
async fn host_rate(
    worker: &Arc<WorkerComponent>,
    job_type: &str,
    payload: serde_json::Value,
    calls: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for t in 0..TASKS {
        let (worker, payload, job_type) = (worker.clone(), payload.clone(), job_type.to_string());
        let mine = calls / TASKS + usize::from(t < calls % TASKS);
        tasks.spawn(async move {
            for _ in 0..mine {
                match worker.handle(attempt(&job_type, payload.clone())).await {
                    AttemptOutcome::Completed(_) => {}
                    other => anyhow::bail!("{job_type}: {other:?}"),
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((calls as u64 * CALL_WORK) as f64 / started.elapsed().as_secs_f64())
}

/// Native GETs: `calls` × [`CALL_WORK`] requests from [`TASKS`] tasks on one pooled client.
async fn native_get_rate(url: &str, calls: usize) -> anyhow::Result<f64> {
    type Client = hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<Bytes>,
    >;
    let client: Client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let uri: http::Uri = url.parse()?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for t in 0..TASKS {
        let (client, uri) = (client.clone(), uri.clone());
        let mine = calls / TASKS + usize::from(t < calls % TASKS);
        tasks.spawn(async move {
            for _ in 0..mine as u64 * CALL_WORK {
                let response = client.get(uri.clone()).await?;
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::ensure!(body.as_ref() == b"Hello, world!", "unexpected body");
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((calls as u64 * CALL_WORK) as f64 / started.elapsed().as_secs_f64())
}

/// Native key-value: `calls` × [`CALL_WORK`] rounds of `HSET` + `HGET` from [`TASKS`] tasks.
async fn native_kv_rate(redis: &MultiplexedConnection, calls: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for t in 0..TASKS {
        let mut redis = redis.clone();
        let mine = calls / TASKS + usize::from(t < calls % TASKS);
        tasks.spawn(async move {
            for i in 0..mine as u64 * CALL_WORK {
                let key = format!("kv-{}", i % 64);
                let _: () = redis::cmd("HSET")
                    .arg("native:~kv:default")
                    .arg(&key)
                    .arg("value")
                    .query_async(&mut redis)
                    .await?;
                let _: Option<Vec<u8>> = redis::cmd("HGET")
                    .arg("native:~kv:default")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((calls as u64 * CALL_WORK) as f64 / started.elapsed().as_secs_f64())
}

pub(crate) async fn section(
    cli: &Cli,
    settings: &Settings,
    redis_url: &str,
    redis: MultiplexedConnection,
) -> anyhow::Result<Summary> {
    let calls = if cli.quick { 40 } else { 200 };
    println!();
    println!(
        "== Outbound: HTTP GET to a local server and key-value set+get, {CALL_WORK} per \
         component call, {TASKS} calls at once, {calls} calls per side per round, {} rounds ==",
        settings.rounds
    );
    let upstream = redwasm_tests::Upstream::start().await;
    let url = upstream.url("/hello");
    let redwasm = Redwasm::connect(redis_url)
        .await?
        .with_allowed_outbound_hosts([format!("http://127.0.0.1:{}", upstream.port)]);
    let probe = Path::new(redwasm_tests::TEST_COMPONENTS_DIR).join("redwasm_probe.wasm");
    let worker = Arc::new(
        redwasm
            .worker_component("bench-probe", &probe, HashMap::new())
            .await?,
    );
    let fetch = serde_json::json!({ "url": url, "n": CALL_WORK });
    let kv = serde_json::json!({ "n": CALL_WORK });
    // Warm-up: instances, pooled connections, scripts.
    host_rate(&worker, "fetch", fetch.clone(), TASKS).await?;
    host_rate(&worker, "kv", kv.clone(), TASKS).await?;
    native_get_rate(&url, TASKS).await?;
    native_kv_rate(&redis, TASKS).await?;

    let (mut get_ratios, mut kv_ratios) = (Vec::new(), Vec::new());
    let (mut host_get, mut native_get, mut host_kv, mut native_kv) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut host_conns, mut native_conns) = (0usize, 0usize);
    for round in 0..settings.rounds {
        let mut get = [0.0f64; 2];
        let mut kvs = [0.0f64; 2];
        for side in round_order(2, round) {
            let before = upstream.connections.load(Ordering::Relaxed);
            if side == 0 {
                get[0] = host_rate(&worker, "fetch", fetch.clone(), calls).await?;
                host_conns += upstream.connections.load(Ordering::Relaxed) - before;
                kvs[0] = host_rate(&worker, "kv", kv.clone(), calls).await?;
            } else {
                get[1] = native_get_rate(&url, calls).await?;
                native_conns += upstream.connections.load(Ordering::Relaxed) - before;
                kvs[1] = native_kv_rate(&redis, calls).await?;
            }
        }
        println!(
            "  round {}: GET {:.0} vs {:.0} req/s; key-value set+get {:.0} vs {:.0} rounds/s \
             (redwasm vs native)",
            round + 1,
            get[0],
            get[1],
            kvs[0],
            kvs[1]
        );
        host_get.push(get[0]);
        native_get.push(get[1]);
        host_kv.push(kvs[0]);
        native_kv.push(kvs[1]);
        get_ratios.push(get[0] / get[1]);
        kv_ratios.push(kvs[0] / kvs[1]);
    }
    let requests = settings.rounds as u64 * calls as u64 * CALL_WORK;
    println!(
        "  outbound GET: redwasm {:.0} req/s, native {:.0} req/s (medians; goal ≥ 0.8x); TCP \
         connections opened for {requests} requests per side: redwasm {host_conns}, native \
         {native_conns}",
        median(&host_get),
        median(&native_get)
    );
    println!(
        "  key-value set+get: redwasm {:.0} rounds/s, native HSET+HGET {:.0} rounds/s (medians)",
        median(&host_kv),
        median(&native_kv)
    );
    let get = Ratio::per_round(&get_ratios);
    let kv = Ratio::per_round(&kv_ratios);
    Ok(vec![
        (
            "outbound GET req/s, redwasm / native hyper client".to_string(),
            get,
            format!("redwasm {:.0}/s, goal ≥ 0.8x", median(&host_get)),
        ),
        (
            "key-value set+get rounds/s, redwasm / native redis-rs".to_string(),
            kv,
            format!("redwasm {:.0}/s", median(&host_kv)),
        ),
    ])
}
