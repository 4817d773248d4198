//! `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-11:
//! a Structured Fields List with one Item per policy, the policy name as an sf-string, e.g.
//!
//! ```text
//! RateLimit-Policy: "per-second";q=10;w=1, "per-day";q=1000;w=86400
//! RateLimit: "per-second";r=9;t=1, "per-day";r=999;t=86400
//! ```
//!
//! `q` is the limit, `w` the window in seconds (rounded up, at least 1), `r` the remaining
//! units, `t` the seconds until the policy is fully replenished (rounded up). Policy names are
//! validated to a subset that needs no escaping inside an sf-string.

use std::fmt::Write as _;

use crate::limiter::PolicyState;

/// The `RateLimit-Policy` header name.
pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";
/// The `RateLimit` header name.
pub const RATELIMIT: &str = "RateLimit";

/// Milliseconds to whole seconds, rounded up.
pub fn ceil_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The `RateLimit-Policy` value for `policies`.
pub fn policy_header(policies: &[PolicyState]) -> String {
    sf_list(policies, |out, p| {
        write!(
            out,
            "\"{}\";q={};w={}",
            p.name,
            p.limit,
            ceil_seconds(p.window_ms).max(1)
        )
    })
}

/// The `RateLimit` value for `policies`.
pub fn ratelimit_header(policies: &[PolicyState]) -> String {
    sf_list(policies, |out, p| {
        write!(
            out,
            "\"{}\";r={};t={}",
            p.name,
            p.remaining,
            ceil_seconds(p.reset_ms)
        )
    })
}

/// One Structured Fields List member per policy, written into a single string.
fn sf_list(
    policies: &[PolicyState],
    item: impl Fn(&mut String, &PolicyState) -> std::fmt::Result,
) -> String {
    let mut out = String::with_capacity(policies.len() * 48);
    for (i, policy) in policies.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Writing into a String cannot fail.
        let _ = item(&mut out, policy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_lists_of_items() {
        let states = [
            PolicyState {
                name: "burst".into(),
                limit: 100,
                window_ms: 60_000,
                remaining: 50,
                reset_ms: 29_001,
            },
            PolicyState {
                name: "sub-second".into(),
                limit: 5,
                window_ms: 250,
                remaining: 0,
                reset_ms: 0,
            },
        ];
        assert_eq!(
            policy_header(&states),
            "\"burst\";q=100;w=60, \"sub-second\";q=5;w=1"
        );
        assert_eq!(
            ratelimit_header(&states),
            "\"burst\";r=50;t=30, \"sub-second\";r=0;t=0"
        );
    }
}
