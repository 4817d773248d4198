//! Every Redis key the rate limiter uses is built here, and nowhere else.
//!
//! Layout (before the host's per-component sandbox prefix, e.g. `ratelimit:`, is prepended):
//!
//! | key                                     | type | TTL                 | algorithm              |
//! |-----------------------------------------|------|---------------------|------------------------|
//! | `rl{<key>}:<policy>:fw:<window_ms>:a`   | hash | end of the window   | fixed-window           |
//! | `rl{<key>}:<policy>:swc:<window_ms>:a`  | hash | end of next window  | sliding-window-counter |
//! | `rl{<key>}:<policy>:tb:<window_ms>:a`   | hash | until debt is paid  | token-bucket (GCRA)    |
//! | `rl{<key>}:<policy>:sw:<window_ms>:a`   | zset | window              | sliding-window (log)   |
//! | `rl{<key>}:<policy>:sw:<window_ms>:b`   | hash | window              | sliding-window (sum)   |
//!
//! `{<key>}` is a Redis Cluster hash tag: every policy of one key lives in one slot, so the
//! multi-policy script works on a cluster. The key is escaped so it can never end the tag
//! early or open another one: `%` → `%25`, `{` → `%7B`, `}` → `%7D`. Policy names are a safe
//! ASCII subset (validated), so they need no escaping. The algorithm and window are part of
//! the name so that changing a named policy's definition starts a fresh counter instead of
//! misreading state of another shape. Every policy gets two keys (`a`, `b`) so the script can
//! locate them by position; only the sliding-window log uses `b`, and unused keys are never
//! written.

use crate::policy::{Algorithm, Policy};

/// Escapes a limited key for use inside the `{...}` hash tag.
pub fn escape_key(key: &str) -> String {
    redwasm_guest::channels::escape_tag(key)
}

/// The short code of an algorithm, used in key names and script arguments.
pub fn algorithm_code(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::SlidingWindow => "sw",
        Algorithm::SlidingWindowCounter => "swc",
        Algorithm::TokenBucket => "tb",
        Algorithm::FixedWindow => "fw",
    }
}

/// The two state keys (`a`, `b`) of `policy` for `key`.
pub fn policy_keys(key: &str, policy: &Policy) -> [String; 2] {
    let base = format!(
        "rl{{{}}}:{}:{}:{}:",
        escape_key(key),
        policy.name,
        algorithm_code(policy.algorithm),
        policy.window_ms
    );
    [format!("{base}a"), format!("{base}b")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FailMode, Unit};

    fn cluster_hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = key[open + 1..].find('}')? + open + 1;
        (close > open + 1).then(|| &key[open + 1..close])
    }

    #[test]
    fn every_policy_of_a_key_shares_one_hash_tag_even_with_braces() {
        for key in ["user:42", "a{b}c", "}{", "{x", "%7B"] {
            let expected = escape_key(key);
            for algorithm in [
                Algorithm::SlidingWindow,
                Algorithm::SlidingWindowCounter,
                Algorithm::TokenBucket,
                Algorithm::FixedWindow,
            ] {
                let policy = Policy {
                    name: "p".into(),
                    limit: 1,
                    window_ms: 1000,
                    algorithm,
                    burst: None,
                    fail_mode: FailMode::Closed,
                    unit: Unit::Cost,
                };
                for k in policy_keys(key, &policy) {
                    assert_eq!(cluster_hash_tag(&k), Some(expected.as_str()), "{k}");
                }
            }
        }
        assert_ne!(escape_key("{"), escape_key("%7B"));
    }
}
