//! What the dashboard reads (bounded, through the same ports and API helpers as the JSON API)
//! and how it renders: server-side HTML that is also well-formed XML, every stored string
//! through the status page's one `escape`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use netmon_core::channel::Channel;
use netmon_core::events::IncidentCause;
use netmon_core::history::{Granularity, HistoryBucket};
use netmon_core::incident::CheckState;
use netmon_core::maintenance::{MaintenanceWindow, in_maintenance};
use netmon_core::notification::{NotificationOutcome, NotificationRecord};
use netmon_core::ports::{IncidentRecord, StoreError};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::{CheckSpec, Target};
use netmon_core::{TargetId, TenantId};

use crate::api::{TenantOverview, redact, tenant_overview};
use crate::auth::Principal;
use crate::status::escape::escape;
use crate::status::page::{short_time, time_tag};
use crate::status::svg;
use crate::status::view::{self, DayBar, HourPoint, ServiceStatus, UptimeLevel};

/// Rows rendered on the overview after filtering; the page says when there are more.
const MAX_ROWS: usize = 200;
/// History queries in flight at once for one page.
const QUERY_CONCURRENCY: usize = 8;
/// Results shown on a target page, newest first, and read at most.
const RESULTS_SHOWN: usize = 20;
const RESULTS_READ: u32 = 500;
/// Incidents of a target shown, and how many of them get their notification timeline.
const TARGET_INCIDENTS: usize = 10;
const TIMELINES: usize = 5;
const INCIDENT_SCAN: u32 = 200;
const NOTIFICATIONS_PER_INCIDENT: usize = 50;

/// What every page of a signed-in user shares.
pub(crate) struct Chrome<'a> {
    pub root: &'a str,
    pub tenant: &'a str,
    pub key_name: &'a str,
    pub csrf: &'a str,
    pub writable: bool,
    /// `sse` where the host streams, `poll` elsewhere.
    pub live: &'static str,
    pub css: String,
    pub js: String,
}

pub(crate) struct Filter {
    pub status: String,
    pub tag: String,
    pub text: String,
}

/// The outcome of a form post, shown above the page.
pub(crate) struct Notice {
    ok: bool,
    text: String,
    lines: Vec<String>,
}

impl Notice {
    pub(crate) fn ok(text: &str) -> Self {
        Self {
            ok: true,
            text: text.to_owned(),
            lines: Vec::new(),
        }
    }

    pub(crate) fn failed(text: &str) -> Self {
        Self {
            ok: false,
            text: text.to_owned(),
            lines: Vec::new(),
        }
    }

    pub(crate) fn checked(r: &ProbeResult) -> Self {
        let up = r.outcome == Outcome::Up;
        let mut lines = vec![format!("Timings: {}", timings(r))];
        if let Some(e) = &r.error {
            lines.push(format!("Error: {}", e.message));
        }
        lines.extend(r.conditions.iter().map(|c| {
            format!(
                "{} {}{}",
                if c.passed { "pass" } else { "FAIL" },
                c.condition,
                c.actual
                    .as_ref()
                    .map(|a| format!(" (actual: {a})"))
                    .unwrap_or_default()
            )
        }));
        Self {
            ok: up,
            text: format!(
                "Checked now from {}: {}{}",
                r.location,
                if up { "up" } else { "down" },
                r.status_code
                    .map(|c| format!(", HTTP {c}"))
                    .unwrap_or_default()
            ),
            lines,
        }
    }

    fn render(&self) -> String {
        let mut out = format!(
            "<div class=\"notice {}\" role=\"status\"><p>{}</p>",
            if self.ok { "n-ok" } else { "n-bad" },
            escape(&self.text)
        );
        if !self.lines.is_empty() {
            out.push_str("<ul>");
            for l in &self.lines {
                let _ = write!(out, "<li>{}</li>", escape(l));
            }
            out.push_str("</ul>");
        }
        out.push_str("</div>");
        out
    }
}

/// The filter key of a status, as in `?status=`.
fn status_key(s: ServiceStatus) -> &'static str {
    match s {
        ServiceStatus::Operational => "up",
        ServiceStatus::Degraded => "degraded",
        ServiceStatus::Down => "down",
        ServiceStatus::Maintenance => "maintenance",
        ServiceStatus::Paused => "paused",
        ServiceStatus::NoData => "nodata",
    }
}

const STATUSES: [ServiceStatus; 6] = [
    ServiceStatus::Down,
    ServiceStatus::Degraded,
    ServiceStatus::Operational,
    ServiceStatus::Maintenance,
    ServiceStatus::Paused,
    ServiceStatus::NoData,
];

fn rank(s: ServiceStatus) -> usize {
    STATUSES
        .iter()
        .position(|x| *x == s)
        .unwrap_or(STATUSES.len())
}

fn head(title: &str, root: &str, css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
<meta name=\"color-scheme\" content=\"light dark\"/>\
<title>{}</title><link rel=\"stylesheet\" href=\"{root}dash.css?v={css}\"/>",
        escape(title)
    )
}

fn document(c: &Chrome, title: &str, active: &str, body: &str) -> String {
    let root = c.root;
    let mut nav = String::new();
    for (href, label) in [
        ("./", "Overview"),
        ("incidents", "Incidents"),
        ("maintenance", "Maintenance"),
        ("channels", "Channels"),
    ] {
        let current = if label == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{root}{href}\"{current}>{label}</a>");
    }
    format!(
        "{head}<script src=\"{root}dash.js?v={js}\" defer=\"defer\"></script></head>\
<body data-root=\"{root}\" data-live=\"{live}\"><header class=\"bar\"><div class=\"bar-in\">\
<a class=\"brand\" href=\"{root}./\">netmon</a><nav aria-label=\"Dashboard\">{nav}</nav>\
<form class=\"who\" method=\"post\" action=\"{root}signout\"><span class=\"muted\"><bdi>{tenant}</bdi> · <bdi>{key}</bdi></span>\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"/><button type=\"submit\" class=\"link\">Sign out</button></form></div></header>\
<div class=\"wrap dash\"><main>{body}</main><footer><p>Times are in UTC. <span id=\"live-state\" aria-live=\"polite\"></span></p></footer></div></body></html>\n",
        head = head(&format!("{title} · netmon"), root, &c.css),
        js = c.js,
        live = c.live,
        tenant = escape(c.tenant),
        key = escape(c.key_name),
        csrf = escape(c.csrf),
    )
}

/// A page without a session: errors and the sign-in form.
fn bare(root: &str, title: &str, body: &str) -> String {
    format!(
        "{}</head><body><div class=\"wrap dash\"><main>{body}</main></div></body></html>\n",
        head(
            &format!("{title} · netmon"),
            root,
            &super::version(super::CSS)
        )
    )
}

pub(crate) fn message(root: &str, title: &str, text: &str) -> String {
    bare(
        root,
        title,
        &format!(
            "<div class=\"empty\"><h1>{}</h1><p>{}</p><p><a href=\"{root}./\">Back to the dashboard</a></p></div>",
            escape(title),
            escape(text)
        ),
    )
}

pub(crate) fn signin(root: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"notice n-bad\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    bare(
        root,
        "Sign in",
        &format!(
            "<div class=\"signin panel\"><h1>Sign in to netmon</h1>{error}\
<form method=\"post\" action=\"{root}signin\"><label for=\"key\">API key</label>\
<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required=\"required\" placeholder=\"nmk_…\"/>\
<button type=\"submit\">Sign in</button></form>\
<p class=\"muted\">The key is checked once and not kept in the page or the cookie. <code>netmon up</code> prints a one-time sign-in link at start; <code>netmon keys create</code> makes a key.</p></div>"
        ),
    )
}

/// One target on the overview.
pub(crate) struct Row {
    target: Target,
    status: ServiceStatus,
    since: Option<DateTime<Utc>>,
    checked: Option<DateTime<Utc>>,
    incident_opened: Option<DateTime<Utc>>,
    hours: Vec<(DateTime<Utc>, u32, u32)>,
    points: Vec<HourPoint>,
    latency: netmon_core::history::LatencyHistogram,
}

pub(crate) struct OverviewView {
    now: DateTime<Utc>,
    rows: Vec<Row>,
    counts: Vec<(ServiceStatus, usize)>,
    total: usize,
    matched: usize,
    tags: BTreeSet<String>,
    open: Vec<(Target, DateTime<Utc>, IncidentCause)>,
}

fn status_of(o: &TenantOverview, t: &Target) -> ServiceStatus {
    view::service_status(
        t.spec.enabled,
        o.states.get(t.id()),
        in_maintenance(&o.windows, &t.spec, o.now),
    )
}

fn matches(f: &Filter, t: &Target, status: ServiceStatus) -> bool {
    let text = f.text.trim().to_lowercase();
    (f.status.is_empty() || f.status == status_key(status))
        && (f.tag.is_empty() || t.spec.tags.iter().any(|x| x == &f.tag))
        && (text.is_empty()
            || t.id().as_str().to_lowercase().contains(&text)
            || t.spec.name.to_lowercase().contains(&text))
}

fn last_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    Granularity::Hour.floor(now)
}

/// 24 hours ending with the current one, oldest first: (start, probes, up).
fn hour_counts(buckets: &[HistoryBucket], now: DateTime<Utc>) -> Vec<(DateTime<Utc>, u32, u32)> {
    let last = last_hour(now);
    (0..view::HOURS as i64)
        .rev()
        .map(|back| {
            let start = last - Duration::hours(back);
            buckets
                .iter()
                .filter(|b| b.start == start)
                .fold((start, 0u32, 0u32), |(s, p, u), b| {
                    (s, p.saturating_add(b.probes), u.saturating_add(b.up))
                })
        })
        .collect()
}

async fn load_row(
    ctx: &crate::http::ApiContext,
    target: Target,
    status: ServiceStatus,
    state: Option<&CheckState>,
    now: DateTime<Utc>,
) -> Result<Row, StoreError> {
    let (tenant, id) = (&target.tenant, target.id());
    let last = last_hour(now);
    let (hours, recent) = futures::try_join!(
        ctx.history.buckets(
            tenant,
            id,
            last - Duration::hours(view::HOURS as i64 - 1),
            last + Duration::hours(1),
            Granularity::Hour
        ),
        ctx.history.results_since(
            tenant,
            id,
            now - crate::status::recent_window(&target.spec),
            200
        ),
    )?;
    let watermark = state.and_then(|s| s.locations.values().map(|l| l.watermark).max());
    Ok(Row {
        status,
        since: state.and_then(|s| s.status_since),
        checked: recent.iter().map(|r| r.started_at).max().or(watermark),
        incident_opened: state.and_then(|s| s.incident.as_ref()).map(|i| i.opened_at),
        hours: hour_counts(&hours, now),
        points: view::hour_points(&hours, last),
        latency: view::merged_latency(&hours),
        target,
    })
}

pub(crate) async fn load_overview(
    ctx: &crate::http::ApiContext,
    p: &Principal,
    filter: &Filter,
) -> Result<OverviewView, StoreError> {
    let mut o = tenant_overview(ctx, &p.tenant).await?;
    // As the JSON API shows them to this key: a read-only key sees no URL credentials.
    o.targets = o
        .targets
        .into_iter()
        .map(|t| redact::target(p, t))
        .collect();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let mut tags = BTreeSet::new();
    let mut chosen = Vec::new();
    let mut open = Vec::new();
    for t in &o.targets {
        let status = status_of(&o, t);
        *counts.entry(status_key(status)).or_default() += 1;
        tags.extend(t.spec.tags.iter().cloned());
        if let Some(i) = o.states.get(t.id()).and_then(|s| s.incident.as_ref()) {
            open.push((t.clone(), i.opened_at, i.cause.clone()));
        }
        if matches(filter, t, status) {
            chosen.push((t.clone(), status));
        }
    }
    open.sort_by_key(|(_, at, _)| std::cmp::Reverse(*at));
    let opened = |t: &Target| {
        o.states
            .get(t.id())
            .and_then(|s| s.incident.as_ref())
            .map(|i| i.opened_at)
    };
    chosen.sort_by(|(a, sa), (b, sb)| {
        // Open incidents first (newest first), then by status, then by name.
        opened(b)
            .is_some()
            .cmp(&opened(a).is_some())
            .then_with(|| opened(b).cmp(&opened(a)))
            .then_with(|| rank(*sa).cmp(&rank(*sb)))
            .then_with(|| a.spec.name.cmp(&b.spec.name))
    });
    let matched = chosen.len();
    chosen.truncate(MAX_ROWS);
    let loads: Vec<_> = chosen
        .into_iter()
        .map(|(t, status)| {
            let state = o.states.get(t.id());
            load_row(ctx, t, status, state, o.now)
        })
        .collect();
    let rows: Vec<Row> = futures::stream::iter(loads)
        .buffered(QUERY_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(OverviewView {
        now: o.now,
        rows,
        counts: STATUSES
            .iter()
            .map(|s| (*s, counts.get(status_key(*s)).copied().unwrap_or(0)))
            .collect(),
        total: o.targets.len(),
        matched,
        tags,
        open,
    })
}

/// Operators see the whole cause: location, code, error text and failed conditions.
fn cause_text(c: &IncidentCause) -> String {
    let mut parts = vec![format!("at {}", c.location)];
    if let Some(code) = c.status_code {
        parts.push(format!("HTTP {code}"));
    }
    if let Some(e) = &c.error {
        parts.push(e.message.clone());
    }
    for f in &c.failed_conditions {
        parts.push(match &f.actual {
            Some(a) => format!("{} (actual: {a})", f.condition),
            None => f.condition.clone(),
        });
    }
    parts.join(" · ")
}

fn hour_bars(label: &str, hours: &[(DateTime<Utc>, u32, u32)]) -> String {
    const SLOT: f64 = 10.0;
    const BAR: f64 = 8.0;
    let (up, probes) = hours.iter().fold((0u64, 0u64), |(u, p), h| {
        (u + u64::from(h.2), p + u64::from(h.1))
    });
    let summary = match view::format_uptime(up, probes) {
        Some(pct) => format!("{label}: {pct} uptime over the last 24 hours"),
        None => format!("{label}: no checks in the last 24 hours"),
    };
    let mut out = format!(
        "<svg class=\"bars hbars\" viewBox=\"0 0 {} 20\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">",
        hours.len() as f64 * SLOT,
        escape(&summary)
    );
    for (i, (start, p, u)) in hours.iter().enumerate() {
        let tip = match view::format_uptime((*u).into(), (*p).into()) {
            Some(pct) => format!(
                "{} UTC: {pct} ({u} of {p} checks up)",
                start.format("%H:00")
            ),
            None => format!("{} UTC: no checks", start.format("%H:00")),
        };
        let _ = write!(
            out,
            "<rect class=\"{}\" x=\"{}\" width=\"{BAR}\" height=\"20\" rx=\"1.5\"><title>{}</title></rect>",
            UptimeLevel::of((*u).into(), (*p).into()).css(),
            i as f64 * SLOT + (SLOT - BAR) / 2.0,
            escape(&tip)
        );
    }
    out.push_str("</svg>");
    out
}

fn tags_html(tags: &[String], root: &str) -> String {
    tags.iter()
        .map(|t| {
            let q: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
            format!(
                "<a class=\"tag\" href=\"{root}./?tag={}\"><bdi>{}</bdi></a>",
                escape(&q),
                escape(t)
            )
        })
        .collect::<Vec<_>>()
        .join("")
}

fn checked_text(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("checked {}", time_tag(t, &view::relative(now, t))),
        None => "not checked recently".to_owned(),
    }
}

fn since_text(now: DateTime<Utc>, since: Option<DateTime<Utc>>) -> String {
    since
        .map(|s| format!("for {}", time_tag(s, &view::span((now - s).num_seconds()))))
        .unwrap_or_default()
}

fn row_html(r: &Row, now: DateTime<Utc>, root: &str) -> String {
    let id = escape(r.target.id().as_str());
    let name = escape(&r.target.spec.name);
    let spark_label = format!(
        "{}: response time over the last 24 hours",
        r.target.spec.name
    );
    let response = match (
        svg::sparkline(&spark_label, &r.points),
        r.latency.quantile(0.5),
        r.latency.quantile(0.95),
    ) {
        (Some(spark), Some(p50), Some(p95)) => format!(
            "<div class=\"rt\"><span class=\"rt-label\">Response time · 24 h</span>{spark}<span class=\"rt-num\">p50 <b>{}</b> · p95 <b>{}</b></span></div>",
            view::format_ms(p50),
            view::format_ms(p95)
        ),
        _ => "<div class=\"rt\"><span class=\"rt-label\">Response time · 24 h</span><span class=\"rt-num\">No data</span></div>".to_owned(),
    };
    let (up, probes) = r.hours.iter().fold((0u64, 0u64), |(u, p), h| {
        (u + u64::from(h.2), p + u64::from(h.1))
    });
    let pct = view::format_uptime(up, probes)
        .map(|p| format!("{p} uptime"))
        .unwrap_or_else(|| "No data".to_owned());
    let incident = if r.incident_opened.is_some() {
        "<span class=\"pill\">Incident</span>"
    } else {
        ""
    };
    format!(
        "<article class=\"svc s-{css}\" id=\"t-{id}\" data-id=\"{id}\"><div class=\"svc-head\"><span class=\"dot\" aria-hidden=\"true\"></span>\
<h3 class=\"name\" title=\"{name}\"><a href=\"{root}targets/{id}\"><bdi>{name}</bdi></a></h3>{incident}<span class=\"state\" data-f=\"label\">{label}</span></div>\
<p class=\"meta\"><span data-f=\"since\">{since}</span> · <span data-f=\"checked\">{checked}</span> · <span class=\"check\">{check}</span></p>\
<p class=\"tags\">{tags}</p>{bars}<div class=\"axis\" aria-hidden=\"true\"><span>24 h ago</span><span class=\"pct\">{pct}</span><span>Now</span></div>{response}</article>",
        css = r.status.css(),
        label = r.status.label(),
        since = since_text(now, r.since),
        checked = checked_text(now, r.checked),
        check = escape(&r.target.spec.check.to_string()),
        tags = tags_html(&r.target.spec.tags, root),
        bars = hour_bars(&r.target.spec.name, &r.hours),
    )
}

fn select(name: &str, label: &str, current: &str, options: &[(String, String)]) -> String {
    let mut out = format!(
        "<label><span>{label}</span><select name=\"{name}\"><option value=\"\">All</option>"
    );
    for (value, text) in options {
        let sel = if value == current {
            " selected=\"selected\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<option value=\"{}\"{sel}>{}</option>",
            escape(value),
            escape(text)
        );
    }
    out.push_str("</select></label>");
    out
}

pub(crate) fn overview(c: &Chrome, v: &OverviewView, f: &Filter) -> String {
    let root = c.root;
    let mut body = format!(
        "<header class=\"top\"><h1>Overview</h1><p class=\"updated\">{} targets · updated <span data-f=\"updated\">{}</span></p></header>",
        v.total,
        time_tag(v.now, &v.now.format("%H:%M:%S UTC").to_string()),
    );
    body.push_str("<nav class=\"counts\" aria-label=\"Targets by status\">");
    let _ = write!(
        body,
        "<a href=\"{root}./\" class=\"count{}\">All <b data-count=\"all\">{}</b></a>",
        if f.status.is_empty() { " on" } else { "" },
        v.total
    );
    for (s, n) in &v.counts {
        let _ = write!(
            body,
            "<a href=\"{root}./?status={key}\" class=\"count c-{css}{on}\">{label} <b data-count=\"{key}\">{n}</b></a>",
            key = status_key(*s),
            css = s.css(),
            label = s.label(),
            on = if f.status == status_key(*s) {
                " on"
            } else {
                ""
            },
        );
    }
    body.push_str("</nav>");
    let statuses: Vec<(String, String)> = STATUSES
        .iter()
        .map(|s| (status_key(*s).to_owned(), s.label().to_owned()))
        .collect();
    let tags: Vec<(String, String)> = v.tags.iter().map(|t| (t.clone(), t.clone())).collect();
    let _ = write!(
        body,
        "<form class=\"filters\" method=\"get\" action=\"{root}./\" role=\"search\">{}{}\
<label class=\"grow\"><span>Text</span><input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"id or name\"/></label>\
<button type=\"submit\">Filter</button></form>",
        select("status", "Status", &f.status, &statuses),
        select("tag", "Tag", &f.tag, &tags),
        escape(&f.text),
    );
    if !v.open.is_empty() {
        body.push_str("<section aria-labelledby=\"inc-h\"><h2 id=\"inc-h\">Open incidents</h2>");
        for (t, at, cause) in &v.open {
            let _ = write!(
                body,
                "<article class=\"card c-down\"><div class=\"card-head\"><h3><a href=\"{root}targets/{id}\"><bdi>{name}</bdi></a></h3><span class=\"pill p-down\">Ongoing · {span}</span></div><p>Down since {since} · {cause}</p></article>",
                id = escape(t.id().as_str()),
                name = escape(&t.spec.name),
                span = view::span((v.now - *at).num_seconds()),
                since = time_tag(*at, &short_time(v.now, *at)),
                cause = escape(&cause_text(cause)),
            );
        }
        body.push_str("</section>");
    }
    body.push_str("<section aria-labelledby=\"svc-h\"><div class=\"section-head\"><h2 id=\"svc-h\">Targets</h2></div>");
    if v.rows.is_empty() {
        let _ = write!(
            body,
            "<p class=\"panel pad\">{}</p>",
            if v.total == 0 {
                "No targets yet. Add some to the config file, with <code>netmon apply -f</code> or the API."
            } else {
                "No target matches the filter."
            }
        );
    } else {
        body.push_str("<div class=\"panel\" id=\"rows\">");
        for r in &v.rows {
            body.push_str(&row_html(r, v.now, root));
        }
        body.push_str("</div>");
    }
    if v.matched > v.rows.len() {
        let _ = write!(
            body,
            "<p class=\"note\">Showing the first {} of {} matching targets; filter to see others.</p>",
            v.rows.len(),
            v.matched
        );
    }
    body.push_str("</section>");
    document(c, "Overview", "Overview", &body)
}

/// `live.json`: what the script needs to update rows and counts in place.
pub(crate) async fn load_live(
    ctx: &crate::http::ApiContext,
    tenant: &TenantId,
) -> Result<String, StoreError> {
    let o = tenant_overview(ctx, tenant).await?;
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let targets: Vec<serde_json::Value> = o
        .targets
        .iter()
        .map(|t| {
            let status = status_of(&o, t);
            *counts.entry(status_key(status)).or_default() += 1;
            let state = o.states.get(t.id());
            serde_json::json!({
                "id": t.id(),
                "status": status_key(status),
                "css": status.css(),
                "label": status.label(),
                "since": state.and_then(|s| s.status_since),
                "incident": state.and_then(|s| s.incident.as_ref()).map(|i| &i.id),
            })
        })
        .collect();
    let mut all = serde_json::Map::new();
    all.insert("all".into(), o.targets.len().into());
    for s in STATUSES {
        all.insert(
            status_key(s).into(),
            counts.get(status_key(s)).copied().unwrap_or(0).into(),
        );
    }
    // No time in the body, so an unchanged state keeps its ETag.
    Ok(serde_json::json!({ "counts": all, "targets": targets }).to_string())
}

pub(crate) struct TargetView {
    target: Target,
    state: Option<CheckState>,
    status: ServiceStatus,
    now: DateTime<Utc>,
    hours: Vec<HistoryBucket>,
    days: Vec<HistoryBucket>,
    results: Vec<ProbeResult>,
    incidents: Vec<(IncidentRecord, Vec<NotificationRecord>)>,
}

pub(crate) async fn load_target(
    ctx: &crate::http::ApiContext,
    p: &Principal,
    id: &TargetId,
) -> Result<Option<TargetView>, StoreError> {
    let tenant = &p.tenant;
    let Some(target) = ctx
        .targets
        .get_target(tenant, id)
        .await?
        .map(|t| redact::target(p, t))
    else {
        return Ok(None);
    };
    let now = ctx.clock.now();
    let last = last_hour(now);
    let today = Granularity::Day.floor(now);
    let window = match &target.spec.check {
        CheckSpec::Heartbeat(hb) => hb.period.as_chrono() + hb.grace.as_chrono(),
        _ => target.spec.interval.as_chrono(),
    } * (RESULTS_SHOWN as i32)
        + Duration::minutes(1);
    let (state, windows, hours, days, mut results, incidents) = futures::try_join!(
        ctx.states.load_state(tenant, id),
        ctx.maintenance.list_windows(tenant),
        ctx.history.buckets(
            tenant,
            id,
            last - Duration::hours(23),
            last + Duration::hours(1),
            Granularity::Hour
        ),
        ctx.history.buckets(
            tenant,
            id,
            today - Duration::days(view::DAYS as i64 - 1),
            today + Duration::days(1),
            Granularity::Day
        ),
        ctx.history.results_since(
            tenant,
            id,
            now - window.min(Duration::days(3)),
            RESULTS_READ
        ),
        ctx.states.list_incidents(tenant, INCIDENT_SCAN),
    )?;
    let state = state.map(|v| v.value);
    results.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    results.truncate(RESULTS_SHOWN);
    let mine: Vec<IncidentRecord> = incidents
        .into_iter()
        .filter(|i| &i.target_id == id)
        .take(TARGET_INCIDENTS)
        .collect();
    let mut with_log = Vec::new();
    for (i, inc) in mine.into_iter().enumerate() {
        let log = if i < TIMELINES {
            ctx.notifications
                .notifications(tenant, Some(&inc.incident_id), NOTIFICATIONS_PER_INCIDENT)
                .await?
        } else {
            Vec::new()
        };
        with_log.push((inc, log));
    }
    let status = view::service_status(
        target.spec.enabled,
        state.as_ref(),
        in_maintenance(&windows, &target.spec, now),
    );
    Ok(Some(TargetView {
        target,
        state,
        status,
        now,
        hours,
        days,
        results,
        incidents: with_log,
    }))
}

fn timings(r: &ProbeResult) -> String {
    let t = &r.timings;
    let mut parts = Vec::new();
    for (name, v) in [
        ("dns", t.dns_ms),
        ("connect", t.connect_ms),
        ("tls", t.tls_ms),
        ("first byte", t.first_byte_ms),
    ] {
        if let Some(ms) = v {
            parts.push(format!("{name} {}", view::format_ms(ms)));
        }
    }
    parts.push(format!("total {}", view::format_ms(t.total_ms)));
    parts.join(" · ")
}

fn uptime_tile(label: &str, buckets: &[&HistoryBucket]) -> String {
    let (up, probes) = buckets.iter().fold((0u64, 0u64), |(u, p), b| {
        (u + u64::from(b.up), p + u64::from(b.probes))
    });
    let level = UptimeLevel::of(up, probes);
    format!(
        "<div class=\"tile\"><span class=\"muted\">{label}</span><b><i class=\"{}\" aria-hidden=\"true\"></i>{}</b></div>",
        level.css(),
        view::format_uptime(up, probes).unwrap_or_else(|| "no data".to_owned())
    )
}

fn event_label(t: &str) -> &str {
    match t {
        "incident.opened" => "Opened",
        "incident.resolved" => "Resolved",
        "incident.reminder" => "Reminder",
        other => other,
    }
}

fn outcome_label(o: NotificationOutcome) -> &'static str {
    match o {
        NotificationOutcome::Delivered => "delivered",
        NotificationOutcome::Retrying => "retrying",
        NotificationOutcome::Failed => "failed",
    }
}

fn timeline(now: DateTime<Utc>, inc: &IncidentRecord, log: &[NotificationRecord]) -> String {
    let mut items: Vec<(DateTime<Utc>, String)> = vec![(
        inc.opened_at,
        format!("Opened: {}", escape(&cause_text(&inc.cause))),
    )];
    for n in log {
        let mut text = format!(
            "{} notification via <bdi>{}</bdi>: <span class=\"o-{}\">{}</span>",
            escape(event_label(&n.event_type)),
            escape(n.channel_id.as_str()),
            outcome_label(n.outcome),
            outcome_label(n.outcome),
        );
        if n.attempts > 1 {
            let _ = write!(text, " after {} attempts", n.attempts);
        }
        if let Some(r) = &n.reason {
            let _ = write!(text, " ({})", escape(r));
        }
        if let Some(next) = n.next_attempt_at {
            let _ = write!(
                text,
                "; next try {}",
                time_tag(next, &short_time(now, next))
            );
        }
        items.push((n.first_attempt_at, text));
    }
    if let Some(r) = inc.resolved_at {
        items.push((
            r,
            format!(
                "Resolved after {}",
                view::span((r - inc.opened_at).num_seconds())
            ),
        ));
    }
    items.sort_by_key(|(at, _)| *at);
    let mut out = String::from("<ol class=\"timeline\">");
    for (at, text) in items {
        let _ = write!(
            out,
            "<li>{} <span>{text}</span></li>",
            time_tag(at, &short_time(now, at))
        );
    }
    out.push_str("</ol>");
    out
}

fn action(root: &str, c: &Chrome, path: &str, label: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{root}{path}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"/><button type=\"submit\" class=\"{class}\">{label}</button></form>",
        escape(c.csrf)
    )
}

pub(crate) fn target(c: &Chrome, v: &TargetView, notice: Option<&Notice>) -> String {
    let root = c.root;
    let t = &v.target;
    let id = escape(t.id().as_str());
    let name = escape(&t.spec.name);
    let now = v.now;
    let mut body = String::new();
    if let Some(n) = notice {
        body.push_str(&n.render());
    }
    let since = v.state.as_ref().and_then(|s| s.status_since);
    let _ = write!(
        body,
        "<header class=\"thead svc s-{css}\" id=\"t-{id}\" data-id=\"{id}\"><p class=\"crumb\"><a href=\"{root}./\">Overview</a> /</p>\
<div class=\"svc-head\"><span class=\"dot\" aria-hidden=\"true\"></span><h1 class=\"name\"><bdi>{name}</bdi></h1><span class=\"state\" data-f=\"label\">{label}</span></div>\
<p class=\"meta\"><span data-f=\"since\">{since}</span> · <code>{check}</code> · every {every}</p><p class=\"tags\">{tags}</p>",
        css = v.status.css(),
        label = v.status.label(),
        since = since_text(now, since),
        check = escape(&t.spec.check.to_string()),
        every = escape(&t.spec.interval.to_string()),
        tags = tags_html(&t.spec.tags, root),
    );
    if c.writable {
        body.push_str("<div class=\"actions\">");
        if !matches!(t.spec.check, CheckSpec::Heartbeat(_)) && t.spec.enabled {
            body.push_str(&action(
                root,
                c,
                &format!("targets/{id}/check"),
                "Check now",
                "",
            ));
        }
        if t.spec.enabled {
            body.push_str(&action(
                root,
                c,
                &format!("targets/{id}/pause"),
                "Pause",
                "secondary",
            ));
        } else {
            body.push_str(&action(
                root,
                c,
                &format!("targets/{id}/resume"),
                "Resume",
                "",
            ));
        }
        body.push_str("</div>");
    }
    body.push_str("</header>");

    // Uptime over four periods.
    let today = Granularity::Day.floor(now);
    let days_back = |n: i64| -> Vec<&HistoryBucket> {
        v.days
            .iter()
            .filter(|b| b.start > today - Duration::days(n))
            .collect()
    };
    let _ = write!(
        body,
        "<section aria-labelledby=\"up-h\"><h2 id=\"up-h\">Uptime</h2><div class=\"tiles\">{}{}{}{}</div></section>",
        uptime_tile("24 hours", &v.hours.iter().collect::<Vec<_>>()),
        uptime_tile("7 days", &days_back(7)),
        uptime_tile("30 days", &days_back(30)),
        uptime_tile("90 days", &days_back(90)),
    );

    // Response time and daily bars.
    let points = view::hour_points(&v.hours, last_hour(now));
    let latency = view::merged_latency(&v.hours);
    let chart = svg::sparkline(
        &format!(
            "{}: response time per hour over the last 24 hours",
            t.spec.name
        ),
        &points,
    )
    .unwrap_or_else(|| {
        "<p class=\"muted\">No successful checks in the last 24 hours.</p>".to_owned()
    });
    let nums = match (latency.quantile(0.5), latency.quantile(0.95)) {
        (Some(a), Some(b)) => format!(
            "<p class=\"muted\">median <b>{}</b> · p95 <b>{}</b> (line: hourly median, band: to the 95th percentile)</p>",
            view::format_ms(a),
            view::format_ms(b)
        ),
        _ => String::new(),
    };
    let day_bars: Vec<DayBar> = view::day_bars(&v.days, now.date_naive());
    let _ = write!(
        body,
        "<section aria-labelledby=\"rt-h\"><h2 id=\"rt-h\">Response time · 24 h</h2><div class=\"panel pad chart\">{chart}{nums}</div></section>\
<section aria-labelledby=\"d-h\"><h2 id=\"d-h\">Uptime per day · 90 days</h2><div class=\"panel pad\">{}<div class=\"axis\" aria-hidden=\"true\"><span>90 days ago</span><span>Today</span></div></div></section>",
        svg::uptime_bars(&t.spec.name, &day_bars)
    );

    // Per location.
    body.push_str("<section aria-labelledby=\"loc-h\"><h2 id=\"loc-h\">Locations</h2>");
    match &v.state {
        Some(s) if !s.locations.is_empty() => {
            body.push_str("<div class=\"panel scroll\"><table><thead><tr><th scope=\"col\">Location</th><th scope=\"col\">State</th><th scope=\"col\">In a row</th><th scope=\"col\">Failing since</th><th scope=\"col\">Last change</th></tr></thead><tbody>");
            for (loc, l) in &s.locations {
                let _ = write!(
                    body,
                    "<tr><td><bdi>{}</bdi></td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(loc),
                    if l.down { "o-failed" } else { "o-delivered" },
                    if l.down { "down" } else { "up" },
                    if l.down {
                        format!("{} failed", l.consecutive_failures)
                    } else {
                        format!("{} passed", l.consecutive_successes)
                    },
                    l.failing_since
                        .map(|f| time_tag(f, &short_time(now, f)))
                        .unwrap_or_else(|| "—".to_owned()),
                    time_tag(l.watermark, &short_time(now, l.watermark)),
                );
            }
            body.push_str("</tbody></table></div>");
        }
        _ => body.push_str("<p class=\"panel pad muted\">No results yet.</p>"),
    }
    body.push_str("</section>");

    // Last results.
    body.push_str("<section aria-labelledby=\"res-h\"><h2 id=\"res-h\">Last results</h2>");
    if v.results.is_empty() {
        body.push_str("<p class=\"panel pad muted\">No recent results.</p>");
    } else {
        body.push_str("<ol class=\"panel results\">");
        for r in &v.results {
            let up = r.outcome == Outcome::Up;
            let _ = write!(
                body,
                "<li><div class=\"res-head\"><span class=\"pill {}\">{}</span>{} <bdi class=\"muted\">{}</bdi>{}</div><p class=\"muted\">{}</p>",
                if up { "p-ok" } else { "p-down" },
                if up { "Up" } else { "Down" },
                time_tag(r.started_at, &short_time(now, r.started_at)),
                escape(&r.location),
                r.status_code
                    .map(|c| format!(" · HTTP {c}"))
                    .unwrap_or_default(),
                escape(&timings(r)),
            );
            if let Some(e) = &r.error {
                let _ = write!(body, "<p class=\"err\">{}</p>", escape(&e.message));
            }
            if !r.conditions.is_empty() {
                body.push_str("<ul class=\"conds\">");
                for cnd in &r.conditions {
                    let _ = write!(
                        body,
                        "<li class=\"{}\"><span>{}</span> <code>{}</code>{}</li>",
                        if cnd.passed {
                            "o-delivered"
                        } else {
                            "o-failed"
                        },
                        if cnd.passed { "pass" } else { "fail" },
                        escape(&cnd.condition),
                        cnd.actual
                            .as_ref()
                            .map(|a| format!(" <span class=\"muted\">actual {}</span>", escape(a)))
                            .unwrap_or_default()
                    );
                }
                body.push_str("</ul>");
            }
            body.push_str("</li>");
        }
        body.push_str("</ol>");
    }
    body.push_str("</section>");

    // Incidents.
    body.push_str("<section aria-labelledby=\"ti-h\"><h2 id=\"ti-h\">Incidents</h2>");
    if v.incidents.is_empty() {
        body.push_str("<p class=\"panel pad muted\">No incidents recorded.</p>");
    }
    for (inc, log) in &v.incidents {
        let (class, pill) = incident_pill(now, inc);
        let _ = write!(
            body,
            "<article class=\"card {class}\"><div class=\"card-head\"><h3>{}</h3>{pill}</div>{}</article>",
            time_tag(inc.opened_at, &short_time(now, inc.opened_at)),
            timeline(now, inc, log),
        );
    }
    body.push_str("</section>");
    document(c, &t.spec.name, "", &body)
}

/// The card class and state pill of an incident: ongoing (red) or how long it lasted.
fn incident_pill(now: DateTime<Utc>, i: &IncidentRecord) -> (&'static str, String) {
    match i.resolved_at {
        None => (
            "c-down",
            format!(
                "<span class=\"pill p-down\">Ongoing · {}</span>",
                view::span((now - i.opened_at).num_seconds())
            ),
        ),
        Some(r) => (
            "c-past",
            format!(
                "<span class=\"pill p-none\">Lasted {}</span>",
                view::span((r - i.opened_at).num_seconds())
            ),
        ),
    }
}

pub(crate) struct IncidentsView {
    now: DateTime<Utc>,
    items: Vec<IncidentRecord>,
}

pub(crate) async fn load_incidents(
    ctx: &crate::http::ApiContext,
    tenant: &TenantId,
) -> Result<IncidentsView, StoreError> {
    Ok(IncidentsView {
        items: ctx.states.list_incidents(tenant, 100).await?,
        now: ctx.clock.now(),
    })
}

pub(crate) fn incidents(c: &Chrome, v: &IncidentsView) -> String {
    let root = c.root;
    let mut body = String::from("<header class=\"top\"><h1>Incidents</h1></header>");
    if v.items.is_empty() {
        body.push_str("<p class=\"panel pad\">No incidents. Good.</p>");
    }
    let (open, past): (Vec<_>, Vec<_>) = v.items.iter().partition(|i| i.resolved_at.is_none());
    for (title, list) in [("Open", open), ("Resolved", past)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(body, "<section><h2>{title}</h2>");
        for i in list {
            let (class, pill) = incident_pill(v.now, i);
            let _ = write!(
                body,
                "<article class=\"card {class}\"><div class=\"card-head\"><h3><a href=\"{root}targets/{id}\"><bdi>{name}</bdi></a></h3>{pill}</div><p>{opened}{resolved} · {cause}</p></article>",
                id = escape(i.target_id.as_str()),
                name = escape(&i.target_name),
                opened = time_tag(i.opened_at, &short_time(v.now, i.opened_at)),
                resolved = i
                    .resolved_at
                    .map(|r| format!(" to {}", time_tag(r, &short_time(v.now, r))))
                    .unwrap_or_default(),
                cause = escape(&cause_text(&i.cause)),
            );
        }
        body.push_str("</section>");
    }
    document(c, "Incidents", "Incidents", &body)
}

pub(crate) fn maintenance(c: &Chrome, windows: &[MaintenanceWindow], now: DateTime<Utc>) -> String {
    let mut body = String::from("<header class=\"top\"><h1>Maintenance windows</h1></header>");
    if windows.is_empty() {
        body.push_str("<p class=\"panel pad\">No maintenance windows. Add them with <code>netmon apply -f</code> or <code>POST /v1/maintenance</code>.</p>");
    }
    let mut sorted: Vec<&MaintenanceWindow> = windows.iter().collect();
    sorted.sort_by_key(|w| std::cmp::Reverse(w.spec.starts_at));
    for w in sorted {
        let s = &w.spec;
        let (pill, class) = if s.is_active(now) {
            ("In progress", "p-maint")
        } else if s.starts_at > now {
            ("Scheduled", "p-maint")
        } else {
            ("Over", "p-none")
        };
        let covers = if s.targets.is_empty() && s.tags.is_empty() {
            "every target".to_owned()
        } else {
            let mut parts: Vec<String> = s
                .targets
                .iter()
                .map(|t| format!("<bdi>{}</bdi>", escape(t.as_str())))
                .collect();
            parts.extend(
                s.tags
                    .iter()
                    .map(|t| format!("tag <bdi>{}</bdi>", escape(t))),
            );
            parts.join(", ")
        };
        let _ = write!(
            body,
            "<article class=\"card c-maint\"><div class=\"card-head\"><h3><bdi>{}</bdi></h3><span class=\"pill {class}\">{pill}</span></div><p>{} to {}</p><p class=\"muted\">Covers {covers}</p></article>",
            escape(&s.name),
            time_tag(s.starts_at, &short_time(now, s.starts_at)),
            time_tag(s.ends_at, &short_time(now, s.ends_at)),
        );
    }
    document(c, "Maintenance", "Maintenance", &body)
}

pub(crate) fn channels(c: &Chrome, channels: &[Channel], notice: Option<&Notice>) -> String {
    let root = c.root;
    let mut body = String::new();
    if let Some(n) = notice {
        body.push_str(&n.render());
    }
    body.push_str("<header class=\"top\"><h1>Channels</h1></header>");
    if channels.is_empty() {
        body.push_str("<p class=\"panel pad\">No channels. Add them to the config file or with <code>netmon channels</code>.</p>");
    } else {
        body.push_str("<div class=\"panel\">");
        for ch in channels {
            let s = &ch.spec;
            let events = match &s.events {
                None => "every incident event".to_owned(),
                Some(set) => set
                    .iter()
                    .map(|e| format!("{e:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let id = escape(s.id.as_str());
            let _ = write!(
                body,
                "<article class=\"svc chan\"><div class=\"svc-head\"><h3 class=\"name\"><bdi>{}</bdi></h3><span class=\"tag\">{}</span>{}</div><p class=\"meta\"><code>{id}</code> · {}</p>",
                escape(&s.name),
                s.kind.name(),
                if s.default {
                    "<span class=\"tag\">default</span>"
                } else {
                    ""
                },
                escape(&events),
            );
            if c.writable {
                body.push_str(&action(
                    root,
                    c,
                    &format!("channels/{id}/test"),
                    "Send test",
                    "secondary",
                ));
            }
            body.push_str("</article>");
        }
        body.push_str("</div>");
    }
    document(c, "Channels", "Channels", &body)
}
