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
