//! The rate-limit section: `POST /v1/ratelimit/check` through the host against
//! `native_cache` running the same `check.lua`, then the embedded `limiter.check` against a
//! direct redis-rs `EVALSHA check.lua` with the same keys and arguments.
//!
//! Every check uses one inline fixed-window policy with a huge limit, so every check is
//! allowed and does the same Redis work (`HMGET`, `HSET`, `PEXPIRE` of one hash), spread over
//! `--keys` limited keys `user:{i}`.

use super::*;

use redwasm::embed::ratelimit::{Algorithm, Policy, PolicyRef};

/// The rate-limit component's script, byte for byte.
const CHECK_LUA: &str = include_str!("../../components/ratelimit/lua/check.lua");
/// The host's sandbox prefix for the component id `ratelimit`.
const RL_PREFIX: &str = "ratelimit:";
const RL_POLICY: &str = "bench";
/// The largest limit a policy accepts: never reached, every check is allowed.
const RL_LIMIT: u64 = 1_000_000_000_000_000;
const RL_WINDOW_MS: u64 = 3_600_000;
const CHECK_PATH: &str = "/v1/ratelimit/check";

fn check_body(key: &str) -> String {
    format!(
        "{{\"key\":\"{key}\",\"cost\":1,\"policies\":[{{\"name\":\"{RL_POLICY}\",\"limit\":{RL_LIMIT},\
         \"window_ms\":{RL_WINDOW_MS},\"algorithm\":\"fixed-window\"}}]}}"
    )
}

/// The `EVALSHA check.lua` the component sends for one check of `key` (Redis `TIME` clock).
fn evalsha(sha1: &str, key: &str) -> redis::Cmd {
    let base = format!("{RL_PREFIX}rl{{{key}}}:{RL_POLICY}:fw:{RL_WINDOW_MS}:");
    redis::cmd("EVALSHA")
        .arg(sha1)
        .arg("2")
        .arg(format!("{base}a"))
        .arg(format!("{base}b"))
        .arg("")
        .arg("commit")
        .arg("1")
        .arg("fw")
        .arg(RL_LIMIT.to_string())
        .arg(RL_WINDOW_MS.to_string())
        .arg(RL_LIMIT.to_string())
        .arg("1")
        .clone()
}

/// One check through `addr`: must be a 200 with `allowed: true` and the rate-limit headers.
async fn verify_check(addr: SocketAddr, key: &str) -> anyhow::Result<(String, String)> {
    let mut conn = HttpConn::connect(addr).await?;
    let response = conn
        .send(&Req::post_json(CHECK_PATH, check_body(key)))
        .await?;
    let body = String::from_utf8_lossy(response.body()).into_owned();
    if response.status() != http::StatusCode::OK || !body.contains("\"allowed\":true") {
        bail!(
            "POST {CHECK_PATH}: expected 200 allowed, got {} {body}",
            response.status()
        );
    }
    for required in [
        "content-type",
        "ratelimit-policy",
        "ratelimit",
        "x-correlation-id",
    ] {
        if !response.headers().contains_key(required) {
            bail!("POST {CHECK_PATH}: no {required} header");
        }
    }
    let mut names: Vec<String> = response
        .headers()
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length" | "transfer-encoding"))
        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
        .collect();
    names.sort();
    Ok((names.join(", "), body))
}

pub(crate) async fn section(
    cli: &Cli,
    settings: &Settings,
    workspace: &Path,
    bin_dir: &Path,
    redis_url: &str,
    mut redis: MultiplexedConnection,
) -> anyhow::Result<Summary> {
    let keys: Vec<String> = (0..cli.keys.max(1)).map(|i| format!("user:{i}")).collect();
    let sha1: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(CHECK_LUA)
        .query_async(&mut redis)
        .await?;
    let mut summary = Vec::new();

    // ---- HTTP ----
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
    let requests: Arc<Vec<Req>> = Arc::new(
        keys.iter()
            .map(|k| Req::post_json(CHECK_PATH, check_body(k)))
            .collect(),
    );

    println!();
    println!(
        "== Rate limit, HTTP: POST {CHECK_PATH} (1 inline fixed-window policy, limit \
         {RL_LIMIT}: always allowed; {} keys), closed loop, {} connections, {} rounds ==",
        keys.len(),
        cli.connections,
        settings.rounds
    );

    // Both servers are started and verified first, and stay up while the other is measured.

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
    let mut host = ChildGuard::spawn("redwasm", command, &logs.join("redwasm-ratelimit.log"))?;
    wait_http_ready(&mut host, host_addr, "/health").await?;
    let (host_headers, host_body) = verify_check(host_addr, &keys[0]).await?;
    println!(
        "  redwasm host pid {} on {host_addr} (log target/bench/redwasm-ratelimit.log)",
        host.child.id()
    );
    println!("    check headers: {host_headers}");
    println!("    check body:    {host_body}");
    // The component's keys, as the native baseline and the direct EVALSHA name them.
    let expected_key = format!(
        "{RL_PREFIX}rl{{{}}}:{RL_POLICY}:fw:{RL_WINDOW_MS}:a",
        keys[0]
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&expected_key)
        .query_async(&mut redis)
        .await?;
    if exists != 1 {
        bail!("the host's check did not write {expected_key}: key layout differs");
    }
    let (mut native, native_addr) =
        spawn_native(&native_bin, redis_url, &logs.join("native_ratelimit.log"))?;
    wait_http_ready(&mut native, native_addr, "/plain/k0").await?;
    let (native_headers, native_body) = verify_check(native_addr, &keys[0]).await?;
    println!("  native_cache pid {} on {native_addr}", native.child.id());
    println!("    check headers: {native_headers}");
    println!("    check body:    {native_body}");

    let targets = [
        LoadTarget {
            tag: "a",
            name: "(a) redwasm host (ratelimit component)".into(),
            addr: host_addr,
            requests: requests.clone(),
            pids: CpuPids {
                server: host.child.id().to_string(),
                redis: redis_pid.clone(),
            },
        },
        LoadTarget {
            tag: "b",
            name: "(b) native axum + redis-rs, EVALSHA check.lua".into(),
            addr: native_addr,
            requests,
            pids: CpuPids {
                server: native.child.id().to_string(),
                redis: redis_pid,
            },
        },
    ];
    println!();
    let results = run_rounds(
        &targets,
        cli.connections,
        settings,
        &mut [&mut host, &mut native],
    )
    .await?;
    drop(native);
    drop(host);
    let [host_row, native_row] = results.as_slice() else {
        bail!("expected a result per HTTP target");
    };

    println!();
    print_rounds(&[host_row, native_row], "check");
    let ratio = host_row.ratio(native_row, |row| row.ops_per_s);
    let p50_ratio = host_row.ratio(native_row, Row::p50_us);
    let p99_ratio = host_row.ratio(native_row, Row::p99_us);
    println!();
    println!(
        "  host/native checks/s: {}; floor {HTTP_FLOOR}x, goal {HTTP_GOAL}x (on the median)",
        ratio.describe()
    );
    println!(
        "  host/native latency: p50 {}, p99 {}",
        p50_ratio.describe(),
        p99_ratio.describe()
    );
    summary.extend([
        (
            "RL HTTP checks/s host / native EVALSHA  (higher is better)".to_string(),
            ratio,
            http_verdict(ratio.median),
        ),
        (
            "RL HTTP p50      host / native EVALSHA  (lower is better)".to_string(),
            p50_ratio,
            String::new(),
        ),
        (
            "RL HTTP p99      host / native EVALSHA  (lower is better)".to_string(),
            p99_ratio,
            String::new(),
        ),
    ]);

    // ---- Embedded ----
    println!();
    println!(
        "== Rate limit, embedded: limiter.check vs direct redis-rs EVALSHA check.lua, \
         {} iterations per loop over {} rounds ==",
        settings.iterations, settings.rounds
    );
    let loading = Instant::now();
    let redwasm = redwasm::embed::Redwasm::connect(redis_url).await?;
    let limiter = Arc::new(redwasm.ratelimit().await?);
    println!(
        "  embed: Redwasm::connect + ratelimit() took {:.0} ms",
        loading.elapsed().as_secs_f64() * 1000.0
    );
    let policies: Arc<Vec<PolicyRef>> = Arc::new(vec![
        Policy::new(RL_POLICY, RL_LIMIT, RL_WINDOW_MS, Algorithm::FixedWindow).into(),
    ]);
    let before: Option<i64> = redis::cmd("HGET")
        .arg(&expected_key)
        .arg("c")
        .query_async(&mut redis)
        .await?;
    let first = limiter
        .check(&keys[0], &policies, 1)
        .await
        .map_err(|e| anyhow::anyhow!("embedded check: {e}"))?;
    let after: Option<i64> = redis::cmd("HGET")
        .arg(&expected_key)
        .arg("c")
        .query_async(&mut redis)
        .await?;
    if !first.allowed || after.unwrap_or(0) != before.unwrap_or(0) + 1 {
        bail!(
            "embedded check: expected allowed and {expected_key} counted, got {first:?} \
             ({before:?} -> {after:?})"
        );
    }
    let keys: Arc<Vec<String>> = Arc::new(keys);

    let embed = {
        let limiter = limiter.clone();
        let keys = keys.clone();
        let policies = policies.clone();
        EmbedLoop::new("e", "embedded limiter.check", move |i| {
            let limiter = limiter.clone();
            let keys = keys.clone();
            let policies = policies.clone();
            async move {
                match limiter.check(&keys[i % keys.len()], &policies, 1).await {
                    Ok(result) if result.allowed => Ok(()),
                    other => bail!("embedded check: {other:?}"),
                }
            }
        })
    };
    let direct = {
        let redis = redis.clone();
        let keys = keys.clone();
        EmbedLoop::new("d", "direct redis-rs EVALSHA check.lua", move |i| {
            let mut redis = redis.clone();
            let cmd = evalsha(&sha1, &keys[i % keys.len()]);
            async move {
                let reply: Vec<i64> = cmd.query_async(&mut redis).await?;
                match reply.first() {
                    Some(1) => Ok(()),
                    _ => bail!("direct EVALSHA check.lua: not allowed: {reply:?}"),
                }
            }
        })
    };
    println!();
    let results = embedded_rounds(&[embed, direct], settings, cli.tasks).await?;
    let [embed_seq, direct_seq] = results.sequential.as_slice() else {
        bail!("expected a result per embedded loop");
    };
    let [embed_conc, direct_conc] = results.concurrent.as_slice() else {
        bail!("expected a result per embedded loop");
    };
    println!();
    print_rounds(&[embed_seq, direct_seq, embed_conc, direct_conc], "check");
    let seq_ratio = embed_seq.ratio(direct_seq, Row::mean_us);
    let conc_ratio = direct_conc.ratio(embed_conc, |row| row.ops_per_s);
    println!();
    println!(
        "  embedded/direct EVALSHA: sequential mean latency {}; {}-task throughput cost {} \
         (ceiling {EMBED_CEILING}x, on the median)",
        seq_ratio.describe(),
        cli.tasks,
        conc_ratio.describe()
    );
    println!(
        "  embedded − direct EVALSHA per check (sequential mean): {}",
        describe_difference(embed_seq, direct_seq, Row::mean_us)
    );
    summary.extend([
        (
            "RL embedded mean latency, seq: embedded / direct EVALSHA".to_string(),
            seq_ratio,
            embed_verdict(seq_ratio.median),
        ),
        (
            "RL embedded p99 latency, seq:  embedded / direct EVALSHA".to_string(),
            embed_seq.ratio(direct_seq, Row::p99_us),
            String::new(),
        ),
        (
            format!(
                "RL embedded ops/s, {} tasks: direct EVALSHA / embedded",
                cli.tasks
            ),
            conc_ratio,
            embed_verdict(conc_ratio.median),
        ),
    ]);
    Ok(summary)
}
