//! Configuration from Spin variables: named policies and the bypass list. Parsed when read and
//! validated at use: a request that needs a broken part of the configuration gets a clear
//! problem (HTTP 500 `invalid-configuration` naming the variable), one that does not is
//! unaffected.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::RateLimitError;
use crate::policy::Policy;
use crate::validate;

/// Spin variable: Redis URL. Default [`DEFAULT_REDIS_ADDRESS`].
pub const VAR_REDIS_ADDRESS: &str = "redis_address";
/// Spin variable: the named policies, a JSON array of policy objects. Default: none.
pub const VAR_POLICIES: &str = "ratelimit_policies";
/// Spin variable: keys that are always allowed and never counted, comma-separated or a JSON
/// array of strings. Default: none.
pub const VAR_BYPASS_KEYS: &str = "ratelimit_bypass_keys";

/// Redis address used when `redis_address` is not set.
pub const DEFAULT_REDIS_ADDRESS: &str = "redis://127.0.0.1:6379";

/// Named policies and the bypass list (each either parsed or the reason it is invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    policies: Result<Vec<Policy>, String>,
    bypass: Result<HashSet<String>, String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::<String>::new())
    }
}

impl RateLimitConfig {
    /// A configuration from already-built parts (embedders, tests). Policies are used as
    /// given; validate them with [`Policy::validate`] if they come from outside.
    pub fn new(policies: Vec<Policy>, bypass: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            policies: Ok(policies),
            bypass: Ok(bypass.into_iter().map(Into::into).collect()),
        }
    }

    /// Reads both variables through `lookup` (`None` = not set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            policies: parse_policies(lookup(VAR_POLICIES).as_deref().unwrap_or("")),
            bypass: parse_bypass(lookup(VAR_BYPASS_KEYS).as_deref().unwrap_or("")),
        }
    }

    /// The named policy `name`: [`RateLimitError::Config`] when `ratelimit_policies` is
    /// invalid, [`RateLimitError::UnknownPolicy`] when it has no such policy.
    pub fn named(&self, name: &str) -> Result<&Policy, RateLimitError> {
        let policies = self
            .policies
            .as_ref()
            .map_err(|detail| RateLimitError::Config(format!("{VAR_POLICIES}: {detail}")))?;
        policies
            .iter()
            .find(|policy| policy.name == name)
            .ok_or_else(|| RateLimitError::UnknownPolicy(name.to_string()))
    }

    /// Whether `key` is on the bypass list ([`RateLimitError::Config`] when the list is
    /// invalid).
    pub fn is_bypassed(&self, key: &str) -> Result<bool, RateLimitError> {
        self.bypass
            .as_ref()
            .map(|keys| keys.contains(key))
            .map_err(|detail| RateLimitError::Config(format!("{VAR_BYPASS_KEYS}: {detail}")))
    }
}

/// `ratelimit_policies`: empty → none; else a JSON array of valid policies, distinct names.
fn parse_policies(text: &str) -> Result<Vec<Policy>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
    let Value::Array(items) = value else {
        return Err("must be a JSON array of policy objects".into());
    };
    let mut policies: Vec<Policy> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let policy = Policy::from_json(item, &format!("[{i}]")).map_err(|e| e.to_string())?;
        if policies.iter().any(|p| p.name == policy.name) {
            return Err(format!(
                "[{i}].name: duplicate policy name {:?}",
                policy.name
            ));
        }
        policies.push(policy);
    }
    Ok(policies)
}

/// `ratelimit_bypass_keys`: a JSON array of strings, or comma-separated (entries trimmed,
/// empty ones ignored).
fn parse_bypass(text: &str) -> Result<HashSet<String>, String> {
    let text = text.trim();
    let keys: Vec<String> = if text.starts_with('[') {
        let value: Value =
            serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
        let Value::Array(items) = value else {
            return Err("must be a JSON array of strings or a comma-separated list".into());
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(key) => Ok(key),
                other => Err(format!("entries must be strings, got {other}")),
            })
            .collect::<Result<_, _>>()?
    } else {
        text.split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (i, key) in keys.iter().enumerate() {
        validate::segment(&format!("[{i}]"), key).map_err(|e| e.to_string())?;
    }
    Ok(keys.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Algorithm;

    fn config(policies: &str, bypass: &str) -> RateLimitConfig {
        RateLimitConfig::from_lookup(|name| match name {
            VAR_POLICIES => Some(policies.to_string()),
            VAR_BYPASS_KEYS => Some(bypass.to_string()),
            _ => None,
        })
    }

    #[test]
    fn named_policies_and_bypass_lists_parse_in_both_forms() {
        let c = config(
            r#"[{"name":"a","limit":10,"window_ms":1000,"algorithm":"token-bucket"}]"#,
            " admin:1 , admin:2,,",
        );
        assert_eq!(c.named("a").unwrap().algorithm, Algorithm::TokenBucket);
        assert_eq!(c.named("b"), Err(RateLimitError::UnknownPolicy("b".into())));
        assert!(c.is_bypassed("admin:2").unwrap());
        assert!(!c.is_bypassed("admin").unwrap());
        let json = config("", r#"["x,y"]"#);
        assert!(json.is_bypassed("x,y").unwrap());
        assert_eq!(
            json.named("a"),
            Err(RateLimitError::UnknownPolicy("a".into()))
        );
    }

    #[test]
    fn invalid_configuration_is_reported_at_use_naming_the_variable() {
        let c = config(
            r#"[{"name":"a","limit":0,"window_ms":1,"algorithm":"fixed-window"}]"#,
            "[1]",
        );
        match c.named("a") {
            Err(RateLimitError::Config(detail)) => {
                assert!(
                    detail.contains(VAR_POLICIES) && detail.contains("limit"),
                    "{detail}"
                )
            }
            other => panic!("{other:?}"),
        }
        match c.is_bypassed("k") {
            Err(RateLimitError::Config(detail)) => assert!(detail.contains(VAR_BYPASS_KEYS)),
            other => panic!("{other:?}"),
        }
        let dup = config(
            r#"[{"name":"a","limit":1,"window_ms":1,"algorithm":"fixed-window"},{"name":"a","limit":2,"window_ms":1,"algorithm":"fixed-window"}]"#,
            "",
        );
        assert!(
            matches!(dup.named("a"), Err(RateLimitError::Config(d)) if d.contains("duplicate"))
        );
        assert!(matches!(
            config("{", "").named("a"),
            Err(RateLimitError::Config(_))
        ));
    }
}
