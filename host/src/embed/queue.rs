//! The queue component's typed API (`redwasm:queue/queue@0.1.0`) and queue worker components
//! (`redwasm:queue/handler@0.1.0`), called in-process. The queue-poll trigger
//! ([`crate::trigger::queue`]) runs on these; an embedding program uses them directly:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use redwasm::embed::Redwasm;
//! use serde_json::json;
//!
//! let redwasm = Redwasm::connect("redis://127.0.0.1:6379").await?;
//! let queue = redwasm.queue().await?;
//! let job = queue.enqueue("mail", &json!({"type": "welcome", "payload": {"to": "ada"}})).await?;
//! println!("{} is {}", job.id, job.status);
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::engine::HostState;
use crate::engine::pool::CallFailure;
use crate::engine::pool::{Exports, InstancePool, TypedExports};
use crate::trigger::queue::{AttemptOutcome, JobAttempt, JobHandler};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/queue-0.1.0.wit",
        world: "queue-component",
        exports: { default: async },
    });
}

mod worker_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/queue-0.1.0.wit",
        world: "worker",
        exports: { default: async },
    });
}

use bindings::exports::redwasm::queue::queue as wit;
use worker_bindings::exports::redwasm::queue::handler as wit_handler;

impl TypedExports for bindings::QueueComponent {
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        bindings::QueueComponentPre::new(instance_pre)
    }
}

impl Exports for bindings::QueueComponent {
    type Pre = bindings::QueueComponentPre<HostState>;

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
        pre.instantiate_async(store)
    }
}

impl TypedExports for worker_bindings::Worker {
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        worker_bindings::WorkerPre::new(instance_pre)
    }
}

impl Exports for worker_bindings::Worker {
    type Pre = worker_bindings::WorkerPre<HostState>;

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
        pre.instantiate_async(store)
    }
}

/// Errors of the queue embedding API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// An argument is invalid (the text starts with the field).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A payload or batch over its limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// No such job.
    #[error("no such job")]
    NotFound,
    /// The lease is not current or the job already finished (the job's status).
    #[error("conflict: the job is {0}")]
    Conflict(String),
    /// Redis is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The component trapped or the call timed out; the instance was discarded.
    #[error("component failure: {0}")]
    Component(String),
}

impl From<wit::Error> for QueueError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Invalid(s) => QueueError::Invalid(s),
            wit::Error::TooLarge(s) => QueueError::TooLarge(s),
            wit::Error::NotFound => QueueError::NotFound,
            wit::Error::Conflict(s) => QueueError::Conflict(s),
            wit::Error::Unavailable(s) => QueueError::Unavailable(s),
        }
    }
}

/// What enqueueing one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the first job's, for a duplicate idempotency key).
    pub id: String,
    /// `waiting` or `delayed` (a duplicate: the first job's status).
    pub status: String,
    /// The idempotency key was seen within its retention window.
    pub duplicate: bool,
}

/// A job leased by [`Queue::claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: String,
    /// The lease token.
    pub lease: String,
    /// How long one attempt may run.
    pub timeout: Duration,
    /// The job (the contract's JSON object, status `active`).
    pub job: Value,
}

/// The queue component, callable from Rust (the same data as `/v1/queues` of a host on the
/// same Redis with the same component id).
pub struct Queue {
    instances: InstancePool<bindings::QueueComponent>,
}

impl Queue {
    pub(crate) fn new(instances: InstancePool<bindings::QueueComponent>) -> Self {
        Queue { instances }
    }

    /// The key prefix of the queue component's namespace (where its queues live).
    pub(crate) fn redis_prefix(&self) -> String {
        self.instances
            .component()
            .redis_prefix()
            .unwrap_or_default()
            .to_string()
    }

    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(
            &bindings::QueueComponent,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::Error>>,
    ) -> Result<R, QueueError> {
        match self.instances.call(f).await {
            Ok(inner) => inner.map_err(QueueError::from),
            Err(trap) => Err(QueueError::Component(format!("{trap:?}"))),
        }
    }

    /// Enqueues one job (a `POST /jobs` body).
    pub async fn enqueue(&self, queue: &str, job: &Value) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_batch(queue, std::slice::from_ref(job)).await?;
        out.pop()
            .ok_or_else(|| QueueError::Component("no enqueue result".into()))
    }

    /// Enqueues many jobs in one round trip; all are validated before any is written.
    pub async fn enqueue_batch(
        &self,
        queue: &str,
        jobs: &[Value],
    ) -> Result<Vec<Enqueued>, QueueError> {
        let texts: Vec<String> = jobs.iter().map(Value::to_string).collect();
        let out = self
            .call(async |b, s| {
                b.redwasm_queue_queue()
                    .call_enqueue(s, queue, &texts, "")
                    .await
            })
            .await?;
        Ok(out
            .into_iter()
            .map(|e| Enqueued {
                id: e.id,
                status: e.status,
                duplicate: e.duplicate,
            })
            .collect())
    }

    /// The job (the contract's JSON object), if it exists.
    pub async fn get(&self, queue: &str, id: &str) -> Result<Option<Value>, QueueError> {
        let text = self
            .call(async |b, s| b.redwasm_queue_queue().call_get(s, queue, id).await)
            .await?;
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
    }

    /// Cancels a job; the cancelled job.
    pub async fn cancel(&self, queue: &str, id: &str) -> Result<Value, QueueError> {
        let text = self
            .call(async |b, s| b.redwasm_queue_queue().call_cancel(s, queue, id).await)
            .await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Counts, totals and latency percentiles (the JSON of `GET /stats`).
    pub async fn stats(&self, queue: &str) -> Result<Value, QueueError> {
        let text = self
            .call(async |b, s| b.redwasm_queue_queue().call_stats(s, queue).await)
            .await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Leases up to `max` jobs for `lease`; also when the next delayed job is due.
    pub async fn claim(
        &self,
        queue: &str,
        worker: &str,
        max: u32,
        lease: Duration,
    ) -> Result<(Vec<ClaimedJob>, Option<u64>), QueueError> {
        let lease_ms = lease.as_millis() as u64;
        let out = self
            .call(async |b, s| {
                b.redwasm_queue_queue()
                    .call_claim(s, queue, worker, max, lease_ms)
                    .await
            })
            .await?;
        let jobs = out
            .jobs
            .into_iter()
            .map(|c| ClaimedJob {
                id: c.id,
                lease: c.lease,
                timeout: Duration::from_millis(c.timeout_ms),
                job: serde_json::from_str(&c.job).unwrap_or(Value::Null),
            })
            .collect();
        Ok((jobs, out.next_due_ms))
    }

    /// Completes a leased job.
    pub async fn ack(
        &self,
        queue: &str,
        id: &str,
        lease: &str,
        result: Option<&Value>,
    ) -> Result<(), QueueError> {
        let result = result.map(Value::to_string);
        self.call(async |b, s| {
            b.redwasm_queue_queue()
                .call_ack(s, queue, id, lease, result.as_deref())
                .await
        })
        .await
    }

    /// Completes many leased jobs in one round trip: `(id, lease, result)` each; one outcome
    /// per job, in order.
    pub async fn ack_many(
        &self,
        queue: &str,
        items: &[(String, String, Option<Value>)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let wit_items: Vec<wit::AckItem> = items
            .iter()
            .map(|(id, lease, result)| wit::AckItem {
                id: id.clone(),
                lease: lease.clone(),
                outcome: result.as_ref().map(Value::to_string),
            })
            .collect();
        let out = self
            .call(async |b, s| {
                b.redwasm_queue_queue()
                    .call_ack_many(s, queue, &wit_items)
                    .await
            })
            .await?;
        Ok(out
            .into_iter()
            .map(|status| match status.as_deref() {
                None => Ok(()),
                Some("unknown") => Err(QueueError::NotFound),
                Some(status) => Err(QueueError::Conflict(status.to_string())),
            })
            .collect())
    }

    /// Fails a leased attempt: `Some(time)` it will be retried then, `None` it is dead.
    pub async fn nack(
        &self,
        queue: &str,
        id: &str,
        lease: &str,
        reason: &str,
        retry: bool,
    ) -> Result<Option<u64>, QueueError> {
        self.call(async |b, s| {
            b.redwasm_queue_queue()
                .call_nack(s, queue, id, lease, reason, retry)
                .await
        })
        .await
    }

    /// Extends a lease; the new deadline (ms since the epoch).
    pub async fn heartbeat(
        &self,
        queue: &str,
        id: &str,
        lease: &str,
        lease_for: Duration,
    ) -> Result<u64, QueueError> {
        let lease_ms = lease_for.as_millis() as u64;
        self.call(async |b, s| {
            b.redwasm_queue_queue()
                .call_heartbeat(s, queue, id, lease, lease_ms)
                .await
        })
        .await
    }

    /// Gives a leased job back without spending its attempt.
    pub async fn release(&self, queue: &str, id: &str, lease: &str) -> Result<(), QueueError> {
        self.call(async |b, s| {
            b.redwasm_queue_queue()
                .call_release(s, queue, id, lease)
                .await
        })
        .await
    }
}

/// A worker component (exports `redwasm:queue/handler`): each attempt runs in a pooled
/// instance within the job's `timeout_ms`; a trap, a timeout or the memory limit fails the
/// attempt (`trap: ...`, `timeout: ...`, `memory: ...`) and discards the instance, never the
/// process.
pub struct WorkerComponent {
    instances: InstancePool<worker_bindings::Worker>,
}

impl WorkerComponent {
    pub(crate) fn new(instances: InstancePool<worker_bindings::Worker>) -> Self {
        WorkerComponent { instances }
    }
}

impl JobHandler for WorkerComponent {
    async fn handle(&self, job: JobAttempt) -> AttemptOutcome {
        let wit_job = wit_handler::Job {
            id: job.id.clone(),
            queue: job.queue.clone(),
            job_type: job.job_type.clone(),
            payload: job.payload.to_string(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            correlation_id: job.correlation_id.clone(),
        };
        let outcome = self
            .instances
            .call_within(job.timeout, async |w, s| {
                w.redwasm_queue_handler().call_handle(s, &wit_job).await
            })
            .await;
        match outcome {
            Ok(Ok(result)) => AttemptOutcome::Completed(
                result.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))),
            ),
            Ok(Err(wit_handler::JobError::Failed(e))) => AttemptOutcome::Failed(e),
            Ok(Err(wit_handler::JobError::Fatal(e))) => AttemptOutcome::Fatal(e),
            Err(CallFailure::Timeout(limit)) => AttemptOutcome::Failed(format!(
                "timeout: the handler ran longer than {} ms and was stopped",
                limit.as_millis()
            )),
            Err(failure) if failure.is_memory_limit() => AttemptOutcome::Failed(format!(
                "memory: the handler grew past its memory limit of {} bytes",
                self.instances.component().spec.settings.max_memory_bytes
            )),
            Err(CallFailure::Trap(trap)) => AttemptOutcome::Failed(format!(
                "trap: {}",
                format!("{trap:#}")
                    .lines()
                    .next()
                    .unwrap_or("the handler trapped")
            )),
        }
    }
}
