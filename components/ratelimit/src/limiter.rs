//! The logic: [`RateLimiter`] checks a key against several policies in one atomic script,
//! peeks at and resets one policy's state. Plain Rust over [`RedisExec`] and [`Clock`].

use crate::clock::Clock;
use crate::config::RateLimitConfig;
use crate::error::RateLimitError;
use crate::keys;
use crate::policy::{FailMode, MAX_POLICIES_PER_CHECK, MAX_UNITS, Policy, PolicyRef};
use crate::redis::{Arg, RedisError, RedisExec, Value};
use crate::scripts;
use crate::validate;

/// One policy's state after a check (or now, for a peek).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    /// The policy name.
    pub name: String,
    /// Its limit.
    pub limit: u64,
    /// Its window in ms (for the `RateLimit-Policy` header).
    pub window_ms: u64,
    /// Units that could still be consumed now.
    pub remaining: u64,
    /// Milliseconds until the policy is fully replenished (0 when it already is).
    pub reset_ms: u64,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// True when every policy admitted the cost (and it was consumed from every one).
    pub allowed: bool,
    /// When denied: ms until the same check would be allowed; else 0.
    pub retry_after_ms: u64,
    /// Each policy's state, in the order given. After an allowed check: after consumption.
    /// After a denied one: unchanged (nothing was consumed).
    pub policies: Vec<PolicyState>,
    /// The key is on the bypass list: allowed, not counted, Redis not asked (every policy is
    /// reported full).
    pub bypassed: bool,
    /// Redis was unavailable and every policy fails open: allowed, not counted (every policy
    /// is reported full).
    pub degraded: bool,
}

/// The rate limiter over one Redis executor, one clock and one configuration.
#[derive(Debug)]
pub struct RateLimiter<R, C> {
    redis: R,
    clock: C,
    config: RateLimitConfig,
}

impl<R: RedisExec, C: Clock> RateLimiter<R, C> {
    /// A limiter.
    pub fn new(redis: R, clock: C, config: RateLimitConfig) -> Self {
        Self {
            redis,
            clock,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// The Redis executor.
    pub fn redis(&self) -> &R {
        &self.redis
    }

    /// Validates inline policies and looks named ones up: 1-16 policies with distinct names.
    pub fn resolve(&self, policies: &[PolicyRef]) -> Result<Vec<Policy>, RateLimitError> {
        if policies.is_empty() || policies.len() > MAX_POLICIES_PER_CHECK {
            return Err(RateLimitError::invalid(
                "policies",
                format!(
                    "must list 1-{MAX_POLICIES_PER_CHECK} policies, got {}",
                    policies.len()
                ),
            ));
        }
        let mut resolved: Vec<Policy> = Vec::with_capacity(policies.len());
        for (i, policy) in policies.iter().enumerate() {
            let field = format!("policies[{i}]");
            let policy = match policy {
                PolicyRef::Inline(policy) => {
                    policy.validate(&field)?;
                    policy.clone()
                }
                PolicyRef::Named(name) => {
                    validate::policy_name(&field, name)?;
                    self.config.named(name)?.clone()
                }
            };
            if resolved.iter().any(|p| p.name == policy.name) {
                return Err(RateLimitError::invalid(
                    &field,
                    format!("duplicate policy name {:?} in one check", policy.name),
                ));
            }
            resolved.push(policy);
        }
        Ok(resolved)
    }

    /// Consumes `cost` units for `key` from every policy, atomically (all or nothing).
    pub fn check(
        &mut self,
        key: &str,
        policies: &[PolicyRef],
        cost: u64,
    ) -> Result<Decision, RateLimitError> {
        validate::segment("key", key)?;
        validate_cost(cost)?;
        let policies = self.resolve(policies)?;
        self.check_resolved(key, &policies, cost)
    }

    /// Like [`RateLimiter::check`] with already-resolved policies (validated here).
    pub fn check_policies(
        &mut self,
        key: &str,
        policies: &[Policy],
        cost: u64,
    ) -> Result<Decision, RateLimitError> {
        let refs: Vec<PolicyRef> = policies.iter().cloned().map(PolicyRef::Inline).collect();
        self.check(key, &refs, cost)
    }

    fn check_resolved(
        &mut self,
        key: &str,
        policies: &[Policy],
        cost: u64,
    ) -> Result<Decision, RateLimitError> {
        for (i, policy) in policies.iter().enumerate() {
            if policy.units(cost) > policy.capacity() {
                return Err(RateLimitError::invalid(
                    "cost",
                    format!(
                        "{cost} exceeds the capacity {} of policy {:?} (policies[{i}]): it could never be allowed",
                        policy.capacity(),
                        policy.name
                    ),
                ));
            }
        }
        if self.config.is_bypassed(key)? {
            return Ok(full_decision(policies, true, false));
        }
        match self.run(key, policies, cost, true) {
            Ok(decision) => Ok(decision),
            Err(error) => {
                if policies.iter().all(|p| p.fail_mode == FailMode::Open) {
                    eprintln!("redwasm-ratelimit: redis failed, failing open: {error}");
                    Ok(full_decision(policies, false, true))
                } else {
                    Err(error.into())
                }
            }
        }
    }

    /// The state of the named policy `policy_name` for `key`, without consuming.
    pub fn peek(&mut self, policy_name: &str, key: &str) -> Result<PolicyState, RateLimitError> {
        validate::policy_name("policy", policy_name)?;
        validate::segment("key", key)?;
        let policy = self.config.named(policy_name)?.clone();
        self.peek_policy(&policy, key)
    }

    /// The state of `policy` for `key`, without consuming.
    pub fn peek_policy(
        &mut self,
        policy: &Policy,
        key: &str,
    ) -> Result<PolicyState, RateLimitError> {
        policy.validate("policy")?;
        validate::segment("key", key)?;
        let mut decision = self.run(key, std::slice::from_ref(policy), 1, false)?;
        Ok(decision.policies.remove(0))
    }

    /// Forgets the named policy's state for `key`.
    pub fn reset(&mut self, policy_name: &str, key: &str) -> Result<(), RateLimitError> {
        validate::policy_name("policy", policy_name)?;
        validate::segment("key", key)?;
        let policy = self.config.named(policy_name)?.clone();
        self.reset_policy(&policy, key)
    }

    /// Forgets `policy`'s state for `key`.
    pub fn reset_policy(&mut self, policy: &Policy, key: &str) -> Result<(), RateLimitError> {
        policy.validate("policy")?;
        validate::segment("key", key)?;
        let [a, b] = keys::policy_keys(key, policy);
        self.redis
            .exec("DEL", &[Arg::from(&a), Arg::from(&b)])
            .map_err(RateLimitError::from)?;
        Ok(())
    }

    /// One run of `check.lua`.
    fn run(
        &mut self,
        key: &str,
        policies: &[Policy],
        cost: u64,
        commit: bool,
    ) -> Result<Decision, RedisError> {
        let mut key_names = Vec::with_capacity(policies.len() * 2);
        let mut texts: Vec<String> = Vec::with_capacity(3 + policies.len() * 5);
        texts.push(
            self.clock
                .now_ms()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        texts.push(if commit { "commit" } else { "peek" }.to_string());
        texts.push(policies.len().to_string());
        for policy in policies {
            key_names.extend(keys::policy_keys(key, policy));
            texts.push(keys::algorithm_code(policy.algorithm).to_string());
            texts.push(policy.limit.to_string());
            texts.push(policy.window_ms.to_string());
            texts.push(policy.capacity().to_string());
            texts.push(policy.units(cost).to_string());
        }
        let argv: Vec<Arg<'_>> = texts.iter().map(Arg::from).collect();
        let reply = scripts::CHECK.run(&mut self.redis, &key_names, &argv)?;
        parse_reply(&reply, policies)
    }
}

fn validate_cost(cost: u64) -> Result<(), RateLimitError> {
    if (1..=MAX_UNITS).contains(&cost) {
        Ok(())
    } else {
        Err(RateLimitError::invalid(
            "cost",
            format!("must be an integer in 1..={MAX_UNITS}, got {cost}"),
        ))
    }
}

/// Allowed, uncounted: every policy reported full.
fn full_decision(policies: &[Policy], bypassed: bool, degraded: bool) -> Decision {
    Decision {
        allowed: true,
        retry_after_ms: 0,
        policies: policies
            .iter()
            .map(|p| PolicyState {
                name: p.name.clone(),
                limit: p.limit,
                window_ms: p.window_ms,
                remaining: p.capacity(),
                reset_ms: 0,
            })
            .collect(),
        bypassed,
        degraded,
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::Status(text) => text.parse().ok(),
        Value::Nil => None,
    }
}

fn parse_reply(reply: &[Value], policies: &[Policy]) -> Result<Decision, RedisError> {
    let malformed = || {
        RedisError::new(
            crate::redis::RedisErrorKind::Reply,
            format!("unexpected check.lua reply {reply:?}"),
        )
    };
    if reply.len() != 3 + 3 * policies.len() {
        return Err(malformed());
    }
    let numbers: Vec<u64> = reply
        .iter()
        .map(as_u64)
        .collect::<Option<_>>()
        .ok_or_else(malformed)?;
    Ok(Decision {
        allowed: numbers[0] == 1,
        retry_after_ms: numbers[1],
        policies: policies
            .iter()
            .enumerate()
            .map(|(i, p)| PolicyState {
                name: p.name.clone(),
                limit: p.limit,
                window_ms: p.window_ms,
                remaining: numbers[3 + 3 * i + 1],
                reset_ms: numbers[3 + 3 * i + 2],
            })
            .collect(),
        bypassed: false,
        degraded: false,
    })
}
