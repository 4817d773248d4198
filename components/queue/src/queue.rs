//! The queue's operations: plain Rust over [`RedisExec`] and [`Clock`], one Lua script per
//! operation (each one round trip), natively testable against a real redis-server.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::clock::Clock;
use crate::config::QueueConfig;
use crate::error::QueueError;
use crate::job::{Claimed, Job, NewJob};
use crate::keys::{self, validate_queue, validate_segment};
use crate::redis::{Arg, RedisExec, Value};
use crate::schedule::Schedule;
use crate::scripts;
use crate::token::{new_token, random_up_to};
use redwasm_guest::sse::{SseEvent, stream_event};

/// What enqueueing one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the first job's, for a duplicate).
    pub id: String,
    /// `waiting` or `delayed`; for a duplicate, the first job's current status (or
    /// `unknown` once it has been deleted by retention).
    pub status: String,
    /// The idempotency key was seen within the retention window.
    pub duplicate: bool,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nacked {
    /// It will be retried at this time.
    Retry(u64),
    /// No attempts left, or no retry asked: the job is a dead letter.
    Dead,
}

/// Counts per state, totals and latency percentiles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Waiting to be claimed.
    pub waiting: u64,
    /// Waiting for their time (not counting retries).
    pub delayed: u64,
    /// Leased to a worker.
    pub active: u64,
    /// Completed and still retained.
    pub completed: u64,
    /// Failed, waiting for a retry.
    pub failed: u64,
    /// Dead letters.
    pub dead: u64,
    /// Cancelled and still retained.
    pub cancelled: u64,
    /// Jobs completed, ever.
    pub processed_total: u64,
    /// Failed attempts (including those that led to dead letters), ever.
    pub failed_total: u64,
    /// Jobs that became dead letters, ever.
    pub dead_total: u64,
    /// Time from available to claimed: p50, p95, p99 (ms; bucket upper bounds).
    pub wait_ms: [u64; 3],
    /// Time from claimed to acknowledged: p50, p95, p99 (ms; bucket upper bounds).
    pub run_ms: [u64; 3],
}

/// The queue component's core: every queue under one Redis connection.
pub struct Queues<R, C> {
    redis: R,
    clock: C,
    config: QueueConfig,
}

fn int(values: &[Value], i: usize) -> u64 {
    match values.get(i) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn text(values: &[Value], i: usize) -> String {
    match values.get(i) {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Status(s)) => s.clone(),
        Some(Value::Int(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn unexpected(what: &str) -> QueueError {
    QueueError::Unavailable(format!("unexpected reply from {what}"))
}

/// A lease is 1 ms to 24 h.
fn check_lease_ms(lease_ms: u64) -> Result<(), QueueError> {
    if lease_ms == 0 || lease_ms > crate::job::MAX_TIMEOUT_MS {
        return Err(QueueError::invalid(
            "lease_ms",
            format!("must be from 1 to {}", crate::job::MAX_TIMEOUT_MS),
        ));
    }
    Ok(())
}

/// A job from one of the scripts' JSON objects.
fn job_from_json(queue: &str, text: &str) -> Option<Job> {
    let object: HashMap<String, Json> = serde_json::from_str(text).ok()?;
    let fields = object
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Json::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    Job::from_fields(queue, &fields)
}

/// The `p`-th percentile (0-100) of a log-scale histogram: bucket `b` holds values below
/// `2^((b+1)/4) − 1` ms.
pub fn percentile(histogram: &[(u32, u64)], p: u64) -> u64 {
    let total: u64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return 0;
    }
    let rank = (total * p).div_ceil(100).max(1);
    let mut seen = 0;
    let mut sorted = histogram.to_vec();
    sorted.sort_unstable();
    for (bucket, n) in sorted {
        seen += n;
        if seen >= rank {
            return (2f64.powf(f64::from(bucket + 1) / 4.0) - 1.0).ceil() as u64;
        }
    }
    0
}

impl<R: RedisExec, C: Clock> Queues<R, C> {
    /// Queues over `redis`, with `clock` as "now".
    pub fn new(redis: R, clock: C, config: QueueConfig) -> Self {
        Self {
            redis,
            clock,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The clock's "now".
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Enqueues `jobs` (one round trip, whatever their number).
    pub fn enqueue(&mut self, queue: &str, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        validate_queue(queue)?;
        if jobs.len() as u64 > self.config.max_batch {
            return Err(QueueError::TooLarge {
                field: "jobs".into(),
                limit: self.config.max_batch,
            });
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms().to_string();
        let retention = self.config.idempotency_retention_ms.to_string();
        let maxlen = self.config.events_maxlen.to_string();
        let bodies: Vec<String> = jobs
            .iter()
            .map(|job| job.to_script_json(&new_token()))
            .collect();
        let mut argv: Vec<Arg<'_>> = vec![(&now).into(), (&retention).into(), (&maxlen).into()];
        argv.extend(bodies.iter().map(Arg::from));
        let reply = scripts::ENQUEUE.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        if reply.len() != 2 * jobs.len() {
            return Err(unexpected("enqueue"));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for i in 0..jobs.len() {
            let id = text(&reply, 2 * i);
            let outcome = text(&reply, 2 * i + 1);
            let duplicate = outcome == "duplicate";
            let status = if duplicate {
                self.get(queue, &id)?
                    .map_or_else(|| "unknown".to_string(), |job| job.status)
            } else {
                outcome
            };
            out.push(Enqueued {
                id,
                status,
                duplicate,
            });
        }
        Ok(out)
    }

    /// The job, if it exists (finished jobs are kept as retention allows).
    pub fn get(&mut self, queue: &str, id: &str) -> Result<Option<Job>, QueueError> {
        validate_queue(queue)?;
        validate_segment("id", id)?;
        let key = keys::job(queue, id);
        let flat = self.redis.exec("HGETALL", &[Arg::from(&key)])?;
        let mut fields = HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks(2) {
            fields.insert(text(pair, 0), text(pair, 1));
        }
        Ok(Job::from_fields(queue, &fields))
    }

    /// Cancels a job: at once when it is not running; an active job's lease stops being
    /// current (its worker learns it from a 409; the redwasm host interrupts its handler).
    pub fn cancel(&mut self, queue: &str, id: &str) -> Result<Job, QueueError> {
        validate_queue(queue)?;
        validate_segment("id", id)?;
        let argv = [
            self.clock.now_ms().to_string(),
            id.to_string(),
            self.config.keep_cancelled.to_string(),
            self.config.events_maxlen.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::CANCEL.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        match (int(&reply, 0), text(&reply, 1).as_str()) {
            (1, _) => self.get(queue, id)?.ok_or(QueueError::NotFound),
            (_, "unknown") => Err(QueueError::NotFound),
            (_, status) => Err(QueueError::Conflict(status.to_string())),
        }
    }

    /// Leases up to `max` jobs for `lease_ms` to `worker`, highest priority first, FIFO
    /// within a priority. Moves due delayed jobs and expired leases back first (bounded).
    pub fn claim(
        &mut self,
        queue: &str,
        worker: &str,
        max: u64,
        lease_ms: u64,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.claim_next(queue, worker, max, lease_ms)
            .map(|(jobs, _)| jobs)
    }

    /// [`Queues::claim`], also returning when the next delayed (or retrying) job is due, so
    /// a worker that got nothing knows how long it may sleep.
    pub fn claim_next(
        &mut self,
        queue: &str,
        worker: &str,
        max: u64,
        lease_ms: u64,
    ) -> Result<(Vec<Claimed>, Option<u64>), QueueError> {
        validate_queue(queue)?;
        validate_segment("worker", worker)?;
        if max == 0 || max > self.config.max_claim {
            return Err(QueueError::invalid(
                "max",
                format!("must be from 1 to {}", self.config.max_claim),
            ));
        }
        check_lease_ms(lease_ms)?;
        let argv = [
            self.clock.now_ms().to_string(),
            max.to_string(),
            lease_ms.to_string(),
            worker.to_string(),
            new_token(),
            self.config.events_maxlen.to_string(),
            self.config.sweep_bound.to_string(),
            self.config.keep_dead.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::CLAIM.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        if reply.len() < 2 {
            return Err(unexpected("claim"));
        }
        let mut next_due = int(&reply, 0);
        let due_schedules = int(&reply, 1) as usize;
        let jobs_at = 2 + 2 * due_schedules;
        let jobs = reply.get(jobs_at..).ok_or_else(|| unexpected("claim"))?;
        if jobs.len() % 3 != 0 {
            return Err(unexpected("claim"));
        }
        let mut fired = 0;
        if due_schedules > 0 {
            let due: Vec<(String, u64)> = (0..due_schedules)
                .map(|i| (text(&reply, 2 + 2 * i), int(&reply, 3 + 2 * i)))
                .collect();
            fired = self.fire_schedules(queue, &due)?;
        }
        let claimed = jobs
            .chunks(3)
            .map(|c| {
                let job = job_from_json(queue, &text(c, 2)).ok_or_else(|| unexpected("claim"))?;
                Ok(Claimed {
                    job,
                    lease: text(c, 1),
                })
            })
            .collect::<Result<Vec<Claimed>, QueueError>>()?;
        let mut claimed = claimed;
        if fired > 0 && (claimed.len() as u64) < max {
            // The ticks' jobs were enqueued after this claim popped: take them now.
            let (more, due) =
                self.claim_next(queue, worker, max - claimed.len() as u64, lease_ms)?;
            claimed.extend(more);
            next_due = due.unwrap_or(0);
        }
        Ok((claimed, (next_due > 0).then_some(next_due)))
    }

    /// Completes a leased job with `result`. A lease that is not current is a
    /// [`QueueError::Conflict`] naming the job's status, and changes nothing.
    pub fn ack(
        &mut self,
        queue: &str,
        id: &str,
        lease: &str,
        result: Option<&Json>,
    ) -> Result<(), QueueError> {
        let mut out = self.ack_many(
            queue,
            &[(id.to_string(), lease.to_string(), result.cloned())],
        )?;
        out.pop().unwrap_or_else(|| Err(unexpected("ack")))
    }

    /// Completes many leased jobs in one round trip: `(id, lease, result)` each; one outcome
    /// per job, in order (a job whose lease is not current is left untouched).
    pub fn ack_many(
        &mut self,
        queue: &str,
        items: &[(String, String, Option<Json>)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        validate_queue(queue)?;
        let mut argv = vec![
            self.clock.now_ms().to_string(),
            self.config.keep_completed.to_string(),
            self.config.keep_completed_ms.to_string(),
            self.config.events_maxlen.to_string(),
            self.config.sweep_bound.max(items.len() as u64).to_string(),
        ];
        for (id, lease, result) in items {
            validate_segment("id", id)?;
            validate_segment("lease", lease)?;
            let result = result.as_ref().map(Json::to_string).unwrap_or_default();
            if result.len() as u64 > self.config.max_payload_bytes {
                return Err(QueueError::TooLarge {
                    field: "result".into(),
                    limit: self.config.max_payload_bytes,
                });
            }
            argv.extend([id.clone(), lease.clone(), result]);
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::ACK.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        if reply.len() != items.len() {
            return Err(unexpected("ack"));
        }
        Ok((0..reply.len())
            .map(|i| match text(&reply, i).as_str() {
                "" => Ok(()),
                "unknown" => Err(QueueError::NotFound),
                status => Err(QueueError::Conflict(status.to_string())),
            })
            .collect())
    }

    fn lease_outcome(&self, reply: &[Value]) -> Result<Vec<Value>, QueueError> {
        match int(reply, 0) {
            1 => Ok(reply.to_vec()),
            _ => match text(reply, 1).as_str() {
                "unknown" => Err(QueueError::NotFound),
                status => Err(QueueError::Conflict(status.to_string())),
            },
        }
    }

    /// Fails a leased attempt with `error`: retried after the job's backoff (with jitter)
    /// while attempts remain and `retry` is true, else a dead letter.
    pub fn nack(
        &mut self,
        queue: &str,
        id: &str,
        lease: &str,
        error: &str,
        retry: bool,
    ) -> Result<Nacked, QueueError> {
        validate_queue(queue)?;
        validate_segment("id", id)?;
        validate_segment("lease", lease)?;
        let error: String = error.chars().take(4096).collect();
        let jitter = random_up_to(999_999) as f64 / 1_000_000.0;
        let argv = [
            self.clock.now_ms().to_string(),
            id.to_string(),
            lease.to_string(),
            error,
            if retry { "1" } else { "0" }.to_string(),
            jitter.to_string(),
            self.config.keep_dead.to_string(),
            self.config.events_maxlen.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::NACK.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        let reply = self.lease_outcome(&reply)?;
        match text(&reply, 1).as_str() {
            "failed" => Ok(Nacked::Retry(int(&reply, 2))),
            "dead" => Ok(Nacked::Dead),
            _ => Err(unexpected("nack")),
        }
    }

    /// Extends a lease to now + `lease_ms`; the new deadline.
    pub fn heartbeat(
        &mut self,
        queue: &str,
        id: &str,
        lease: &str,
        lease_ms: u64,
    ) -> Result<u64, QueueError> {
        validate_queue(queue)?;
        validate_segment("id", id)?;
        validate_segment("lease", lease)?;
        check_lease_ms(lease_ms)?;
        let argv = [
            self.clock.now_ms().to_string(),
            id.to_string(),
            lease.to_string(),
            lease_ms.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::HEARTBEAT.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        let reply = self.lease_outcome(&reply)?;
        Ok(int(&reply, 1))
    }

    /// Fires the due ticks `(name, tick)`: enqueues each tick's job (idempotency key
    /// `schedule:<name>:<tick>`), then moves the schedule to its next tick once. Returns how
    /// many jobs this call enqueued (duplicates of another host's firing not counted).
    fn fire_schedules(&mut self, queue: &str, due: &[(String, u64)]) -> Result<u64, QueueError> {
        let now = self.clock.now_ms();
        let mut fired = 0;
        for (name, tick) in due {
            let stored = self.redis.exec(
                "HGET",
                &[Arg::from(&keys::schedules(queue)), Arg::from(name.as_str())],
            )?;
            let Some(schedule) = Schedule::from_stored(name, &text(&stored, 0), Some(*tick)) else {
                continue;
            };
            let limit = self.config.max_payload_bytes;
            let mut job = NewJob::from_json(schedule.job.clone(), "job.", now, limit)?;
            job.idempotency_key = Some(format!("schedule:{name}:{tick}"));
            job.correlation_id = format!("schedule:{name}");
            let out = self.enqueue(queue, &[job])?;
            fired += out.iter().filter(|e| !e.duplicate).count() as u64;
            let next = schedule.every.next_after((*tick).max(now))?;
            let argv = [name.clone(), tick.to_string(), next.to_string()];
            let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
            scripts::SCHEDULE_ADVANCE.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        }
        Ok(fired)
    }

    /// Creates or replaces the schedule `name` from `{"cron"|"every_ms", "job"}`; true when
    /// it is new. Its first tick is the first after now.
    pub fn put_schedule(
        &mut self,
        queue: &str,
        name: &str,
        body: Json,
    ) -> Result<(Schedule, bool), QueueError> {
        validate_queue(queue)?;
        validate_segment("name", name)?;
        let now = self.clock.now_ms();
        let limit = self.config.max_payload_bytes;
        let mut schedule = Schedule::from_json(name, body, |job| {
            NewJob::from_json(job, "job.", now, limit).map(drop)
        })?;
        let next = schedule.every.next_after(now)?;
        schedule.next_run_ms = Some(next);
        let argv = [
            name.to_string(),
            schedule.stored_json().to_string(),
            next.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::SCHEDULE_PUT.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        // A worker asleep until the old next tick wakes to see the new one.
        self.redis
            .exec("LPUSH", &[Arg::from(&keys::notify(queue)), Arg::from("1")])?;
        self.redis.exec(
            "LTRIM",
            &[Arg::from(&keys::notify(queue)), Arg::Int(0), Arg::Int(0)],
        )?;
        Ok((schedule, int(&reply, 0) == 1))
    }

    /// Removes the schedule `name`; false when there was none.
    pub fn delete_schedule(&mut self, queue: &str, name: &str) -> Result<bool, QueueError> {
        validate_queue(queue)?;
        validate_segment("name", name)?;
        let reply = scripts::SCHEDULE_DELETE.run(
            &mut self.redis,
            &[keys::base(queue)],
            &[Arg::from(name)],
        )?;
        Ok(int(&reply, 0) == 1)
    }

    /// Every schedule of `queue`, by name.
    pub fn schedules(&mut self, queue: &str) -> Result<Vec<Schedule>, QueueError> {
        validate_queue(queue)?;
        let ticks = self.redis.exec(
            "ZRANGE",
            &[
                Arg::from(&keys::schedule_ticks(queue)),
                Arg::Int(0),
                Arg::Int(-1),
                Arg::from("WITHSCORES"),
            ],
        )?;
        let next: HashMap<String, u64> = ticks
            .chunks(2)
            .map(|c| (text(c, 0), text(c, 1).parse::<f64>().unwrap_or(0.0) as u64))
            .collect();
        let stored = self
            .redis
            .exec("HGETALL", &[Arg::from(&keys::schedules(queue))])?;
        let mut out: Vec<Schedule> = stored
            .chunks(2)
            .filter_map(|c| {
                let name = text(c, 0);
                let tick = next.get(&name).copied();
                Schedule::from_stored(&name, &text(c, 1), tick)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Gives a leased job back to waiting without spending its attempt (a worker that
    /// drains at shutdown and could not finish it).
    pub fn release(&mut self, queue: &str, id: &str, lease: &str) -> Result<(), QueueError> {
        validate_queue(queue)?;
        validate_segment("id", id)?;
        validate_segment("lease", lease)?;
        let argv = [
            self.clock.now_ms().to_string(),
            id.to_string(),
            lease.to_string(),
            self.config.events_maxlen.to_string(),
        ];
        let argv: Vec<Arg<'_>> = argv.iter().map(Arg::from).collect();
        let reply = scripts::RELEASE.run(&mut self.redis, &[keys::base(queue)], &argv)?;
        self.lease_outcome(&reply).map(drop)
    }

    /// The newest dead letters, at most `limit`.
    pub fn dead(&mut self, queue: &str, limit: u64) -> Result<Vec<Job>, QueueError> {
        validate_queue(queue)?;
        if limit == 0 || limit > 1000 {
            return Err(QueueError::invalid("limit", "must be from 1 to 1000"));
        }
        let limit = limit.to_string();
        let reply = scripts::LIST.run(
            &mut self.redis,
            &[keys::base(queue)],
            &[Arg::from("dead"), Arg::from(&limit)],
        )?;
        Ok((0..reply.len())
            .filter_map(|i| job_from_json(queue, &text(&reply, i)))
            .collect())
    }

    /// Puts dead letters back to waiting with their attempts reset: the given `ids` (those
    /// that are dead), or, with `None`, all of them. Returns how many.
    pub fn requeue(&mut self, queue: &str, ids: Option<&[String]>) -> Result<u64, QueueError> {
        validate_queue(queue)?;
        let now = self.clock.now_ms().to_string();
        let maxlen = self.config.events_maxlen.to_string();
        let batch = self.config.max_batch.to_string();
        match ids {
            Some(ids) => {
                for id in ids {
                    validate_segment("ids", id)?;
                }
                let mut total = 0;
                for chunk in ids.chunks(self.config.max_batch as usize) {
                    let mut argv: Vec<Arg<'_>> =
                        vec![(&now).into(), (&maxlen).into(), (&batch).into()];
                    argv.extend(chunk.iter().map(Arg::from));
                    let reply =
                        scripts::REQUEUE.run(&mut self.redis, &[keys::base(queue)], &argv)?;
                    total += int(&reply, 0);
                }
                Ok(total)
            }
            None => {
                // In bounded steps, so one call never blocks Redis for long.
                let mut total = 0;
                loop {
                    let argv: Vec<Arg<'_>> = vec![(&now).into(), (&maxlen).into(), (&batch).into()];
                    let reply =
                        scripts::REQUEUE.run(&mut self.redis, &[keys::base(queue)], &argv)?;
                    let n = int(&reply, 0);
                    total += n;
                    if n < self.config.max_batch {
                        return Ok(total);
                    }
                }
            }
        }
    }

    /// Where a client's stream of `queue`'s events starts: the events after `after`
    /// (`Last-Event-ID`), a `reset` when some may have been trimmed away, or nothing for a new
    /// client (live events only); and the stream id to follow after.
    pub fn events_start(
        &mut self,
        queue: &str,
        after: Option<&str>,
    ) -> Result<(Vec<SseEvent>, String), QueueError> {
        validate_queue(queue)?;
        if let Some(after) = after
            && !redwasm_guest::sse::is_stream_id(after)
        {
            return Err(QueueError::invalid(
                "Last-Event-ID",
                "must be a stream id <ms>-<seq>",
            ));
        }
        let max = self.config.events_maxlen.to_string();
        let reply = scripts::EVENTS.run(
            &mut self.redis,
            &[keys::base(queue)],
            &[Arg::from(after.unwrap_or("")), Arg::from(&max)],
        )?;
        let text = |v: &Value| match v {
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(i) => i.to_string(),
            _ => String::new(),
        };
        let (Some(kind), Some(last)) = (reply.first(), reply.get(1)) else {
            return Err(unexpected("events"));
        };
        let last = text(last);
        let mut events = Vec::new();
        match text(kind).as_str() {
            "reset" => events.push(SseEvent {
                id: last.clone(),
                event: "reset".into(),
                data: "{}".into(),
            }),
            "replay" => {
                let mut rest = &reply[2..];
                while let [id, Value::Int(n), tail @ ..] = rest {
                    let n = (*n as usize) * 2;
                    if tail.len() < n {
                        break;
                    }
                    let fields: Vec<(String, String)> = tail[..n]
                        .chunks(2)
                        .map(|pair| (text(&pair[0]), text(&pair[1])))
                        .collect();
                    events.push(stream_event(text(id), &fields));
                    rest = &tail[n..];
                }
            }
            _ => {}
        }
        Ok((events, last))
    }

    /// Counts per state, totals and latency percentiles.
    pub fn stats(&mut self, queue: &str) -> Result<Stats, QueueError> {
        validate_queue(queue)?;
        let reply = scripts::STATS.run(&mut self.redis, &[keys::base(queue)], &[])?;
        if reply.len() < 8 {
            return Err(unexpected("stats"));
        }
        let retrying = int(&reply, 4);
        let mut stats = Stats {
            waiting: int(&reply, 0),
            delayed: int(&reply, 1).saturating_sub(retrying),
            active: int(&reply, 2),
            completed: int(&reply, 3),
            failed: retrying,
            dead: int(&reply, 5),
            cancelled: int(&reply, 6),
            ..Stats::default()
        };
        let pairs = int(&reply, 7) as usize;
        let mut i = 8;
        for _ in 0..pairs {
            let value = int(&reply, i + 1);
            match text(&reply, i).as_str() {
                "processed_total" => stats.processed_total = value,
                "failed_total" => stats.failed_total = value,
                "dead_total" => stats.dead_total = value,
                _ => {}
            }
            i += 2;
        }
        let (mut wait, mut run) = (Vec::new(), Vec::new());
        while i + 1 < reply.len() {
            let name = text(&reply, i);
            let count = int(&reply, i + 1);
            if let Some(b) = name.strip_prefix('w').and_then(|b| b.parse().ok()) {
                wait.push((b, count));
            } else if let Some(b) = name.strip_prefix('r').and_then(|b| b.parse().ok()) {
                run.push((b, count));
            }
            i += 2;
        }
        stats.wait_ms = [50, 95, 99].map(|p| percentile(&wait, p));
        stats.run_ms = [50, 95, 99].map(|p| percentile(&run, p));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_log_histogram() {
        assert_eq!(percentile(&[], 50), 0);
        // Bucket 0 holds 0 ms (upper bound 2^(1/4) - 1 → 1 ms, rounded up).
        assert_eq!(percentile(&[(0, 10)], 99), 1);
        // 90 fast (bucket 4 holds 1 ms: below 2^(5/4) - 1 = 1.38), 10 slow (bucket 40
        // holds 1 s: below 2^(41/4) - 1 = 1216.7).
        let h = [(40, 10), (4, 90)];
        assert_eq!(percentile(&h, 50), 2);
        assert_eq!(percentile(&h, 95), 1217);
    }
}
