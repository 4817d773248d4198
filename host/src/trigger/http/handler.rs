//! The per-component [`HandlerState`] that wasmtime-wasi-http's `ProxyHandler` drives: it
//! creates instances, decides how many requests each may serve (reuse, concurrency) and when
//! an idle or stuck instance is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

use crate::engine::{HostState, LoadedComponent, Runtime, http_view};

/// Extra time past the request timeout before an instance still running is torn down from
/// outside its store: a `ProxyHandler` worker stuck in a request (the per-request expiration
/// normally fires first), or a WASIp2 call still streaming its response body (`direct`).
pub(super) const TEARDOWN_GRACE: Duration = Duration::from_millis(500);

/// Creates and governs the instances of one component.
pub(crate) struct ComponentHandler {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    pre: Arc<ProxyPre<HostState>>,
    p3: bool,
}

impl ComponentHandler {
    /// `pre`: the component's HTTP export; `p3`: whether it is the WASIp3 one (which may serve
    /// several requests at once).
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        component: Arc<LoadedComponent>,
        pre: ProxyPre<HostState>,
        p3: bool,
    ) -> Self {
        ComponentHandler {
            runtime,
            component,
            pre: Arc::new(pre),
            p3,
        }
    }
}

impl HandlerState for ComponentHandler {
    type StoreData = HostState;
    type WorkerExpiration = InstanceExpiration;
    type WorkerState = InstanceState;

    fn instantiate(
        &self,
    ) -> impl Future<
        Output = wasmtime::Result<Instance<HostState, InstanceExpiration, InstanceState>>,
    > + Send {
        let runtime = self.runtime.clone();
        let component = self.component.clone();
        let pre = self.pre.clone();
        let p3 = self.p3;
        async move {
            let mut store = runtime.new_store_in_slot(&component).await;
            let settings = &component.spec.settings;
            let instantiate = pre.instantiate_async(&mut store);
            let proxy = tokio::time::timeout(settings.request_timeout, instantiate)
                .await
                .map_err(|_| wasmtime::format_err!("instantiation timed out"))??;
            // A WASIp2 handler runs one request at a time, whatever the setting says.
            let max_concurrent = if p3 {
                settings.max_concurrent_per_instance.max(1)
            } else {
                1
            };
            Ok(Instance {
                store,
                proxy,
                view: http_view,
                expiration: InstanceExpiration::new(
                    settings.idle_instance_timeout,
                    settings.request_timeout + TEARDOWN_GRACE,
                ),
                state: InstanceState {
                    component: component.spec.id.clone(),
                    runtime: runtime.clone(),
                    max_reuse: settings.max_instance_reuse.max(1),
                    max_concurrent,
                    request_timeout: settings.request_timeout,
                },
            })
        }
    }
}

/// Reuse and concurrency policy of one instance.
pub(crate) struct InstanceState {
    component: String,
    runtime: Arc<Runtime>,
    max_reuse: usize,
    max_concurrent: usize,
    request_timeout: Duration,
}

impl WorkerState for InstanceState {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= self.max_reuse {
            ShouldAccept::Never
        } else if concurrent_count >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        // Requests that share one instance share its Redis budget while they overlap: the
        // budget is per instance, refilled as each request starts.
        store.data_mut().begin_call();
        if self.max_concurrent == 1 {
            // One request per instance: the trigger's own deadline answers 504 and the
            // instance expiration tears the instance down, so a second timer per request
            // would only cost.
            Box::pin(std::future::pending())
        } else {
            // Several requests share the instance: an overrunning one must stop it from
            // taking more, which is what this expiry signals.
            Box::pin(tokio::time::sleep(self.request_timeout))
        }
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            // The instance is discarded with its store; the next request gets a fresh one.
            let error = format!("{error:?}");
            if error.contains("guest timed out") {
                tracing::warn!(component = %self.component, "instance discarded: a request overran its deadline");
                self.runtime.metrics().record_timeout(&self.component);
            } else {
                tracing::warn!(component = %self.component, %error, "instance discarded after a trap");
                self.runtime.metrics().record_trap(&self.component);
            }
        }
        drop(store);
    }
}

/// Drops an instance that has been idle too long, or stuck in a request past its deadline.
pub(crate) struct InstanceExpiration {
    idle: Duration,
    busy: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl InstanceExpiration {
    fn new(idle: Duration, busy: Duration) -> Self {
        InstanceExpiration {
            idle,
            busy,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl WorkerExpiration for InstanceExpiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let limit = match status {
            WorkerStatus::Idle => self.idle,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.busy,
        };
        let deadline = tokio::time::Instant::from_std(start + limit);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx)
    }
}
