//! Server-sent events as redwasm's components write them, and the protocol between a
//! component and the redwasm host's SSE fan-out.
//!
//! # Fan-out protocol
//! The host adds [`FANOUT_REQUEST_HEADER`] to requests of components that read it (through
//! `redwasm:http/handler`). A component that sees it answers an event-stream request at
//! once, with the events it has (a snapshot, a replay) as the body and three headers:
//! [`FOLLOW_HEADER`] names the Redis stream to follow (a key in the component's own
//! namespace: the host prefixes it), [`AFTER_HEADER`] the last stream id already in the body,
//! [`END_HEADER`] the event names that end the stream. The host then streams every later
//! entry of that Redis stream (its fields `event` and `data`) from one blocking reader shared
//! by every open client. Without the header (under Spin), the component streams by itself.

/// Request header the redwasm host sets when it can follow streams for the component.
pub const FANOUT_REQUEST_HEADER: &str = "redwasm-sse";
/// Response header: the Redis stream the host should follow.
pub const FOLLOW_HEADER: &str = "redwasm-sse-follow";
/// Response header: the last stream id the body already carries.
pub const AFTER_HEADER: &str = "redwasm-sse-after";
/// Response header: space-separated event names after which the stream ends.
pub const END_HEADER: &str = "redwasm-sse-end";
/// The request header of a reconnecting client.
pub const LAST_EVENT_ID: &str = "last-event-id";
/// Milliseconds a client waits before reconnecting (`retry:`).
pub const RETRY_MS: u64 = 3000;
/// The keep-alive comment sent when nothing happened for a while.
pub const HEARTBEAT: &[u8] = b": keep-alive\n\n";
/// Seconds between keep-alive comments, so proxies do not close idle streams.
pub const HEARTBEAT_S: u64 = 15;

/// One event: `id:` (a Redis stream id), `event:`, `data:` (one line of JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The Redis stream id (`<ms>-<seq>`).
    pub id: String,
    /// The event name.
    pub event: String,
    /// The payload (no newlines: JSON as Redis holds it).
    pub data: String,
}

impl SseEvent {
    /// Appends the event in the wire format.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\nevent: ");
        out.extend_from_slice(self.event.as_bytes());
        for line in self.data.split('\n') {
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(b"\n\n");
    }
}

/// A Redis stream entry as an event, as the redwasm host's fan-out encodes it too: `event`
/// from the `event` field, `data` from the `data` field, or (without one) a JSON object of the
/// other fields, numbers as numbers.
pub fn stream_event(id: String, fields: &[(String, String)]) -> SseEvent {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let event = field("event").unwrap_or_default();
    let data = field("data").unwrap_or_else(|| {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .filter(|(name, _)| name != "event")
            .map(|(name, value)| {
                let value = value
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| serde_json::Value::from(value.clone()));
                (name.clone(), value)
            })
            .collect();
        serde_json::Value::Object(object).to_string()
    });
    SseEvent { id, event, data }
}

/// A `200 text/event-stream` response whose body is the preamble and `events`.
pub fn event_stream_response(events: &[SseEvent]) -> crate::http::HttpResponse {
    let mut body = preamble();
    for event in events {
        event.encode(&mut body);
    }
    event_stream_head().with_body(body)
}

/// The head every event stream answers with (no body yet).
pub fn event_stream_head() -> crate::http::HttpResponse {
    crate::http::HttpResponse::new(200)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Accel-Buffering", "no")
}

/// Asks the redwasm host to follow `key` (in the component's namespace) after `after`,
/// ending the stream after any of the events `ends` (see the module docs).
pub fn follow(
    response: crate::http::HttpResponse,
    key: &str,
    after: &str,
    ends: &[&str],
) -> crate::http::HttpResponse {
    response
        .with_header(FOLLOW_HEADER, key)
        .with_header(AFTER_HEADER, after)
        .with_header(END_HEADER, &ends.join(" "))
}

/// The `retry:` preamble every stream starts with.
pub fn preamble() -> Vec<u8> {
    format!("retry: {RETRY_MS}\n\n").into_bytes()
}

/// Whether `id` is a Redis stream id, `<ms>-<seq>` (what `Last-Event-ID` must be).
pub fn is_stream_id(id: &str) -> bool {
    let Some((ms, seq)) = id.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    digits(ms) && digits(seq) && ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_encode_in_the_wire_format() {
        let mut out = preamble();
        SseEvent {
            id: "1-0".into(),
            event: "progress".into(),
            data: "{\"a\":1}".into(),
        }
        .encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "retry: 3000\n\nid: 1-0\nevent: progress\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn entries_without_data_carry_their_other_fields() {
        let fields = [
            ("event".to_string(), "completed".to_string()),
            ("id".to_string(), "job-1".to_string()),
            ("ms".to_string(), "17".to_string()),
        ];
        let event = stream_event("5-0".into(), &fields);
        assert_eq!(event.event, "completed");
        assert_eq!(event.data, r#"{"id":"job-1","ms":17}"#);
    }

    #[test]
    fn stream_ids_are_checked() {
        assert!(is_stream_id("1735689600000-0"));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "99999999999999999999999-0",
        ] {
            assert!(!is_stream_id(bad), "{bad}");
        }
    }
}
