//! Limits, read from Spin variables in the wasm layer (missing → default).

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// The component's tunables; each has a Spin variable `progress_<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressConfig {
    /// Longest `message`, in bytes. Default 1024.
    pub max_message_bytes: u64,
    /// Most steps an entry may have. Default 1 000 000 000.
    pub max_total_steps: u64,
    /// `ttl_s` when the request names none. Default 3600.
    pub default_ttl_s: u64,
    /// Largest `ttl_s` accepted. Default 7 days.
    pub max_ttl_s: u64,
    /// Approximate length each entry's events stream is trimmed to. Default 1000.
    pub stream_maxlen: u64,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024,
            max_total_steps: 1_000_000_000,
            default_ttl_s: 3600,
            max_ttl_s: 7 * 24 * 3600,
            stream_maxlen: 1000,
        }
    }
}

impl ProgressConfig {
    /// Reads every variable through `lookup` (`None` = not set). A value that does not parse
    /// or is 0 falls back to the default, with a warning on stderr.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let read = |name: &str, default: u64| {
            redwasm_guest::variables::positive_u64_or_default(
                &lookup,
                "redwasm-progress",
                name,
                default,
            )
        };
        Self {
            max_message_bytes: read("progress_max_message_bytes", d.max_message_bytes),
            max_total_steps: read("progress_max_total_steps", d.max_total_steps),
            default_ttl_s: read("progress_default_ttl_s", d.default_ttl_s),
            max_ttl_s: read("progress_max_ttl_s", d.max_ttl_s),
            stream_maxlen: read("progress_stream_maxlen", d.stream_maxlen),
        }
    }
}
