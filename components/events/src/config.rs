//! Limits, read from Spin variables in the wasm layer (missing → default).

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// The component's tunables; each has a Spin variable `events_<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Largest event body, in bytes (413 above). Default 64 KiB.
    pub max_event_bytes: u64,
    /// Approximate length each own channel's stream is trimmed to. Default 10 000.
    pub stream_maxlen: u64,
    /// An own channel's stream expires this long after its last event, in seconds.
    /// Default 86 400 (a day).
    pub retention_s: u64,
    /// Most events a reconnecting client gets replayed in the first response (the rest
    /// follow live, still in order). Default 1000.
    pub replay_max: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: 64 * 1024,
            stream_maxlen: 10_000,
            retention_s: 86_400,
            replay_max: 1000,
        }
    }
}

impl EventsConfig {
    /// Reads every variable through `lookup` (`None` = not set). A value that does not parse
    /// or is 0 falls back to the default, with a warning on stderr.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let read = |name: &str, default: u64| {
            redwasm_guest::variables::positive_u64_or_default(
                &lookup,
                "redwasm-events",
                name,
                default,
            )
        };
        Self {
            max_event_bytes: read("events_max_event_bytes", d.max_event_bytes),
            stream_maxlen: read("events_stream_maxlen", d.stream_maxlen),
            retention_s: read("events_retention_s", d.retention_s),
            replay_max: read("events_replay_max", d.replay_max),
        }
    }
}
