//! `redwasm-bench`: one command (`cargo run --release -p redwasm-bench`) that measures the
//! cache GET hot path of redwasm against native baselines and prints a summary of ratios.
//!
//! 1. HTTP: a closed-loop hyper client over N keep-alive connections against (a) the
//!    `redwasm` host serving the cache component, (b) `native_cache` (axum + redis-rs doing
//!    the same single EVALSHA of `get.lua`), (c) `native_cache` doing a plain `GET`.
//! 2. Embedded: `redwasm::embed` `cache.get` (a fresh hit: one `MGET` in the component, its
//!    count batched) against direct redis-rs `GET`, the same `MGET`, and the counted read's
//!    `EVALSHA get.lua`, on a multiplexed connection, sequentially and with concurrent tasks.
//! 3. Outbound (`outbound.rs`): outbound HTTP GETs and key-value set+get from a component
//!    (`redwasm::embed`) vs native hyper-util and redis-rs doing the same I/O.
//! 4. Rate limit (`ratelimit.rs`): `POST /v1/ratelimit/check` through the host vs
//!    `native_cache` running the same `check.lua`, and the embedded `limiter.check` vs a
//!    direct `EVALSHA check.lua`.
//!
//! The HTTP parts start all their servers first and then measure every target once per
//! round, over `--rounds` rounds in alternating order; the embedded parts run every loop
//! (sequential, then concurrent) once per round the same way, each with `--iterations /
//! --rounds` calls. Every ratio is the median of the per-round ratios (printed with
//! min..max), so a drifting machine moves both sides alike.
//!
//! It reports; it never asserts (exit 0 unless the setup itself fails). See `README.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper_util::rt::TokioIo;
use redis::aio::MultiplexedConnection;

mod outbound;
mod queue;
mod ratelimit;
mod sessions;
mod sse;

/// The cache component's read script, byte for byte.
const GET_LUA: &str = include_str!("../../components/cache/lua/get.lua");
/// The workspace root (where `spin.toml` and `target/` live).
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The namespace every benchmark key lives in.
const NS: &str = "bench";
/// The host's sandbox prefix for the component id `cache`.
const PREFIX: &str = "cache:";
/// Floors and goals from the brief, printed next to the ratios.
const HTTP_FLOOR: f64 = 0.5;
const HTTP_GOAL: f64 = 0.7;
const EMBED_CEILING: f64 = 1.5;

/// Benchmarks the redwasm host and embedding API against native axum + redis-rs baselines.
#[derive(Parser, Clone, Debug)]
#[command(name = "redwasm-bench")]
struct Cli {
    /// Smoke run: HTTP 1 s warm-up, then 2 rounds of 0.5 s + 2 s per target; 2000 embedded
    /// iterations per loop (1000 per round).
    #[arg(long)]
    quick: bool,
    /// Rounds: every round measures every HTTP target and every embedded loop once, in
    /// alternating order; ratios are the median of the per-round ratios (default 5; 2 with
    /// --quick).
    #[arg(long, env = "BENCH_ROUNDS")]
    rounds: Option<usize>,
    /// Warm-up seconds per HTTP target before the first round (default 3; 1 with --quick).
    #[arg(long, env = "BENCH_WARMUP_S")]
    warmup_s: Option<f64>,
    /// Unmeasured seconds at the start of every HTTP target's run in every round (default 1;
    /// 0.5 with --quick).
    #[arg(long, env = "BENCH_ROUND_WARMUP_S")]
    round_warmup_s: Option<f64>,
    /// Measured seconds per HTTP target per round (default 4; 2 with --quick).
    #[arg(long, env = "BENCH_DURATION_S")]
    duration_s: Option<f64>,
    /// Keep-alive connections of the HTTP load generator.
    #[arg(long, env = "BENCH_CONNECTIONS", default_value_t = 32)]
    connections: usize,
    /// Worker threads of the load generator's (and embedded benchmark's) tokio runtime.
    #[arg(long, env = "BENCH_CLIENT_THREADS", default_value_t = 2)]
    client_threads: usize,
    /// Measured embedded iterations per loop shape, split evenly over the rounds (default
    /// 20000; 2000 with --quick).
    #[arg(long, env = "BENCH_ITERATIONS")]
    iterations: Option<usize>,
    /// Concurrent tasks of the embedded concurrent variant.
    #[arg(long, env = "BENCH_TASKS", default_value_t = 16)]
    tasks: usize,
    /// Size of each cached value in bytes.
    #[arg(long, env = "BENCH_VALUE_BYTES", default_value_t = 128)]
    value_bytes: usize,
    /// Distinct cache keys read round-robin (all hits).
    #[arg(long, env = "BENCH_KEYS", default_value_t = 64)]
    keys: usize,
    /// Queue: jobs per round for batch enqueue and end to end (default 20000; 2000 with
    /// --quick).
    #[arg(long, env = "BENCH_QUEUE_JOBS")]
    queue_jobs: Option<usize>,
    /// Queue: jobs per batch enqueue call.
    #[arg(long, env = "BENCH_QUEUE_BATCH", default_value_t = 1000)]
    queue_batch: usize,
    /// SSE: event streams kept open at once.
    #[arg(long, env = "BENCH_SSE_STREAMS", default_value_t = 10_000)]
    sse_streams: usize,
    /// SSE: progress entries the streams are spread over.
    #[arg(long, env = "BENCH_SSE_ENTRIES", default_value_t = 1000)]
    sse_entries: usize,
    /// SSE: clients connecting at once (each until its first event).
    #[arg(long, env = "BENCH_SSE_CONNECTING", default_value_t = 64)]
    sse_connecting: usize,
    /// SSE: streams that receive each round of updates (about).
    #[arg(long, env = "BENCH_SSE_RECEIVING", default_value_t = 1000)]
    sse_receiving: usize,
    /// Which parts to run (`all` = cache HTTP, cache embedded, rate limit, outbound, SSE,
    /// sessions and progress, then queues).
    #[arg(long, value_enum, default_value = "all")]
    only: Only,
    /// Manifest the host serves (default: the workspace `spin.toml`).
    #[arg(long, env = "BENCH_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Don't run `cargo build --release` for `redwasm` and `native_cache` first.
    #[arg(long)]
    no_build: bool,
    /// Keep the servers running after the cache HTTP rounds until Enter is pressed (for
    /// attaching a profiler: the servers' pids and addresses are printed).
    #[arg(long)]
    hold: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Only {
    All,
    Http,
    Embedded,
    /// The rate-limit check (HTTP and embedded) only.
    Ratelimit,
    /// Queues (batch enqueue, jobs end to end through the trigger's loop) only.
    Queue,
    /// Outbound HTTP and key-value from a component only.
    Outbound,
    /// Many open event streams through the host's SSE fan-out only.
    Sse,
    /// Session create/read and progress update latency only.
    Sessions,
}

impl Only {
    fn cache_http(self) -> bool {
        matches!(self, Only::All | Only::Http)
    }
    fn cache_embedded(self) -> bool {
        matches!(self, Only::All | Only::Embedded)
    }
    fn ratelimit(self) -> bool {
        matches!(self, Only::All | Only::Ratelimit)
    }
    fn queue(self) -> bool {
        matches!(self, Only::All | Only::Queue)
    }
    fn outbound(self) -> bool {
        matches!(self, Only::All | Only::Outbound)
    }
    fn sse(self) -> bool {
        matches!(self, Only::All | Only::Sse)
    }
    fn sessions(self) -> bool {
        matches!(self, Only::All | Only::Sessions)
    }
}

struct Settings {
    /// HTTP: unmeasured load per target before the first round.
    warmup: Duration,
    /// Number of rounds (every HTTP target and every embedded loop measured once per round).
    rounds: usize,
    /// HTTP: unmeasured start of every target's run in a round.
    round_warmup: Duration,
    /// HTTP: measured window of every target's run in a round.
    duration: Duration,
    /// Embedded: measured iterations per loop shape, over all rounds.
    iterations: usize,
}

impl Cli {
    fn settings(&self) -> Settings {
        let (w, n, rw, d, i) = if self.quick {
            (1.0, 2, 0.5, 2.0, 2_000)
        } else {
            (3.0, 5, 1.0, 4.0, 20_000)
        };
        Settings {
            warmup: Duration::from_secs_f64(self.warmup_s.unwrap_or(w)),
            rounds: self.rounds.unwrap_or(n).max(1),
            round_warmup: Duration::from_secs_f64(self.round_warmup_s.unwrap_or(rw)),
            duration: Duration::from_secs_f64(self.duration_s.unwrap_or(d)),
            iterations: self.iterations.unwrap_or(i).max(self.tasks.max(1)),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

/// One benchmark row: a latency histogram (ns) and a throughput.
struct Row {
    name: String,
    hist: Histogram<u64>,
    ops_per_s: f64,
    errors: u64,
    /// CPU µs per request of (server, redis-server, load generator), HTTP rows only.
    cpu_us: Option<(f64, f64, f64)>,
}

impl Row {
    fn mean_us(&self) -> f64 {
        self.hist.mean() / 1000.0
    }
    fn p50_us(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1000.0
    }
    fn p99_us(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Summary rows: label, ratio, verdict or note.
type Summary = Vec<(String, Ratio, String)>;

/// A ratio of the summary: the median of the per-round ratios with their min and max.
#[derive(Clone, Copy, Debug)]
struct Ratio {
    median: f64,
    /// (min, max, rounds) of the per-round ratios.
    range: (f64, f64, usize),
}

impl Ratio {
    fn per_round(values: &[f64]) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Ratio {
            median: median(values),
            range: (min, max, values.len()),
        }
    }

    /// `(0.47x..0.58x over 5 rounds)`.
    fn range(&self) -> String {
        let (min, max, n) = self.range;
        let plural = if n == 1 { "" } else { "s" };
        format!("({min:.2}x..{max:.2}x over {n} round{plural})")
    }

    /// `median 0.52x over 5 rounds (0.47x..0.58x)`.
    fn describe(&self) -> String {
        let (min, max, n) = self.range;
        format!(
            "median {:.2}x over {n} round{} ({min:.2}x..{max:.2}x)",
            self.median,
            if n == 1 { "" } else { "s" }
        )
    }
}

/// The median (mean of the middle two for an even count; NaN when empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings();
    let workspace = PathBuf::from(WORKSPACE)
        .canonicalize()
        .context("workspace root")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("redwasm-bench — cache GET hit and rate-limit check, redwasm vs native");
    println!(
        "machine: {cores} cores (load generator, servers and redis-server all share them: \
         the client competes with the server, equally for every target)"
    );
    println!(
        "settings: HTTP: servers all up, warm-up {:.1} s per target, then {} rounds of \
         {:.1} s unmeasured + {:.1} s measured per target (order alternating between rounds), \
         {} connections, client runtime {} threads; embedded {} iterations per loop split over \
         the same number of rounds, {} tasks; value {} B; {} keys",
        settings.warmup.as_secs_f64(),
        settings.rounds,
        settings.round_warmup.as_secs_f64(),
        settings.duration.as_secs_f64(),
        cli.connections,
        cli.client_threads,
        settings.iterations,
        cli.tasks,
        cli.value_bytes,
        cli.keys
    );

    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .context("the bench binary's directory")?;
    if !cli.no_build
        && (cli.only.cache_http() || cli.only.ratelimit() || cli.only.sse() || cli.only.sessions())
    {
        build_servers(&workspace)?;
    }

    let redis_server = redwasm_testkit::RedisServer::start();
    let redis_url = redis_server.url();
    println!("redis-server: {redis_url} (started by the bench, no persistence)");
    let client = redis::Client::open(redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let sha1: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(GET_LUA)
        .query_async(&mut redis)
        .await?;
    let value = make_value(cli.value_bytes);
    let keys: Vec<String> = (0..cli.keys.max(1)).map(|i| format!("k{i}")).collect();
    for key in &keys {
        let _: () = redis::cmd("SET")
            .arg(format!("{PREFIX}plain:{key}"))
            .arg(&value)
            .query_async(&mut redis)
            .await?;
    }

    let mut summary: Summary = Vec::new();

    if cli.only.cache_http() {
        let http = http_section(
            &cli, &settings, &workspace, &bin_dir, &redis_url, &keys, &value,
        )
        .await?;
        summary.extend(http);
    }
    if cli.only.cache_embedded() {
        let embedded = embedded_section(
            &cli,
            &settings,
            &redis_url,
            redis.clone(),
            &sha1,
            &keys,
            &value,
        )
        .await?;
        summary.extend(embedded);
    }
    if cli.only.ratelimit() {
        let rl = ratelimit::section(
            &cli,
            &settings,
            &workspace,
            &bin_dir,
            &redis_url,
            redis.clone(),
        )
        .await?;
        summary.extend(rl);
    }
    if cli.only.outbound() {
        let o = outbound::section(&cli, &settings, &redis_url, redis.clone()).await?;
        summary.extend(o);
    }
    if cli.only.sse() {
        let s = sse::section(&cli, &workspace, &bin_dir, &redis_url).await?;
        summary.extend(s);
    }
    if cli.only.sessions() {
        let s = sessions::section(&cli, &workspace, &bin_dir, &redis_url).await?;
        summary.extend(s);
    }
    if cli.only.queue() {
        let q = queue::section(&cli, &settings, &workspace, &redis_url, redis).await?;
        summary.extend(q);
    }

    println!();
    println!(
        "== Summary (ratios: median of the per-round ratios, min..max in brackets; the bench \
         reports, it does not assert) =="
    );
    for (label, ratio, note) in &summary {
        let line = format!(
            "  {label:<60} {:>7.2}x {:<29} {note}",
            ratio.median,
            ratio.range()
        );
        println!("{}", line.trim_end());
    }
    drop(redis_server);
    Ok(())
}

fn make_value(len: usize) -> Vec<u8> {
    // A JSON-ish body of exactly `len` bytes.
    let mut value = b"{\"v\":\"".to_vec();
    while value.len() + 2 < len {
        value.push(b'a' + (value.len() % 26) as u8);
    }
    value.extend_from_slice(b"\"}");
    value.truncate(len.max(1));
    value
}

fn build_servers(workspace: &Path) -> anyhow::Result<()> {
    println!(
        "building: cargo build --release -p redwasm-host --bin redwasm -p redwasm-bench --bin native_cache"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "redwasm-host",
            "--bin",
            "redwasm",
            "-p",
            "redwasm-bench",
            "--bin",
            "native_cache",
        ])
        .status()
        .context("run cargo build")?;
    if !status.success() {
        bail!("cargo build of the servers failed");
    }
    Ok(())
}

/// A child process killed (and reaped) on drop.
struct ChildGuard {
    name: &'static str,
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // `spin up` serves from a child process (`spin trigger http`) that outlives its
        // parent when only the parent is killed: end the descendants first.
        let mut descendants = Vec::new();
        let mut pending = child_pids(&self.child.id().to_string());
        while let Some(pid) = pending.pop() {
            pending.extend(child_pids(&pid));
            descendants.push(pid);
        }
        if !descendants.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&descendants)
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildGuard {
    fn spawn(name: &'static str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        Ok(ChildGuard { name, child })
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }
}

/// Starts the native baseline (`native_cache`, which serves both the cache and the rate-limit
/// routes) on a free loopback port against `redis_url`.
fn spawn_native(
    native_bin: &Path,
    redis_url: &str,
    log: &Path,
) -> anyhow::Result<(ChildGuard, SocketAddr)> {
    let addr: SocketAddr = ([127, 0, 0, 1], redwasm_testkit::free_port()).into();
    let mut command = Command::new(native_bin);
    command.args(["--listen", &addr.to_string(), "--redis-url", redis_url]);
    Ok((ChildGuard::spawn("native_cache", command, log)?, addr))
}

/// The `redwasm` host as a child process serving the workspace `spin.toml` on a free
/// loopback port against `redis_url`, ready (its `/health` answered); its log in
/// `target/bench/<log>`.
async fn spawn_host(
    workspace: &Path,
    bin_dir: &Path,
    redis_url: &str,
    log: &str,
) -> anyhow::Result<(ChildGuard, SocketAddr)> {
    let redwasm_bin = find_binary(bin_dir, "redwasm")?;
    let logs = workspace.join("target").join("bench");
    std::fs::create_dir_all(&logs)?;
    let addr: SocketAddr = ([127, 0, 0, 1], redwasm_testkit::free_port()).into();
    let mut command = Command::new(&redwasm_bin);
    command
        .current_dir(workspace)
        .args(["serve", "--manifest"])
        .arg(workspace.join("spin.toml"))
        .arg("--listen")
        .arg(addr.to_string())
        .env("REDIS_URL", redis_url)
        .env("RUST_LOG", "warn");
    let mut host = ChildGuard::spawn("redwasm", command, &logs.join(log))?;
    wait_http_ready(&mut host, addr, "/health").await?;
    Ok((host, addr))
}

fn find_binary(bin_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir.join(name);
    if !path.exists() {
        bail!(
            "{} not found (run `cargo build --release -p redwasm-host -p redwasm-bench`)",
            path.display()
        );
    }
    Ok(path)
}

/// A request body: none (GET) or a full body (POST).
type ReqBody = Either<Empty<Bytes>, Full<Bytes>>;

/// One request of a load run: a GET of `path`, or a POST of a JSON `body` to it.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    json_body: Option<Bytes>,
}

impl Req {
    fn get(path: impl Into<String>) -> Self {
        Req {
            path: path.into(),
            json_body: None,
        }
    }
    fn post_json(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Req {
            path: path.into(),
            json_body: Some(body.into()),
        }
    }
}

fn gets(paths: &[String]) -> Arc<Vec<Req>> {
    Arc::new(paths.iter().map(Req::get).collect())
}

/// One HTTP/1.1 keep-alive client connection.
struct HttpConn {
    sender: hyper::client::conn::http1::SendRequest<ReqBody>,
    host: String,
}

impl HttpConn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpConn {
            sender,
            host: addr.to_string(),
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<http::Response<Bytes>> {
        self.send(&Req::get(path)).await
    }

    async fn send(&mut self, req: &Req) -> anyhow::Result<http::Response<Bytes>> {
        self.sender.ready().await?;
        let request = match &req.json_body {
            None => http::Request::get(&req.path)
                .header(http::header::HOST, &self.host)
                .body(Either::Left(Empty::<Bytes>::new()))?,
            Some(body) => http::Request::post(&req.path)
                .header(http::header::HOST, &self.host)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Either::Right(Full::new(body.clone())))?,
        };
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}

async fn wait_http_ready(
    guard: &mut ChildGuard,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        guard.check_alive()?;
        if let Ok(mut conn) = HttpConn::connect(addr).await
            && let Ok(response) = conn.get(path).await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer {path} on {addr} within 120 s",
                guard.name
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stores every benchmark value through the host (so the component itself wrote them).
async fn seed_through_host(addr: SocketAddr, keys: &[String], value: &[u8]) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    for key in keys {
        sender.ready().await?;
        let request = http::Request::put(format!("/v1/cache/{NS}/{key}?ttl_s=86400"))
            .header(http::header::HOST, addr.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::copy_from_slice(value)))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "seeding {key} through the host: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    Ok(())
}

/// Checks one response of `path` is a 200 carrying `value` and the component's headers.
async fn verify_hit(
    addr: SocketAddr,
    path: &str,
    value: &[u8],
    cache_headers: bool,
) -> anyhow::Result<String> {
    let mut conn = HttpConn::connect(addr).await?;
    let response = conn.get(path).await?;
    if response.status() != http::StatusCode::OK || response.body().as_ref() != value {
        bail!(
            "GET {path}: expected 200 with the seeded value, got {} {:?}",
            response.status(),
            String::from_utf8_lossy(response.body())
        );
    }
    let mut names: Vec<String> = response
        .headers()
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length"))
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
        .collect();
    names.sort();
    if cache_headers {
        for required in ["content-type", "age", "cache-status", "x-correlation-id"] {
            if !response.headers().contains_key(required) {
                bail!("GET {path}: no {required} header");
            }
        }
    }
    Ok(names.join(", "))
}

/// Closed-loop load: `connections` keep-alive connections each send the next request as soon
/// as the previous answer is read, for warm-up + duration; requests started during the
/// measured window are recorded.
async fn http_load(
    name: &str,
    addr: SocketAddr,
    paths: Arc<Vec<Req>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    pids: &CpuPids,
) -> anyhow::Result<Row> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for c in 0..connections.max(1) {
        let paths = paths.clone();
        let mut conn = HttpConn::connect(addr).await?;
        tasks.push(tokio::spawn(async move {
            let mut hist = new_hist();
            let mut errors = 0u64;
            let mut i = c;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let path = &paths[i % paths.len()];
                i += 1;
                let ok = match conn.send(path).await {
                    Ok(response) => response.status() == http::StatusCode::OK,
                    Err(_) => {
                        // Reconnect once; a broken connection is an error, not a stop.
                        if let Ok(new) = HttpConn::connect(addr).await {
                            conn = new;
                        }
                        false
                    }
                };
                if t0 >= measure_from {
                    let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    hist.saturating_record(ns.max(1));
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (hist, errors)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_start = sample_cpu(pids);
    tokio::time::sleep_until(end.into()).await;
    let cpu_end = sample_cpu(pids);
    let mut hist = new_hist();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await?;
        hist.add(&h)?;
        errors += e;
    }
    let hist_len = hist.len();
    let ops = hist_len as f64 / duration.as_secs_f64();
    Ok(Row {
        name: name.to_string(),
        hist,
        ops_per_s: ops,
        errors,
        cpu_us: cpu_per_request(cpu_start, cpu_end, hist_len),
    })
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn process_cpu_s(pid: &str) -> Option<f64> {
    let own = own_cpu_s(pid)?;
    // `spin up` serves HTTP from a child process (its trigger), so count the whole tree.
    let children: f64 = child_pids(pid)
        .iter()
        .filter_map(|c| process_cpu_s(c))
        .sum();
    Some(own + children)
}

/// CPU seconds of `pid` alone (user + system).
fn own_cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_s())
}

/// Direct children of `pid`, from every thread's `/proc/<pid>/task/<tid>/children`.
fn child_pids(pid: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(list.split_whitespace().map(str::to_string));
        }
    }
    children
}

fn clock_ticks_per_s() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The pid of the redis-server listening on `port` (found by its command line).
fn redis_server_pid(port: u16) -> Option<String> {
    // redis-server rewrites its title to `redis-server 127.0.0.1:<port>`; before that the
    // command line holds `--port\0<port>`.
    let needles = [format!(":{port}"), format!("--port\0{port}\0")];
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("redis-server")
                && needles.iter().any(|n| cmdline.contains(n.as_str()))
            {
                return Some(name);
            }
        }
    }
    None
}

/// CPU time of (server, redis-server, this process), sampled together.
#[derive(Clone, Copy)]
struct CpuSample(Option<f64>, Option<f64>, Option<f64>);

fn sample_cpu(pids: &CpuPids) -> CpuSample {
    CpuSample(
        process_cpu_s(&pids.server),
        pids.redis.as_deref().and_then(process_cpu_s),
        process_cpu_s("self"),
    )
}

/// Processes whose CPU time an HTTP run accounts for.
struct CpuPids {
    server: String,
    redis: Option<String>,
}

fn cpu_per_request(start: CpuSample, end: CpuSample, requests: u64) -> Option<(f64, f64, f64)> {
    let per = |a: Option<f64>, b: Option<f64>| -> Option<f64> {
        Some((b? - a?) * 1e6 / requests.max(1) as f64)
    };
    Some((
        per(start.0, end.0)?,
        per(start.1, end.1).unwrap_or(f64::NAN),
        per(start.2, end.2).unwrap_or(f64::NAN),
    ))
}

/// One HTTP target of a section's rounds: a server already running and verified.
struct LoadTarget {
    /// Short tag printed in the per-round lines: `a`, `b`, ...
    tag: &'static str,
    name: String,
    addr: SocketAddr,
    requests: Arc<Vec<Req>>,
    pids: CpuPids,
}

/// One HTTP target's (or one embedded loop shape's) results over all rounds.
struct Rounds {
    /// One row per round, in round order.
    per_round: Vec<Row>,
    /// All rounds together: ops/s is the median over rounds, the histogram holds every
    /// round's latencies, errors are summed, CPU per request is the CPU of all rounds
    /// divided by the requests of all rounds.
    merged: Row,
    min_ops: f64,
    max_ops: f64,
}

impl Rounds {
    fn merge(name: &str, per_round: Vec<Row>) -> anyhow::Result<Self> {
        let mut hist = new_hist();
        let mut errors = 0;
        let mut cpu = Some((0.0, 0.0, 0.0));
        let mut requests = 0u64;
        for row in &per_round {
            hist.add(&row.hist)?;
            errors += row.errors;
            let n = row.hist.len();
            requests += n;
            // CPU µs per request × requests = the round's CPU µs; summed over rounds.
            cpu = match (cpu, row.cpu_us) {
                (Some((s, r, c)), Some((s1, r1, c1))) => {
                    let n = n as f64;
                    Some((s + s1 * n, r + r1 * n, c + c1 * n))
                }
                _ => None,
            };
        }
        let per = requests.max(1) as f64;
        let ops: Vec<f64> = per_round.iter().map(|r| r.ops_per_s).collect();
        Ok(Rounds {
            merged: Row {
                name: name.to_string(),
                hist,
                ops_per_s: median(&ops),
                errors,
                cpu_us: cpu.map(|(s, r, c)| (s / per, r / per, c / per)),
            },
            min_ops: ops.iter().copied().fold(f64::INFINITY, f64::min),
            max_ops: ops.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            per_round,
        })
    }

    /// The per-round ratios `f(self in round r) / f(other in round r)`, summarised.
    fn ratio(&self, other: &Rounds, f: impl Fn(&Row) -> f64) -> Ratio {
        let values: Vec<f64> = self
            .per_round
            .iter()
            .zip(&other.per_round)
            .map(|(a, b)| f(a) / f(b))
            .collect();
        Ratio::per_round(&values)
    }
}

/// The order of the targets in round `round` (0-based): the list rotated by `round / 2`,
/// reversed in odd rounds (a b c, c b a, b c a, a c b, c a b, ...), so that no target is
/// always first or last, or always follows the same one.
fn round_order(targets: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets).map(|i| (i + round / 2) % targets).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Runs the HTTP load against every target, all servers already up: a warm-up of each, then
/// `settings.rounds` rounds in which every target is measured once, in [`round_order`].
/// Checks after every round that every server in `servers` is still alive.
async fn run_rounds(
    targets: &[LoadTarget],
    connections: usize,
    settings: &Settings,
    servers: &mut [&mut ChildGuard],
) -> anyhow::Result<Vec<Rounds>> {
    if !settings.warmup.is_zero() {
        let mut line = format!("  warm-up ({:.1} s each):", settings.warmup.as_secs_f64());
        for target in targets {
            let row = http_load(
                &target.name,
                target.addr,
                target.requests.clone(),
                connections,
                Duration::ZERO,
                settings.warmup,
                &target.pids,
            )
            .await?;
            line.push_str(&format!(" ({}) {:.0}", target.tag, row.ops_per_s));
        }
        println!("{line} req/s (discarded)");
    }
    let mut per_target: Vec<Vec<Row>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        let mut line = format!("  round {}/{}:", round + 1, settings.rounds);
        for i in round_order(targets.len(), round) {
            let target = &targets[i];
            let row = http_load(
                &target.name,
                target.addr,
                target.requests.clone(),
                connections,
                settings.round_warmup,
                settings.duration,
                &target.pids,
            )
            .await?;
            line.push_str(&format!(" ({}) {:.0}", target.tag, row.ops_per_s));
            if row.errors > 0 {
                line.push_str(&format!(" [{} errors]", row.errors));
            }
            per_target[i].push(row);
        }
        println!("{line} req/s");
        for server in servers.iter_mut() {
            server.check_alive()?;
        }
    }
    targets
        .iter()
        .zip(per_target)
        .map(|(target, rows)| Rounds::merge(&target.name, rows))
        .collect()
}

/// The table of a section: median, min and max ops/s over the rounds, latency from all
/// rounds' merged histograms, then CPU per request (`unit`: "request", "check") if measured
/// (HTTP sections only).
fn print_rounds(rows: &[&Rounds], unit: &str) {
    println!(
        "  {:<44} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "target", "median/s", "min/s", "max/s", "mean µs", "p50 µs", "p99 µs", "max µs", "errors"
    );
    for rounds in rows {
        let row = &rounds.merged;
        println!(
            "  {:<44} {:>10.0} {:>9.0} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7}",
            row.name,
            row.ops_per_s,
            rounds.min_ops,
            rounds.max_ops,
            row.mean_us(),
            row.p50_us(),
            row.p99_us(),
            row.hist.max() as f64 / 1000.0,
            row.errors
        );
    }
    println!(
        "  (ops/s: median, min and max over the rounds; latency: all rounds' histograms merged)"
    );
    if rows.iter().all(|rounds| rounds.merged.cpu_us.is_none()) {
        return;
    }
    println!();
    println!(
        "  {:<44} {:>12} {:>12} {:>12}",
        format!("CPU µs per {unit} (user+sys, all rounds)"),
        "server",
        "redis-server",
        "load gen"
    );
    for rounds in rows {
        let row = &rounds.merged;
        if let Some((server, redis, client)) = row.cpu_us {
            println!(
                "  {:<44} {server:>12.1} {redis:>12.1} {client:>12.1}",
                row.name
            );
        }
    }
}

/// The verdict on an HTTP throughput ratio (applied to the median).
fn http_verdict(ratio: f64) -> String {
    if ratio >= HTTP_GOAL {
        "meets the goal".to_string()
    } else if ratio >= HTTP_FLOOR {
        format!("above the floor ({HTTP_FLOOR}x), below the goal ({HTTP_GOAL}x)")
    } else {
        format!("BELOW the floor ({HTTP_FLOOR}x)")
    }
}

async fn http_section(
    cli: &Cli,
    settings: &Settings,
    workspace: &Path,
    bin_dir: &Path,
    redis_url: &str,
    keys: &[String],
    value: &[u8],
) -> anyhow::Result<Summary> {
    let redwasm_bin = find_binary(bin_dir, "redwasm")?;
    let native_bin = find_binary(bin_dir, "native_cache")?;
    let manifest = cli
        .manifest
        .clone()
        .unwrap_or_else(|| workspace.join("spin.toml"));
    let logs = workspace.join("target").join("bench");
    std::fs::create_dir_all(&logs)?;
    let redis_pid = redis_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .and_then(redis_server_pid);
    let cache_paths: Arc<Vec<String>> =
        Arc::new(keys.iter().map(|k| format!("/v1/cache/{NS}/{k}")).collect());
    let plain_paths: Arc<Vec<String>> =
        Arc::new(keys.iter().map(|k| format!("/plain/{k}")).collect());

    println!();
    println!(
        "== HTTP: GET /v1/cache/{NS}/{{key}} (hit), closed loop, {} connections, {} rounds ==",
        cli.connections, settings.rounds
    );

    // Every server is started and verified first, and stays up (idle) while the others are
    // measured.

    // (a) the redwasm host.
    let host_addr: SocketAddr = ([127, 0, 0, 1], redwasm_testkit::free_port()).into();
    let mut command = Command::new(&redwasm_bin);
    command
        .current_dir(workspace)
        .args(["serve", "--manifest"])
        .arg(&manifest)
        .arg("--listen")
        .arg(host_addr.to_string())
        .env("REDIS_URL", redis_url)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    let mut host = ChildGuard::spawn("redwasm", command, &logs.join("redwasm.log"))?;
    wait_http_ready(&mut host, host_addr, "/health").await?;
    seed_through_host(host_addr, keys, value).await?;
    let host_headers = verify_hit(host_addr, &cache_paths[0], value, true).await?;
    println!(
        "  redwasm host pid {} on {host_addr} ({}; log target/bench/redwasm.log)",
        host.child.id(),
        redwasm_bin.display()
    );
    println!("    hit headers: {host_headers}");

    // (b) and (c): the native baseline.
    let (mut native, native_addr) =
        spawn_native(&native_bin, redis_url, &logs.join("native_cache.log"))?;
    wait_http_ready(&mut native, native_addr, &plain_paths[0]).await?;
    let native_headers = verify_hit(native_addr, &cache_paths[0], value, true).await?;
    verify_hit(native_addr, &plain_paths[0], value, false).await?;
    println!("  native_cache pid {} on {native_addr}", native.child.id());
    println!("    hit headers: {native_headers}");

    // (s) the same component under `spin up`, when a Spin binary is available (none can be
    // installed from the registries this project uses, so this usually prints the skip).
    let spin = match which("spin") {
        None => {
            println!("  spin: skipped (no `spin` binary on PATH; install Spin 4.0.x to compare)");
            None
        }
        Some(spin_bin) => {
            let spin_addr: SocketAddr = ([127, 0, 0, 1], redwasm_testkit::free_port()).into();
            let mut command = Command::new(&spin_bin);
            command
                .current_dir(workspace)
                .args(["up", "--listen"])
                .arg(spin_addr.to_string())
                .arg("--from")
                .arg(&manifest)
                .env("SPIN_VARIABLE_REDIS_ADDRESS", redis_url);
            let mut spin = ChildGuard::spawn("spin", command, &logs.join("spin.log"))?;
            // Spin has no /health and no key sandbox: wait on a route that answers 200 (stats), then seed the
            // values through Spin itself (its keys carry no `cache:` prefix).
            wait_http_ready(&mut spin, spin_addr, &format!("/v1/cache/{NS}/stats")).await?;
            seed_through_host(spin_addr, keys, value).await?;
            let spin_headers = verify_hit(spin_addr, &cache_paths[0], value, true).await?;
            println!(
                "  spin up pid {} on {spin_addr} ({})",
                spin.child.id(),
                spin_bin.display()
            );
            println!("    hit headers: {spin_headers}");
            Some((spin, spin_addr))
        }
    };

    let server_pids = |guard: &ChildGuard| CpuPids {
        server: guard.child.id().to_string(),
        redis: redis_pid.clone(),
    };
    let mut targets = vec![
        LoadTarget {
            tag: "a",
            name: "(a) redwasm host (wasm component)".into(),
            addr: host_addr,
            requests: gets(&cache_paths),
            pids: server_pids(&host),
        },
        LoadTarget {
            tag: "b",
            name: "(b) native axum + redis-rs, EVALSHA get.lua".into(),
            addr: native_addr,
            requests: gets(&cache_paths),
            pids: server_pids(&native),
        },
        LoadTarget {
            tag: "c",
            name: "(c) native axum + redis-rs, plain GET".into(),
            addr: native_addr,
            requests: gets(&plain_paths),
            pids: server_pids(&native),
        },
    ];
    if let Some((spin, spin_addr)) = &spin {
        targets.push(LoadTarget {
            tag: "s",
            name: "(s) the same .wasm under spin up".into(),
            addr: *spin_addr,
            requests: gets(&cache_paths),
            pids: server_pids(spin),
        });
    }

    let mut held = vec![
        format!("redwasm host pid {} on {host_addr}", host.child.id()),
        format!("native_cache pid {} on {native_addr}", native.child.id()),
    ];
    if let Some((spin, spin_addr)) = &spin {
        held.push(format!("spin pid {} on {spin_addr}", spin.child.id()));
    }

    println!();
    let mut spin = spin.map(|(guard, _)| guard);
    let mut servers: Vec<&mut ChildGuard> = vec![&mut host, &mut native];
    servers.extend(spin.as_mut());
    let results = run_rounds(&targets, cli.connections, settings, &mut servers).await?;
    if cli.hold {
        hold(&held.join(", "));
    }
    drop(servers);
    drop(spin);
    drop(native);
    drop(host);
    let [host_row, native_row, plain_row, spin_row @ ..] = results.as_slice() else {
        bail!("expected a result per HTTP target");
    };
    let spin_row = spin_row.first();

    println!();
    let mut rows = vec![host_row, native_row, plain_row];
    rows.extend(spin_row);
    print_rounds(&rows, "request");

    let ops = |row: &Row| row.ops_per_s;
    let p50 = |row: &Row| row.p50_us();
    let p99 = |row: &Row| row.p99_us();
    let ratio = host_row.ratio(native_row, ops);
    let p50_ratio = host_row.ratio(native_row, p50);
    let p99_ratio = host_row.ratio(native_row, p99);
    println!();
    println!(
        "  host/native throughput: {}; floor {HTTP_FLOOR}x, goal {HTTP_GOAL}x (on the median)",
        ratio.describe()
    );
    println!(
        "  host/native latency: p50 {}, p99 {}",
        p50_ratio.describe(),
        p99_ratio.describe()
    );
    let mut summary = Vec::new();
    if let Some(spin_row) = spin_row {
        let spin_ratio = host_row.ratio(spin_row, ops);
        println!("  host/spin throughput: {}", spin_ratio.describe());
        summary.push((
            "HTTP req/s  host / spin up (same .wasm) (higher is better)".into(),
            spin_ratio,
            "redwasm vs Spin".into(),
        ));
    }
    summary.extend([
        (
            "HTTP req/s  host / native EVALSHA      (higher is better)".into(),
            ratio,
            http_verdict(ratio.median),
        ),
        (
            "HTTP p50    host / native EVALSHA      (lower is better)".into(),
            p50_ratio,
            String::new(),
        ),
        (
            "HTTP p99    host / native EVALSHA      (lower is better)".into(),
            p99_ratio,
            String::new(),
        ),
        (
            "HTTP req/s  native EVALSHA / native plain GET (script cost)".into(),
            native_row.ratio(plain_row, ops),
            "reference".into(),
        ),
        (
            "HTTP req/s  host / native plain GET".into(),
            host_row.ratio(plain_row, ops),
            "reference".into(),
        ),
    ]);
    Ok(summary)
}

/// The first `name` executable on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn hold(what: &str) {
    println!("  --hold: {what}: still running; press Enter to continue");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// One embedded operation, called with the iteration index (keys are taken round-robin).
type LoopOp = Arc<
    dyn Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>
        + Send
        + Sync,
>;

/// One loop of an embedded section (e.g. `embedded cache.get`, `direct redis-rs GET`): run
/// sequentially and from `--tasks` concurrent tasks in every round.
struct EmbedLoop {
    /// Short tag printed in the per-round lines: `e`, `s`, ...
    tag: &'static str,
    name: String,
    op: LoopOp,
}

impl EmbedLoop {
    fn new<F, Fut>(tag: &'static str, name: &str, op: F) -> Self
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        EmbedLoop {
            tag,
            name: name.to_string(),
            op: Arc::new(move |i| Box::pin(op(i))),
        }
    }
}

/// How a loop is driven: one call after the other, or from this many concurrent tasks.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Sequential,
    Concurrent(usize),
}

/// Runs `op` `iterations` times in `shape` (concurrent: `iterations / tasks` per task) and
/// returns the row: every call's latency, ops/s over the whole loop, errors.
async fn run_loop(
    name: String,
    op: &LoopOp,
    shape: Shape,
    iterations: usize,
) -> anyhow::Result<Row> {
    fn elapsed_ns(t0: Instant) -> u64 {
        u64::try_from(t0.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
    let mut hist = new_hist();
    let mut errors = 0;
    let started = Instant::now();
    let done = match shape {
        Shape::Sequential => {
            for i in 0..iterations {
                let t0 = Instant::now();
                let ok = op(i).await.is_ok();
                hist.saturating_record(elapsed_ns(t0));
                if !ok {
                    errors += 1;
                }
            }
            iterations
        }
        Shape::Concurrent(tasks) => {
            let tasks = tasks.max(1);
            let per_task = iterations / tasks;
            let mut handles = Vec::new();
            for t in 0..tasks {
                let op = op.clone();
                handles.push(tokio::spawn(async move {
                    let mut hist = new_hist();
                    let mut errors = 0u64;
                    for i in 0..per_task {
                        let t0 = Instant::now();
                        let ok = op(t * per_task + i).await.is_ok();
                        hist.saturating_record(elapsed_ns(t0));
                        if !ok {
                            errors += 1;
                        }
                    }
                    (hist, errors)
                }));
            }
            for handle in handles {
                let (h, e) = handle.await?;
                hist.add(&h)?;
                errors += e;
            }
            per_task * tasks
        }
    };
    Ok(Row {
        name,
        ops_per_s: done as f64 / started.elapsed().as_secs_f64(),
        hist,
        errors,
        cpu_us: None,
    })
}

/// The embedded loops' results over all rounds: `sequential[i]` and `concurrent[i]` belong to
/// `loops[i]`.
struct EmbedResults {
    sequential: Vec<Rounds>,
    concurrent: Vec<Rounds>,
}

/// Runs the embedded `loops` in `settings.rounds` rounds, like the HTTP targets: in every round
/// each loop runs sequentially (the loops in [`round_order`]), then each from `tasks`
/// concurrent tasks (same order). Every run measures `iterations / rounds` calls after an
/// unmeasured warm-up of a tenth of that in the same shape.
async fn embedded_rounds(
    loops: &[EmbedLoop],
    settings: &Settings,
    tasks: usize,
) -> anyhow::Result<EmbedResults> {
    let rounds = settings.rounds;
    let tasks = tasks.max(1);
    let per_round = (settings.iterations / rounds).max(tasks);
    let warmup = (per_round / 10).max(tasks);
    let legend: Vec<String> = loops
        .iter()
        .map(|l| format!("({}) {}", l.tag, l.name))
        .collect();
    println!("  loops: {}", legend.join(", "));
    println!(
        "  {rounds} rounds; per loop per round: {warmup} unmeasured + {per_round} measured \
         calls, sequential loops first, then {tasks}-task loops; order alternating between rounds"
    );
    let shapes = [Shape::Sequential, Shape::Concurrent(tasks)];
    let mut per_loop: [Vec<Vec<Row>>; 2] = [
        loops.iter().map(|_| Vec::new()).collect(),
        loops.iter().map(|_| Vec::new()).collect(),
    ];
    for round in 0..rounds {
        let mut line = format!("  round {}/{rounds}:", round + 1);
        for (s, shape) in shapes.iter().enumerate() {
            line.push_str(match shape {
                Shape::Sequential => " seq",
                Shape::Concurrent(_) => "; tasks",
            });
            for i in round_order(loops.len(), round) {
                let l = &loops[i];
                let name = match shape {
                    Shape::Sequential => format!("{}, sequential", l.name),
                    Shape::Concurrent(n) => format!("{}, {n} tasks", l.name),
                };
                run_loop(name.clone(), &l.op, *shape, warmup).await?;
                let row = run_loop(name, &l.op, *shape, per_round).await?;
                line.push_str(&format!(" ({}) {:.0}", l.tag, row.ops_per_s));
                if row.errors > 0 {
                    line.push_str(&format!(" [{} errors]", row.errors));
                }
                per_loop[s][i].push(row);
            }
        }
        println!("{line} ops/s");
    }
    let [seq, conc] = per_loop;
    let merge = |shape: Shape, rows: Vec<Vec<Row>>| -> anyhow::Result<Vec<Rounds>> {
        loops
            .iter()
            .zip(rows)
            .map(|(l, rows)| {
                let name = match shape {
                    Shape::Sequential => format!("{}, sequential", l.name),
                    Shape::Concurrent(n) => format!("{}, {n} tasks", l.name),
                };
                Rounds::merge(&name, rows)
            })
            .collect()
    };
    Ok(EmbedResults {
        sequential: merge(shapes[0], seq)?,
        concurrent: merge(shapes[1], conc)?,
    })
}

/// The verdict on an embedded cost ratio (applied to the median).
fn embed_verdict(ratio: f64) -> String {
    if ratio <= EMBED_CEILING {
        format!("within the ceiling ({EMBED_CEILING}x)")
    } else {
        format!("ABOVE the ceiling ({EMBED_CEILING}x)")
    }
}

/// `12.3 µs (median of the per-round differences, 10.1..15.0)`.
fn describe_difference(a: &Rounds, b: &Rounds, f: impl Fn(&Row) -> f64) -> String {
    let values: Vec<f64> = a
        .per_round
        .iter()
        .zip(&b.per_round)
        .map(|(x, y)| f(x) - f(y))
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.1} µs (median of the per-round differences, {min:.1}..{max:.1})",
        median(&values)
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn embedded_section(
    cli: &Cli,
    settings: &Settings,
    redis_url: &str,
    redis: MultiplexedConnection,
    sha1: &str,
    keys: &[String],
    value: &[u8],
) -> anyhow::Result<Summary> {
    println!();
    println!(
        "== Embedded: cache.get (hit) vs direct redis-rs on a multiplexed connection, \
         {} iterations per loop over {} rounds ==",
        settings.iterations, settings.rounds
    );
    let loading = Instant::now();
    let redwasm = redwasm::embed::Redwasm::connect(redis_url).await?;
    let cache = Arc::new(redwasm.cache().await?);
    println!(
        "  embed: Redwasm::connect + cache() took {:.0} ms (compile or compile-cache load)",
        loading.elapsed().as_secs_f64() * 1000.0
    );
    for key in keys {
        cache
            .set(NS, key, value, &redwasm::embed::SetOptions::ttl_s(86_400))
            .await
            .map_err(|e| anyhow::anyhow!("embed set {key}: {e}"))?;
    }
    match cache.get(NS, &keys[0]).await {
        Ok(Some(entry)) if entry.value == value => {}
        other => bail!("embed get after set: expected the value, got {other:?}"),
    }
    let keys: Arc<Vec<String>> = Arc::new(keys.to_vec());

    let embed = {
        let cache = cache.clone();
        let keys = keys.clone();
        let expected = value.len();
        EmbedLoop::new("e", "embedded cache.get", move |i| {
            let cache = cache.clone();
            let keys = keys.clone();
            async move {
                match cache.get(NS, &keys[i % keys.len()]).await {
                    Ok(Some(entry)) if entry.value.len() == expected => Ok(()),
                    other => bail!("embedded get: {other:?}"),
                }
            }
        })
    };
    let get = {
        let redis = redis.clone();
        let keys = keys.clone();
        EmbedLoop::new("g", "direct redis-rs GET", move |i| {
            let mut redis = redis.clone();
            let key = format!("{PREFIX}plain:{}", keys[i % keys.len()]);
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut redis).await?;
                match v {
                    Some(_) => Ok(()),
                    None => bail!("direct GET: miss"),
                }
            }
        })
    };
    let evalsha = {
        let redis = redis.clone();
        let keys = keys.clone();
        let sha1 = sha1.to_string();
        EmbedLoop::new("s", "direct redis-rs EVALSHA get.lua", move |i| {
            let mut redis = redis.clone();
            let key = &keys[i % keys.len()];
            let base = format!("{PREFIX}c{{{NS}}}:");
            let cmd = redis::cmd("EVALSHA")
                .arg(&sha1)
                .arg("5")
                .arg(format!("{base}d:{key}"))
                .arg(format!("{base}v"))
                .arg(format!("{base}s"))
                .arg(format!("{base}l:{key}"))
                .arg(format!("{base}r:{key}"))
                .arg(now_ms())
                .arg(format!("{:032x}", rand::random::<u128>()))
                .arg(0_i64)
                .arg("1")
                .clone();
            async move {
                let v: redis::Value = cmd.query_async(&mut redis).await?;
                match v {
                    redis::Value::Array(items) if items.first() == Some(&redis::Value::Int(1)) => {
                        Ok(())
                    }
                    other => bail!("direct EVALSHA: not a fresh hit: {other:?}"),
                }
            }
        })
    };

    let mget = {
        let redis = redis.clone();
        let keys = keys.clone();
        EmbedLoop::new("m", "direct redis-rs MGET entry + version", move |i| {
            let mut redis = redis.clone();
            let base = format!("{PREFIX}c{{{NS}}}:");
            let cmd = redis::cmd("MGET")
                .arg(format!("{base}d:{}", keys[i % keys.len()]))
                .arg(format!("{base}v"))
                .clone();
            async move {
                let v: Vec<Option<Vec<u8>>> = cmd.query_async(&mut redis).await?;
                match v.first() {
                    Some(Some(_)) => Ok(()),
                    _ => bail!("direct MGET: no entry"),
                }
            }
        })
    };

    println!();
    let results = embedded_rounds(&[embed, mget, evalsha, get], settings, cli.tasks).await?;
    let [embed_seq, mget_seq, evalsha_seq, get_seq] = results.sequential.as_slice() else {
        bail!("expected a result per embedded loop");
    };
    let [embed_conc, mget_conc, evalsha_conc, get_conc] = results.concurrent.as_slice() else {
        bail!("expected a result per embedded loop");
    };

    println!();
    print_rounds(
        &[
            embed_seq,
            mget_seq,
            evalsha_seq,
            get_seq,
            embed_conc,
            mget_conc,
            evalsha_conc,
            get_conc,
        ],
        "get",
    );
    let ops = |row: &Row| row.ops_per_s;
    let seq_ratio = embed_seq.ratio(get_seq, Row::mean_us);
    let conc_ratio = get_conc.ratio(embed_conc, ops);
    println!();
    println!(
        "  embedded/direct GET: sequential mean latency {}; {}-task throughput cost {} \
         (ceiling {EMBED_CEILING}x, on the median)",
        seq_ratio.describe(),
        cli.tasks,
        conc_ratio.describe()
    );
    println!(
        "  wasm + host cost per get (sequential mean, embedded − direct MGET, its Redis work): {}",
        describe_difference(embed_seq, mget_seq, Row::mean_us)
    );
    println!(
        "  script cost (sequential mean, EVALSHA get.lua − GET; the counted read over HTTP): {}",
        describe_difference(evalsha_seq, get_seq, Row::mean_us)
    );
    Ok(vec![
        (
            "Embedded mean latency, sequential: embedded / direct GET".into(),
            seq_ratio,
            embed_verdict(seq_ratio.median),
        ),
        (
            "Embedded p99 latency, sequential:  embedded / direct GET".into(),
            embed_seq.ratio(get_seq, Row::p99_us),
            String::new(),
        ),
        (
            format!(
                "Embedded ops/s, {} tasks:   direct GET / embedded",
                cli.tasks
            ),
            conc_ratio,
            embed_verdict(conc_ratio.median),
        ),
        (
            "Embedded mean latency, sequential: embedded / direct MGET".into(),
            embed_seq.ratio(mget_seq, Row::mean_us),
            "wasm + host cost alone".into(),
        ),
        (
            format!(
                "Embedded ops/s, {} tasks:   direct MGET / embedded",
                cli.tasks
            ),
            mget_conc.ratio(embed_conc, ops),
            "wasm + host cost alone".into(),
        ),
        (
            "Direct mean latency, sequential:   EVALSHA / GET".into(),
            evalsha_seq.ratio(get_seq, Row::mean_us),
            "script cost (reference)".into(),
        ),
    ])
}
