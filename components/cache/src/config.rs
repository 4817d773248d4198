//! Limits and defaults, read from Spin variables in the wasm layer (missing → default).

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Spin variable: largest value accepted by PUT/`set`, in bytes. Default 1 MiB.
pub const VAR_MAX_VALUE_BYTES: &str = "cache_max_value_bytes";
/// Spin variable: TTL when PUT has no `ttl_s` (and `set` no `ttl-ms`), in seconds. Default 3600.
pub const VAR_DEFAULT_TTL_S: &str = "cache_default_ttl_s";
/// Spin variable: default TTL jitter, percent of the TTL (0-50). Default 0.
pub const VAR_TTL_JITTER_PCT: &str = "cache_ttl_jitter_pct";
/// Spin variable: the largest `lease_ms` / `wait-ms` accepted. Default 30 000.
pub const VAR_MAX_LEASE_MS: &str = "cache_max_lease_ms";

/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// Longest TTL and longest grace period accepted: 365 days.
pub const MAX_TTL_MS: u64 = 365 * 24 * 3_600_000;
/// Largest jitter percentage accepted.
pub const MAX_JITTER_PCT: u8 = 50;

/// The cache's tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Largest value accepted, in bytes.
    pub max_value_bytes: u64,
    /// TTL when none is given, in seconds.
    pub default_ttl_s: u64,
    /// Jitter percentage (0-50) when none is given.
    pub ttl_jitter_pct: u8,
    /// Largest lease / wait accepted, in ms.
    pub max_lease_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_value_bytes: 1024 * 1024,
            default_ttl_s: 3600,
            ttl_jitter_pct: 0,
            max_lease_ms: 30_000,
        }
    }
}

impl CacheConfig {
    /// Reads every variable through `lookup` (`None` = not set). A value that does not parse
    /// or is out of range falls back to the default, with a warning on stderr, so a typo in
    /// the manifest degrades to sane limits instead of failing every request.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let defaults = Self::default();
        let read = |name: &str, default: u64, valid: &dyn Fn(u64) -> bool| {
            redwasm_guest::variables::u64_or_default(&lookup, "redwasm-cache", name, default, valid)
        };
        let jitter = read(
            VAR_TTL_JITTER_PCT,
            u64::from(defaults.ttl_jitter_pct),
            &|v| v <= u64::from(MAX_JITTER_PCT),
        );
        Self {
            max_value_bytes: read(VAR_MAX_VALUE_BYTES, defaults.max_value_bytes, &|v| v > 0),
            default_ttl_s: read(VAR_DEFAULT_TTL_S, defaults.default_ttl_s, &|v| {
                v > 0 && v <= MAX_TTL_MS / 1000
            }),
            ttl_jitter_pct: u8::try_from(jitter).unwrap_or(0),
            max_lease_ms: read(VAR_MAX_LEASE_MS, defaults.max_lease_ms, &|v| v > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_invalid_variables_fall_back_to_defaults() {
        let config = CacheConfig::from_lookup(|name| match name {
            VAR_MAX_VALUE_BYTES => Some("2048".into()),
            VAR_TTL_JITTER_PCT => Some("90".into()),
            VAR_DEFAULT_TTL_S => Some("soon".into()),
            _ => None,
        });
        assert_eq!(config.max_value_bytes, 2048);
        assert_eq!(config.ttl_jitter_pct, 0);
        assert_eq!(config.default_ttl_s, 3600);
        assert_eq!(config.max_lease_ms, 30_000);
    }
}
