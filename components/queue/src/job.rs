//! Jobs as the API sees them: [`NewJob`] (validated input) and [`Job`] (a stored job, read
//! back from its Redis hash).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::QueueError;
use crate::keys::validate_segment;

/// Highest (and, negated, lowest) numeric priority.
pub const MAX_PRIORITY: i64 = 1000;
/// `"high"`, `"normal"`, `"low"` as numbers.
pub const PRIORITY_HIGH: i64 = 10;
/// See [`PRIORITY_HIGH`].
pub const PRIORITY_NORMAL: i64 = 0;
/// See [`PRIORITY_HIGH`].
pub const PRIORITY_LOW: i64 = -10;
/// Longest delay (and furthest `run_at_ms` ahead): 365 days.
pub const MAX_DELAY_MS: u64 = 365 * 24 * 3_600_000;
/// Most attempts a job may have.
pub const MAX_ATTEMPTS: u64 = 1000;
/// Longest job timeout: 24 h.
pub const MAX_TIMEOUT_MS: u64 = 24 * 3_600_000;

/// How long to wait before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Doubling per attempt (`base · 2^(attempt−1)`) or fixed.
    pub exponential: bool,
    /// The first delay, ms.
    pub base_ms: u64,
    /// The cap, ms.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            exponential: true,
            base_ms: 1000,
            max_ms: 3_600_000,
        }
    }
}

impl Backoff {
    fn to_json(self) -> Value {
        json!({
            "type": if self.exponential { "exponential" } else { "fixed" },
            "base_ms": self.base_ms,
            "max_ms": self.max_ms,
        })
    }
}

/// A job to enqueue, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What kind of job (free text, ≤ 256 bytes); `""` when not given.
    pub job_type: String,
    /// The payload (any JSON).
    pub payload: Value,
    /// Higher runs first; `-1000..=1000`.
    pub priority: i64,
    /// Run no earlier than this (ms since the epoch); `None`: now.
    pub run_at_ms: Option<u64>,
    /// Attempts before the job is dead.
    pub max_attempts: u64,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long one attempt may run (the queue trigger stops the handler after it).
    pub timeout_ms: u64,
    /// A repeated key (within the retention window) returns the first job instead.
    pub idempotency_key: Option<String>,
    /// The `X-Correlation-Id` of the request that enqueued it.
    pub correlation_id: String,
}

impl NewJob {
    /// A job with defaults: normal priority, now, 3 attempts, exponential backoff from 1 s,
    /// 30 s timeout.
    pub fn new(job_type: &str, payload: Value) -> Self {
        Self {
            job_type: job_type.to_string(),
            payload,
            priority: PRIORITY_NORMAL,
            run_at_ms: None,
            max_attempts: 3,
            backoff: Backoff::default(),
            timeout_ms: 30_000,
            idempotency_key: None,
            correlation_id: String::new(),
        }
    }

    /// The JSON the enqueue script reads (`id` and the stored fields).
    pub(crate) fn to_script_json(&self, id: &str) -> String {
        json!({
            "id": id,
            "type": self.job_type,
            "payload": self.payload.to_string(),
            "priority": self.priority,
            "run_at_ms": self.run_at_ms.unwrap_or(0),
            "max_attempts": self.max_attempts,
            "timeout_ms": self.timeout_ms,
            "backoff": self.backoff.to_json().to_string(),
            "idem": self.idempotency_key.as_deref().unwrap_or(""),
            "correlation": self.correlation_id,
        })
        .to_string()
    }
}

/// The body of `POST /jobs` (and one item of `/jobs/batch`), before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(rename = "type", default)]
    job_type: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    priority: Option<Value>,
    #[serde(default)]
    delay_ms: Option<Value>,
    #[serde(default)]
    run_at_ms: Option<Value>,
    #[serde(default)]
    max_attempts: Option<Value>,
    #[serde(default)]
    backoff: Option<RawBackoff>,
    #[serde(default)]
    timeout_ms: Option<Value>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    base_ms: Option<Value>,
    #[serde(default)]
    max_ms: Option<Value>,
}

/// A non-negative integer field in `min..=max`.
fn integer(field: &str, value: &Value, min: u64, max: u64) -> Result<u64, QueueError> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(QueueError::invalid(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

fn priority(field: &str, value: &Value) -> Result<i64, QueueError> {
    match value {
        Value::String(s) if s == "high" => Ok(PRIORITY_HIGH),
        Value::String(s) if s == "normal" => Ok(PRIORITY_NORMAL),
        Value::String(s) if s == "low" => Ok(PRIORITY_LOW),
        Value::Number(n) => match n.as_i64() {
            Some(p) if (-MAX_PRIORITY..=MAX_PRIORITY).contains(&p) => Ok(p),
            _ => Err(QueueError::invalid(
                field,
                format!("must be from -{MAX_PRIORITY} to {MAX_PRIORITY}"),
            )),
        },
        _ => Err(QueueError::invalid(
            field,
            "must be \"high\", \"normal\", \"low\" or an integer",
        )),
    }
}

impl NewJob {
    /// Parses and validates one job object; `at` names it in errors (`""` for a single job,
    /// `"jobs[3]."` in a batch). `now_ms` turns `delay_ms` into a time.
    pub fn from_json(
        value: Value,
        at: &str,
        now_ms: u64,
        max_payload_bytes: u64,
    ) -> Result<Self, QueueError> {
        let field = |name: &str| format!("{at}{name}");
        let raw: RawJob = serde_json::from_value(value).map_err(|e| {
            QueueError::invalid(
                if at.is_empty() {
                    "body"
                } else {
                    at.trim_end_matches('.')
                },
                e.to_string(),
            )
        })?;
        let mut job = NewJob::new("", raw.payload);
        if let Some(job_type) = raw.job_type {
            if job_type.len() > 256 || job_type.chars().any(char::is_control) {
                return Err(QueueError::invalid(
                    &field("type"),
                    "at most 256 bytes, no control characters",
                ));
            }
            job.job_type = job_type;
        }
        let size = job.payload.to_string().len() as u64;
        if size > max_payload_bytes {
            return Err(QueueError::TooLarge {
                field: field("payload"),
                limit: max_payload_bytes,
            });
        }
        if let Some(p) = &raw.priority {
            job.priority = priority(&field("priority"), p)?;
        }
        match (&raw.delay_ms, &raw.run_at_ms) {
            (Some(_), Some(_)) => {
                return Err(QueueError::invalid(
                    &field("delay_ms"),
                    "give delay_ms or run_at_ms, not both",
                ));
            }
            (Some(delay), None) => {
                let delay = integer(&field("delay_ms"), delay, 0, MAX_DELAY_MS)?;
                job.run_at_ms = (delay > 0).then_some(now_ms + delay);
            }
            (None, Some(at_ms)) => {
                let at_ms = integer(&field("run_at_ms"), at_ms, 0, now_ms + MAX_DELAY_MS)?;
                job.run_at_ms = (at_ms > now_ms).then_some(at_ms);
            }
            (None, None) => {}
        }
        if let Some(n) = &raw.max_attempts {
            job.max_attempts = integer(&field("max_attempts"), n, 1, MAX_ATTEMPTS)?;
        }
        if let Some(t) = &raw.timeout_ms {
            job.timeout_ms = integer(&field("timeout_ms"), t, 1, MAX_TIMEOUT_MS)?;
        }
        if let Some(b) = raw.backoff {
            match b.kind.as_deref() {
                None | Some("exponential") => job.backoff.exponential = true,
                Some("fixed") => job.backoff.exponential = false,
                Some(_) => {
                    return Err(QueueError::invalid(
                        &field("backoff.type"),
                        "must be \"exponential\" or \"fixed\"",
                    ));
                }
            }
            if let Some(base) = &b.base_ms {
                job.backoff.base_ms = integer(&field("backoff.base_ms"), base, 1, MAX_DELAY_MS)?;
            }
            job.backoff.max_ms = match &b.max_ms {
                Some(max) => integer(
                    &field("backoff.max_ms"),
                    max,
                    job.backoff.base_ms,
                    MAX_DELAY_MS,
                )?,
                None => job.backoff.max_ms.max(job.backoff.base_ms),
            };
        }
        if let Some(key) = raw.idempotency_key {
            validate_segment(&field("idempotency_key"), &key)?;
            job.idempotency_key = Some(key);
        }
        Ok(job)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// What kind of job.
    pub job_type: String,
    /// The payload.
    pub payload: Value,
    /// Higher runs first.
    pub priority: i64,
    /// waiting, delayed, active, completed, failed (will retry), dead or cancelled.
    pub status: String,
    /// Attempts started so far.
    pub attempts: u64,
    /// Attempts before the job is dead.
    pub max_attempts: u64,
    /// When it was enqueued.
    pub created_ms: u64,
    /// When its first attempt started.
    pub started_ms: Option<u64>,
    /// When it completed, died or was cancelled.
    pub finished_ms: Option<u64>,
    /// When it runs (delayed) or is retried (failed).
    pub run_at_ms: Option<u64>,
    /// What the handler returned.
    pub result: Option<Value>,
    /// The last error.
    pub error: Option<String>,
    /// The last progress report.
    pub progress: Option<Value>,
    /// How long one attempt may run.
    pub timeout_ms: u64,
    /// The current lease's deadline, while active.
    pub lease_until_ms: Option<u64>,
    /// The correlation id of the request that enqueued it.
    pub correlation_id: Option<String>,
}

impl Job {
    /// A job from its hash fields (`HGETALL` pairs or the scripts' JSON objects).
    pub fn from_fields(queue: &str, fields: &HashMap<String, String>) -> Option<Self> {
        let text = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        let number = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
        let json_value =
            |k: &str| text(k).map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)));
        let status = text("status")?;
        let active = status == "active";
        Some(Job {
            id: text("id")?,
            queue: queue.to_string(),
            job_type: text("type").unwrap_or_default(),
            payload: json_value("payload").unwrap_or(Value::Null),
            priority: fields
                .get("priority")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            status: status.clone(),
            attempts: number("attempts").unwrap_or(0),
            max_attempts: number("max_attempts").unwrap_or(1),
            created_ms: number("created_ms").unwrap_or(0),
            started_ms: number("started_ms"),
            finished_ms: number("finished_ms"),
            run_at_ms: match status.as_str() {
                "failed" => number("run_at_ms"),
                "delayed" => number("available_ms"),
                _ => None,
            },
            result: json_value("result"),
            error: text("error"),
            progress: json_value("progress"),
            timeout_ms: number("timeout_ms").unwrap_or(0),
            lease_until_ms: if active { number("lease_until") } else { None },
            correlation_id: text("correlation"),
        })
    }

    /// The contract's JSON form.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "queue": self.queue,
            "type": self.job_type,
            "payload": self.payload,
            "priority": self.priority,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_ms": self.created_ms,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "result": self.result,
            "error": self.error,
            "progress": self.progress,
            "timeout_ms": self.timeout_ms,
        });
        if let Some(at) = self.run_at_ms {
            out["run_at_ms"] = json!(at);
        }
        if let Some(until) = self.lease_until_ms {
            out["lease_until_ms"] = json!(until);
        }
        if let Some(c) = &self.correlation_id {
            out["correlation_id"] = json!(c);
        }
        out
    }
}

/// A job leased to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The job (status `active`).
    pub job: Job,
    /// The lease token that ack, nack and heartbeat must present.
    pub lease: String,
}
