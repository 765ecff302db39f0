//! Response hardening and request observability, as one middleware around every route:
//! - security headers: a strict Content-Security-Policy (no inline script, no framing), no MIME
//!   sniffing, no referrer leaving the site (setup links carry their token in the path), and
//!   `Cache-Control: no-store` on everything but static assets (pages show one-time secrets);
//! - an htmx request answered with a redirect (a session that ran out: to the sign-in page) gets
//!   `204` with `HX-Redirect` instead, so the whole page goes there; a plain redirect would be
//!   followed inside the XHR and the next page swapped into a list;
//! - a tracing span per request with the matched route (not the raw path, which holds ids), and
//!   the `web_http_requests_total` / `web_http_request_duration_seconds` metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
                   object-src 'none'";

pub async fn layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let is_static = route.starts_with("/static/");
    let htmx = req.headers().contains_key("hx-request");
    let span = tracing::info_span!("http", %method, route = %route);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::debug!(status, ms = elapsed.as_secs_f64() * 1000.0, "request");
    });
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("web_http_requests_total", &labels).increment(1);
    metrics::histogram!("web_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());

    if htmx && res.status().is_redirection() {
        if let Some(to) = res.headers_mut().remove(header::LOCATION) {
            *res.status_mut() = StatusCode::NO_CONTENT;
            res.headers_mut()
                .insert(HeaderName::from_static("hx-redirect"), to);
        }
    }
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form
    // posts, which the sign-in CSRF check refuses. Nothing leaves the site either way.
    set(header::REFERRER_POLICY, "same-origin");
    set(header::X_FRAME_OPTIONS, "DENY");
    if !is_static {
        set(header::CONTENT_SECURITY_POLICY, CSP);
        set(header::CACHE_CONTROL, "no-store");
    }
    res
}
