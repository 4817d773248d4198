//! The SSE section: many open event streams through the host's fan-out.
//!
//! The `redwasm` host runs as a child process (so its memory is its own) on the workspace
//! `spin.toml`. The bench creates `--sse-entries` progress entries, opens `--sse-streams`
//! event streams spread evenly over them (each its own HTTP/1.1 connection), and reads:
//!
//! - host memory per open stream: the host's resident set (`VmRSS`) with every stream open,
//!   minus before any was opened, divided by the streams;
//! - update-to-client latency: updates to the first entries (enough that `--sse-receiving`
//!   streams receive each round), each carrying its send time in its message; every client
//!   records arrival minus send time. p50 / p99 over every delivery.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// Microseconds since the Unix epoch (the clock both sides of a delivery read).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What every client adds to.
struct Deliveries {
    latencies_us: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    opened: AtomicU64,
}

/// Opens one event stream of entry `id` and reads it until the body ends; every event whose
/// message carries a send time (`t:<µs>`) adds its latency.
async fn client(
    addr: SocketAddr,
    id: String,
    deliveries: Arc<Deliveries>,
    mut connecting: Option<tokio::sync::OwnedSemaphorePermit>,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(format!("/v1/progress/{id}/events"))
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(response.status() == 200, "status {}", response.status());
    let mut body = response.into_body();
    let mut opened = false;
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if !opened && event.contains("data: ") {
                opened = true;
                deliveries.opened.fetch_add(1, Ordering::Relaxed);
                connecting.take();
            }
            const MARK: &str = "\"message\":\"t:";
            if let Some(at) = event.find(MARK) {
                let digits: String = event[at + MARK.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(sent) = digits.parse::<u64>() {
                    let latency = now_us().saturating_sub(sent).max(1);
                    let _ = deliveries
                        .latencies_us
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .record(latency);
                    deliveries.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}

/// Opens `streams` event streams over `ids` (round robin), a bounded number connecting at a
/// time (`connecting`, each until its first event), as a real population of browsers would, not all in
/// the same millisecond; returns once all are open. Dropping the set closes them.
async fn open_streams(
    addr: SocketAddr,
    ids: &[String],
    streams: usize,
    connecting: usize,
    deliveries: Arc<Deliveries>,
) -> anyhow::Result<tokio::task::JoinSet<anyhow::Result<()>>> {
    let opened_before = deliveries.opened.load(Ordering::Relaxed) as usize;
    let mut clients = tokio::task::JoinSet::new();
    let connecting = Arc::new(tokio::sync::Semaphore::new(connecting.max(1)));
    for n in 0..streams {
        let permit = connecting.clone().acquire_owned().await?;
        let deliveries = deliveries.clone();
        let id = ids[n % ids.len()].clone();
        clients.spawn(async move {
            let result = client(addr, id, deliveries, Some(permit)).await;
            if let Err(error) = &result {
                eprintln!("  sse client: {error:#}");
            }
            result
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (deliveries.opened.load(Ordering::Relaxed) as usize) < opened_before + streams {
        if Instant::now() > deadline {
            bail!(
                "only {} of {streams} streams opened",
                deliveries.opened.load(Ordering::Relaxed) as usize - opened_before
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(clients)
}

pub(crate) async fn section(
    cli: &Cli,
    workspace: &Path,
    bin_dir: &Path,
    redis_url: &str,
) -> anyhow::Result<Summary> {
    let streams = cli.sse_streams.max(1);
    let entries = cli.sse_entries.clamp(1, streams);
    let per_entry = streams.div_ceil(entries);
    let receiving = cli.sse_receiving.clamp(1, streams);
    let updated_entries = receiving.div_ceil(per_entry).min(entries);
    let rounds = if cli.quick { 5 } else { 20 };
    println!();
    println!(
        "== SSE: {streams} open streams over {entries} progress entries ({per_entry} each), \
         {rounds} rounds of updates to {updated_entries} entries ({} streams receiving) ==",
        updated_entries * per_entry
    );
    let (host, addr) = spawn_host(workspace, bin_dir, redis_url, "redwasm-sse.log").await?;
    let pid = host.child.id();

    let mut control = HttpConn::connect(addr).await?;
    let run = format!("{:x}", rand::random::<u32>());
    let ids: Vec<String> = (0..entries).map(|i| format!("sse-{run}-{i}")).collect();
    for id in &ids {
        let body = serde_json::json!({"id": id, "total_steps": 1_000_000, "ttl_s": 3600});
        let response = control
            .send(&Req::post_json("/v1/progress", body.to_string()))
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "start {id}: {}",
            response.status()
        );
    }
    let deliveries = Arc::new(Deliveries {
        latencies_us: Mutex::new(new_hist()),
        delivered: AtomicU64::new(0),
        opened: AtomicU64::new(0),
    });
    // Warm-up: the same opening pattern on a small scale, then closed, so the instances the
    // opening needs (one per concurrent call) exist before the baseline: they are not
    // per-stream memory.
    let warm = open_streams(
        addr,
        &ids,
        2_000.min(streams),
        cli.sse_connecting,
        deliveries.clone(),
    )
    .await?;
    drop(warm);
    // The host notices a closed stream at its next write (at the latest the 15 s keep-alive):
    // wait until it counts none open.
    let settle = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = control.get("/metrics").await?;
        let text = String::from_utf8_lossy(metrics.body()).into_owned();
        let open = text
            .lines()
            .find_map(|l| l.strip_prefix("redwasm_sse_open_streams "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if open == 0 || Instant::now() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    deliveries.opened.store(0, Ordering::Relaxed);
    let rss_before = rss_kib(pid).unwrap_or(0);

    let started = Instant::now();
    let clients = open_streams(addr, &ids, streams, cli.sse_connecting, deliveries.clone()).await?;
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(pid).unwrap_or(0);
    let per_stream_kib = rss_open.saturating_sub(rss_before) as f64 / streams as f64;
    println!(
        "  {streams} streams open in {open_s:.1} s; host RSS {rss_before} KiB before, {rss_open} \
         KiB with them open: {per_stream_kib:.1} KiB per stream (goal < 16 KiB)"
    );

    // Updates: one round updates the first `updated_entries` entries, each carrying its
    // send time; then a pause, so rounds measure delivery, not a backlog.
    for round in 0..rounds {
        for id in &ids[..updated_entries] {
            let body = serde_json::json!({"step": round + 1, "message": format!("t:{}", now_us())});
            let response = control
                .send(&Req::post_json(
                    format!("/v1/progress/{id}"),
                    body.to_string(),
                ))
                .await?;
            anyhow::ensure!(response.status() == 200, "update {id}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = (rounds * updated_entries * per_entry.min(streams)) as u64;
    let wait_until = Instant::now() + Duration::from_secs(10);
    while deliveries.delivered.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    let hist = deliveries
        .latencies_us
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (p50_ms, p99_ms) = (
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
    );
    println!(
        "  update-to-client latency over {delivered} deliveries (of {expected}): p50 {p50_ms:.2} ms, \
         p99 {p99_ms:.2} ms (goal p99 < 10 ms; includes the update's own HTTP request)"
    );
    drop(clients);
    drop(host);
    let goal = |value: f64, limit: f64| Ratio::per_round(&[value / limit]);
    Ok(vec![
        (
            format!("SSE host memory per open stream / 16 KiB goal ({streams} streams)"),
            goal(per_stream_kib, 16.0),
            format!("{per_stream_kib:.1} KiB per stream (below 1.00x meets the goal)"),
        ),
        (
            "SSE update-to-client p99 / 10 ms goal".to_string(),
            goal(p99_ms, 10.0),
            format!("p99 {p99_ms:.2} ms, p50 {p50_ms:.2} ms, {delivered}/{expected} delivered"),
        ),
    ])
}
