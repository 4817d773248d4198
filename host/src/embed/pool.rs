//! Reused instances of one component for typed export calls: an instance serves many calls
//! (instantiation costs far more than a call), one call at a time, and is dropped — never
//! reused — after a trap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::engine::{HostState, LoadedComponent, Runtime};

/// Calls one pooled instance serves before it is replaced (bounds guest heap growth).
const MAX_CALLS_PER_INSTANCE: usize = 10_000;
/// Idle instances kept per component; more are dropped when they come back.
const MAX_IDLE_INSTANCES: usize = 64;

/// A component's generated export bindings (`bindgen!`'s world type).
pub(crate) trait Exports: Sized + Send + Sync + 'static {
    /// The bindings' pre-instance type.
    type Pre: Send + Sync + 'static;

    /// Checks the component exports the world and prepares it.
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;

    /// Instantiates into `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

/// Why a call into a pooled instance failed (the instance was dropped either way).
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// It ran past its deadline.
    Timeout(Duration),
    /// It trapped (or the host failed); `is_memory_limit` tells the memory limit apart.
    Trap(wasmtime::Error),
}

impl CallFailure {
    /// True when the instance trapped because it grew past its memory limit (stores whose
    /// limiter traps on a failed growth, see `ComponentSettings::trap_on_memory_limit`).
    pub(crate) fn is_memory_limit(&self) -> bool {
        matches!(self, CallFailure::Trap(e) if format!("{e:?}").contains("forcing trap when growing memory"))
    }
}

struct Pooled<E> {
    store: Store<HostState>,
    exports: E,
    calls: usize,
}

/// Idle instances of one component, handed out one call at a time.
pub(crate) struct InstancePool<E: Exports> {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    pre: E::Pre,
    idle: Mutex<Vec<Pooled<E>>>,
}

impl<E: Exports> InstancePool<E> {
    /// A pool for `component`; fails when it does not export `E`'s world.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        component: Arc<LoadedComponent>,
    ) -> anyhow::Result<Self> {
        let pre = E::pre(component.instance_pre.clone()).map_err(|e| {
            anyhow::anyhow!(
                "component `{}` does not export the expected interface: {e:?}",
                component.spec.id
            )
        })?;
        Ok(InstancePool {
            runtime,
            component,
            pre,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on an idle (or new) instance, within the component's request timeout (the
    /// same deadline an HTTP request gets; a guest in a loop yields at every epoch tick, so
    /// the deadline fires). A trap or a timeout (`Err`) drops the instance and is counted;
    /// the pool stays usable.
    pub(crate) async fn call<R>(
        &self,
        f: impl AsyncFnOnce(&E, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let deadline = self.component.spec.settings.request_timeout;
        self.call_within(deadline, f)
            .await
            .map_err(|failure| match failure {
                CallFailure::Timeout(limit) => wasmtime::format_err!(
                    "component `{}`: the call did not finish within {} ms",
                    self.component.spec.id,
                    limit.as_millis()
                ),
                CallFailure::Trap(trap) => trap,
            })
    }

    /// [`InstancePool::call`] with its own deadline, telling a timeout from a trap. Dropping
    /// the returned future (a cancel) drops the instance with it: nothing keeps running.
    pub(crate) async fn call_within<R>(
        &self,
        deadline: Duration,
        f: impl AsyncFnOnce(&E, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => {
                let mut store = self.runtime.new_store(&self.component);
                let exports = tokio::time::timeout(deadline, E::instantiate(&self.pre, &mut store))
                    .await
                    .map_err(|_| CallFailure::Timeout(deadline))?
                    .map_err(CallFailure::Trap)?;
                Pooled {
                    store,
                    exports,
                    calls: 0,
                }
            }
        };
        instance.store.data_mut().begin_call();
        let call = tokio::time::timeout(deadline, f(&instance.exports, &mut instance.store));
        let outcome = match call.await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The call stopped at an await point inside the guest: the instance is in an
                // unknown state and is dropped with its store.
                self.runtime
                    .metrics()
                    .record_timeout(&self.component.spec.id);
                return Err(CallFailure::Timeout(deadline));
            }
        };
        match outcome {
            Ok(value) => {
                instance.calls += 1;
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if instance.calls < MAX_CALLS_PER_INSTANCE && idle.len() < MAX_IDLE_INSTANCES {
                    idle.push(instance);
                }
                Ok(value)
            }
            Err(trap) => {
                self.runtime.metrics().record_trap(&self.component.spec.id);
                Err(CallFailure::Trap(trap))
            }
        }
    }

    /// The component this pool runs.
    pub(crate) fn component(&self) -> &Arc<LoadedComponent> {
        &self.component
    }
}
