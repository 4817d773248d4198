//! The sessions and progress section: request latency through the `redwasm` host (a child
//! process) for what the seeds set targets on: 10 000 sessions created then read (create
//! < 50 ms, read < 10 ms), and progress updates (p99 < 3 ms). Closed loop over
//! [`CONNECTIONS`] keep-alive connections; each request's latency is recorded.

use super::*;

/// Keep-alive connections the requests are spread over.
const CONNECTIONS: usize = 8;

/// Runs `requests` over [`CONNECTIONS`] connections (request `i` built by `make(i)`);
/// returns the latency histogram (ns) and the responses' bodies in order of `i`.
async fn run(
    addr: SocketAddr,
    requests: usize,
    make: Arc<dyn Fn(usize) -> Req + Send + Sync>,
    expect: u16,
) -> anyhow::Result<(Histogram<u64>, Vec<Bytes>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let make = make.clone();
        tasks.spawn(async move {
            let mut conn = HttpConn::connect(addr).await?;
            let mut hist = new_hist();
            let mut bodies = Vec::new();
            for i in (c..requests).step_by(CONNECTIONS) {
                let request = make(i);
                let started = Instant::now();
                let response = conn.send(&request).await?;
                hist.record(started.elapsed().as_nanos().max(1) as u64)?;
                anyhow::ensure!(
                    response.status().as_u16() == expect,
                    "{} {}: {}",
                    request.path,
                    response.status(),
                    String::from_utf8_lossy(response.body())
                );
                bodies.push((i, response.into_body()));
            }
            anyhow::Ok((hist, bodies))
        });
    }
    let mut hist = new_hist();
    let mut bodies = Vec::with_capacity(requests);
    while let Some(done) = tasks.join_next().await {
        let (h, b) = done??;
        hist.add(h)?;
        bodies.extend(b);
    }
    bodies.sort_by_key(|(i, _)| *i);
    Ok((hist, bodies.into_iter().map(|(_, b)| b).collect()))
}

fn ms(hist: &Histogram<u64>, q: f64) -> f64 {
    hist.value_at_quantile(q) as f64 / 1e6
}

pub(crate) async fn section(
    cli: &Cli,
    workspace: &Path,
    bin_dir: &Path,
    redis_url: &str,
) -> anyhow::Result<Summary> {
    let sessions = if cli.quick { 1000 } else { 10_000 };
    let updates = if cli.quick { 1000 } else { 5000 };
    println!();
    println!(
        "== Sessions and progress: {sessions} sessions created then read, {updates} progress \
         updates, {CONNECTIONS} connections, through the redwasm host =="
    );
    let (_host, addr) = spawn_host(workspace, bin_dir, redis_url, "redwasm-sessions.log").await?;

    let run_id = format!("{:x}", rand::random::<u32>());
    let user = run_id.clone();
    let create: Arc<dyn Fn(usize) -> Req + Send + Sync> = Arc::new(move |i| {
        let body = serde_json::json!({
            "user_id": format!("{user}-{}", i % 1000),
            "data": {"cart": [i], "theme": "dark"},
            "ttl_s": 3600,
        });
        Req::post_json("/v1/sessions", body.to_string())
    });
    let (create_hist, bodies) = run(addr, sessions, create, 201).await?;
    let ids: Arc<Vec<String>> = Arc::new(
        bodies
            .iter()
            .map(|b| {
                serde_json::from_slice::<serde_json::Value>(b)
                    .ok()
                    .and_then(|v| v["session_id"].as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect(),
    );
    let read: Arc<dyn Fn(usize) -> Req + Send + Sync> = {
        let ids = ids.clone();
        Arc::new(move |i| Req::get(format!("/v1/sessions/{}", ids[i])))
    };
    let (read_hist, _) = run(addr, sessions, read, 200).await?;

    let entries = 100;
    let mut control = HttpConn::connect(addr).await?;
    for e in 0..entries {
        let body =
            serde_json::json!({"id": format!("bench-{run_id}-{e}"), "total_steps": 1_000_000});
        control
            .send(&Req::post_json("/v1/progress", body.to_string()))
            .await?;
    }
    let update: Arc<dyn Fn(usize) -> Req + Send + Sync> = Arc::new(move |i| {
        let body = serde_json::json!({"step": i / entries + 1});
        Req::post_json(
            format!("/v1/progress/bench-{run_id}-{}", i % entries),
            body.to_string(),
        )
    });
    let (update_hist, _) = run(addr, updates, update, 200).await?;

    for (name, hist, goal) in [
        ("session create", &create_hist, 50.0),
        ("session read", &read_hist, 10.0),
        ("progress update", &update_hist, 3.0),
    ] {
        println!(
            "  {name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} requests (seed target < {goal} ms)",
            ms(hist, 0.5),
            ms(hist, 0.99),
            hist.max() as f64 / 1e6,
            hist.len()
        );
    }
    let goal = |value: f64, limit: f64| Ratio::per_round(&[value / limit]);
    Ok(vec![
        (
            "session create p99 / 50 ms seed target".into(),
            goal(ms(&create_hist, 0.99), 50.0),
            format!("p99 {:.2} ms", ms(&create_hist, 0.99)),
        ),
        (
            "session read p99 / 10 ms seed target".into(),
            goal(ms(&read_hist, 0.99), 10.0),
            format!("p99 {:.2} ms", ms(&read_hist, 0.99)),
        ),
        (
            "progress update p99 / 3 ms seed target".into(),
            goal(ms(&update_hist, 0.99), 3.0),
            format!("p99 {:.2} ms", ms(&update_hist, 0.99)),
        ),
    ])
}
