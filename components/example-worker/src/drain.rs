//! The Spin fallback: Spin has no queue-poll trigger, so under `spin up` the worker is fired
//! by Spin's Redis trigger on the channel `q{<queue>}:notify`, which every enqueue publishes
//! to, and drains what is due through the queue component's own Lua (the same files,
//! `components/queue/lua/`), in bounded batches.
//!
//! What Spin's trigger cannot do, and so this path cannot either: a notification is
//! delivered at most once (one published while Spin is down or reconnecting is lost: the
//! jobs wait for the next one), messages are handled one at a time, a running handler has no
//! hard timeout or cancel, leases are not renewed while a job runs (a job longer than the
//! lease may run twice), and delayed jobs and schedules only run when a later notification
//! arrives. The redwasm host's queue-poll trigger has none of these limits.

use redwasm_guest::redis::{Arg, RedisError, RedisExec, Script, Value};
use serde_json::Value as Json;

use crate::Failure;

static CLAIM: Script = Script::new("claim", include_str!("../../queue/lua/claim.lua"));
static ACK: Script = Script::new("ack", include_str!("../../queue/lua/ack.lua"));
static NACK: Script = Script::new("nack", include_str!("../../queue/lua/nack.lua"));

/// How much one notification drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    /// The queue.
    pub queue: String,
    /// Jobs claimed per call.
    pub batch: u64,
    /// Most jobs run per notification (bounded work per message).
    pub max_jobs: u64,
    /// The lease of each claim, ms.
    pub lease_ms: u64,
}

impl DrainOptions {
    /// Batches of 16, at most 256 jobs, 30 s leases.
    pub fn new(queue: &str) -> Self {
        DrainOptions {
            queue: queue.to_string(),
            batch: 16,
            max_jobs: 256,
            lease_ms: 30_000,
        }
    }
}

/// What one drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed (retried later or dead).
    pub failed: u64,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::Status(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Claims and runs due jobs of `options.queue` until none is left or `max_jobs` ran.
/// `run` does one job; `now_ms` is the caller's clock.
pub fn drain(
    redis: &mut dyn RedisExec,
    now_ms: &dyn Fn() -> u64,
    options: &DrainOptions,
    run: &dyn Fn(&str, &Json) -> Result<Json, Failure>,
) -> Result<Drained, RedisError> {
    let base = vec![format!("q{{{}}}:", options.queue)];
    let mut drained = Drained::default();
    while drained.completed + drained.failed < options.max_jobs {
        let room = options.max_jobs - drained.completed - drained.failed;
        let argv = [
            now_ms().to_string(),
            options.batch.min(room).to_string(),
            options.lease_ms.to_string(),
            "spin".to_string(),
            redwasm_guest::token::new_token(),
            "10000".to_string(),
            "1000".to_string(),
            "10000".to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = CLAIM.run(redis, &base, &argv)?;
        // next due, due schedules (their names and ticks: not fired here), then the jobs.
        let schedules = text(reply.get(1)).parse::<usize>().unwrap_or(0);
        let jobs = reply.get(2 + 2 * schedules..).unwrap_or_default();
        if jobs.is_empty() {
            break;
        }
        for job in jobs.chunks(3) {
            let (id, lease) = (text(job.first()), text(job.get(1)));
            let record: Json = serde_json::from_str(&text(job.get(2))).unwrap_or(Json::Null);
            let payload: Json = record["payload"]
                .as_str()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Json::Null);
            let job_type = record["type"].as_str().unwrap_or_default();
            match run(job_type, &payload) {
                Ok(result) => {
                    let argv = [
                        now_ms().to_string(),
                        "1000".to_string(),
                        "86400000".to_string(),
                        "10000".to_string(),
                        "1000".to_string(),
                        id,
                        lease,
                        result.to_string(),
                    ];
                    let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
                    ACK.run(redis, &base, &argv)?;
                    drained.completed += 1;
                }
                Err(failure) => {
                    let (reason, retry) = match failure {
                        Failure::Retry(e) => (e, "1"),
                        Failure::Fatal(e) => (e, "0"),
                    };
                    let jitter = redwasm_guest::token::random_up_to(999) as f64 / 1000.0;
                    let argv = [
                        now_ms().to_string(),
                        id,
                        lease,
                        reason,
                        retry.to_string(),
                        jitter.to_string(),
                        "10000".to_string(),
                        "10000".to_string(),
                    ];
                    let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
                    NACK.run(redis, &base, &argv)?;
                    drained.failed += 1;
                }
            }
        }
    }
    Ok(drained)
}
