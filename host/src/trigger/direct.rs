//! WASIp2 components on the plain engine, driven from the connection's own task.
//!
//! wasmtime-wasi-http's `ProxyHandler` hands every request to a worker task over a channel and
//! the response back over another, and runs each call in the component-model-async event
//! loop; a WASIp2 handler needs neither. Here the connection task takes an idle instance,
//! calls `wasi:http/incoming-handler.handle` itself and answers as soon as the guest sets its
//! response. A guest that is still running then (streaming a body larger than the write
//! budget) finishes in a task of its own; otherwise the instance goes straight back to the
//! idle stack.
//!
//! Containment: a trap discards the instance; a request that overruns its deadline is dropped
//! by the trigger's timeout, and with it the call and the whole store.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::{Request, Response};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::handler::TEARDOWN_GRACE;
use super::{Body, Failure};
use crate::engine::{HostState, LoadedComponent, Runtime, http_view};

/// Idle instances kept per component; more are dropped when they come back.
const MAX_IDLE_INSTANCES: usize = 128;

/// An instance between requests.
struct Idle {
    store: Store<HostState>,
    proxy: Proxy,
    /// Requests it has served.
    served: usize,
    /// When it last finished a request.
    since: Instant,
}

/// The instances of one WASIp2 component and the policy for reusing them.
pub(crate) struct DirectHandler {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    pre: ProxyPre<HostState>,
    /// Oldest at the bottom: a stale top means everything below is stale too.
    idle: Mutex<Vec<Idle>>,
}

impl DirectHandler {
    /// A handler for `component`, whose HTTP pre-instance is `pre`. Starts a task that drops
    /// instances idle for longer than the component's `idle_instance_timeout`.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        component: Arc<LoadedComponent>,
        pre: ProxyPre<HostState>,
    ) -> Arc<Self> {
        let handler = Arc::new(DirectHandler {
            runtime,
            component,
            pre,
            idle: Mutex::new(Vec::new()),
        });
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            tokio.spawn(sweep_idle(Arc::downgrade(&handler)));
        }
        handler
    }

    fn idle_timeout(&self) -> Duration {
        self.component.spec.settings.idle_instance_timeout
    }

    /// Answers `request` on an idle or new instance.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        request: Request<Body>,
    ) -> Result<Response<Body>, Failure> {
        let Idle {
            mut store,
            proxy,
            served,
            ..
        } = match self.take_idle() {
            Some(idle) => idle,
            None => self.instantiate().await?,
        };
        let (tx, rx) = oneshot::channel();
        let params = {
            let mut http = http_view(store.data_mut());
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|req| Ok((req, http.new_response_outparam(tx)?)))
        };
        let (req, out) = params.map_err(|e| Failure::Component(format!("{e:?}")))?;

        let this = self.clone();
        let mut call = Box::pin(async move {
            let mut guard = CallGuard {
                handler: &this,
                finished: false,
            };
            let result = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            guard.finished = true;
            match result {
                Ok(()) => {
                    this.put_back(Idle {
                        store,
                        proxy,
                        served: served + 1,
                        since: Instant::now(),
                    });
                    Ok(())
                }
                Err(trap) => {
                    let trap = format!("{trap:?}");
                    tracing::warn!(component = %this.component.spec.id, error = %trap, "instance discarded after a trap");
                    this.runtime.metrics().record_trap(&this.component.spec.id);
                    Err(trap)
                }
            }
        });
        let mut rx = rx;
        tokio::select! {
            biased;
            // The usual case: the guest sets its response and returns in one go.
            outcome = &mut call => match rx.try_recv() {
                Ok(response) => guest_response(response),
                Err(_) => Err(Failure::Component(match outcome {
                    Err(trap) => trap,
                    Ok(()) => "the guest returned without setting a response".to_string(),
                })),
            },
            response = &mut rx => {
                // The guest is still writing the body: let it finish on its own task, within
                // the request's deadline plus a grace period.
                let limit = self.component.spec.settings.request_timeout + TEARDOWN_GRACE;
                let this = self.clone();
                tokio::spawn(async move {
                    if tokio::time::timeout(limit, call).await.is_err() {
                        this.record_timeout();
                    }
                });
                match response {
                    Ok(response) => guest_response(response),
                    Err(_) => Err(Failure::Component("the response was dropped".to_string())),
                }
            }
        }
    }

    /// Counts an instance torn down because its request overran the deadline.
    pub(crate) fn record_timeout(&self) {
        let id = &self.component.spec.id;
        tracing::warn!(component = %id, "instance discarded: a request overran its deadline");
        self.runtime.metrics().record_timeout(id);
    }

    /// The most recently used idle instance that may serve another request.
    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let top = idle.pop()?;
        if top.since.elapsed() > self.idle_timeout() {
            // Everything below is older still.
            let stale = std::mem::take(&mut *idle);
            drop(idle);
            drop(stale);
            return None;
        }
        Some(top)
    }

    async fn instantiate(&self) -> Result<Idle, Failure> {
        let mut store = self.runtime.new_store(&self.component);
        let limit = self.component.spec.settings.request_timeout;
        let proxy = match tokio::time::timeout(limit, self.pre.instantiate_async(&mut store)).await
        {
            Ok(Ok(proxy)) => proxy,
            Ok(Err(error)) => return Err(Failure::Instantiation(format!("{error:?}"))),
            Err(_) => return Err(Failure::Instantiation("instantiation timed out".into())),
        };
        Ok(Idle {
            store,
            proxy,
            served: 0,
            since: Instant::now(),
        })
    }

    /// Keeps `instance` for the next request unless it has served its quota or enough are
    /// idle already.
    fn put_back(&self, instance: Idle) {
        let max_reuse = self.component.spec.settings.max_instance_reuse.max(1);
        if instance.served >= max_reuse {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_INSTANCES {
            idle.push(instance);
        }
    }

    /// Drops the instances idle for longer than the idle timeout.
    fn drop_stale(&self) {
        let timeout = self.idle_timeout();
        let stale: Vec<Idle> = {
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

/// Notes a call dropped before it finished (its request's deadline passed, the client went
/// away, or the server is shutting down): its store, and so the instance, goes with it.
struct CallGuard<'a> {
    handler: &'a DirectHandler,
    finished: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let id = &self.handler.component.spec.id;
            tracing::debug!(component = %id, "call abandoned; the instance is discarded");
        }
    }
}

fn guest_response(response: Result<Response<Body>, ErrorCode>) -> Result<Response<Body>, Failure> {
    response
        .map_err(|code| Failure::Component(format!("the guest answered with an error: {code:?}")))
}

/// Every idle timeout, drops the instances idle for that long, until the handler is gone.
async fn sweep_idle(handler: Weak<DirectHandler>) {
    loop {
        let Some(period) = handler.upgrade().map(|h| h.idle_timeout()) else {
            return;
        };
        tokio::time::sleep(period.max(Duration::from_millis(100))).await;
        match handler.upgrade() {
            Some(handler) => handler.drop_stale(),
            None => return,
        }
    }
}
