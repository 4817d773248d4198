//! `/health` and `/metrics`, answered by the host itself (never by a component).

use http::{HeaderValue, Response, StatusCode, header};

use super::{Body, HttpApp, full};

/// `GET /health`: 200 when Redis answers quickly, 200 `degraded` when it is slow, 503
/// `unhealthy` when it does not answer.
pub(super) async fn health(app: &HttpApp) -> Response<Body> {
    let components: Vec<serde_json::Value> = app
        .components()
        .map(|(c, http_entry, p3)| {
            serde_json::json!({
                "id": c.spec.id,
                "flavour": if p3 { "wasip3" } else { "wasip2" },
                "engine": if c.is_concurrent() { "concurrent" } else { "plain" },
                "http_entry": http_entry,
                "max_instance_reuse": c.spec.settings.max_instance_reuse,
            })
        })
        .collect();
    let (status, redis) = match app.redis_address.as_deref() {
        None => (
            "healthy",
            serde_json::json!({"connected": false, "configured": false}),
        ),
        Some(address) => {
            let h = app.runtime.redis().health(address).await;
            let status = if !h.connected {
                "unhealthy"
            } else if h.latency_ms > 100.0 {
                "degraded"
            } else {
                "healthy"
            };
            (
                status,
                serde_json::json!({
                    "connected": h.connected,
                    "latency_ms": h.latency_ms,
                    "version": h.version,
                    "used_memory": h.used_memory,
                    "connected_clients": h.connected_clients,
                    "uptime_s": h.uptime_s,
                }),
            )
        }
    };
    let sandbox = app.runtime.redis().sandbox_status();
    let body = serde_json::json!({
        "status": status,
        "redis": redis,
        "sandbox": sandbox,
        "components": components,
    });
    let mut response = Response::new(full(body.to_string()));
    if status == "unhealthy" {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /metrics`: Prometheus text format.
pub(super) fn metrics(app: &HttpApp) -> Response<Body> {
    let mut extra = app.runtime.redis().render_metrics();
    extra.push_str(&format!(
        "# HELP redwasm_sse_open_streams Event streams open through the SSE fan-out.\n\
         # TYPE redwasm_sse_open_streams gauge\nredwasm_sse_open_streams {}\n",
        app.sse.open_streams()
    ));
    let text = app.runtime.metrics().render(&extra);
    let mut response = Response::new(full(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
