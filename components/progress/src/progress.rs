//! The logic: [`Progress`] over any [`RedisExec`] and [`Clock`], so it runs natively in tests
//! against a real redis-server and unchanged in the component.

use redwasm_guest::sse::SseEvent;
use serde_json::Value as Json;

use crate::clock::Clock;
use crate::config::ProgressConfig;
use crate::error::ProgressError;
use crate::keys;
use crate::redis::{Arg, RedisExec, Value};
use crate::scripts;

/// What `POST /v1/progress` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEntry {
    /// The id to track under (e.g. a job id); a random 128-bit id when `None`.
    pub id: Option<String>,
    /// The caller's correlation id.
    pub correlation_id: Option<String>,
    /// Steps to completion (≥ 1).
    pub total_steps: u64,
    /// A first message.
    pub message: Option<String>,
    /// How long the entry lives after its last change, in seconds.
    pub ttl_s: Option<u64>,
}

/// One step, `POST /v1/progress/{id}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// The current step (0..=total_steps); `None` keeps it.
    pub step: Option<u64>,
    /// A new message; `None` keeps the current one.
    pub message: Option<String>,
    /// An explicit percentage (0..=100); `None` derives it from step / total.
    pub percent: Option<f64>,
}

/// How an entry ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `POST .../complete`.
    Completed,
    /// `POST .../fail`.
    Failed,
}

/// An entry after a change: its JSON and the id of the event the change appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The entry (the contract's `GET /v1/progress/{id}` body).
    pub entry: Json,
    /// The events stream id of this change (`<ms>-<seq>`).
    pub event_id: String,
}

/// Where a client's event stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsStart {
    /// The events to send first: a snapshot (`progress|completed|failed`), a `reset` with a
    /// snapshot, or the replayed events after the client's `Last-Event-ID`.
    pub events: Vec<SseEvent>,
    /// The last stream id those events cover: follow the stream after it.
    pub last_id: String,
    /// True when the entry is finished and its terminal event is among (or before) these:
    /// nothing more will come.
    pub finished: bool,
}

/// The events that end a stream.
pub const TERMINAL_EVENTS: [&str; 2] = ["completed", "failed"];

/// Progress entries on Redis.
pub struct Progress<R, C> {
    redis: R,
    clock: C,
    config: ProgressConfig,
}

impl<R: RedisExec, C: Clock> Progress<R, C> {
    /// Entries on `redis`, timed by `clock`, within `config`'s limits.
    pub fn new(redis: R, clock: C, config: ProgressConfig) -> Self {
        Self {
            redis,
            clock,
            config,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ProgressConfig {
        &self.config
    }

    /// Creates an entry (status `running`, step 0) and appends its first event.
    pub fn start(&mut self, new: &NewEntry) -> Result<Changed, ProgressError> {
        let id = match &new.id {
            Some(id) => id.clone(),
            None => crate::token::new_token(),
        };
        keys::validate_id(&id)?;
        let c = &self.config;
        if new.total_steps == 0 || new.total_steps > c.max_total_steps {
            return Err(ProgressError::invalid(
                "total_steps",
                format!("must be 1 to {}", c.max_total_steps),
            ));
        }
        self.check_message(new.message.as_deref())?;
        if let Some(correlation) = &new.correlation_id
            && (correlation.is_empty()
                || correlation.len() > 128
                || !correlation.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ProgressError::invalid(
                "correlation_id",
                "must be 1 to 128 printable ASCII characters",
            ));
        }
        let ttl_s = new.ttl_s.unwrap_or(c.default_ttl_s);
        if ttl_s == 0 || ttl_s > c.max_ttl_s {
            return Err(ProgressError::invalid(
                "ttl_s",
                format!("must be 1 to {}", c.max_ttl_s),
            ));
        }
        let now = self.clock.now_ms().to_string();
        let total = new.total_steps.to_string();
        let ttl_ms = (ttl_s * 1000).to_string();
        let maxlen = c.stream_maxlen.to_string();
        let reply = scripts::START.run(
            &mut self.redis,
            &[keys::base(&id)],
            &[
                Arg::from(&now),
                Arg::from(&id),
                Arg::from(new.correlation_id.as_deref().unwrap_or("")),
                Arg::from(&total),
                Arg::from(new.message.as_deref().unwrap_or("")),
                Arg::from(&ttl_ms),
                Arg::from(&maxlen),
            ],
        )?;
        match reply.as_slice() {
            [Value::Int(0), ..] => Err(ProgressError::Conflict(format!(
                "a progress entry `{id}` exists already"
            ))),
            _ => changed(&reply),
        }
    }

    /// Records a step.
    pub fn update(&mut self, id: &str, step: &Step) -> Result<Changed, ProgressError> {
        keys::validate_id(id)?;
        self.check_message(step.message.as_deref())?;
        if let Some(percent) = step.percent
            && !(0.0..=100.0).contains(&percent)
        {
            return Err(ProgressError::invalid("percent", "must be 0 to 100"));
        }
        if step.step.is_none() && step.message.is_none() && step.percent.is_none() {
            return Err(ProgressError::invalid(
                "step",
                "give at least one of step, message, percent",
            ));
        }
        let step_text = step.step.map(|s| s.to_string()).unwrap_or_default();
        let percent_text = step.percent.map(|p| p.to_string()).unwrap_or_default();
        self.change(
            id,
            "progress",
            &step_text,
            step.message.as_deref(),
            &percent_text,
        )
    }

    /// Completes or fails the entry (its terminal event).
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Outcome,
        message: Option<&str>,
    ) -> Result<Changed, ProgressError> {
        keys::validate_id(id)?;
        self.check_message(message)?;
        let event = match outcome {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
        };
        self.change(id, event, "", message, "")
    }

    /// The entry, or `None` when unknown or expired.
    pub fn get(&mut self, id: &str) -> Result<Option<Json>, ProgressError> {
        keys::validate_id(id)?;
        let entry = keys::entry(id);
        match self
            .redis
            .exec("HGET", &[Arg::from(&entry), Arg::from("json")])?
            .as_slice()
        {
            [Value::Bytes(json)] => serde_json::from_slice(json)
                .map(Some)
                .map_err(|e| ProgressError::Unavailable(format!("corrupt entry `{id}`: {e}"))),
            _ => Ok(None),
        }
    }

    /// Deletes the entry and its events (cleanup); false when there was none.
    pub fn delete(&mut self, id: &str) -> Result<bool, ProgressError> {
        keys::validate_id(id)?;
        let (entry, stream) = (keys::entry(id), keys::stream(id));
        let reply = self
            .redis
            .exec("DEL", &[Arg::from(&entry), Arg::from(&stream)])?;
        Ok(matches!(reply.as_slice(), [Value::Int(n)] if *n > 0))
    }

    /// Where an event stream for entry `id` starts, for a client that last saw `after`
    /// (`Last-Event-ID`; `None` for a new client). The first event of a new client is a
    /// snapshot of the entry; a client whose id was trimmed away gets `reset` with one.
    pub fn events_start(
        &mut self,
        id: &str,
        after: Option<&str>,
    ) -> Result<EventsStart, ProgressError> {
        keys::validate_id(id)?;
        if let Some(after) = after
            && !redwasm_guest::sse::is_stream_id(after)
        {
            return Err(ProgressError::invalid(
                "Last-Event-ID",
                "must be a stream id <ms>-<seq>",
            ));
        }
        let max = self.config.stream_maxlen.to_string();
        let reply = scripts::EVENTS.run(
            &mut self.redis,
            &[keys::base(id)],
            &[Arg::from(after.unwrap_or("")), Arg::from(&max)],
        )?;
        let [
            Value::Int(1),
            Value::Bytes(kind),
            Value::Bytes(json),
            Value::Bytes(last),
            rest @ ..,
        ] = reply.as_slice()
        else {
            return match reply.as_slice() {
                [Value::Int(0)] => Err(ProgressError::NotFound),
                other => Err(ProgressError::Unavailable(format!(
                    "unexpected script reply {other:?}"
                ))),
            };
        };
        let json = String::from_utf8_lossy(json).into_owned();
        let last_id = String::from_utf8_lossy(last).into_owned();
        let status = serde_json::from_str::<Json>(&json)
            .ok()
            .and_then(|entry| entry["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        let finished = status != "running";
        let snapshot_event = if finished {
            status.as_str()
        } else {
            "progress"
        };
        let events = match kind.as_slice() {
            b"snapshot" => vec![SseEvent {
                id: last_id.clone(),
                event: snapshot_event.to_string(),
                data: json,
            }],
            b"reset" => vec![SseEvent {
                id: last_id.clone(),
                event: "reset".to_string(),
                data: json,
            }],
            _ => stream_events(rest),
        };
        Ok(EventsStart {
            events,
            last_id,
            finished,
        })
    }

    /// The events of entry `id` after `after`, waiting up to `block_ms` for one (how a
    /// component streams by itself, under Spin). `Ok(None)`: the entry is gone.
    pub fn events_after(
        &mut self,
        id: &str,
        after: &str,
        block_ms: u64,
    ) -> Result<Option<Vec<SseEvent>>, ProgressError> {
        let stream = keys::stream(id);
        let block = block_ms.to_string();
        let reply = self.redis.exec(
            "XREAD",
            &[
                Arg::from("COUNT"),
                Arg::from("100"),
                Arg::from("BLOCK"),
                Arg::from(&block),
                Arg::from("STREAMS"),
                Arg::from(&stream),
                Arg::from(after),
            ],
        )?;
        // Flattened: [stream key, id, "event", e, "data", d, id, ...], or nil on timeout.
        let events = match reply.as_slice() {
            [] | [Value::Nil] => Vec::new(),
            [_key, rest @ ..] => rest
                .chunks(5)
                .filter_map(|c| match c {
                    [
                        Value::Bytes(id),
                        _,
                        Value::Bytes(event),
                        _,
                        Value::Bytes(data),
                    ] => Some(SseEvent {
                        id: String::from_utf8_lossy(id).into_owned(),
                        event: String::from_utf8_lossy(event).into_owned(),
                        data: String::from_utf8_lossy(data).into_owned(),
                    }),
                    _ => None,
                })
                .collect(),
        };
        if events.is_empty() {
            let entry = keys::entry(id);
            let exists = self.redis.exec("EXISTS", &[Arg::from(&entry)])?;
            if matches!(exists.as_slice(), [Value::Int(0)]) {
                return Ok(None);
            }
        }
        Ok(Some(events))
    }

    fn check_message(&self, message: Option<&str>) -> Result<(), ProgressError> {
        match message {
            Some(m) if m.len() as u64 > self.config.max_message_bytes => {
                Err(ProgressError::invalid(
                    "message",
                    format!(
                        "is {} bytes; the limit is {}",
                        m.len(),
                        self.config.max_message_bytes
                    ),
                ))
            }
            Some("") => Err(ProgressError::invalid("message", "must not be empty")),
            _ => Ok(()),
        }
    }

    fn change(
        &mut self,
        id: &str,
        event: &str,
        step: &str,
        message: Option<&str>,
        percent: &str,
    ) -> Result<Changed, ProgressError> {
        let now = self.clock.now_ms().to_string();
        let reply = scripts::UPDATE.run(
            &mut self.redis,
            &[keys::base(id)],
            &[
                Arg::from(&now),
                Arg::from(event),
                Arg::from(step),
                Arg::from(message.unwrap_or("")),
                Arg::from(percent),
            ],
        )?;
        match reply.as_slice() {
            [Value::Int(0), Value::Bytes(why), rest @ ..] => Err(match why.as_slice() {
                b"unknown" => ProgressError::NotFound,
                b"step" => ProgressError::invalid(
                    "step",
                    format!("is beyond total_steps ({})", text(rest.first())),
                ),
                _ => {
                    ProgressError::Conflict(format!("the entry is {} already", text(rest.first())))
                }
            }),
            _ => changed(&reply),
        }
    }
}

/// `id, event, data` triples of a flattened reply → events.
fn stream_events(values: &[Value]) -> Vec<SseEvent> {
    values
        .chunks(3)
        .filter_map(|c| match c {
            [Value::Bytes(id), Value::Bytes(event), Value::Bytes(data)] => Some(SseEvent {
                id: String::from_utf8_lossy(id).into_owned(),
                event: String::from_utf8_lossy(event).into_owned(),
                data: String::from_utf8_lossy(data).into_owned(),
            }),
            _ => None,
        })
        .collect()
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Status(s)) => s.clone(),
        _ => String::new(),
    }
}

/// `{1, json, stream id}` → [`Changed`].
fn changed(reply: &[Value]) -> Result<Changed, ProgressError> {
    match reply {
        [Value::Int(1), Value::Bytes(json), Value::Bytes(event_id)] => Ok(Changed {
            entry: serde_json::from_slice(json)
                .map_err(|e| ProgressError::Unavailable(format!("unexpected entry: {e}")))?,
            event_id: String::from_utf8_lossy(event_id).into_owned(),
        }),
        other => Err(ProgressError::Unavailable(format!(
            "unexpected script reply {other:?}"
        ))),
    }
}
