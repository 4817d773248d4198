//! Limits, read from Spin variables in the wasm layer (missing → default).

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// The component's tunables; each has a Spin variable `sessions_<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsConfig {
    /// Largest `data` (its JSON text), in bytes. Default 64 KiB.
    pub max_data_bytes: u64,
    /// `ttl_s` when the request names none. Default 7200.
    pub default_ttl_s: u64,
    /// Largest `ttl_s`. Default 30 days.
    pub max_ttl_s: u64,
    /// Most sessions `GET /v1/users/{uid}/sessions` lists. Default 1000.
    pub max_listed: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            max_data_bytes: 64 * 1024,
            default_ttl_s: 7200,
            max_ttl_s: 30 * 24 * 3600,
            max_listed: 1000,
        }
    }
}

impl SessionsConfig {
    /// Reads every variable through `lookup` (`None` = not set); a value that does not parse
    /// or is 0 falls back to the default, with a warning on stderr.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let read = |name: &str, default: u64| {
            redwasm_guest::variables::positive_u64_or_default(
                &lookup,
                "redwasm-sessions",
                name,
                default,
            )
        };
        Self {
            max_data_bytes: read("sessions_max_data_bytes", d.max_data_bytes),
            default_ttl_s: read("sessions_default_ttl_s", d.default_ttl_s),
            max_ttl_s: read("sessions_max_ttl_s", d.max_ttl_s),
            max_listed: read("sessions_max_listed", d.max_listed),
        }
    }
}
