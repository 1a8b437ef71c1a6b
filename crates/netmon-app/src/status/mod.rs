//! Public status pages and SVG badges.
//!
//! - `GET /status/{slug}`: the tenant's status page. For now the slug is the tenant id
//!   (`/status/default` in embedded mode); `GET /status` redirects to the API's own tenant.
//! - `GET /badge/{target}/{kind}`: a badge for a target of the API's own tenant (the
//!   `default` tenant in embedded mode), and `GET /badge/{tenant}/{target}/{kind}` for any
//!   tenant. `kind` is `status`, `uptime` or `response-time`, optionally ending in `.svg`.
//!
//! Only targets with `public: true` are shown. An unknown tenant, a tenant without public
//! targets and a target that is unknown or not public all get the same 404 (an HTML page or a
//! badge-shaped SVG), so neither reveals what exists. Every response may be cached for 30 s.
//!
//! Queries are bounded: the page lists at most [`MAX_SERVICES`] targets and makes three
//! history queries per target (90 daily buckets, 24 hourly buckets, and the results of the last
//! two check intervals for the last-checked time). Rendered pages and badge values are kept for
//! [`CACHE_TTL`] in process, so a busy page costs those queries once per TTL.

pub mod cache;
pub mod escape;
pub mod page;
pub mod svg;
pub mod view;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use netmon_core::history::Granularity;
use netmon_core::incident::CheckState;
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::ports::StoreError;
use netmon_core::target::{CheckSpec, Target, TargetSpec};
use netmon_core::{TargetId, TenantId};
use serde::Deserialize;
use tracing::warn;

use crate::http::Operation;
use crate::http::{Access, ApiContext, Route, Verb, route};
use serde_json::json;
use view::{DAYS, HOURS, IncidentView, MaintenanceNotice, PageView, ServiceView, UptimeLevel};

/// Targets shown on one page; the page says so when more are public.
pub(crate) const MAX_SERVICES: usize = 100;
/// History queries in flight at once for one page.
const QUERY_CONCURRENCY: usize = 8;
/// Past incidents listed, from the most recent this many records of the tenant.
const PAST_INCIDENTS: usize = 10;
const INCIDENT_SCAN: u32 = 200;
/// Results read for the last-checked time (a few per location).
const RECENT_LIMIT: u32 = 200;
/// Raw results reach back three days in the cloud store.
const RECENT_MAX: Duration = Duration::days(3);
const BADGE_LABEL_MAX: usize = 64;

/// How long a page or badge may be served from memory; matches `Cache-Control`.
pub(crate) const CACHE_TTL: Duration = Duration::seconds(30);
const CACHE_PUBLIC: &str = "public, max-age=30";
const CACHED_PAGES: usize = 256;
const CACHED_BADGES: usize = 4096;
/// No script, no external anything: the page needs only its inline style.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

type BadgeKey = (TenantId, TargetId, BadgeKind, Period);

struct Caches {
    pages: cache::TtlCache<TenantId, Arc<String>>,
    badges: cache::TtlCache<BadgeKey, (String, &'static str)>,
}

type Shared = Extension<Arc<Caches>>;

pub fn routes() -> Vec<Route> {
    let caches = Arc::new(Caches {
        pages: cache::TtlCache::new(CACHE_TTL, CACHED_PAGES),
        badges: cache::TtlCache::new(CACHE_TTL, CACHED_BADGES),
    });
    let badge_doc = |id, summary| {
        Operation::new(id, summary, "status")
            .path_param("target", "Target id (a public target)")
            .path_param(
                "kind",
                "`status`, `uptime` or `response-time`, optionally ending in `.svg`",
            )
            .query(
                "label",
                json!({"type": "string", "maxLength": BADGE_LABEL_MAX}),
                "Left-hand text",
            )
            .query(
                "period",
                json!({"type": "string", "enum": ["24h", "7d", "30d", "90d"]}),
                "Uptime period (default 30d)",
            )
            .content(200, "The badge", "image/svg+xml")
            .content(400, "A bad query, as a badge", "image/svg+xml")
            .content(404, "Unknown or not public, as a badge", "image/svg+xml")
    };
    vec![
        route(
            Verb::Get,
            "/status",
            Access::Public,
            Operation::new(
                "status_own",
                "Redirect to this API's own status page",
                "status",
            )
            .empty(303, "See `/status/{tenant}`"),
            own_status,
        ),
        route(
            Verb::Get,
            "/status/{slug}",
            Access::Public,
            Operation::new(
                "status_page",
                "A tenant's public status page (HTML)",
                "status",
            )
            .path_param("slug", "The tenant id")
            .content(200, "The status page", "text/html")
            .content(404, "No such tenant, or no public targets", "text/html")
            .content(503, "The store is unavailable", "text/html"),
            status_page,
        )
        .with_extension(caches.clone()),
        route(
            Verb::Get,
            "/badge/{target}/{kind}",
            Access::Public,
            badge_doc(
                "badge_own",
                "A badge for a public target of this API's own tenant",
            ),
            own_badge,
        )
        .with_extension(caches.clone()),
        route(
            Verb::Get,
            "/badge/{tenant}/{target}/{kind}",
            Access::Public,
            badge_doc("badge", "A badge for a public target of any tenant")
                .path_param("tenant", "Tenant id"),
            tenant_badge,
        )
        .with_extension(caches),
    ]
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = if status.is_server_error() {
        "no-store"
    } else {
        CACHE_PUBLIC
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn html(status: StatusCode, body: String) -> Response {
    respond(status, "text/html; charset=utf-8", body)
}

fn svg_badge(status: StatusCode, label: &str, message: &str, colour: &str) -> Response {
    respond(status, "image/svg+xml", svg::badge(label, message, colour))
}

async fn own_status(State(ctx): State<Arc<ApiContext>>) -> Redirect {
    // Relative, so it also works behind a path prefix (an API Gateway stage).
    Redirect::to(&format!("status/{}", ctx.tenant))
}

async fn status_page(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caches): Shared,
    Path(slug): Path<String>,
) -> Response {
    let Ok(tenant) = TenantId::parse(slug) else {
        return html(StatusCode::NOT_FOUND, page::render_not_found());
    };
    let rendered = caches
        .pages
        .get_or_load(tenant.clone(), ctx.clock.now(), || async {
            let view = load_page(&ctx, &tenant).await?;
            Ok::<_, StoreError>(view.map(|v| Arc::new(page::render_page(&v))))
        })
        .await;
    match rendered {
        Ok(Some(body)) => html(StatusCode::OK, String::clone(&body)),
        Ok(None) => html(StatusCode::NOT_FOUND, page::render_not_found()),
        Err(e) => {
            warn!(error = %e, tenant = %tenant, "status page not rendered");
            html(StatusCode::SERVICE_UNAVAILABLE, page::render_unavailable())
        }
    }
}

/// How far back the newest result of a healthy target lies: two check intervals (a heartbeat's
/// period and grace), plus a minute of scheduling slack.
pub(crate) fn recent_window(spec: &TargetSpec) -> Duration {
    let every = match &spec.check {
        CheckSpec::Heartbeat(hb) => hb.period.as_chrono() + hb.grace.as_chrono(),
        _ => spec.interval.as_chrono(),
    };
    (every * 2 + Duration::minutes(1)).min(RECENT_MAX)
}

struct Windows {
    days_from: DateTime<Utc>,
    days_to: DateTime<Utc>,
    last_hour: DateTime<Utc>,
    hours_from: DateTime<Utc>,
    hours_to: DateTime<Utc>,
}

impl Windows {
    fn at(now: DateTime<Utc>) -> Self {
        let today = Granularity::Day.floor(now);
        let last_hour = Granularity::Hour.floor(now);
        Self {
            days_from: today - Duration::days(DAYS as i64 - 1),
            days_to: today + Duration::days(1),
            last_hour,
            hours_from: last_hour - Duration::hours(HOURS as i64 - 1),
            hours_to: last_hour + Duration::hours(1),
        }
    }
}

async fn load_service(
    ctx: &ApiContext,
    target: &Target,
    state: Option<&CheckState>,
    in_maintenance: bool,
    now: DateTime<Utc>,
) -> Result<ServiceView, StoreError> {
    let (tenant, id) = (&target.tenant, target.id());
    let w = Windows::at(now);
    let (days, hours, recent) = futures::try_join!(
        ctx.history
            .buckets(tenant, id, w.days_from, w.days_to, Granularity::Day),
        ctx.history
            .buckets(tenant, id, w.hours_from, w.hours_to, Granularity::Hour),
        ctx.history
            .results_since(tenant, id, now - recent_window(&target.spec), RECENT_LIMIT),
    )?;
    let watermark = state.and_then(|s| s.locations.values().map(|l| l.watermark).max());
    let last_checked = recent.iter().map(|r| r.started_at).max().or(watermark);
    Ok(ServiceView {
        id: id.clone(),
        name: target.spec.name.clone(),
        status: view::service_status(target.spec.enabled, state, in_maintenance),
        last_checked,
        days: view::day_bars(&days, now.date_naive()),
        hours: view::hour_points(&hours, w.last_hour),
        latency_24h: view::merged_latency(&hours),
    })
}

async fn load_page(ctx: &ApiContext, tenant: &TenantId) -> Result<Option<PageView>, StoreError> {
    let (targets, hidden) = ctx.targets.public_targets(tenant, MAX_SERVICES).await?;
    if targets.is_empty() {
        return Ok(None);
    }
    let now = ctx.clock.now();
    // Only the shown targets' states: a page's reads follow its public targets, not the tenant.
    let ids: Vec<TargetId> = targets.iter().map(|t| t.id().clone()).collect();
    let states: HashMap<TargetId, CheckState> = ctx
        .states
        .load_states(tenant, &ids)
        .await?
        .into_iter()
        .map(|(id, v)| (id, v.value))
        .collect();
    let windows = ctx.maintenance.list_windows(tenant).await?;
    let maintenance = notices(&windows, &targets, now);
    // Futures built up front: a closure inside the stream trips the Send check of the handler.
    let loads: Vec<_> = targets
        .iter()
        .map(|t| {
            let in_maintenance = maintenance
                .iter()
                .any(|n| n.is_active(now) && n.affects(t.id()));
            load_service(ctx, t, states.get(t.id()), in_maintenance, now)
        })
        .collect();
    let services: Vec<ServiceView> = futures::stream::iter(loads)
        .buffered(QUERY_CONCURRENCY)
        .try_collect()
        .await?;

    let names: HashMap<&TargetId, &str> =
        services.iter().map(|s| (&s.id, s.name.as_str())).collect();
    let mut open_incidents: Vec<IncidentView> = services
        .iter()
        .filter_map(|s| {
            let open = states.get(&s.id)?.incident.as_ref()?;
            Some(IncidentView {
                target_name: s.name.clone(),
                opened_at: open.opened_at,
                resolved_at: None,
                cause: view::public_cause(&open.cause),
            })
        })
        .collect();
    open_incidents.sort_by_key(|i| std::cmp::Reverse(i.opened_at));
    let shown: HashSet<&TargetId> = names.keys().copied().collect();
    let window_start = Windows::at(now).days_from;
    let resolved_incidents = ctx
        .states
        .list_incidents(tenant, INCIDENT_SCAN)
        .await?
        .into_iter()
        .filter(|i| {
            shown.contains(&i.target_id) && i.resolved_at.is_some_and(|r| r >= window_start)
        })
        .take(PAST_INCIDENTS)
        .map(|i| IncidentView {
            target_name: names
                .get(&i.target_id)
                .map_or(i.target_name.clone(), |n| (*n).to_owned()),
            opened_at: i.opened_at,
            resolved_at: i.resolved_at,
            cause: view::public_cause(&i.cause),
        })
        .collect();

    Ok(Some(PageView {
        slug: tenant.to_string(),
        now,
        services,
        open_incidents,
        resolved_incidents,
        maintenance,
        hidden,
    }))
}

/// Windows announced ahead of time: scheduled ones starting within this, and every active one.
const MAINTENANCE_AHEAD: Duration = Duration::days(14);

/// The maintenance windows worth showing on the public page, with the public targets each
/// covers. A window that covers only private targets is left out: it would announce them.
fn notices(
    windows: &[MaintenanceWindow],
    public: &[Target],
    now: DateTime<Utc>,
) -> Vec<MaintenanceNotice> {
    let mut out: Vec<MaintenanceNotice> = windows
        .iter()
        .map(|w| &w.spec)
        .filter(|w| w.ends_at > now && w.starts_at <= now + MAINTENANCE_AHEAD)
        .filter_map(|w| {
            let all = w.targets.is_empty() && w.tags.is_empty();
            let targets: Vec<TargetId> = if all {
                Vec::new()
            } else {
                let covered: Vec<TargetId> = public
                    .iter()
                    .filter(|t| w.covers(&t.spec))
                    .map(|t| t.id().clone())
                    .collect();
                if covered.is_empty() {
                    return None;
                }
                covered
            };
            Some(MaintenanceNotice {
                title: w.name.clone(),
                starts_at: w.starts_at,
                ends_at: w.ends_at,
                targets,
                details: None,
            })
        })
        .collect();
    out.sort_by_key(|n| n.starts_at);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BadgeKind {
    Status,
    Uptime,
    ResponseTime,
}

impl BadgeKind {
    fn parse(raw: &str) -> Option<Self> {
        match raw.strip_suffix(".svg").unwrap_or(raw) {
            "status" => Some(BadgeKind::Status),
            "uptime" => Some(BadgeKind::Uptime),
            "response-time" => Some(BadgeKind::ResponseTime),
            _ => None,
        }
    }
}

/// Query of a badge. Other keys are ignored: embeds often add cache-busting parameters.
#[derive(Debug, Deserialize)]
struct BadgeQuery {
    /// Replaces the left-hand text.
    label: Option<String>,
    /// Uptime period: `24h`, `7d`, `30d` (default) or `90d`.
    period: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Period {
    Hours24,
    Days(u32),
}

impl Period {
    fn parse(raw: Option<&str>) -> Option<Self> {
        match raw.unwrap_or("30d") {
            "24h" | "1d" => Some(Period::Hours24),
            "7d" => Some(Period::Days(7)),
            "30d" => Some(Period::Days(30)),
            "90d" => Some(Period::Days(90)),
            _ => None,
        }
    }

    fn label(self) -> String {
        match self {
            Period::Hours24 => "uptime 24h".to_owned(),
            Period::Days(d) => format!("uptime {d}d"),
        }
    }
}

async fn own_badge(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caches): Shared,
    Path((target, kind)): Path<(String, String)>,
    query: Result<Query<BadgeQuery>, QueryRejection>,
) -> Response {
    let tenant = ctx.tenant.clone();
    badge(&ctx, &caches, Some(tenant), &target, &kind, query).await
}

async fn tenant_badge(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caches): Shared,
    Path((tenant, target, kind)): Path<(String, String, String)>,
    query: Result<Query<BadgeQuery>, QueryRejection>,
) -> Response {
    badge(
        &ctx,
        &caches,
        TenantId::parse(tenant).ok(),
        &target,
        &kind,
        query,
    )
    .await
}

async fn badge(
    ctx: &ApiContext,
    caches: &Caches,
    tenant: Option<TenantId>,
    target: &str,
    kind: &str,
    query: Result<Query<BadgeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return svg_badge(
            StatusCode::BAD_REQUEST,
            "badge",
            "invalid query",
            view::colour::RED,
        );
    };
    let Some(kind) = BadgeKind::parse(kind) else {
        return svg_badge(
            StatusCode::NOT_FOUND,
            "badge",
            "not found",
            view::colour::LIGHT_GREY,
        );
    };
    let period = Period::parse(q.period.as_deref());
    let default_label = match (kind, period) {
        (BadgeKind::Status, _) => "status".to_owned(),
        (BadgeKind::Uptime, Some(p)) => p.label(),
        (BadgeKind::Uptime, None) => "uptime".to_owned(),
        (BadgeKind::ResponseTime, _) => "response time".to_owned(),
    };
    let label = match q.label {
        Some(l) if l.chars().count() > BADGE_LABEL_MAX => {
            return svg_badge(
                StatusCode::BAD_REQUEST,
                &default_label,
                "label too long",
                view::colour::RED,
            );
        }
        Some(l) => l,
        None => default_label,
    };
    if kind == BadgeKind::Uptime && period.is_none() {
        return svg_badge(
            StatusCode::BAD_REQUEST,
            &label,
            "use period 24h, 7d, 30d or 90d",
            view::colour::RED,
        );
    }
    let period = period.unwrap_or(Period::Days(30));
    let not_found = || {
        svg_badge(
            StatusCode::NOT_FOUND,
            &label,
            "not found",
            view::colour::LIGHT_GREY,
        )
    };
    let (Some(tenant), Ok(target_id)) = (tenant, TargetId::parse(target)) else {
        return not_found();
    };
    let key = (tenant.clone(), target_id.clone(), kind, period);
    let result = caches
        .badges
        .get_or_load(key, ctx.clock.now(), || async {
            let Some(target) = ctx
                .targets
                .get_target(&tenant, &target_id)
                .await?
                .filter(|t| t.spec.public)
            else {
                return Ok(None);
            };
            badge_message(ctx, &target, kind, period).await.map(Some)
        })
        .await;
    match result {
        Ok(Some((message, colour))) => svg_badge(StatusCode::OK, &label, &message, colour),
        Ok(None) => not_found(),
        Err(e) => {
            warn!(error = %e, tenant = %tenant, target = %target_id, "badge not rendered");
            svg_badge(
                StatusCode::SERVICE_UNAVAILABLE,
                &label,
                "unavailable",
                view::colour::LIGHT_GREY,
            )
        }
    }
}

async fn badge_message(
    ctx: &ApiContext,
    target: &Target,
    kind: BadgeKind,
    period: Period,
) -> Result<(String, &'static str), StoreError> {
    let (tenant, id) = (&target.tenant, target.id());
    let now = ctx.clock.now();
    let w = Windows::at(now);
    match kind {
        BadgeKind::Status => {
            let state = ctx.states.load_state(tenant, id).await?.map(|v| v.value);
            let windows = ctx.maintenance.list_windows(tenant).await?;
            let in_maintenance =
                netmon_core::maintenance::in_maintenance(&windows, &target.spec, now);
            let (message, colour) =
                view::service_status(target.spec.enabled, state.as_ref(), in_maintenance).badge();
            Ok((message.to_owned(), colour))
        }
        BadgeKind::Uptime => {
            let buckets = match period {
                Period::Hours24 => {
                    ctx.history
                        .buckets(tenant, id, w.hours_from, w.hours_to, Granularity::Hour)
                        .await?
                }
                Period::Days(d) => {
                    let from = w.days_to - Duration::days(i64::from(d));
                    ctx.history
                        .buckets(tenant, id, from, w.days_to, Granularity::Day)
                        .await?
                }
            };
            let (up, probes) = buckets.iter().fold((0u64, 0u64), |(u, p), b| {
                (u + u64::from(b.up), p + u64::from(b.probes))
            });
            Ok(match view::format_uptime(up, probes) {
                Some(pct) => (pct, UptimeLevel::of(up, probes).badge_colour()),
                None => ("no data".to_owned(), view::colour::LIGHT_GREY),
            })
        }
        BadgeKind::ResponseTime => {
            let hours = ctx
                .history
                .buckets(tenant, id, w.hours_from, w.hours_to, Granularity::Hour)
                .await?;
            Ok(match view::merged_latency(&hours).quantile(0.5) {
                Some(p50) => (view::format_ms(p50), view::latency_colour(p50)),
                None => ("no data".to_owned(), view::colour::LIGHT_GREY),
            })
        }
    }
}
