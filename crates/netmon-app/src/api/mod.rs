//! The HTTP API. One router, served by `netmon up` and by the `api` Lambda.
//!
//! Routes are declared once, in [`routes`]: each entry carries its method, path, access (public
//! or API key), handler and OpenAPI operation. The router and `/openapi.json` are both built from
//! that table, so a route cannot be served without being documented or documented without being
//! served. (A derive-based generator was the alternative; the wire types here use custom serde
//! — `try_from` wire forms, human durations, condition strings — that a derive would describe
//! wrongly, so the schemas are written by hand in [`openapi`] and tests check real responses
//! against them.)
//!
//! Tenancy: every `/v1` route needs `Authorization: Bearer <key>`; the tenant is the key's,
//! never taken from the URL or the body. Another tenant's resources answer 404, so ids do not
//! leak. A read-only key may only GET, and sees secrets redacted ([`redact`]). Public: `/healthz`, `/openapi.json`, `/ping/...` (the token is the secret), and the
//! status page and badge routes (`crate::status`), which share the route table.

pub mod body;
pub mod extract;
pub mod openapi;
pub mod problem;

mod channels;
pub mod dashboard;
mod incidents;
mod inputs;
mod keys;
mod maintenance;
mod pings;
mod redact;
mod targets;

pub(crate) use channels::send_test;
pub(crate) use incidents::{TenantOverview, tenant_overview};
pub(crate) use targets::{check_target, set_enabled};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use netmon_core::TenantId;
use netmon_core::events::{Envelope, Event};
use tracing::warn;

use self::body::MAX_BODY;
use self::extract::AuthFailure;
use self::problem::Problem;
use crate::auth::{self, Principal};
use crate::http::{Access, ApiContext, Ctx, Operation, Route, Verb, route};

const HEALTHZ: &str = "/healthz";

/// Every route of the API, in documentation order.
pub fn routes() -> Vec<Route> {
    let mut all = vec![
        route(
            Verb::Get,
            HEALTHZ,
            Access::Public,
            Operation::new("health", "Liveness", "meta").ok_text("`ok`"),
            || async { "ok" },
        ),
        route(
            Verb::Get,
            "/openapi.json",
            Access::Public,
            Operation::new("openapi", "This document (OpenAPI 3.1)", "meta").ok(
                200,
                "The OpenAPI document",
                "OpenApiDocument",
            ),
            openapi::serve,
        ),
    ];
    all.extend(targets::routes());
    all.extend(channels::routes());
    all.extend(maintenance::routes());
    all.extend(incidents::routes());
    all.extend(keys::routes());
    all.extend(pings::routes());
    all.extend(crate::status::routes());
    all.extend(dashboard::routes());
    all
}

/// The router over [`routes`], every route documented in `/openapi.json`.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    let all = routes();
    let doc = Arc::new(openapi::document(&all));
    let mut router = Router::new();
    for r in all {
        let handler = match r.access {
            Access::Key => r.handler.route_layer(middleware::from_fn(require_key)),
            Access::Public => r.handler,
        };
        router = router.route(r.path, handler);
    }
    router
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(ctx.clone(), gate))
        .layer(middleware::map_response(no_framing))
        .layer(axum::Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

/// No page of this server may be framed by another site (clickjacking), and no answer is
/// sniffed as another content type. Badges are images, which `<img>` embeds without framing.
async fn no_framing(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Authenticates (when a key is sent) and rate-limits every request: per key when the key is
/// valid, per client IP otherwise (so failed guesses are limited too). Except `/healthz`: it
/// costs nothing, and a load balancer or orchestrator polling it must never read a 429 as the
/// process being down.
async fn gate(State(ctx): Ctx, mut req: Request, next: Next) -> Response {
    if req.uri().path() == HEALTHZ {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(auth::bearer));
    let outcome = match presented {
        None => None,
        Some(None) => Some(Err(auth::AuthError::Malformed)),
        Some(Some(key)) => Some(auth::authenticate(ctx.keys.as_ref(), key).await),
    };
    let caller = match &outcome {
        Some(Ok(p)) => format!("key:{}", p.key_id),
        _ => format!("ip:{}", client_ip(&req)),
    };
    if let Err(wait) = ctx.limiter.check(&caller) {
        let secs = wait.as_secs().max(1);
        let limits = ctx.limiter.limits();
        return Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit: {} requests per second (bursts of {}); retry in {secs} s",
                limits.per_second, limits.burst
            ),
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("1")),
        )
        .into_response();
    }
    match outcome {
        Some(Ok(principal)) => {
            req.extensions_mut().insert(principal);
        }
        Some(Err(e)) => match AuthFailure::of(&e) {
            Some(failure) => {
                req.extensions_mut().insert(failure);
            }
            None => {
                warn!(error = %e, "API key lookup failed");
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the API key could not be checked; retry shortly",
                )
                .into_response();
            }
        },
        None => {}
    }
    next.run(req).await
}

/// The caller's IP for the per-IP limit: the socket peer when there is one (`netmon up`, where
/// `X-Forwarded-For` is whatever the client says and is ignored). Without a socket peer the
/// router runs behind API Gateway, which appends the address it saw to `X-Forwarded-For`: the
/// last entry is the one a client cannot forge.
fn client_ip(req: &Request) -> String {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip().to_string();
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

async fn require_key(req: Request, next: Next) -> Response {
    if let Some(p) = req.extensions().get::<Principal>() {
        // A read-only key reads; anything else (a change, a check, a test send) is refused.
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        if !reads && !p.role.can_write() {
            return Problem::forbidden("a read-only key can only read").into_response();
        }
        return next.run(req).await;
    }
    req.extensions()
        .get::<AuthFailure>()
        .copied()
        .unwrap_or(AuthFailure::Missing)
        .problem()
        .into_response()
}

/// Publishes a change event for the principal's tenant. The write already succeeded;
/// schedulers also reload periodically, so a lost event delays a schedule update but loses
/// nothing.
pub(crate) async fn publish_change(ctx: &ApiContext, tenant: &TenantId, event: Event) {
    let env = Envelope::new(event, tenant.clone(), "api", ctx.clock.now());
    if let Err(e) = ctx.bus.publish(vec![env]).await {
        warn!(error = %e, "change event not published");
    }
}

/// `limit` query parameters: 1 to 500, `default` when absent.
pub(crate) fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, Problem> {
    let limit = limit.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "use 1 to 500"));
    }
    Ok(limit)
}

/// `If-Match: <version>` (quotes allowed), for optimistic concurrency on PUT.
pub(crate) fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<u64>, Problem> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_matches('"'))
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                Problem::invalid_field("If-Match", "must be the resource's version number")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: Option<&str>, forwarded: &[&str]) -> Request {
        let mut b = axum::http::Request::builder().uri("/healthz");
        for f in forwarded {
            b = b.header("x-forwarded-for", *f);
        }
        let mut req = b.body(axum::body::Body::empty()).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ConnectInfo(p.parse::<SocketAddr>().unwrap()));
        }
        req
    }

    #[test]
    fn client_ip_trusts_forwarded_for_only_without_a_socket_peer() {
        assert_eq!(
            client_ip(&request(Some("10.0.0.7:5000"), &["1.2.3.4"])),
            "10.0.0.7"
        );
        assert_eq!(
            client_ip(&request(None, &["6.6.6.6, 203.0.113.9"])),
            "203.0.113.9",
            "the entry API Gateway appended, not the client's"
        );
        assert_eq!(
            client_ip(&request(None, &["1.1.1.1", "198.51.100.2"])),
            "198.51.100.2"
        );
        assert_eq!(
            client_ip(&request(None, &["1.1.1.1, not an ip"])),
            "unknown"
        );
        assert_eq!(client_ip(&request(None, &[])), "unknown");
    }
}
