//! Outbound HTTP for guests: `wasi:http/outgoing-handler` (WASIp2) and `wasi:http/client`
//! (WASIp3), governed by `allowed_outbound_hosts` with Spin's rules. A capability: it knows no
//! trigger, so HTTP requests, queue jobs and embedded calls all get it.
//!
//! # Layout
//! - [`OutboundClient`]: one pooled hyper client per host process (TCP + rustls, connections
//!   reused across requests, instances and components).
//! - [`OutboundHttpCtx`]: one component's rules and limits, parsed at load.
//! - [`OutboundHooks`]: what a store plugs into `wasmtime-wasi-http` (`WasiHttpHooks`): checks
//!   the request, caps the guest's timeouts, counts requests per call, caps the response
//!   body, and sends through the shared client.
//! - `allowed`: the allow-list.
//!
//! # Choices
//! - Redirects are not followed (as in wasi:http everywhere): the guest sees the 3xx, and a
//!   request it then makes to the new location is checked like any other.
//! - `self` (the app's own routes, `http://self/...`, `http://self.alt/...` or spin-sdk's
//!   host-less `http://:80/...`) is served in-process by the HTTP trigger that registered
//!   itself ([`OutboundClient::set_self_routes`]), without a network hop, when the component's
//!   `allowed_outbound_hosts` has `http://self` (or `*://*:*`). At most
//!   [`MAX_SELF_REQUESTS_IN_FLIGHT`] run at once, so a component calling itself in a loop
//!   gets `LoopDetected` instead of exhausting the host.
//! - A denied request never reaches the network: the check runs before the client is used.
//! - After DNS, addresses in the host's `blocked_networks` are dropped; a name that resolves
//!   only to blocked addresses gets `DestinationIpProhibited`, so an allowed name pointed at
//!   an internal address cannot reach it. Default: link-local (cloud metadata) blocked.

mod allowed;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use allowed::AllowedHttp;

/// Host caps on what a guest may ask for (and what it gets when it asks for nothing).
#[derive(Clone, Debug)]
pub struct OutboundLimits {
    /// Longest connect time.
    pub connect_timeout: Duration,
    /// Longest wait for the response head.
    pub first_byte_timeout: Duration,
    /// Longest pause between two body frames.
    pub between_bytes_timeout: Duration,
    /// Largest response body a guest may read.
    pub max_response_bytes: u64,
    /// Outbound requests per call (an HTTP request, a job, an embedded call).
    pub max_requests_per_call: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_requests_per_call: 64,
        }
    }
}

/// The networks blocked when the host configures none: link-local (cloud metadata services).
pub fn default_blocked_networks() -> Vec<ipnet::IpNet> {
    parse_networks(&["169.254.0.0/16".into(), "fe80::/10".into()]).unwrap_or_default()
}

/// Parses `blocked_networks` entries: CIDRs, single addresses, or `private` (RFC 1918,
/// loopback, link-local, IPv6 unique-local).
pub fn parse_networks(entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    let mut networks = Vec::new();
    for entry in entries {
        let entry = entry.trim();
        if entry == "private" {
            for net in [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            ] {
                networks.push(net.parse().map_err(|e| format!("{net}: {e}"))?);
            }
            continue;
        }
        let net = match entry.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => entry
                .parse::<std::net::IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| format!("`{entry}` is neither a CIDR, an address nor `private`"))?,
        };
        networks.push(net);
    }
    Ok(networks)
}

/// `self` requests in progress at once, process-wide; beyond it, `LoopDetected`.
pub const MAX_SELF_REQUESTS_IN_FLIGHT: usize = 256;

/// The app's own routes, as the HTTP trigger serves them: what a `self` request reaches.
pub trait SelfRoutes: Send + Sync {
    /// Answers `request` as if it had come from a client; `None` when the app is gone.
    fn handle(
        &self,
        request: http::Request<WasiBody>,
    ) -> Pin<Box<dyn Future<Output = Option<http::Response<WasiBody>>> + Send>>;
}

tokio::task_local! {
    /// The connect timeout of the request being sent (the shared connector has no per-request
    /// settings; a pooled connection skips connecting altogether).
    static CONNECT_TIMEOUT: Duration;
}

/// The process's pooled HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct OutboundClient {
    client: Client<Connector, WasiBody>,
    connects: Arc<AtomicU64>,
    self_routes: Arc<RwLock<Option<Weak<dyn SelfRoutes>>>>,
    self_in_flight: Arc<AtomicUsize>,
    blocked: Arc<RwLock<Vec<ipnet::IpNet>>>,
}

impl OutboundClient {
    /// A client with the Mozilla root certificates (webpki-roots), HTTP/1.1, idle connections
    /// kept 90 s.
    pub fn new() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        // The provider is named: the process may link more than one.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map(|mut config| {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .ok();
        let connects = Arc::new(AtomicU64::new(0));
        let blocked = Arc::new(RwLock::new(default_blocked_networks()));
        let connector = Connector {
            tls: tls.map(tokio_rustls::TlsConnector::from),
            connects: connects.clone(),
            blocked: blocked.clone(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        OutboundClient {
            client,
            connects,
            self_routes: Arc::default(),
            self_in_flight: Arc::default(),
            blocked,
        }
    }

    /// Replaces the networks no request may connect to (see [`parse_networks`]).
    pub fn set_blocked_networks(&self, networks: Vec<ipnet::IpNet>) {
        *self.blocked.write().unwrap_or_else(|e| e.into_inner()) = networks;
    }

    /// Makes `routes` the target of `self` requests (the HTTP trigger does, when it starts);
    /// only a weak reference is kept.
    pub fn set_self_routes(&self, routes: &Arc<dyn SelfRoutes>) {
        *self.self_routes.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(routes));
    }

    fn self_routes(&self) -> Option<Arc<dyn SelfRoutes>> {
        self.self_routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    /// TCP connections opened so far (reuse shows as fewer connections than requests).
    pub fn connections_opened(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }
}

impl Default for OutboundClient {
    fn default() -> Self {
        Self::new()
    }
}

/// One component's outbound HTTP rules and limits. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutboundHttpCtx {
    component: Arc<str>,
    allowed: Arc<AllowedHttp>,
    limits: Arc<OutboundLimits>,
}

impl OutboundHttpCtx {
    /// The rules of `component` from its `allowed_outbound_hosts` (templates resolved).
    pub fn new(
        component: &str,
        allowed_outbound_hosts: &[String],
        limits: OutboundLimits,
    ) -> Result<Self, String> {
        Ok(OutboundHttpCtx {
            component: Arc::from(component),
            allowed: Arc::new(AllowedHttp::parse(allowed_outbound_hosts)?),
            limits: Arc::new(limits),
        })
    }

    /// The hooks of one store.
    pub fn hooks(&self, client: OutboundClient) -> OutboundHooks {
        OutboundHooks {
            ctx: self.clone(),
            client,
            sent: 0,
        }
    }
}

/// A store's `WasiHttpHooks`.
pub struct OutboundHooks {
    ctx: OutboundHttpCtx,
    client: OutboundClient,
    /// Requests sent in the current call.
    sent: usize,
}

impl OutboundHooks {
    /// A new call begins: its request budget is full again.
    pub fn begin_call(&mut self) {
        self.sent = 0;
    }

    /// Checks `uri` against the rules and the per-call budget; `Ok(true)` for a request to the
    /// app's own routes.
    fn admit(&mut self, uri: &Uri) -> Result<bool, Error> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        let id = &self.ctx.component;
        let to_self = matches!(host.as_str(), "" | "self" | "self.alt");
        let allowed = if to_self {
            self.ctx.allowed.allows_self()
        } else {
            self.ctx.allowed.allows(&scheme, &host, port)
        };
        if !allowed {
            tracing::warn!(component = %id, %scheme, %host, port, "outbound HTTP denied: not in allowed_outbound_hosts");
            return Err(Error::HttpRequestDenied);
        }
        let limit = self.ctx.limits.max_requests_per_call;
        if self.sent >= limit {
            tracing::warn!(component = %id, limit, "outbound HTTP denied: too many requests in one call");
            return Err(Error::ConnectionLimitReached);
        }
        self.sent += 1;
        Ok(to_self)
    }
}

/// What keeps a response's connection going after its head (nothing, with a pooled client).
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
/// What `send_request` resolves to.
type Sent = Result<(http::Response<WasiBody>, IoFuture), Error>;
/// The boxed future `send_request` returns.
type SendFuture = Box<dyn Future<Output = Sent> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let to_self = match self.admit(request.uri()) {
            Ok(to_self) => to_self,
            Err(denied) => return Box::new(async move { Err(denied) }),
        };
        if to_self {
            return Box::new(self_request(&self.client, request));
        }
        // wasmtime sets `Host` from the guest's raw authority (userinfo included); the client
        // sets a clean one from the URI.
        request.headers_mut().remove(http::header::HOST);
        let limits = self.ctx.limits.clone();
        let options = options.unwrap_or_default();
        let cap = |asked: Option<Duration>, cap: Duration| asked.map_or(cap, |d| d.min(cap));
        let connect = cap(options.connect_timeout, limits.connect_timeout);
        let first_byte = cap(options.first_byte_timeout, limits.first_byte_timeout);
        let between = cap(options.between_bytes_timeout, limits.between_bytes_timeout);
        let client = self.client.client.clone();
        Box::new(async move {
            let sent = CONNECT_TIMEOUT.scope(connect, client.request(request));
            let response = match tokio::time::timeout(first_byte, sent).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Err(error)) => return Err(client_error(&error)),
                Ok(Ok(response)) => response,
            };
            let response = response.map(|body| {
                GuardedBody {
                    inner: body,
                    read: 0,
                    max: limits.max_response_bytes,
                    between,
                    timer: None,
                }
                .boxed_unsync()
            });
            // The pooled client drives its connections itself: nothing more to run.
            let io: IoFuture = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Serves a `self` request in-process through the registered routes.
fn self_request(
    client: &OutboundClient,
    request: http::Request<WasiBody>,
) -> impl Future<Output = Sent> + Send + 'static {
    let routes = client.self_routes();
    let in_flight = client.self_in_flight.clone();
    async move {
        let Some(routes) = routes else {
            // No HTTP trigger in this process (a queue worker, an embedding).
            return Err(Error::DestinationNotFound);
        };
        if in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_SELF_REQUESTS_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("outbound HTTP: too many self requests in flight (a loop?)");
            return Err(Error::LoopDetected);
        }
        let response = routes.handle(request).await;
        in_flight.fetch_sub(1, Ordering::Relaxed);
        let response = response.ok_or(Error::DestinationNotFound)?;
        let io: IoFuture = Box::new(async { Ok(()) });
        Ok((response, io))
    }
}

/// Maps a client failure to what the guest sees.
fn client_error(error: &hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            tracing::debug!(error = %connect, "outbound HTTP connect failed");
            return connect.to_wasi();
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return Error::HttpResponseTimeout;
            }
            if hyper.is_incomplete_message() || hyper.is_closed() {
                return Error::HttpResponseIncomplete;
            }
            return Error::HttpProtocolError;
        }
        source = cause.source();
    }
    if error.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::InternalError(Some(error.to_string()))
    }
}

/// A response body with the size cap and the between-bytes timeout.
struct GuardedBody {
    inner: hyper::body::Incoming,
    read: u64,
    max: u64,
    between: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                match frame {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            this.read += data.len() as u64;
                            if this.read > this.max {
                                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                                    this.max,
                                )))));
                            }
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Some(Err(e)) => Poll::Ready(Some(Err(Error::Hyper(e)))),
                    None => Poll::Ready(None),
                }
            }
            Poll::Pending => {
                let between = this.between;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(between)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a connection could not be opened (small and `Clone`: the client only lends it back).
#[derive(Clone, Debug)]
enum ConnectError {
    Timeout,
    Prohibited,
    Dns(String),
    Refused(String),
    BadName,
    Tls(String),
    NoTls,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Prohibited => f.write_str("every address is in blocked_networks"),
            ConnectError::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            ConnectError::Refused(e) => write!(f, "connection refused: {e}"),
            ConnectError::BadName => f.write_str("invalid DNS name for TLS"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::NoTls => f.write_str("TLS is not available"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    fn to_wasi(&self) -> Error {
        match self {
            ConnectError::Timeout => Error::ConnectionTimeout,
            ConnectError::Prohibited => Error::DestinationIpProhibited,
            ConnectError::Dns(info) => Error::DnsError {
                rcode: Some(info.clone()),
                info_code: None,
            },
            ConnectError::Refused(_) => Error::ConnectionRefused,
            ConnectError::BadName => Error::DnsError {
                rcode: Some("invalid dns name".into()),
                info_code: None,
            },
            ConnectError::Tls(_) => Error::TlsProtocolError,
            ConnectError::NoTls => Error::ConfigurationError,
        }
    }
}

/// Opens TCP (and TLS for https) connections for the pooled client.
#[derive(Clone)]
struct Connector {
    tls: Option<tokio_rustls::TlsConnector>,
    connects: Arc<AtomicU64>,
    blocked: Arc<RwLock<Vec<ipnet::IpNet>>>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = CONNECT_TIMEOUT
            .try_with(|t| *t)
            .unwrap_or(OutboundLimits::default().connect_timeout);
        let tls = self.tls.clone();
        let connects = self.connects.clone();
        let blocked = self.blocked.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let connect = async {
                let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| ConnectError::Dns(e.to_string()))?
                    .collect();
                if addrs.is_empty() {
                    return Err(ConnectError::Dns("address not available".into()));
                }
                let addrs: Vec<_> = {
                    let blocked = blocked.read().unwrap_or_else(|e| e.into_inner());
                    addrs
                        .into_iter()
                        .filter(|a| !blocked.iter().any(|net| net.contains(&a.ip())))
                        .collect()
                };
                if addrs.is_empty() {
                    tracing::warn!(%host, "outbound HTTP denied: every address is in blocked_networks");
                    return Err(ConnectError::Prohibited);
                }
                let mut last = None;
                for addr in addrs {
                    match TcpStream::connect(addr).await {
                        Ok(stream) => return Ok(stream),
                        Err(e) => last = Some(e),
                    }
                }
                Err(ConnectError::Refused(
                    last.map(|e| e.to_string()).unwrap_or_default(),
                ))
            };
            let tcp = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| ConnectError::Timeout)??;
            let _ = tcp.set_nodelay(true);
            connects.fetch_add(1, Ordering::Relaxed);
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let tls = tls.ok_or(ConnectError::NoTls)?;
            let name = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::from(ip),
                Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| ConnectError::BadName)?,
            };
            let stream = tokio::time::timeout(timeout, tls.connect(name, tcp))
                .await
                .map_err(|_| ConnectError::Timeout)?
                .map_err(|e| ConnectError::Tls(e.to_string()))?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A client connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_networks_parse_cidrs_addresses_and_private() {
        let nets = parse_networks(&["10.0.0.0/8".into(), "::1".into(), "private".into()]).unwrap();
        let contains = |ip: &str| {
            nets.iter()
                .any(|n| n.contains(&ip.parse::<std::net::IpAddr>().unwrap()))
        };
        assert!(contains("10.1.2.3") && contains("::1") && contains("192.168.1.1"));
        assert!(contains("169.254.169.254") && contains("fd00::1"));
        assert!(!contains("8.8.8.8"));
        assert!(parse_networks(&["example.com".into()]).is_err());
        let default = default_blocked_networks();
        assert!(
            default
                .iter()
                .any(|n| n.contains(&"169.254.169.254".parse::<std::net::IpAddr>().unwrap()))
        );
        assert!(
            !default
                .iter()
                .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()))
        );
    }

    #[test]
    fn requests_per_call_are_capped_and_the_budget_refills_per_call() {
        let limits = OutboundLimits {
            max_requests_per_call: 2,
            ..OutboundLimits::default()
        };
        let ctx = OutboundHttpCtx::new("c", &["http://example.com".to_string()], limits).unwrap();
        let mut hooks = ctx.hooks(OutboundClient::new());
        let ok: Uri = "http://example.com/x".parse().unwrap();
        assert!(matches!(hooks.admit(&ok), Ok(false)));
        assert!(matches!(hooks.admit(&ok), Ok(false)));
        assert!(matches!(
            hooks.admit(&ok),
            Err(Error::ConnectionLimitReached)
        ));
        hooks.begin_call();
        assert!(matches!(hooks.admit(&ok), Ok(false)));
        let to_self: Uri = "http://self/x".parse().unwrap();
        assert!(
            matches!(hooks.admit(&to_self), Err(Error::HttpRequestDenied)),
            "self is not allowed without `http://self`"
        );
        let denied: Uri = "http://example.com:8080/x".parse().unwrap();
        assert!(matches!(
            hooks.admit(&denied),
            Err(Error::HttpRequestDenied)
        ));
    }
}
