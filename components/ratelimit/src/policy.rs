//! Policies: the definition, its validation, and its JSON form (HTTP bodies and the
//! `ratelimit_policies` variable share one parser).

use serde_json::{Map, Value};

use crate::error::RateLimitError;
use crate::validate;

/// Largest `limit`, `burst` and `cost`: 10^15 (exact in the scripts' doubles).
pub const MAX_UNITS: u64 = 1_000_000_000_000_000;
/// Longest window: 366 days.
pub const MAX_WINDOW_MS: u64 = 366 * 24 * 3_600_000;
/// Largest `limit` of a `sliding-window` policy: its log holds one entry per admitted
/// request in the window (use `sliding-window-counter` or `token-bucket` beyond).
pub const MAX_SLIDING_LOG_LIMIT: u64 = 100_000;
/// Bound on `limit × window_ms` (`sliding-window-counter`) and `burst × window_ms`
/// (`token-bucket`): their scripts do exact integer arithmetic in doubles.
pub const MAX_UNIT_MS: u64 = 1 << 52;
/// Most policies in one check.
pub const MAX_POLICIES_PER_CHECK: usize = 16;

/// The limiting algorithm of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Exact sliding window (a sorted-set log of admitted requests).
    SlidingWindow,
    /// Approximate sliding window from two weighted fixed-window counters.
    SlidingWindowCounter,
    /// GCRA: `limit` per `window_ms` sustained, up to `burst` at once.
    TokenBucket,
    /// Fixed windows aligned to the Unix epoch.
    FixedWindow,
}

impl Algorithm {
    /// The contract's name (`sliding-window`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SlidingWindow => "sliding-window",
            Self::SlidingWindowCounter => "sliding-window-counter",
            Self::TokenBucket => "token-bucket",
            Self::FixedWindow => "fixed-window",
        }
    }

    /// Parses the contract's name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "sliding-window" => Self::SlidingWindow,
            "sliding-window-counter" => Self::SlidingWindowCounter,
            "token-bucket" => Self::TokenBucket,
            "fixed-window" => Self::FixedWindow,
            _ => return None,
        })
    }
}

/// What a check does while Redis is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailMode {
    /// Allow, uncounted.
    Open,
    /// Refuse (HTTP 503 + `Retry-After`). The default.
    #[default]
    Closed,
}

impl FailMode {
    /// `open` / `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// What one check takes from a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unit {
    /// The check's `cost` (tokens, bytes, ...). The default.
    #[default]
    Cost,
    /// One per check, whatever its `cost`: lets request-count policies and a token budget
    /// share one atomic check (`cost` = tokens).
    Request,
}

impl Unit {
    /// `cost` / `request`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cost => "cost",
            Self::Request => "request",
        }
    }
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Identifies the counter together with the key, algorithm and window.
    pub name: String,
    /// Units per window (token-bucket: the sustained rate per window).
    pub limit: u64,
    /// The window, in ms.
    pub window_ms: u64,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Token-bucket only: bucket capacity (most units at once); `None` = `limit`.
    pub burst: Option<u64>,
    /// Behaviour while Redis is unavailable.
    pub fail_mode: FailMode,
    /// What one check takes from this policy.
    pub unit: Unit,
}

/// A policy given inline or by the name of a configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    /// An inline policy.
    Inline(Policy),
    /// A named policy from the configuration.
    Named(String),
}

impl From<Policy> for PolicyRef {
    fn from(policy: Policy) -> Self {
        Self::Inline(policy)
    }
}

impl From<&str> for PolicyRef {
    fn from(name: &str) -> Self {
        Self::Named(name.to_string())
    }
}

impl Policy {
    /// A policy with the default burst and fail mode.
    pub fn new(name: &str, limit: u64, window_ms: u64, algorithm: Algorithm) -> Self {
        Self {
            name: name.to_string(),
            limit,
            window_ms,
            algorithm,
            burst: None,
            fail_mode: FailMode::Closed,
            unit: Unit::Cost,
        }
    }

    /// Sets the burst (token-bucket only).
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Counts one unit per check instead of the check's cost.
    pub fn per_request(mut self) -> Self {
        self.unit = Unit::Request;
        self
    }

    /// What a check of `cost` takes from this policy.
    pub fn units(&self, cost: u64) -> u64 {
        match self.unit {
            Unit::Cost => cost,
            Unit::Request => 1,
        }
    }

    /// Sets the fail mode.
    pub fn with_fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// The most units one check can take: `burst` for a token bucket, else `limit`.
    pub fn capacity(&self) -> u64 {
        match self.algorithm {
            Algorithm::TokenBucket => self.burst.unwrap_or(self.limit),
            _ => self.limit,
        }
    }

    /// Checks every bound; `field` prefixes the field names in errors (e.g. `policies[0]`).
    pub fn validate(&self, field: &str) -> Result<(), RateLimitError> {
        let at = |member: &str| format!("{field}.{member}");
        validate::policy_name(&at("name"), &self.name)?;
        if !(1..=MAX_UNITS).contains(&self.limit) {
            return Err(RateLimitError::invalid(
                &at("limit"),
                format!("must be an integer in 1..={MAX_UNITS}, got {}", self.limit),
            ));
        }
        if !(1..=MAX_WINDOW_MS).contains(&self.window_ms) {
            return Err(RateLimitError::invalid(
                &at("window_ms"),
                format!(
                    "must be an integer in 1..={MAX_WINDOW_MS}, got {}",
                    self.window_ms
                ),
            ));
        }
        match self.algorithm {
            Algorithm::TokenBucket => {
                let burst = self.burst.unwrap_or(self.limit);
                if !(1..=MAX_UNITS).contains(&burst) {
                    return Err(RateLimitError::invalid(
                        &at("burst"),
                        format!("must be an integer in 1..={MAX_UNITS}, got {burst}"),
                    ));
                }
                if u128::from(burst) * u128::from(self.window_ms) > u128::from(MAX_UNIT_MS) {
                    return Err(RateLimitError::invalid(
                        &at("burst"),
                        "burst × window_ms must be at most 2^52 for token-bucket (use fixed-window for larger quotas)",
                    ));
                }
            }
            other => {
                if self.burst.is_some() {
                    return Err(RateLimitError::invalid(
                        &at("burst"),
                        format!("applies only to token-bucket, not {}", other.as_str()),
                    ));
                }
            }
        }
        if self.algorithm == Algorithm::SlidingWindow && self.limit > MAX_SLIDING_LOG_LIMIT {
            return Err(RateLimitError::invalid(
                &at("limit"),
                format!(
                    "sliding-window keeps a log entry per request: at most {MAX_SLIDING_LOG_LIMIT} (use sliding-window-counter or token-bucket)"
                ),
            ));
        }
        if self.algorithm == Algorithm::SlidingWindowCounter
            && u128::from(self.limit) * u128::from(self.window_ms) > u128::from(MAX_UNIT_MS)
        {
            return Err(RateLimitError::invalid(
                &at("limit"),
                "limit × window_ms must be at most 2^52 for sliding-window-counter (use fixed-window for larger quotas)",
            ));
        }
        Ok(())
    }

    /// Parses (and validates) the JSON object form
    /// `{"name","limit","window_ms","algorithm","burst"?,"fail_mode"?,"unit"?}`; unknown members are
    /// an error naming them.
    pub fn from_json(value: &Value, field: &str) -> Result<Self, RateLimitError> {
        let Value::Object(members) = value else {
            return Err(RateLimitError::invalid(
                field,
                "must be a policy object or a policy name",
            ));
        };
        const KNOWN: [&str; 7] = [
            "name",
            "limit",
            "window_ms",
            "algorithm",
            "burst",
            "fail_mode",
            "unit",
        ];
        if let Some(unknown) = members.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(RateLimitError::invalid(
                &format!("{field}.{unknown}"),
                format!("unknown member; expected one of {}", KNOWN.join(", ")),
            ));
        }
        let at = |member: &str| format!("{field}.{member}");
        let name = match members.get("name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(RateLimitError::invalid(&at("name"), "must be a string")),
            None => return Err(RateLimitError::invalid(&at("name"), "is required")),
        };
        let limit = required_u64(members, field, "limit")?;
        let window_ms = required_u64(members, field, "window_ms")?;
        let algorithm = match members.get("algorithm") {
            Some(Value::String(text)) => Algorithm::parse(text).ok_or_else(|| {
                RateLimitError::invalid(
                    &at("algorithm"),
                    format!(
                        "must be sliding-window, sliding-window-counter, token-bucket or fixed-window, got {text:?}"
                    ),
                )
            })?,
            Some(_) => {
                return Err(RateLimitError::invalid(
                    &at("algorithm"),
                    "must be a string",
                ));
            }
            None => return Err(RateLimitError::invalid(&at("algorithm"), "is required")),
        };
        let burst = match members.get("burst") {
            None | Some(Value::Null) => None,
            Some(_) => Some(required_u64(members, field, "burst")?),
        };
        let fail_mode = match members.get("fail_mode") {
            None | Some(Value::Null) => FailMode::Closed,
            Some(Value::String(text)) => match text.as_str() {
                "open" | "fail_open" => FailMode::Open,
                "closed" | "fail_closed" => FailMode::Closed,
                other => {
                    return Err(RateLimitError::invalid(
                        &at("fail_mode"),
                        format!("must be \"open\" or \"closed\", got {other:?}"),
                    ));
                }
            },
            Some(_) => {
                return Err(RateLimitError::invalid(
                    &at("fail_mode"),
                    "must be \"open\" or \"closed\"",
                ));
            }
        };
        let unit = match members.get("unit") {
            None | Some(Value::Null) => Unit::Cost,
            Some(Value::String(text)) if text == "cost" => Unit::Cost,
            Some(Value::String(text)) if text == "request" || text == "requests" => Unit::Request,
            Some(other) => {
                return Err(RateLimitError::invalid(
                    &at("unit"),
                    format!("must be \"cost\" or \"request\", got {other}"),
                ));
            }
        };
        let policy = Policy {
            name,
            limit,
            window_ms,
            algorithm,
            burst,
            fail_mode,
            unit,
        };
        policy.validate(field)?;
        Ok(policy)
    }

    /// The JSON object form (what [`Policy::from_json`] reads).
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::json!({
            "name": self.name,
            "limit": self.limit,
            "window_ms": self.window_ms,
            "algorithm": self.algorithm.as_str(),
            "fail_mode": self.fail_mode.as_str(),
            "unit": self.unit.as_str(),
        });
        if let Some(burst) = self.burst {
            object["burst"] = burst.into();
        }
        object
    }
}

/// The integer member `name` of the object at `field`; the error names `field.name` (built
/// only on error: this runs for every inline policy of every check).
fn required_u64(
    members: &Map<String, Value>,
    field: &str,
    name: &str,
) -> Result<u64, RateLimitError> {
    match members.get(name) {
        None => Err(RateLimitError::invalid(
            &format!("{field}.{name}"),
            "is required",
        )),
        Some(value) => value.as_u64().ok_or_else(|| {
            RateLimitError::invalid(
                &format!("{field}.{name}"),
                format!("must be a non-negative integer, got {value}"),
            )
        }),
    }
}

/// Parses one element of a check's `policies` array: a name (string) or an inline object.
pub fn policy_ref_from_json(value: &Value, field: &str) -> Result<PolicyRef, RateLimitError> {
    match value {
        Value::String(name) => {
            validate::policy_name(field, name)?;
            Ok(PolicyRef::Named(name.clone()))
        }
        Value::Object(_) => Ok(PolicyRef::Inline(Policy::from_json(value, field)?)),
        _ => Err(RateLimitError::invalid(
            field,
            "must be a policy object or a policy name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_round_trips_the_json_form() {
        let value = json!({"name":"api","limit":10,"window_ms":1000,"algorithm":"token-bucket","burst":20,"fail_mode":"open","unit":"request"});
        let policy = Policy::from_json(&value, "p").unwrap();
        assert_eq!(
            policy,
            Policy::new("api", 10, 1000, Algorithm::TokenBucket)
                .with_burst(20)
                .with_fail_mode(FailMode::Open)
                .per_request()
        );
        assert_eq!(
            (
                policy.units(500),
                Policy::new("t", 9, 1, Algorithm::FixedWindow).units(5)
            ),
            (1, 5)
        );
        assert_eq!(Policy::from_json(&policy.to_json(), "p").unwrap(), policy);
        assert_eq!(policy.capacity(), 20);
    }

    #[test]
    fn rejects_each_bad_member_by_name() {
        let base = json!({"name":"a","limit":1,"window_ms":1000,"algorithm":"fixed-window"});
        let cases = [
            ("name", json!(""), "p.name"),
            ("limit", json!(0), "p.limit"),
            ("limit", json!(-1), "p.limit"),
            ("limit", json!(1.5), "p.limit"),
            ("window_ms", json!(0), "p.window_ms"),
            ("window_ms", json!("1000"), "p.window_ms"),
            ("algorithm", json!("leaky"), "p.algorithm"),
            ("burst", json!(5), "p.burst"),
            ("fail_mode", json!("maybe"), "p.fail_mode"),
            ("unit", json!("bytes"), "p.unit"),
            ("extra", json!(1), "p.extra"),
        ];
        for (member, bad, field) in cases {
            let mut value = base.clone();
            value[member] = bad;
            match Policy::from_json(&value, "p") {
                Err(RateLimitError::Invalid { field: f, .. }) => assert_eq!(f, field, "{member}"),
                other => panic!("{member}: expected Invalid, got {other:?}"),
            }
        }
        assert!(Policy::from_json(&base, "p").is_ok());
    }

    #[test]
    fn bounds_that_keep_the_scripts_exact() {
        let log = Policy::new(
            "a",
            MAX_SLIDING_LOG_LIMIT + 1,
            1000,
            Algorithm::SlidingWindow,
        );
        assert!(log.validate("p").is_err());
        let counter = Policy::new("a", 1 << 30, 1 << 30, Algorithm::SlidingWindowCounter);
        assert!(counter.validate("p").is_err());
        let budget = Policy::new(
            "tokens",
            50_000,
            86_400_000,
            Algorithm::SlidingWindowCounter,
        );
        assert!(budget.validate("p").is_ok());
        let fixed = Policy::new("tokens", MAX_UNITS, MAX_WINDOW_MS, Algorithm::FixedWindow);
        assert!(fixed.validate("p").is_ok());
    }
}
