//! The queue-poll trigger: claims jobs of one queue through the queue component, runs each in
//! a handler (a worker component, or a Rust closure from `redwasm::embed`), renews its lease
//! while it runs, and acknowledges or fails it.
//!
//! - **Never busy-polls.** When a claim finds nothing, the loop blocks on the queue's wake-up
//!   list (`BLPOP <prefix>q{<queue>}:n`, pushed by every enqueue, requeue and release) on a
//!   dedicated connection of the host's own, at most until the next delayed job is due (the
//!   claim says when) and at most 1 s, so a due delayed job starts within a few ms of its
//!   time and an idle queue costs one blocking read per second.
//! - **Hard timeout and cancel.** Each attempt runs within the job's `timeout_ms`; past it
//!   the call is dropped at the next epoch tick (10 ms) and the instance discarded. A lease
//!   renewal that finds the job cancelled (409 `cancelled`) drops the running attempt the
//!   same way: nothing keeps running.
//! - **Poison jobs** (trap, memory limit, timeout) fail their attempt with the reason; after
//!   `max_attempts` the job is dead with it. The process stays healthy.
//! - **Acks in batches.** Completed attempts queue their ack; one task sends whatever has
//!   gathered (up to 64) in one `ack-many` call, so under load one Lua call acknowledges many
//!   jobs and at low load an ack waits for nobody.
//! - **Shutdown**: stop claiming; running attempts get `drain` to finish; the rest are
//!   stopped and their leases given back without spending the attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::embed::queue::{ClaimedJob, Queue, QueueError};
use crate::redis::RedisPool;

/// One attempt of one job, as a handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobAttempt {
    /// The job's id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its `type`.
    pub job_type: String,
    /// Its payload.
    pub payload: Value,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
    /// The enqueueing request's `X-Correlation-Id`.
    pub correlation_id: Option<String>,
    /// How long the attempt may run.
    pub timeout: Duration,
}

impl JobAttempt {
    fn from_claimed(queue: &str, claimed: &ClaimedJob) -> Self {
        let job = &claimed.job;
        let number = |k: &str| job[k].as_u64().unwrap_or(1).min(u64::from(u32::MAX)) as u32;
        JobAttempt {
            id: claimed.id.clone(),
            queue: queue.to_string(),
            job_type: job["type"].as_str().unwrap_or_default().to_string(),
            payload: job["payload"].clone(),
            attempt: number("attempts"),
            max_attempts: number("max_attempts"),
            correlation_id: job["correlation_id"].as_str().map(str::to_string),
            timeout: claimed.timeout,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// Done, with an optional result.
    Completed(Option<Value>),
    /// Failed; retried after the backoff while attempts remain.
    Failed(String),
    /// Failed for good: dead at once.
    Fatal(String),
}

/// What runs one attempt.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs `job`. The trigger stops it (drops the future) at its timeout or when the job is
    /// cancelled.
    fn handle(&self, job: JobAttempt) -> impl Future<Output = AttemptOutcome> + Send;
}

/// A closure as a handler: `|job| async move { AttemptOutcome::Completed(None) }`.
pub struct FnHandler<F>(pub F);

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobAttempt) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AttemptOutcome> + Send,
{
    fn handle(&self, job: JobAttempt) -> impl Future<Output = AttemptOutcome> + Send {
        (self.0)(job)
    }
}

/// A queue-poll trigger's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// The queue.
    pub queue: String,
    /// The name claims carry (shown on the job while it runs).
    pub worker: String,
    /// Attempts run at once.
    pub concurrency: usize,
    /// Lease per claim, renewed while an attempt runs.
    pub lease: Duration,
    /// Jobs claimed per round trip.
    pub batch: u32,
    /// At shutdown, how long running attempts may finish before their leases are given back.
    pub drain: Duration,
}

impl WorkerOptions {
    /// Defaults: concurrency 8, lease 30 s, batch 16, drain 10 s; the worker named after the
    /// process.
    pub fn new(queue: &str) -> Self {
        WorkerOptions {
            queue: queue.to_string(),
            worker: format!("redwasm-{}", std::process::id()),
            concurrency: 8,
            lease: Duration::from_secs(30),
            batch: 16,
            drain: Duration::from_secs(10),
        }
    }
}

/// What a trigger did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Attempts that completed their job.
    pub completed: u64,
    /// Attempts that failed (retried or dead).
    pub failed: u64,
    /// Attempts stopped because their job was cancelled.
    pub cancelled: u64,
    /// Leases given back at shutdown.
    pub released: u64,
}

impl WorkerReport {
    fn count(&mut self, settled: Settled) {
        match settled {
            Settled::Completed => self.completed += 1,
            Settled::Failed => self.failed += 1,
            Settled::Cancelled => self.cancelled += 1,
            Settled::Released => self.released += 1,
            Settled::Lost => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Settled {
    Completed,
    Failed,
    Cancelled,
    Released,
    Lost,
}

/// Most acks sent in one call.
const ACK_BATCH: usize = 64;

/// One completed attempt waiting for its ack.
struct AckRequest {
    id: String,
    lease: String,
    result: Option<Value>,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// Starts the task that sends acks in batches; it ends when every sender is gone.
fn spawn_acker(queue: Arc<Queue>, name: String) -> mpsc::UnboundedSender<AckRequest> {
    let (tx, mut rx) = mpsc::unbounded_channel::<AckRequest>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(ACK_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < ACK_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let items: Vec<(String, String, Option<Value>)> = batch
                .iter()
                .map(|r| (r.id.clone(), r.lease.clone(), r.result.clone()))
                .collect();
            match queue.ack_many(&name, &items).await {
                Ok(outcomes) => {
                    for (request, outcome) in batch.drain(..).zip(outcomes) {
                        let _ = request.reply.send(outcome);
                    }
                }
                Err(error) => {
                    for request in batch.drain(..) {
                        let _ = request.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    });
    tx
}

/// Runs the trigger until `shutdown` resolves, then drains.
pub async fn run<H: JobHandler>(
    queue: Arc<Queue>,
    handler: Arc<H>,
    pool: Arc<RedisPool>,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> WorkerReport {
    let options = Arc::new(options);
    let wake_key = format!("{}q{{{}}}:n", queue.redis_prefix(), options.queue);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut running: JoinSet<Settled> = JoinSet::new();
    let mut report = WorkerReport::default();
    let acks = spawn_acker(queue.clone(), options.queue.clone());
    tokio::pin!(shutdown);
    tracing::info!(queue = %options.queue, worker = %options.worker, "queue trigger started");
    // Refill in chunks (half a batch, or half the slots), not one job at a time: a claim is
    // one Lua call however many jobs it takes.
    let refill = (options.batch as usize)
        .min(options.concurrency)
        .div_ceil(2)
        .max(1);
    loop {
        // Room for a chunk of attempts.
        while options.concurrency - running.len() < refill {
            tokio::select! {
                biased;
                () = &mut shutdown => return drain(running, stop_tx, &options, report).await,
                Some(done) = running.join_next() => report.count(done.unwrap_or(Settled::Lost)),
            }
        }
        let free = (options.concurrency - running.len()) as u32;
        let claim = queue.claim(
            &options.queue,
            &options.worker,
            free.min(options.batch),
            options.lease,
        );
        let claimed = tokio::select! {
            biased;
            () = &mut shutdown => return drain(running, stop_tx, &options, report).await,
            claimed = claim => claimed,
        };
        let idle_for = match claimed {
            Ok((jobs, next_due)) => {
                let got = jobs.len();
                for job in jobs {
                    running.spawn(attempt(
                        queue.clone(),
                        handler.clone(),
                        options.clone(),
                        job,
                        acks.clone(),
                        stop_rx.clone(),
                    ));
                }
                if got > 0 {
                    None
                } else {
                    let now = now_ms();
                    let until_due = next_due.map_or(1_000, |due| due.saturating_sub(now));
                    Some(Duration::from_millis(until_due.min(1_000)))
                }
            }
            Err(error) => {
                tracing::warn!(queue = %options.queue, %error, "queue trigger: claim failed; retrying");
                Some(Duration::from_millis(500))
            }
        };
        let Some(idle_for) = idle_for else { continue };
        if idle_for.is_zero() {
            continue;
        }
        // Nothing to do: sleep on the wake-up list (or until an attempt ends, freeing room).
        tokio::select! {
            biased;
            () = &mut shutdown => return drain(running, stop_tx, &options, report).await,
            Some(done) = running.join_next() => report.count(done.unwrap_or(Settled::Lost)),
            () = wait_for_wake(&pool, &wake_key, idle_for) => {}
        }
    }
}

/// Blocks on the wake-up list for at most `limit` (a plain sleep when no host Redis is
/// declared or the blocking read fails, so a broken connection never spins).
async fn wait_for_wake(pool: &RedisPool, key: &str, limit: Duration) {
    let started = Instant::now();
    let woke = match pool.admin() {
        Some(admin) => admin.block_on_list(key, limit).await,
        None => false,
    };
    if !woke && let Some(rest) = limit.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

async fn drain(
    mut running: JoinSet<Settled>,
    stop: watch::Sender<bool>,
    options: &WorkerOptions,
    mut report: WorkerReport,
) -> WorkerReport {
    tracing::info!(queue = %options.queue, running = running.len(), "queue trigger draining");
    let deadline = tokio::time::Instant::now() + options.drain;
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, running.join_next()).await {
            Ok(Some(done)) => report.count(done.unwrap_or(Settled::Lost)),
            Ok(None) => break,
            Err(_) => {
                // Past the drain deadline: stop the rest; each gives its lease back.
                let _ = stop.send(true);
                while let Some(done) = running.join_next().await {
                    report.count(done.unwrap_or(Settled::Lost));
                }
            }
        }
    }
    tracing::info!(queue = %options.queue, ?report, "queue trigger stopped");
    report
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs one attempt with lease renewal, then settles it.
async fn attempt<H: JobHandler>(
    queue: Arc<Queue>,
    handler: Arc<H>,
    options: Arc<WorkerOptions>,
    job: ClaimedJob,
    acks: mpsc::UnboundedSender<AckRequest>,
    mut stop: watch::Receiver<bool>,
) -> Settled {
    let q = options.queue.as_str();
    let attempt = JobAttempt::from_claimed(q, &job);
    // The component path enforces the timeout itself; a closure gets it here (plus a little,
    // so the component's own, more precise stop wins).
    let limit = attempt.timeout + Duration::from_millis(50);
    let run = tokio::time::timeout(limit, handler.handle(attempt));
    tokio::pin!(run);
    // Renew at a third of the lease, at least every second (a cancel is seen within 1 s);
    // never a zero period (an embedder may pass a zero lease), which tokio refuses.
    let every = (options.lease / 3)
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let outcome = loop {
        tokio::select! {
            biased;
            outcome = &mut run => break outcome.unwrap_or_else(|_| AttemptOutcome::Failed(format!(
                "timeout: the handler ran longer than {} ms and was stopped",
                job.timeout.as_millis()
            ))),
            _ = stop.changed() => {
                // Shutdown past the drain deadline: stop the attempt, give the job back.
                return match queue.release(q, &job.id, &job.lease).await {
                    Ok(()) => Settled::Released,
                    Err(error) => {
                        tracing::warn!(queue = q, id = %job.id, %error, "release failed");
                        Settled::Lost
                    }
                };
            }
            _ = renew.tick() => match queue.heartbeat(q, &job.id, &job.lease, options.lease).await {
                Ok(_) => {}
                Err(QueueError::Conflict(status)) => {
                    // Cancelled (or the lease was lost): dropping `run` stops the handler.
                    tracing::info!(queue = q, id = %job.id, %status, "job no longer ours; attempt stopped");
                    return if status == "cancelled" { Settled::Cancelled } else { Settled::Lost };
                }
                Err(QueueError::NotFound) => return Settled::Lost,
                Err(error) => tracing::warn!(queue = q, id = %job.id, %error, "lease renewal failed"),
            },
        }
    };
    let settled = match &outcome {
        AttemptOutcome::Completed(result) => {
            let (reply, outcome) = oneshot::channel();
            let request = AckRequest {
                id: job.id.clone(),
                lease: job.lease.clone(),
                result: result.clone(),
                reply,
            };
            match acks.send(request) {
                Ok(()) => outcome
                    .await
                    .unwrap_or_else(|_| Err(QueueError::Unavailable("the acker stopped".into())))
                    .map(|()| Settled::Completed),
                Err(_) => Err(QueueError::Unavailable("the acker stopped".into())),
            }
        }
        AttemptOutcome::Failed(reason) => queue
            .nack(q, &job.id, &job.lease, reason, true)
            .await
            .map(|_| Settled::Failed),
        AttemptOutcome::Fatal(reason) => queue
            .nack(q, &job.id, &job.lease, reason, false)
            .await
            .map(|_| Settled::Failed),
    };
    settled.unwrap_or_else(|error| {
        tracing::warn!(queue = q, id = %job.id, %error, "could not settle the attempt");
        Settled::Lost
    })
}
