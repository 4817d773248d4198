//! The logic: [`Events`] over any [`RedisExec`], so it runs natively in tests against a
//! real redis-server and unchanged in the component.
//!
//! A channel is a Redis Stream (see [`crate::channels`]): an own channel's events are
//! entries `event`, `data`; the queue's, progress's and cache's channels are those
//! components' own streams, read as they are.

use redwasm_guest::sse::{SseEvent, is_stream_id, stream_event};

use crate::channels::Channel;
use crate::config::EventsConfig;
use crate::error::EventsError;
use crate::redis::{Arg, RedisExec, Value};
use crate::scripts;

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_BYTES: usize = 256;
/// Longest event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 64;
/// The event name of a posted event that names none.
pub const DEFAULT_EVENT: &str = "message";
/// The event that tells a client it may have missed events.
pub const RESET_EVENT: &str = "reset";

/// Where a client's stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsStart {
    /// The events to send first: a replay after `Last-Event-ID`, or one `reset`.
    pub events: Vec<SseEvent>,
    /// The last stream id those events cover; later entries follow.
    pub last_id: String,
    /// The Redis stream to follow (as the component names it).
    pub stream: String,
    /// Event names after which the stream ends.
    pub ends: &'static [&'static str],
    /// True when the first events already hold an ending event.
    pub finished: bool,
}

/// Channels on Redis.
pub struct Events<R> {
    redis: R,
    config: EventsConfig,
}

impl<R: RedisExec> Events<R> {
    /// Channels on `redis`, within `config`'s limits.
    pub fn new(redis: R, config: EventsConfig) -> Self {
        Self { redis, config }
    }

    /// The limits in force.
    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    /// Checks a channel name and says whose it is: 1-256 bytes without control characters;
    /// `jobs.<queue>` needs a queue name without `{`/`}`, `progress.<id>` a progress id
    /// (`A-Z a-z 0-9 . _ : -`, at most 128), `cache.<ns>` a namespace.
    pub fn channel(name: &str) -> Result<Channel, EventsError> {
        if name.is_empty() || name.len() > MAX_CHANNEL_BYTES {
            return Err(EventsError::invalid(
                "channel",
                format!("must be 1 to {MAX_CHANNEL_BYTES} bytes"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(EventsError::invalid(
                "channel",
                "must not contain control characters",
            ));
        }
        let channel = Channel::parse(name);
        match &channel {
            Channel::Jobs(queue) if queue.is_empty() || queue.contains(['{', '}']) => {
                Err(EventsError::invalid(
                    "channel",
                    "`jobs.<queue>` needs a queue name without `{` or `}`",
                ))
            }
            Channel::Progress(id)
                if id.is_empty()
                    || id.len() > 128
                    || !id.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
                    }) =>
            {
                Err(EventsError::invalid(
                    "channel",
                    "`progress.<id>` needs an id of 1 to 128 of `A-Z a-z 0-9 . _ : -`",
                ))
            }
            Channel::Cache(ns) if ns.is_empty() => Err(EventsError::invalid(
                "channel",
                "`cache.<ns>` needs a namespace",
            )),
            _ => Ok(channel),
        }
    }

    /// Appends an event to channel `name` (one of the component's own): `event` names it
    /// (default `message`), `data` is any JSON. Returns its stream id.
    pub fn publish(
        &mut self,
        name: &str,
        event: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<String, EventsError> {
        let channel = Self::channel(name)?;
        if let Some(writer) = channel.writer() {
            return Err(EventsError::ReadOnly(writer));
        }
        let event = event.unwrap_or(DEFAULT_EVENT);
        check_event_name(event)?;
        // Compact JSON is one line: the SSE `data:` field needs no splitting.
        let data = data.to_string();
        if data.len() as u64 > self.config.max_event_bytes {
            return Err(EventsError::TooLarge(self.config.max_event_bytes));
        }
        let retention_ms = self.config.retention_s.saturating_mul(1000).to_string();
        let maxlen = self.config.stream_maxlen.to_string();
        let reply = scripts::PUBLISH.run(
            &mut self.redis,
            &[channel.stream()],
            &[
                Arg::from(event),
                Arg::from(&data),
                Arg::from(&maxlen),
                Arg::from(&retention_ms),
            ],
        )?;
        match reply.as_slice() {
            [Value::Bytes(id)] => Ok(String::from_utf8_lossy(id).into_owned()),
            other => Err(EventsError::Unavailable(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }

    /// Where the stream of channel `name` starts for a client that last saw `after`
    /// (`Last-Event-ID`; `None`: a new client, which gets only later events). A client whose
    /// `after` is unknown or was trimmed away gets one `reset` event, then what follows.
    pub fn start(&mut self, name: &str, after: Option<&str>) -> Result<EventsStart, EventsError> {
        let channel = Self::channel(name)?;
        if let Some(after) = after
            && !is_stream_id(after)
        {
            return Err(EventsError::invalid(
                "Last-Event-ID",
                "must be a stream id <ms>-<seq>",
            ));
        }
        let stream = channel.stream();
        let ends = channel.terminal_events();
        let (events, last_id) = self.read_from(name, &stream, after)?;
        let finished = events.iter().any(|e| ends.contains(&e.event.as_str()));
        Ok(EventsStart {
            events,
            last_id,
            stream,
            ends,
            finished,
        })
    }

    /// The events of `stream` after `after`, waiting up to `block_ms` for the first (how the
    /// component streams by itself, under Spin); a `reset` when `after` was trimmed away
    /// meanwhile. Returns the events and the new position.
    pub fn events_after(
        &mut self,
        name: &str,
        stream: &str,
        after: &str,
        block_ms: u64,
    ) -> Result<(Vec<SseEvent>, String), EventsError> {
        let block = block_ms.to_string();
        // COUNT 1 only to wait: the flattened reply of more entries would be ambiguous, so
        // the script reads them.
        let reply = self.redis.exec(
            "XREAD",
            &[
                Arg::from("COUNT"),
                Arg::from("1"),
                Arg::from("BLOCK"),
                Arg::from(&block),
                Arg::from("STREAMS"),
                Arg::from(stream),
                Arg::from(after),
            ],
        )?;
        if matches!(reply.as_slice(), [] | [Value::Nil]) {
            return Ok((Vec::new(), after.to_string()));
        }
        self.read_from(name, stream, Some(after))
    }

    fn read_from(
        &mut self,
        name: &str,
        stream: &str,
        after: Option<&str>,
    ) -> Result<(Vec<SseEvent>, String), EventsError> {
        let max = self.config.replay_max.to_string();
        let reply = scripts::START.run_read_only(
            &mut self.redis,
            &[stream.to_string()],
            &[Arg::from(after.unwrap_or("")), Arg::from(&max)],
        )?;
        let text = |v: &Value| match v {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Status(s) => Some(s.clone()),
            _ => None,
        };
        let unexpected = || EventsError::Unavailable(format!("unexpected script reply {reply:?}"));
        let (Some(kind), Some(last)) = (reply.first().and_then(text), reply.get(1).and_then(text))
        else {
            return Err(unexpected());
        };
        match kind.as_str() {
            "live" => Ok((Vec::new(), last)),
            "reset" => {
                let data = serde_json::json!({
                    "channel": name,
                    "last_event_id": after,
                    "detail": "events after last_event_id are no longer kept; resume from this event",
                });
                Ok((
                    vec![SseEvent {
                        id: last.clone(),
                        event: RESET_EVENT.to_string(),
                        data: data.to_string(),
                    }],
                    last,
                ))
            }
            "replay" => {
                let mut events = Vec::new();
                let mut rest = &reply[2..];
                while let [id, Value::Int(n), tail @ ..] = rest {
                    let n = usize::try_from(*n).map_err(|_| unexpected())?;
                    if tail.len() < 2 * n {
                        return Err(unexpected());
                    }
                    let id = text(id).ok_or_else(unexpected)?;
                    let fields: Vec<(String, String)> = tail[..2 * n]
                        .chunks(2)
                        .map(|pair| {
                            (
                                text(&pair[0]).unwrap_or_default(),
                                text(&pair[1]).unwrap_or_default(),
                            )
                        })
                        .collect();
                    events.push(stream_event(id, &fields));
                    rest = &tail[2 * n..];
                }
                Ok((events, last))
            }
            _ => Err(unexpected()),
        }
    }
}

/// An event name: 1-64 of `A-Z a-z 0-9 . _ -`, and not `reset` (which only the component
/// sends, so a client can trust it).
pub fn check_event_name(event: &str) -> Result<(), EventsError> {
    if event.is_empty()
        || event.len() > MAX_EVENT_NAME_BYTES
        || !event
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(EventsError::invalid(
            "event",
            format!("must be 1 to {MAX_EVENT_NAME_BYTES} of `A-Z a-z 0-9 . _ -`"),
        ));
    }
    if event == RESET_EVENT {
        return Err(EventsError::invalid(
            "event",
            "`reset` is reserved: the component sends it when events were lost",
        ));
    }
    Ok(())
}
