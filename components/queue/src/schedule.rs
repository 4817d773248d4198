//! Repeatable jobs: a `cron` expression (5 fields, or 6 with seconds first; UTC) or
//! `every_ms`, and the job to enqueue at each tick.
//!
//! Ticks fire from claims (every claim, the trigger's and the pull API's, sees the due ones in
//! its reply), exactly once per tick however many hosts claim: the tick's job is enqueued
//! with the idempotency key `schedule:<name>:<tick>` (a second host gets the duplicate), then
//! `schedule_advance.lua` moves the schedule on by compare-and-set. Missed ticks (nobody
//! claimed for a while) fire once, not once each; the next tick is then the first after now.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::QueueError;

/// Shortest `every_ms`.
pub const MIN_EVERY_MS: u64 = 100;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Every {
    /// A cron expression (UTC).
    Cron(String),
    /// A fixed interval, ms.
    Interval(u64),
}

/// A repeatable job.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// When it fires.
    pub every: Every,
    /// The job body enqueued at each tick (a `POST /jobs` body).
    pub job: Value,
    /// Its next tick, ms since the epoch.
    pub next_run_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    every_ms: Option<Value>,
    job: Value,
}

fn parse_cron(pattern: &str) -> Result<Cron, QueueError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| QueueError::invalid("cron", e.to_string()))
}

impl Every {
    /// The first tick strictly after `after_ms`.
    pub fn next_after(&self, after_ms: u64) -> Result<u64, QueueError> {
        match self {
            Every::Interval(ms) => Ok(after_ms + ms),
            Every::Cron(pattern) => {
                let cron = parse_cron(pattern)?;
                let start = DateTime::<Utc>::from_timestamp_millis(after_ms as i64)
                    .ok_or_else(|| QueueError::invalid("cron", "time out of range"))?;
                let next = cron
                    .find_next_occurrence(&start, false)
                    .map_err(|e| QueueError::invalid("cron", e.to_string()))?;
                Ok(next.timestamp_millis().max(0) as u64)
            }
        }
    }
}

impl Schedule {
    /// Parses `{"cron"|"every_ms", "job"}` for `name`; the job is checked by `check_job`
    /// (the same validation as `POST /jobs`).
    pub fn from_json(
        name: &str,
        value: Value,
        check_job: impl FnOnce(Value) -> Result<(), QueueError>,
    ) -> Result<Self, QueueError> {
        let raw: RawSchedule = serde_json::from_value(value)
            .map_err(|e| QueueError::invalid("body", e.to_string()))?;
        let every = match (raw.cron, raw.every_ms) {
            (Some(_), Some(_)) => {
                return Err(QueueError::invalid(
                    "cron",
                    "give cron or every_ms, not both",
                ));
            }
            (None, None) => return Err(QueueError::invalid("cron", "give cron or every_ms")),
            (Some(pattern), None) => {
                parse_cron(&pattern)?;
                Every::Cron(pattern)
            }
            (None, Some(ms)) => match ms.as_u64() {
                Some(ms) if ms >= MIN_EVERY_MS => Every::Interval(ms),
                _ => {
                    return Err(QueueError::invalid(
                        "every_ms",
                        format!("must be an integer of at least {MIN_EVERY_MS}"),
                    ));
                }
            },
        };
        if !raw.job.is_object() {
            return Err(QueueError::invalid(
                "job",
                "must be a JSON object (a job body)",
            ));
        }
        check_job(raw.job.clone())?;
        Ok(Schedule {
            name: name.to_string(),
            every,
            job: raw.job,
            next_run_ms: None,
        })
    }

    /// The stored form (`{"cron"|"every_ms","job"}`).
    pub fn stored_json(&self) -> Value {
        match &self.every {
            Every::Cron(pattern) => json!({ "cron": pattern, "job": self.job }),
            Every::Interval(ms) => json!({ "every_ms": ms, "job": self.job }),
        }
    }

    /// Reads the stored form back.
    pub fn from_stored(name: &str, text: &str, next_run_ms: Option<u64>) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        let every = match (value["cron"].as_str(), value["every_ms"].as_u64()) {
            (Some(pattern), _) => Every::Cron(pattern.to_string()),
            (None, Some(ms)) => Every::Interval(ms),
            _ => return None,
        };
        Some(Schedule {
            name: name.to_string(),
            every,
            job: value["job"].clone(),
            next_run_ms,
        })
    }

    /// The contract's JSON form: the stored form plus `name` and `next_run_ms`.
    pub fn to_json(&self) -> Value {
        let mut out = self.stored_json();
        out["name"] = json!(self.name);
        out["next_run_ms"] = json!(self.next_run_ms);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

    #[test]
    fn cron_with_and_without_seconds_in_utc() {
        let every_5_min = Every::Cron("*/5 * * * *".into());
        assert_eq!(every_5_min.next_after(T0).unwrap(), T0 + 300_000);
        assert_eq!(every_5_min.next_after(T0 + 1).unwrap(), T0 + 300_000);
        let every_10_s = Every::Cron("*/10 * * * * *".into());
        assert_eq!(every_10_s.next_after(T0).unwrap(), T0 + 10_000);
        let daily = Every::Cron("0 3 * * *".into());
        assert_eq!(daily.next_after(T0).unwrap(), T0 + 3 * 3_600_000);
        assert_eq!(Every::Interval(250).next_after(T0).unwrap(), T0 + 250);
    }

    #[test]
    fn bad_schedules_name_the_field() {
        let ok = |_| Ok(());
        let field = |v: Value| match Schedule::from_json("s", v, ok) {
            Err(QueueError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"cron": "every tuesday", "job": {}})), "cron");
        assert_eq!(field(json!({"cron": "61 * * * *", "job": {}})), "cron");
        assert_eq!(field(json!({"every_ms": 5, "job": {}})), "every_ms");
        assert_eq!(field(json!({"job": {}})), "cron");
        assert_eq!(
            field(json!({"cron": "* * * * *", "every_ms": 1000, "job": {}})),
            "cron"
        );
        assert_eq!(field(json!({"cron": "* * * * *", "job": 3})), "job");
        assert_eq!(
            field(json!({"cron": "* * * * *", "job": {}, "x": 1})),
            "body"
        );
        let s =
            Schedule::from_json("s", json!({"every_ms": 1000, "job": {"payload": 1}}), ok).unwrap();
        let back = Schedule::from_stored("s", &s.stored_json().to_string(), Some(5)).unwrap();
        assert_eq!(back.every, Every::Interval(1000));
        assert_eq!(back.to_json()["next_run_ms"], 5);
    }
}
