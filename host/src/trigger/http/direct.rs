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

use std::sync::{Arc, OnceLock};

use http::{HeaderName, Request, Response};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::handler::TEARDOWN_GRACE;
use super::typed::{self, HttpHandler, HttpHandlerPre};
use super::{Body, Failure};
use crate::engine::pool::{Exports, Instance, InstancePool};
use crate::engine::{HostState, LoadedComponent, Runtime, http_view};

/// The export an instance is called through.
pub(crate) enum Entry {
    /// `wasi:http/incoming-handler`.
    Wasi(Proxy),
    /// `redwasm:http/handler`.
    Typed(HttpHandler),
}

/// What the instances of a WASIp2 HTTP component are made from.
pub(crate) struct DirectPre {
    wasi: ProxyPre<HostState>,
    /// Set when requests go through `redwasm:http/handler`.
    typed: Option<HttpHandlerPre<HostState>>,
    /// The request headers the typed export reads (asked of the first instance).
    typed_headers: OnceLock<Vec<HeaderName>>,
    /// The component id, for messages.
    id: String,
}

impl Exports for Entry {
    type Pre = DirectPre;

    async fn instantiate(pre: &DirectPre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        match &pre.typed {
            Some(typed_pre) => {
                let handler = typed_pre.instantiate_async(&mut *store).await?;
                if pre.typed_headers.get().is_none() {
                    let names = handler
                        .redwasm_http_handler()
                        .call_request_headers(&mut *store)
                        .await?;
                    let _ = pre.typed_headers.set(typed::header_names(&pre.id, names));
                }
                Ok(Entry::Typed(handler))
            }
            None => pre.wasi.instantiate_async(store).await.map(Entry::Wasi),
        }
    }
}

/// The instances of one WASIp2 component, from the engine's instance pool.
pub(crate) struct DirectHandler {
    pool: InstancePool<Entry>,
}

impl DirectHandler {
    /// A handler for `component`, whose HTTP pre-instance is `pre`.
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
        let pre = DirectPre {
            wasi: pre,
            typed,
            typed_headers: OnceLock::new(),
            id: component.spec.id.clone(),
        };
        Arc::new(DirectHandler {
            pool: InstancePool::with_pre(runtime, component, pre),
        })
    }

    fn component(&self) -> &LoadedComponent {
        self.pool.component()
    }

    /// Whether requests go through `redwasm:http/handler` rather than `wasi:http`.
    pub(crate) fn is_typed(&self) -> bool {
        self.pool.pre().typed.is_some()
    }

    /// Whether requests need Spin's context (absolute URL, `Host`, `spin-*` headers): always
    /// for wasi:http, and for a typed export that reads `host` or a `spin-*` header (or has
    /// not said yet which headers it reads).
    pub(crate) fn needs_spin_context(&self) -> bool {
        let pre = self.pool.pre();
        if pre.typed.is_none() {
            return true;
        }
        pre.typed_headers.get().is_none_or(|names| {
            names
                .iter()
                .any(|n| n == http::header::HOST || n.as_str().starts_with("spin-"))
        })
    }

    /// Answers `request` on an idle or new instance.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        request: Request<Body>,
    ) -> Result<Response<Body>, Failure> {
        if self.is_typed() {
            return self.handle_typed(request).await;
        }
        let mut instance = self.checkout().await?;
        let (tx, rx) = oneshot::channel();
        let params = {
            let mut http = http_view(instance.store.data_mut());
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
            let result = match &instance.exports {
                Entry::Wasi(proxy) => {
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut instance.store, req, out)
                        .await
                }
                Entry::Typed(_) => Err(wasmtime::format_err!("the instance lacks wasi:http")),
            };
            guard.finished = true;
            match result {
                Ok(()) => {
                    this.pool.checkin(instance);
                    Ok(())
                }
                Err(trap) => Err(this.pool.trapped(&trap)),
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
                let limit = self.component().spec.settings.request_timeout + TEARDOWN_GRACE;
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
        let mut instance = self.checkout().await?;
        // Known once the first instance has answered `request-headers`.
        let pre = self.pool.pre();
        let wanted = pre.typed_headers.get().map_or(&[][..], Vec::as_slice);
        request.headers = typed::pick_headers(&headers, wanted);
        let outcome = match &instance.exports {
            Entry::Typed(handler) => {
                handler
                    .redwasm_http_handler()
                    .call_handle(&mut instance.store, &request)
                    .await
            }
            Entry::Wasi(_) => Err(wasmtime::format_err!(
                "the instance lacks redwasm:http/handler"
            )),
        };
        match outcome {
            Ok(response) => {
                self.pool.checkin(instance);
                typed::into_response(&pre.id, response)
            }
            Err(trap) => Err(Failure::Component(self.pool.trapped(&trap))),
        }
    }

    /// An idle instance or a new one, instantiated within the request timeout.
    async fn checkout(&self) -> Result<Instance<Entry>, Failure> {
        let limit = self.component().spec.settings.request_timeout;
        match tokio::time::timeout(limit, self.pool.checkout()).await {
            Ok(Ok(instance)) => Ok(instance),
            Ok(Err(error)) => Err(Failure::Instantiation(format!("{error:?}"))),
            Err(_) => Err(Failure::Instantiation("instantiation timed out".into())),
        }
    }

    /// Counts an instance torn down because its request overran the deadline.
    pub(crate) fn record_timeout(&self) {
        self.pool.timed_out();
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
            let id = &self.handler.component().spec.id;
            tracing::debug!(component = %id, "call abandoned; the instance is discarded");
        }
    }
}

fn guest_response(response: Result<Response<Body>, ErrorCode>) -> Result<Response<Body>, Failure> {
    response
        .map_err(|code| Failure::Component(format!("the guest answered with an error: {code:?}")))
}
