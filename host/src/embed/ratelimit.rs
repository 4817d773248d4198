//! The rate-limit component's typed API: `redwasm:ratelimit/ratelimit@0.1.0` called
//! in-process, e.g. `limiter.check("user:42", &policies, 1)`.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::engine::HostState;
use crate::engine::pool::{Exports, InstancePool, TypedExports};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/ratelimit.wit",
        world: "ratelimit-component",
        exports: { default: async },
    });
}

use bindings::RatelimitComponentPre;
use bindings::exports::redwasm::ratelimit::ratelimit as wit;

pub use wit::{
    Algorithm, CheckResult, FailMode, Policy, PolicyRef, PolicyState, Unit as PolicyUnit,
};

impl TypedExports for bindings::RatelimitComponent {
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        RatelimitComponentPre::new(instance_pre)
    }
}

impl Exports for bindings::RatelimitComponent {
    type Pre = RatelimitComponentPre<HostState>;

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
        pre.instantiate_async(store)
    }
}

impl Policy {
    /// A policy of `limit` units per `window_ms` with the default burst (`limit`), fail mode
    /// (closed) and unit (the check's cost).
    pub fn new(name: &str, limit: u64, window_ms: u64, algorithm: Algorithm) -> Self {
        Policy {
            name: name.to_string(),
            limit,
            window_ms,
            algorithm,
            burst: None,
            fail_mode: None,
            unit: None,
        }
    }

    /// Sets the burst (token-bucket only).
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Sets the fail mode.
    pub fn with_fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = Some(fail_mode);
        self
    }

    /// Counts one unit per check instead of the check's cost.
    pub fn per_request(mut self) -> Self {
        self.unit = Some(PolicyUnit::Request);
        self
    }
}

impl From<Policy> for PolicyRef {
    fn from(policy: Policy) -> Self {
        PolicyRef::Inline(policy)
    }
}

impl From<&str> for PolicyRef {
    fn from(name: &str) -> Self {
        PolicyRef::Named(name.to_string())
    }
}

/// Errors of the rate-limit embedding API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// An argument is invalid (the text names the field).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A policy name the configuration does not define.
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    /// The component's configuration (`ratelimit_policies`, `ratelimit_bypass_keys`) is
    /// invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Redis is unavailable and a policy of the check fails closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The component trapped or the host failed; the instance was discarded.
    #[error("component failure: {0}")]
    Component(String),
}

impl From<wit::Error> for RateLimitError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Invalid(s) => RateLimitError::Invalid(s),
            wit::Error::UnknownPolicy(s) => RateLimitError::UnknownPolicy(s),
            wit::Error::Config(s) => RateLimitError::Config(s),
            wit::Error::Unavailable(s) => RateLimitError::Unavailable(s),
        }
    }
}

/// The rate-limit component, callable from Rust.
pub struct RateLimiter {
    instances: InstancePool<bindings::RatelimitComponent>,
}

impl RateLimiter {
    pub(super) fn new(instances: InstancePool<bindings::RatelimitComponent>) -> Self {
        RateLimiter { instances }
    }

    /// Runs `f` on a pooled instance, separating guest errors from traps.
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(
            &bindings::RatelimitComponent,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::Error>>,
    ) -> Result<R, RateLimitError> {
        match self.instances.call(f).await {
            Ok(inner) => inner.map_err(RateLimitError::from),
            Err(trap) => Err(RateLimitError::Component(format!("{trap:?}"))),
        }
    }

    /// Takes `cost` from every policy for `key`, atomically (all or nothing), on Redis
    /// server time.
    pub async fn check(
        &self,
        key: &str,
        policies: &[PolicyRef],
        cost: u64,
    ) -> Result<CheckResult, RateLimitError> {
        self.call(async |b, s| {
            b.redwasm_ratelimit_ratelimit()
                .call_check(s, key, policies, cost)
                .await
        })
        .await
    }

    /// Like [`RateLimiter::check`] at the caller's time `now_ms` (ms since the epoch). For
    /// tests and callers that own the clock; do not mix with [`RateLimiter::check`] on the
    /// same keys.
    pub async fn check_at(
        &self,
        key: &str,
        policies: &[PolicyRef],
        cost: u64,
        now_ms: u64,
    ) -> Result<CheckResult, RateLimitError> {
        self.call(async |b, s| {
            b.redwasm_ratelimit_ratelimit()
                .call_check_at(s, key, policies, cost, now_ms)
                .await
        })
        .await
    }

    /// The state of the named policy for `key`, without consuming.
    pub async fn peek(&self, policy: &str, key: &str) -> Result<PolicyState, RateLimitError> {
        self.call(async |b, s| {
            b.redwasm_ratelimit_ratelimit()
                .call_peek(s, policy, key)
                .await
        })
        .await
    }

    /// Forgets the named policy's state for `key`.
    pub async fn reset(&self, policy: &str, key: &str) -> Result<(), RateLimitError> {
        self.call(async |b, s| {
            b.redwasm_ratelimit_ratelimit()
                .call_reset(s, policy, key)
                .await
        })
        .await
    }
}
