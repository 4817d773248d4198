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
//! A component that also exports `redwasm:http/handler` (and has `typed_http` on) is called
//! through that instead: one call with the whole request, see `typed`.
//!
//! Containment: a trap discards the instance; a request that overruns its deadline is dropped
//! by the trigger's timeout, and with it the call and the whole store.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use http::{HeaderName, Request, Response};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::handler::TEARDOWN_GRACE;
use super::typed::{self, HttpHandler, HttpHandlerPre};
use super::{Body, Failure};
use crate::engine::{HostState, LoadedComponent, Runtime, http_view};

/// Idle instances kept per component; more are dropped when they come back.
const MAX_IDLE_INSTANCES: usize = 128;

/// The export an instance is called through.
enum Entry {
    /// `wasi:http/incoming-handler`.
    Wasi(Proxy),
    /// `redwasm:http/handler`.
    Typed(HttpHandler),
}

impl Entry {
    fn into_wasi(self) -> Option<Proxy> {
        match self {
            Entry::Wasi(proxy) => Some(proxy),
            Entry::Typed(_) => None,
        }
    }

    fn into_typed(self) -> Option<HttpHandler> {
        match self {
            Entry::Typed(handler) => Some(handler),
            Entry::Wasi(_) => None,
        }
    }
}

/// An instance between requests.
struct Idle {
    store: Store<HostState>,
    entry: Entry,
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
    /// Set when requests go through `redwasm:http/handler`.
    typed: Option<HttpHandlerPre<HostState>>,
    /// The request headers the typed export reads (asked of the first instance).
    typed_headers: OnceLock<Vec<HeaderName>>,
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
        let typed = if component.spec.settings.typed_http {
            HttpHandlerPre::new(component.instance_pre.clone()).ok()
        } else {
            None
        };
        let handler = Arc::new(DirectHandler {
            runtime,
            component,
            pre,
            typed,
            typed_headers: OnceLock::new(),
            idle: Mutex::new(Vec::new()),
        });
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            tokio.spawn(sweep_idle(Arc::downgrade(&handler)));
        }
        handler
    }

    /// Whether requests go through `redwasm:http/handler` rather than `wasi:http`.
    pub(crate) fn is_typed(&self) -> bool {
        self.typed.is_some()
    }

    /// Whether requests need Spin's context (absolute URL, `Host`, `spin-*` headers): always
    /// for wasi:http, and for a typed export that reads `host` or a `spin-*` header (or has
    /// not said yet which headers it reads).
    pub(crate) fn needs_spin_context(&self) -> bool {
        if self.typed.is_none() {
            return true;
        }
        self.typed_headers.get().is_none_or(|names| {
            names
                .iter()
                .any(|n| n == http::header::HOST || n.as_str().starts_with("spin-"))
        })
    }

    fn idle_timeout(&self) -> Duration {
        self.component.spec.settings.idle_instance_timeout
    }

    /// Answers `request` on an idle or new instance.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        request: Request<Body>,
    ) -> Result<Response<Body>, Failure> {
        if self.typed.is_some() {
            return self.handle_typed(request).await;
        }
        let (mut store, proxy, served) = self.checkout(Entry::into_wasi).await?;
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
                        entry: Entry::Wasi(proxy),
                        served: served + 1,
                        since: Instant::now(),
                    });
                    Ok(())
                }
                Err(trap) => Err(this.trapped(&trap)),
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

    /// The typed path: reads the whole request first (no instance is held while the client
    /// sends its body), then answers in one `redwasm:http/handler.handle` call.
    async fn handle_typed(
        self: &Arc<Self>,
        request: Request<Body>,
    ) -> Result<Response<Body>, Failure> {
        let (headers, mut request) = typed::read_request(request).await?;
        let (mut store, handler, served) = self.checkout(Entry::into_typed).await?;
        // Known once the first instance has answered `request-headers`.
        let wanted = self.typed_headers.get().map_or(&[][..], Vec::as_slice);
        request.headers = typed::pick_headers(&headers, wanted);
        let id = &self.component.spec.id;
        match handler
            .redwasm_http_handler()
            .call_handle(&mut store, &request)
            .await
        {
            Ok(response) => {
                self.put_back(Idle {
                    store,
                    entry: Entry::Typed(handler),
                    served: served + 1,
                    since: Instant::now(),
                });
                typed::into_response(id, response)
            }
            Err(trap) => Err(Failure::Component(self.trapped(&trap))),
        }
    }

    /// An idle instance (or a new one) with the export `pick` accepts, and its request count.
    async fn checkout<E>(
        &self,
        pick: fn(Entry) -> Option<E>,
    ) -> Result<(Store<HostState>, E, usize), Failure> {
        if let Some(Idle {
            store,
            entry,
            served,
            ..
        }) = self.take_idle()
            && let Some(entry) = pick(entry)
        {
            let mut store = store;
            store.data_mut().begin_call();
            return Ok((store, entry, served));
        }
        let Idle {
            mut store,
            entry,
            served,
            ..
        } = self.instantiate().await?;
        store.data_mut().begin_call();
        match pick(entry) {
            Some(entry) => Ok((store, entry, served)),
            None => Err(Failure::Instantiation(
                "the new instance lacks the expected HTTP export".into(),
            )),
        }
    }

    /// Logs and counts a trap; the caller drops the instance.
    fn trapped(&self, trap: &wasmtime::Error) -> String {
        let trap = format!("{trap:?}");
        tracing::warn!(component = %self.component.spec.id, error = %trap, "instance discarded after a trap");
        self.runtime.metrics().record_trap(&self.component.spec.id);
        trap
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
        let entry = tokio::time::timeout(limit, async {
            match &self.typed {
                Some(pre) => {
                    let handler = pre.instantiate_async(&mut store).await?;
                    if self.typed_headers.get().is_none() {
                        let names = handler
                            .redwasm_http_handler()
                            .call_request_headers(&mut store)
                            .await?;
                        let names = typed::header_names(&self.component.spec.id, names);
                        let _ = self.typed_headers.set(names);
                    }
                    Ok(Entry::Typed(handler))
                }
                None => self
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .map(Entry::Wasi),
            }
        });
        let entry = match entry.await {
            Ok(Ok(entry)) => entry,
            Ok(Err(error)) => return Err(Failure::Instantiation(format!("{error:?}"))),
            Err(_) => return Err(Failure::Instantiation("instantiation timed out".into())),
        };
        Ok(Idle {
            store,
            entry,
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
