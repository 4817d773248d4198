//! The HTTP trigger: a hyper server that routes each request by Spin's route syntax to a
//! component, and serves `/health` and `/metrics` itself.
//!
//! # Layout
//! - [`HttpApp`]: the routing table, one handler per component, limits.
//! - [`run`]: accept loop with graceful shutdown (`run(listener, app, shutdown)`).
//! - `direct`: WASIp2 components, called from the connection task (instance reuse and
//!   expiry of its own).
//! - `typed`: the one-call `redwasm:http/handler` export `direct` prefers when a component
//!   has it.
//! - `handler`: WASIp3 components (and WASIp2 ones on the concurrent engine) through
//!   wasmtime-wasi-http's `ProxyHandler`: instance creation, reuse, concurrency and expiry.
//! - `health`: `/health` and `/metrics`.
//! - `problem`: RFC 9457 responses for errors the host answers itself.
//! - `sse`: the SSE fan-out (one blocking reader per host feeds every open event stream).

mod direct;
mod handler;
mod health;
mod problem;
mod sse;
mod typed;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, ProxyHandler, ProxyPre};

use crate::engine::{HostState, LoadedComponent, Runtime};
use crate::outbound_http::SelfRoutes;
use crate::routes::Router;

pub(crate) use problem::{full, problem};

/// The body type of every response the trigger sends.
pub type Body = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Header carrying the request's correlation id.
const CORRELATION_ID: &str = "x-correlation-id";

/// Host-wide limits of the HTTP trigger.
#[derive(Clone, Debug)]
pub struct TriggerLimits {
    /// Requests in flight across all components; beyond it, 503 at once.
    pub max_inflight: usize,
    /// Time allowed to read a request head.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// Event streams open at once through the SSE fan-out; beyond, 503.
    pub max_event_streams: usize,
    /// Event streams one component may have open at once; beyond, 503.
    pub max_event_streams_per_component: usize,
}

impl Default for TriggerLimits {
    fn default() -> Self {
        TriggerLimits {
            max_inflight: 4096,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_event_streams: 20_000,
            max_event_streams_per_component: 15_000,
        }
    }
}

struct Served {
    component: Arc<LoadedComponent>,
    handler: Handler,
    /// True for a `wasi:http/handler@0.3` (WASIp3) export.
    p3: bool,
}

/// The component's HTTP export (WASIp3 `wasi:http/handler` preferred, else WASIp2
/// `wasi:http/incoming-handler`), found here rather than by the engine, which knows no trigger.
fn http_export(component: &LoadedComponent) -> Option<ProxyPre<HostState>> {
    let pre = &component.instance_pre;
    match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
        Ok(pre) => Some(ProxyPre::P3(pre)),
        Err(_) => wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone())
            .ok()
            .map(ProxyPre::P2),
    }
}

/// A request body the trigger can serve: a client's (`hyper::body::Incoming`) or, for a
/// component calling the app's own routes, a guest's outgoing body.
pub trait RequestBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// Marks a response the component wrote (as opposed to one the host answered itself).
#[derive(Clone, Copy)]
struct FromComponent;

/// How a component's requests are run.
enum Handler {
    /// A WASIp2 component on the plain engine.
    Direct(Arc<direct::DirectHandler>),
    /// Anything on the concurrent engine.
    Proxy(ProxyHandler<handler::ComponentHandler>),
}

/// Why a component produced no response.
pub(crate) enum Failure {
    /// It overran its deadline (the instance is discarded).
    Expired,
    /// No instance could be created.
    Instantiation(String),
    /// It trapped, answered with an error, or returned without a response.
    Component(String),
    /// The request body could not be read before a typed call (see `typed`).
    BadBody(String),
}

/// Everything the server needs to answer requests.
pub struct HttpApp {
    runtime: Arc<Runtime>,
    router: Router,
    components: BTreeMap<String, Served>,
    redis_address: Option<String>,
    limits: TriggerLimits,
    inflight: Arc<Semaphore>,
    sse: Arc<sse::SseHub>,
}

impl HttpApp {
    /// Builds the app from `(route, component)` pairs. `redis_address` is what `/health`
    /// probes (the address the components are configured with).
    pub fn new(
        runtime: Arc<Runtime>,
        routes: Vec<(String, Arc<LoadedComponent>)>,
        redis_address: Option<String>,
        limits: TriggerLimits,
    ) -> anyhow::Result<Self> {
        let mut components = BTreeMap::new();
        let mut table = Vec::new();
        for (route, component) in routes {
            let id = component.spec.id.clone();
            table.push((route.clone(), id.clone()));
            if components.contains_key(&id) {
                continue;
            }
            let Some(export) = http_export(&component) else {
                anyhow::bail!(
                    "component `{id}` is routed at `{route}` but exports no wasi:http handler"
                )
            };
            let p3 = matches!(export, ProxyPre::P3(_));
            let handler = match export {
                ProxyPre::P2(pre) if !component.is_concurrent() => Handler::Direct(
                    direct::DirectHandler::new(runtime.clone(), component.clone(), pre),
                ),
                export => Handler::Proxy(ProxyHandler::new(handler::ComponentHandler::new(
                    runtime.clone(),
                    component.clone(),
                    export,
                    p3,
                ))),
            };
            components.insert(
                id,
                Served {
                    handler,
                    component,
                    p3,
                },
            );
        }
        let router = Router::build(&table)?;
        let inflight = Arc::new(Semaphore::new(limits.max_inflight));
        let sse = sse::SseHub::new(
            runtime.redis().admin(),
            sse::SseLimits {
                max_streams: limits.max_event_streams,
                max_streams_per_component: limits.max_event_streams_per_component,
            },
        );
        Ok(HttpApp {
            runtime,
            router,
            components,
            redis_address,
            limits,
            inflight,
            sse,
        })
    }

    /// Answers one request.
    pub async fn serve<B: RequestBody>(
        self: Arc<Self>,
        request: Request<B>,
        client: SocketAddr,
        local: SocketAddr,
    ) -> Response<Body> {
        let correlation_id = correlation_id(&request);
        let mut response = self.dispatch(request, &correlation_id, client, local).await;
        // A component's response reaches the client as the component wrote it (our own
        // components set `X-Correlation-Id` themselves, under Spin too); only the host's own
        // answers (404, 503, 504, /health, ...) get the id from here.
        if response.extensions().get::<FromComponent>().is_none()
            && !response.headers().contains_key(CORRELATION_ID)
            && let Ok(value) = HeaderValue::from_str(&correlation_id)
        {
            response.headers_mut().insert(CORRELATION_ID, value);
        }
        response
    }

    async fn dispatch<B: RequestBody>(
        &self,
        mut request: Request<B>,
        correlation_id: &str,
        client: SocketAddr,
        local: SocketAddr,
    ) -> Response<Body> {
        let path = request.uri().path().to_string();
        match path.as_str() {
            "/health" => {
                self.runtime.metrics().record_host_request();
                return health::health(self).await;
            }
            "/metrics" => {
                self.runtime.metrics().record_host_request();
                return health::metrics(self);
            }
            _ => {}
        }
        let Some(matched) = self.router.route(&path) else {
            self.runtime.metrics().record_host_request();
            return problem(StatusCode::NOT_FOUND, &format!("no route matches `{path}`"));
        };
        let Some(served) = self.components.get(matched.component_id.as_str()) else {
            return problem(StatusCode::NOT_FOUND, &format!("no route matches `{path}`"));
        };
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            self.runtime.metrics().record_overload();
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the host is at its concurrent request limit",
            );
        };
        let settings = &served.component.spec.settings;
        if let Some(length) = content_length(&request)
            && length > settings.max_request_body_bytes
        {
            return body_too_large(settings.max_request_body_bytes);
        }

        // A typed guest gets only the headers it asked for: Spin's are built only for
        // wasi:http guests and typed ones that ask for them.
        let spin_context = match &served.handler {
            Handler::Direct(direct) => direct.needs_spin_context(),
            Handler::Proxy(_) => true,
        };
        // A typed guest that reads `x-correlation-id` gets the id the host logs, generated
        // when the client sent none; a wasi:http guest sees the client's headers unchanged.
        if matches!(&served.handler, Handler::Direct(direct) if direct.is_typed()) {
            if let Ok(value) = HeaderValue::from_str(correlation_id) {
                request.headers_mut().insert(CORRELATION_ID, value);
            }
            // It may answer an event-stream request at once and let the host follow the
            // stream (see `sse`).
            request.headers_mut().insert(
                sse::FANOUT_REQUEST_HEADER,
                HeaderValue::from_static("fanout"),
            );
        }
        if spin_context {
            add_spin_context(&mut request, &matched, client, local);
        }

        // A streamed (chunked) body has no Content-Length to check up front: the guest's body
        // stream fails at the limit, and whatever the guest then answers becomes a 413.
        let limit = settings.max_request_body_bytes;
        let over_limit = Arc::new(AtomicBool::new(false));
        let request = request.map({
            let over_limit = over_limit.clone();
            move |body| {
                http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
                    .map_err(move |e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            over_limit.store(true, Ordering::Relaxed);
                            return wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit));
                        }
                        match e.downcast::<hyper::Error>() {
                            Ok(e) => wasmtime_wasi_http::Error::Hyper(*e),
                            // A self request's body (see `outbound_http`) fails with the
                            // calling guest's own error.
                            Err(e) => match e.downcast::<wasmtime_wasi_http::Error>() {
                                Ok(e) => *e,
                                Err(e) => {
                                    wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))
                                }
                            },
                        }
                    })
                    .boxed_unsync()
            }
        });

        let started = Instant::now();
        let id = served.component.spec.id.as_str();
        // The instance itself is torn down a little later (see `handler`); the client gets its
        // 504 at the deadline, whatever the guest is doing.
        let result = tokio::time::timeout(settings.request_timeout, async {
            match &served.handler {
                Handler::Direct(direct) => direct.handle(request).await,
                Handler::Proxy(proxy) => proxy
                    .handle((), request)
                    .await
                    .map_err(|error| proxy_failure(&error)),
            }
        })
        .await;
        let response = if over_limit.load(Ordering::Relaxed) {
            body_too_large(limit)
        } else {
            match result {
                Ok(Ok(response)) => {
                    let component = &served.component;
                    let mut response = self
                        .sse
                        .follow(id, |key| component.stream_key(key), response)
                        .await;
                    response.extensions_mut().insert(FromComponent);
                    response
                }
                Ok(Err(failure)) if started.elapsed() >= settings.request_timeout => {
                    if let Failure::Instantiation(error)
                    | Failure::Component(error)
                    | Failure::BadBody(error) = &failure
                    {
                        tracing::debug!(component = id, %error, "timed out");
                    }
                    timed_out(id, settings.request_timeout)
                }
                Ok(Err(failure)) => failure_response(id, failure, settings.request_timeout),
                Err(_) => {
                    // The direct handler's call was dropped with the timeout, and its
                    // instance with it; `ProxyHandler` counts its own teardowns.
                    if let Handler::Direct(direct) = &served.handler {
                        direct.record_timeout();
                    }
                    timed_out(id, settings.request_timeout)
                }
            }
        };
        self.runtime
            .metrics()
            .record_request(id, response.status().as_u16(), started.elapsed());
        response
    }

    /// The routes' components in id order, each with the entry point its requests go
    /// through, for `/health`.
    fn components(&self) -> impl Iterator<Item = (&Arc<LoadedComponent>, &'static str, bool)> {
        self.components.values().map(|s| {
            let entry = match &s.handler {
                Handler::Direct(direct) if direct.is_typed() => "redwasm:http/handler@0.1.0",
                _ if s.p3 => "wasi:http/handler@0.3",
                _ => "wasi:http/incoming-handler@0.2",
            };
            (&s.component, entry, s.p3)
        })
    }
}

/// What a wasi:http guest sees beyond the client's request, as under Spin: an absolute URL
/// (wasi:http needs an authority), a `Host` header, and Spin's `spin-*` routing headers.
fn add_spin_context<B>(
    request: &mut Request<B>,
    matched: &crate::routes::RouteMatch,
    client: SocketAddr,
    local: SocketAddr,
) {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local.to_string());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{authority}{path_and_query}");
    if let Ok(uri) = full_url.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    if !request.headers().contains_key(header::HOST)
        && let Ok(value) = HeaderValue::from_str(&authority)
    {
        request.headers_mut().insert(header::HOST, value);
    }
    for (name, value) in matched.spin_headers(&full_url, client) {
        request.headers_mut().insert(name, value);
    }
}

/// 413 for a body over `limit`. The body was not (fully) read, so the connection cannot be
/// reused: say so, or a keep-alive client sends its next request into a closing socket.
fn body_too_large(limit: u64) -> Response<Body> {
    let mut response = problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body exceeds the limit of {limit} bytes"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 504: the component did not produce a response head in time.
fn timed_out(id: &str, timeout: Duration) -> Response<Body> {
    problem(
        StatusCode::GATEWAY_TIMEOUT,
        &format!(
            "component `{id}` did not respond within {} ms",
            timeout.as_millis()
        ),
    )
}

/// Classifies a `ProxyHandler` error.
fn proxy_failure(error: &wasmtime::Error) -> Failure {
    if error.downcast_ref::<ExpirationError>().is_some() {
        Failure::Expired
    } else if error.downcast_ref::<InstantiationError<()>>().is_some() {
        Failure::Instantiation(format!("{error:?}"))
    } else {
        Failure::Component(format!("{error:?}"))
    }
}

/// Maps a handler failure to a problem response; a trapped instance is already discarded.
fn failure_response(id: &str, failure: Failure, timeout: Duration) -> Response<Body> {
    match failure {
        Failure::Expired => timed_out(id, timeout),
        Failure::Instantiation(error) => {
            tracing::warn!(component = id, %error, "instantiation failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("component `{id}` could not be instantiated; retry shortly"),
            )
        }
        Failure::BadBody(error) => problem(
            StatusCode::BAD_REQUEST,
            &format!("the request body could not be read: {error}"),
        ),
        Failure::Component(error) => {
            tracing::warn!(component = id, %error, "component failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "component `{id}` failed while handling the request; the instance was discarded"
                ),
            )
        }
    }
}

fn content_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The request's `X-Correlation-Id` when valid (≤ 128 printable ASCII), else a new one.
fn correlation_id<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and gives
/// in-flight requests `limits.shutdown_grace` to finish.
pub async fn run(
    listener: TcpListener,
    app: Arc<HttpApp>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    // Components that may call the app's own routes (`self` in allowed_outbound_hosts) reach
    // this app in-process, without a network hop.
    let routes: Arc<dyn SelfRoutes> = Arc::new(AppRoutes {
        app: Arc::downgrade(&app),
        local,
    });
    app.runtime.outbound_http().set_self_routes(&routes);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without it streamed bodies meet Nagle + delayed ACK (~40 ms per response).
        let _ = stream.set_nodelay(true);
        let header_read_timeout = app.limits.header_read_timeout;
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.serve(request, client, local).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(routes);
    app.sse.close_all();
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(app.limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the shutdown grace period");
    }
    Ok(())
}

/// The app as the target of its components' `self` requests.
struct AppRoutes {
    app: std::sync::Weak<HttpApp>,
    local: SocketAddr,
}

impl SelfRoutes for AppRoutes {
    fn handle(
        &self,
        request: Request<wasmtime_wasi_http::WasiBody>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<Response<Body>>> + Send>> {
        let app = self.app.upgrade();
        let local = self.local;
        Box::pin(async move { Some(app?.serve(request, local, local).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_id_is_taken_when_valid_and_generated_otherwise() {
        let ok = Request::builder()
            .header(CORRELATION_ID, "abc-123")
            .body(())
            .unwrap();
        assert_eq!(correlation_id(&ok), "abc-123");
        let too_long = Request::builder()
            .header(CORRELATION_ID, "x".repeat(129))
            .body(())
            .unwrap();
        let generated = correlation_id(&too_long);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, "x".repeat(129));
        let spaces = Request::builder()
            .header(CORRELATION_ID, "a b")
            .body(())
            .unwrap();
        assert_ne!(correlation_id(&spaces), "a b");
    }
}
