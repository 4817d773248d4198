//! The one instance pool every trigger uses (HTTP, queue) and `redwasm::embed` too: reused
//! instances of one component, each serving one call at a time, with a deadline on every
//! call, a reuse quota, and idle expiry. Instantiation costs far more than a call, so an
//! instance serves many; it is dropped (never reused) after a trap or a timeout, when its
//! quota is spent, or when it has been idle for the component's `idle_instance_timeout`.
//!
//! WASIp3 HTTP components are the exception: several requests share one instance there, which
//! wasmtime-wasi-http's `ProxyHandler` governs (see `trigger::http`).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{HostState, LoadedComponent, Runtime};

/// Idle instances kept per component; more are dropped when they come back.
const MAX_IDLE_INSTANCES: usize = 128;

/// What a pool instantiates: a component's export bindings (`bindgen!`'s world type, or the
/// HTTP trigger's choice of export).
pub(crate) trait Exports: Sized + Send + Sync + 'static {
    /// What instantiation starts from (a bindings pre-instance).
    type Pre: Send + Sync + 'static;

    /// Instantiates into `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

/// [`Exports`] whose pre-instance comes straight from the component's [`InstancePre`] (the
/// typed worlds `redwasm::embed` and the queue trigger call).
pub(crate) trait TypedExports: Exports {
    /// Checks the component exports the world and prepares it.
    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
}

/// Why a call into a pooled instance failed (the instance was dropped either way).
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// It ran past its deadline (instantiation included).
    Timeout(Duration),
    /// It (or its instantiation) trapped, or the host failed; `is_memory_limit` tells the
    /// memory limit apart.
    Trap(wasmtime::Error),
}

impl CallFailure {
    /// True when the instance trapped because it grew past its memory limit (stores whose
    /// limiter traps on a failed growth, see `ComponentSettings::trap_on_memory_limit`).
    pub(crate) fn is_memory_limit(&self) -> bool {
        matches!(self, CallFailure::Trap(e) if format!("{e:?}").contains("forcing trap when growing memory"))
    }
}

/// An instance checked out of a pool: its store and exports. Give it back with
/// [`InstancePool::checkin`] after a call that returned; drop it after a trap or timeout.
pub(crate) struct Instance<E> {
    /// The instance's store.
    pub(crate) store: Store<HostState>,
    /// Its exports.
    pub(crate) exports: E,
    /// Calls it has served.
    served: usize,
    /// When it was last checked in.
    since: Instant,
}

struct Inner<E: Exports> {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    pre: E::Pre,
    /// Oldest at the bottom: a stale top means everything below is stale too.
    idle: Mutex<Vec<Instance<E>>>,
}

/// Idle instances of one component, handed out one call at a time. Cloning shares the pool.
pub(crate) struct InstancePool<E: Exports> {
    inner: Arc<Inner<E>>,
}

impl<E: Exports> Clone for InstancePool<E> {
    fn clone(&self) -> Self {
        InstancePool {
            inner: self.inner.clone(),
        }
    }
}

impl<E: TypedExports> InstancePool<E> {
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
        Ok(Self::with_pre(runtime, component, pre))
    }
}

impl<E: Exports> InstancePool<E> {
    /// A pool instantiating `component` from `pre`. Within a tokio runtime, a task drops
    /// instances idle past the component's `idle_instance_timeout` until the pool is gone.
    pub(crate) fn with_pre(
        runtime: Arc<Runtime>,
        component: Arc<LoadedComponent>,
        pre: E::Pre,
    ) -> Self {
        let inner = Arc::new(Inner {
            runtime,
            component,
            pre,
            idle: Mutex::new(Vec::new()),
        });
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            tokio.spawn(sweep_idle(Arc::downgrade(&inner)));
        }
        InstancePool { inner }
    }

    /// The component this pool runs.
    pub(crate) fn component(&self) -> &Arc<LoadedComponent> {
        &self.inner.component
    }

    /// The pre-instance it instantiates from.
    pub(crate) fn pre(&self) -> &E::Pre {
        &self.inner.pre
    }

    /// Runs `f` on an idle (or new) instance, within the component's request timeout (the
    /// same deadline an HTTP request gets; a guest in a loop yields at every epoch tick, so
    /// the deadline fires). A trap or a timeout (`Err`) drops the instance and is counted;
    /// the pool stays usable.
    pub(crate) async fn call<R>(
        &self,
        f: impl AsyncFnOnce(&E, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let deadline = self.inner.component.spec.settings.request_timeout;
        self.call_within(deadline, f)
            .await
            .map_err(|failure| match failure {
                CallFailure::Timeout(limit) => wasmtime::format_err!(
                    "component `{}`: the call did not finish within {} ms",
                    self.inner.component.spec.id,
                    limit.as_millis()
                ),
                CallFailure::Trap(trap) => trap,
            })
    }

    /// [`InstancePool::call`] with its own deadline (instantiation included), telling a
    /// timeout from a trap. Dropping the returned future (a cancel) drops the instance with
    /// it: nothing keeps running.
    pub(crate) async fn call_within<R>(
        &self,
        deadline: Duration,
        f: impl AsyncFnOnce(&E, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let work = async {
            let mut instance = self.checkout().await.map_err(CallFailure::Trap)?;
            let outcome = f(&instance.exports, &mut instance.store).await;
            Ok::<_, CallFailure>((instance, outcome))
        };
        match tokio::time::timeout(deadline, work).await {
            Err(_) => {
                // The call stopped at an await point inside the guest: the instance is in an
                // unknown state and was dropped with its store.
                self.timed_out();
                Err(CallFailure::Timeout(deadline))
            }
            Ok(Err(failure)) => Err(failure),
            Ok(Ok((instance, Ok(value)))) => {
                self.checkin(instance);
                Ok(value)
            }
            Ok(Ok((_, Err(trap)))) => {
                self.trapped(&trap);
                Err(CallFailure::Trap(trap))
            }
        }
    }

    /// An idle instance that may serve another call, or a new one; its per-call budgets are
    /// full. The caller bounds the time this takes (instantiation runs guest code).
    pub(crate) async fn checkout(&self) -> wasmtime::Result<Instance<E>> {
        let mut instance = match self.take_idle() {
            Some(instance) => instance,
            None => {
                let inner = &self.inner;
                let mut store = inner.runtime.new_store_in_slot(&inner.component).await;
                let exports = E::instantiate(&inner.pre, &mut store).await?;
                Instance {
                    store,
                    exports,
                    served: 0,
                    since: Instant::now(),
                }
            }
        };
        instance.store.data_mut().begin_call();
        Ok(instance)
    }

    /// Keeps `instance`, which has just finished a call normally, for the next call unless it
    /// has served its quota or enough are idle already.
    pub(crate) fn checkin(&self, mut instance: Instance<E>) {
        instance.served += 1;
        let max_reuse = self.inner.component.spec.settings.max_instance_reuse.max(1);
        if instance.served >= max_reuse {
            return;
        }
        instance.since = Instant::now();
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_INSTANCES {
            idle.push(instance);
        }
    }

    /// Logs and counts a trap; the caller has dropped (or drops) the instance.
    pub(crate) fn trapped(&self, trap: &wasmtime::Error) -> String {
        let id = &self.inner.component.spec.id;
        let trap = format!("{trap:?}");
        tracing::warn!(component = %id, error = %trap, "instance discarded after a trap");
        self.inner.runtime.metrics().record_trap(id);
        trap
    }

    /// Logs and counts an instance torn down because its call overran the deadline.
    pub(crate) fn timed_out(&self) {
        let id = &self.inner.component.spec.id;
        tracing::warn!(component = %id, "instance discarded: a call overran its deadline");
        self.inner.runtime.metrics().record_timeout(id);
    }

    /// The most recently used idle instance, unless it (and so everything below) is stale.
    fn take_idle(&self) -> Option<Instance<E>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        let top = idle.pop()?;
        if top.since.elapsed() > self.inner.idle_timeout() {
            let stale = std::mem::take(&mut *idle);
            drop(idle);
            drop((top, stale));
            return None;
        }
        Some(top)
    }
}

impl<E: Exports> Inner<E> {
    fn idle_timeout(&self) -> Duration {
        self.component.spec.settings.idle_instance_timeout
    }

    /// Drops the instances idle for longer than the idle timeout.
    fn drop_stale(&self) {
        let timeout = self.idle_timeout();
        let stale: Vec<Instance<E>> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let fresh_from = idle
                .iter()
                .position(|i| i.since.elapsed() <= timeout)
                .unwrap_or(idle.len());
            idle.drain(..fresh_from).collect()
        };
        // Stores are dropped outside the lock.
        drop(stale);
    }
}

/// Every idle timeout, drops the instances idle for that long, until the pool is gone.
async fn sweep_idle<E: Exports>(pool: Weak<Inner<E>>) {
    loop {
        let Some(period) = pool.upgrade().map(|p| p.idle_timeout()) else {
            return;
        };
        tokio::time::sleep(period.max(Duration::from_millis(100))).await;
        match pool.upgrade() {
            Some(pool) => pool.drop_stale(),
            None => return,
        }
    }
}
