//! The queue section: batch enqueue and no-op jobs end to end through the queue-poll
//! trigger's loop, redwasm (the queue component and the example worker component, in
//! process) against a native redis-rs baseline running the same Lua scripts with the same
//! arguments on the same redis-server, without wasm.
//!
//! - Batch enqueue: `Queue::enqueue_batch` of `--queue-batch` jobs per call vs `EVALSHA
//!   enqueue.lua` with the same job JSON.
//! - End to end: `--queue-jobs` no-op jobs preloaded, then the trigger's loop
//!   (`Redwasm::run_worker` with the example worker component: claim through the queue
//!   component, `handle` in the worker, acks batched through the queue component) vs a
//!   native loop (claim.lua in batches, each batch acked in one ack.lua call) until all are
//!   done.
//! - Claim-to-ack p99 of each, from the queue's own run-time histogram (`GET /stats`).

use std::collections::HashMap;

use super::*;

use redwasm::embed::{Redwasm, WorkerOptions};
use tokio::task::JoinSet;

const ENQUEUE_LUA: &str = include_str!("../../components/queue/lua/enqueue.lua");
const CLAIM_LUA: &str = include_str!("../../components/queue/lua/claim.lua");
const ACK_LUA: &str = include_str!("../../components/queue/lua/ack.lua");
const STATS_LUA: &str = include_str!("../../components/queue/lua/stats.lua");
/// Jobs claimed per round trip, both sides.
const CLAIM_BATCH: usize = 64;
/// Jobs in flight at once, both sides.
const CONCURRENCY: usize = 64;

struct Scripts {
    enqueue: String,
    claim: String,
    ack: String,
    stats: String,
}

async fn load(redis: &mut MultiplexedConnection, source: &str) -> anyhow::Result<String> {
    Ok(redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(source)
        .query_async(redis)
        .await?)
}

fn job_json(i: usize) -> serde_json::Value {
    serde_json::json!({"type": "noop", "payload": {"i": i}})
}

/// What the component's enqueue sends for one job (`NewJob::to_script_json`).
fn script_json(i: usize) -> String {
    serde_json::json!({
        "id": format!("{:032x}", rand::random::<u128>()),
        "type": "noop",
        "payload": format!("{{\"i\":{i}}}"),
        "priority": 0,
        "run_at_ms": 0,
        "max_attempts": 3,
        "timeout_ms": 30000,
        "backoff": "{\"base_ms\":1000,\"max_ms\":3600000,\"type\":\"exponential\"}",
        "idem": "",
        "correlation": "",
    })
    .to_string()
}

async fn native_enqueue(
    redis: &mut MultiplexedConnection,
    scripts: &Scripts,
    base: &str,
    count: usize,
) -> anyhow::Result<()> {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&scripts.enqueue)
        .arg(1)
        .arg(base)
        .arg(now_ms())
        .arg(86_400_000)
        .arg(10_000);
    for i in 0..count {
        cmd.arg(script_json(i));
    }
    let _: redis::Value = cmd.query_async(redis).await?;
    Ok(())
}

/// The native worker loop: claim in batches of `CLAIM_BATCH`, then ack each batch in one
/// call (what the trigger's acker does under load), the next claim overlapping that ack.
async fn native_drain(
    redis: MultiplexedConnection,
    scripts: Arc<Scripts>,
    base: &str,
    total: usize,
) -> anyhow::Result<()> {
    let mut done = 0;
    let mut acking: JoinSet<anyhow::Result<usize>> = JoinSet::new();
    while done < total {
        while acking.len() >= 2 {
            done += acking
                .join_next()
                .await
                .transpose()?
                .transpose()?
                .unwrap_or(0);
        }
        let mut conn = redis.clone();
        let reply: Vec<redis::Value> = redis::cmd("EVALSHA")
            .arg(&scripts.claim)
            .arg(1)
            .arg(base)
            .arg(now_ms())
            .arg(CLAIM_BATCH)
            .arg(30_000)
            .arg("native")
            .arg(format!("{:032x}", rand::random::<u128>()))
            .arg(10_000)
            .arg(1000)
            .arg(10_000)
            .query_async(&mut conn)
            .await?;
        // next due, due schedules (none here), then id, lease, job per claimed job.
        let jobs: Vec<(String, String)> = reply[2..]
            .chunks(3)
            .filter_map(|c| match (&c[0], &c[1]) {
                (redis::Value::BulkString(id), redis::Value::BulkString(lease)) => Some((
                    String::from_utf8_lossy(id).into_owned(),
                    String::from_utf8_lossy(lease).into_owned(),
                )),
                _ => None,
            })
            .collect();
        if jobs.is_empty() {
            match acking.join_next().await {
                Some(acked) => done += acked??,
                None => bail!("native: nothing to claim with {done} of {total} done"),
            }
            continue;
        }
        let scripts = scripts.clone();
        let base = base.to_string();
        acking.spawn(async move {
            // The jobs themselves do nothing; then the same ack the trigger sends.
            let mut ack = redis::cmd("EVALSHA");
            ack.arg(&scripts.ack)
                .arg(1)
                .arg(&base)
                .arg(now_ms())
                .arg(1000)
                .arg(86_400_000)
                .arg(10_000)
                .arg(1000);
            for (id, lease) in &jobs {
                ack.arg(id).arg(lease).arg("{\"echo\":null}");
            }
            let _: redis::Value = ack.query_async(&mut conn).await?;
            Ok(jobs.len())
        });
    }
    while let Some(acked) = acking.join_next().await {
        acked??;
    }
    Ok(())
}

/// The run-time p99 (claim → ack, ms) from a queue's histogram, as `GET /stats` computes it.
async fn native_run_p99(
    redis: &mut MultiplexedConnection,
    scripts: &Scripts,
    base: &str,
) -> anyhow::Result<u64> {
    let reply: Vec<redis::Value> = redis::cmd("EVALSHA")
        .arg(&scripts.stats)
        .arg(1)
        .arg(base)
        .query_async(redis)
        .await?;
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::Int(n) => n.to_string(),
        _ => String::new(),
    };
    let pairs = text(&reply[7]).parse::<usize>().unwrap_or(0);
    let mut run = Vec::new();
    let mut i = 8 + 2 * pairs;
    while i + 1 < reply.len() {
        if let Some(b) = text(&reply[i])
            .strip_prefix('r')
            .and_then(|b| b.parse().ok())
        {
            run.push((b, text(&reply[i + 1]).parse().unwrap_or(0)));
        }
        i += 2;
    }
    Ok(redwasm_queue::queue::percentile(&run, 99))
}

/// Microseconds redis-server has spent in `EVALSHA` so far (`INFO commandstats`).
async fn evalsha_usec(redis: &mut MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Runs the section; returns its summary rows.
pub(crate) async fn section(
    cli: &Cli,
    settings: &Settings,
    workspace: &Path,
    redis_url: &str,
    mut redis: MultiplexedConnection,
) -> anyhow::Result<Summary> {
    let jobs = cli
        .queue_jobs
        .unwrap_or(if cli.quick { 2_000 } else { 20_000 });
    let batch = cli.queue_batch;
    println!();
    println!(
        "== Queue: batch enqueue ({batch} jobs per call) and {jobs} no-op jobs end to end \
         (claim batch {CLAIM_BATCH}, {CONCURRENCY} in flight), {} rounds ==",
        settings.rounds
    );
    let scripts = Arc::new(Scripts {
        enqueue: load(&mut redis, ENQUEUE_LUA).await?,
        claim: load(&mut redis, CLAIM_LUA).await?,
        ack: load(&mut redis, ACK_LUA).await?,
        stats: load(&mut redis, STATS_LUA).await?,
    });
    let redwasm = Redwasm::connect(redis_url).await?;
    let queue = Arc::new(redwasm.queue().await?);
    let worker_wasm =
        workspace.join("target/wasm/wasm32-wasip2/release/redwasm_example_worker.wasm");
    let worker = Arc::new(
        redwasm
            .worker_component("bench-worker", &worker_wasm, HashMap::new())
            .await?,
    );
    let batch_jobs: Vec<serde_json::Value> = (0..batch).map(job_json).collect();

    let (mut enqueue_ratios, mut e2e_ratios) = (Vec::new(), Vec::new());
    let (mut host_e2e, mut native_e2e) = (Vec::new(), Vec::new());
    let (mut host_enq, mut native_enq) = (Vec::new(), Vec::new());
    let (mut host_p99, mut native_p99) = (Vec::new(), Vec::new());
    let (mut host_script_us, mut native_script_us) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        let q = format!("e2e{round}");
        let host_base = format!("queue:q{{{q}}}:");
        let native_base = format!("nq:q{{{q}}}:");
        // Batch enqueue: the same number of jobs each side, order alternating.
        let calls = jobs.div_ceil(batch);
        let mut rates = [0.0f64; 2];
        for side in round_order(2, round) {
            let started = Instant::now();
            for _ in 0..calls {
                if side == 0 {
                    queue.enqueue_batch(&q, &batch_jobs).await?;
                } else {
                    native_enqueue(&mut redis, &scripts, &native_base, batch).await?;
                }
            }
            rates[side] = (calls * batch) as f64 / started.elapsed().as_secs_f64();
        }
        host_enq.push(rates[0]);
        native_enq.push(rates[1]);
        enqueue_ratios.push(rates[0] / rates[1]);

        // End to end: drain what was just enqueued.
        let total = calls * batch;
        let mut rates = [0.0f64; 2];
        for side in round_order(2, round) {
            let started = Instant::now();
            let script_before = evalsha_usec(&mut redis).await?;
            if side == 0 {
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let options = WorkerOptions {
                    concurrency: CONCURRENCY,
                    batch: CLAIM_BATCH as u32,
                    ..WorkerOptions::new(&q)
                };
                let loop_task = {
                    let (queue, worker) = (queue.clone(), worker.clone());
                    let redwasm = &redwasm;
                    async move {
                        redwasm
                            .run_worker(queue, worker, options, async {
                                let _ = stopped.await;
                            })
                            .await
                    }
                };
                let watch = async {
                    loop {
                        let stats = queue.stats(&q).await?;
                        if stats["processed_total"].as_u64().unwrap_or(0) as usize >= total {
                            let _ = stop.send(());
                            return anyhow::Ok(());
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                let (report, watched) = tokio::join!(loop_task, watch);
                watched?;
                if report.completed as usize != total {
                    bail!("host: {} of {total} completed", report.completed);
                }
                rates[0] = total as f64 / started.elapsed().as_secs_f64();
                let script_us = evalsha_usec(&mut redis).await? - script_before;
                host_script_us.push(script_us as f64 / total as f64);
                let stats = queue.stats(&q).await?;
                host_p99.push(stats["latency_ms"]["run"]["p99"].as_u64().unwrap_or(0) as f64);
            } else {
                native_drain(redis.clone(), scripts.clone(), &native_base, total).await?;
                rates[1] = total as f64 / started.elapsed().as_secs_f64();
                let script_us = evalsha_usec(&mut redis).await? - script_before;
                native_script_us.push(script_us as f64 / total as f64);
                native_p99.push(native_run_p99(&mut redis, &scripts, &native_base).await? as f64);
            }
        }
        host_e2e.push(rates[0]);
        native_e2e.push(rates[1]);
        e2e_ratios.push(rates[0] / rates[1]);
        println!(
            "  round {}: enqueue {:.0} vs {:.0} jobs/s; end to end {:.0} vs {:.0} jobs/s \
             (redwasm vs native)",
            round + 1,
            host_enq[round],
            native_enq[round],
            rates[0],
            rates[1]
        );
        let _: () = redis::cmd("DEL")
            .arg(&host_base)
            .query_async(&mut redis)
            .await?;
    }
    let enqueue = Ratio::per_round(&enqueue_ratios);
    let e2e = Ratio::per_round(&e2e_ratios);
    println!(
        "  batch enqueue: redwasm {:.0} jobs/s, native {:.0} jobs/s (medians; goal ≥ 50 000)",
        median(&host_enq),
        median(&native_enq)
    );
    println!(
        "  no-op jobs end to end: redwasm {:.0} jobs/s, native {:.0} jobs/s (medians; goal ≥ 25 000 and ≥ 0.8x)",
        median(&host_e2e),
        median(&native_e2e)
    );
    println!(
        "  redis-server time in scripts per job (INFO commandstats): redwasm {:.1} µs, native {:.1} µs (medians)",
        median(&host_script_us),
        median(&native_script_us)
    );
    println!(
        "  claim-to-ack p99 (queue histogram, bucket upper bound): redwasm {:.0} ms, native {:.0} ms (medians)",
        median(&host_p99),
        median(&native_p99)
    );
    if std::env::var_os("BENCH_QUEUE_COMMANDSTATS").is_some() {
        // Where redis-server's time went, by command (scripts' inner commands included).
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut redis)
            .await?;
        let mut rows: Vec<(u64, String)> = info
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let usec = rest
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("usec="))?
                    .parse()
                    .ok()?;
                Some((usec, format!("{name} ({rest})")))
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        for (_, row) in rows.iter().take(14) {
            println!("  commandstats: {row}");
        }
    }
    Ok(vec![
        (
            "queue batch enqueue jobs/s, redwasm / native".to_string(),
            enqueue,
            format!("redwasm {:.0}/s", median(&host_enq)),
        ),
        (
            "queue no-op jobs end to end/s, redwasm / native".to_string(),
            e2e,
            format!("redwasm {:.0}/s", median(&host_e2e)),
        ),
    ])
}
