//! `GET /stats`.

use serde_json::json;

use super::{HttpError, HttpResponse};
use crate::QueueError;
use crate::clock::Clock;
use crate::queue::Queues;
use crate::redis::RedisExec;

/// `GET /stats`.
pub(super) fn handle<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse::json(200, &stats_json(queues, queue)?))
}

/// Counts per state, totals, and latency percentiles (ms): `p50`/`p95`/`p99` are the queue
/// wait (available to claimed), `run` the handler time (claimed to acknowledged).
pub fn stats_json<R: RedisExec, C: Clock>(
    queues: &mut Queues<R, C>,
    queue: &str,
) -> Result<serde_json::Value, QueueError> {
    let s = queues.stats(queue)?;
    let [wp50, wp95, wp99] = s.wait_ms;
    let [rp50, rp95, rp99] = s.run_ms;
    Ok(json!({
            "waiting": s.waiting,
            "delayed": s.delayed,
            "active": s.active,
            "completed": s.completed,
            "failed": s.failed,
            "dead": s.dead,
            "cancelled": s.cancelled,
            "processed_total": s.processed_total,
            "failed_total": s.failed_total,
            "dead_total": s.dead_total,
            "latency_ms": {
                "p50": wp50, "p95": wp95, "p99": wp99,
                "run": { "p50": rp50, "p95": rp95, "p99": rp99 },
            },
    }))
}
