//! The `redwasm:queue/handler` export: [`crate::run`] plus an optional completion record.

use redwasm_guest::redis::{Arg, RedisExec};
use redwasm_guest::spin::{SpinRedis, variable};

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/queue-0.1.0.wit",
        world: "worker",
    });
}

use bindings::exports::redwasm::queue::handler as wit;

struct Worker;

impl wit::Guest for Worker {
    fn handle(job: wit::Job) -> Result<Option<String>, wit::JobError> {
        let payload: serde_json::Value =
            serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null);
        let result = crate::run(&job.job_type, &payload).map_err(|failure| match failure {
            crate::Failure::Retry(e) => wit::JobError::Failed(e),
            crate::Failure::Fatal(e) => wit::JobError::Fatal(e),
        })?;
        if let Some(set) = payload["record"].as_str() {
            let address =
                variable("redis_address").unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
            SpinRedis::new(address)
                .exec("SADD", &[Arg::from(set), Arg::from(job.id.as_str())])
                .map_err(|e| wit::JobError::Failed(format!("record: {e}")))?;
        }
        Ok(Some(result.to_string()))
    }
}

bindings::export!(Worker with_types_in bindings);

/// Spin's Redis trigger fires this on `q{<worker_queue>}:notify` (spin.toml): drain what is
/// due through the queue's own Lua. The redwasm host never calls it (its queue-poll trigger
/// calls `handle`).
#[spin_sdk::redis_component]
fn on_notify(_message: bytes::Bytes) -> anyhow::Result<()> {
    let address = variable("redis_address").unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let queue = variable("worker_queue").unwrap_or_else(|| "work".to_string());
    let mut redis = SpinRedis::new(address);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    let options = crate::drain::DrainOptions::new(&queue);
    let drained = crate::drain::drain(&mut redis, &now, &options, &crate::run)
        .map_err(|e| anyhow::anyhow!("drain {queue}: {e}"))?;
    eprintln!(
        "redwasm-example-worker: {queue}: {} completed, {} failed",
        drained.completed, drained.failed
    );
    Ok(())
}
