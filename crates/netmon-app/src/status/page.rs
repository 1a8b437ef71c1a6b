//! The status page as server-rendered HTML: one `<style>` block, inline SVG, no script, no
//! external assets. The markup is also well-formed XML, so tests can parse it.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::escape::escape;
use super::svg;
use super::view::{
    self, MaintenanceNotice, Overall, PageView, ServiceStatus, ServiceView, UptimeLevel,
};

const CSS: &str = include_str!("status.css");

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
<meta name=\"color-scheme\" content=\"light dark\"/>\
<title>{}</title><style>{CSS}</style></head><body><div class=\"wrap\">{body}</div></body></html>\n",
        escape(title)
    )
}

/// `<time>` with the machine-readable instant and the absolute time as its tooltip.
pub(crate) fn time_tag(t: DateTime<Utc>, text: &str) -> String {
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        view::iso(t),
        view::absolute(t),
        escape(text)
    )
}

/// `09:58 UTC` today, `Nov 20, 09:58 UTC` on another day.
pub(crate) fn short_time(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%b %-d, %H:%M UTC").to_string()
    }
}

fn icon(css: &str) -> &'static str {
    match css {
        "ok" => {
            "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\" fill=\"#fff\" fill-opacity=\".22\"/><path d=\"M7 12.4l3.3 3.3L17.2 8.8\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2.4\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/></svg>"
        }
        "maint" => {
            "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\" fill=\"#fff\" fill-opacity=\".22\"/><path d=\"M12 6.8V12l3.4 2.2\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2.4\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/></svg>"
        }
        _ => {
            "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\" fill=\"#fff\" fill-opacity=\".22\"/><path d=\"M12 6.6v6.6\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2.6\" stroke-linecap=\"round\"/><circle cx=\"12\" cy=\"17.2\" r=\"1.5\" fill=\"#fff\"/></svg>"
        }
    }
}

/// `1 of 12 services is down.`, `3 of 12 services are down.`
fn of_total(n: usize, total: usize, what: &str) -> String {
    let verb = if n == 1 { "is" } else { "are" };
    format!("{n} of {total} services {verb} {what}.")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn banner(p: &PageView) -> String {
    let overall = Overall::of(&p.services);
    let total = p.services.len();
    let count = |s: ServiceStatus| p.services.iter().filter(|x| x.status == s).count();
    let detail = match overall {
        Overall::Operational => match total {
            1 => "The service is running normally.".to_owned(),
            n => format!("All {n} services are running normally."),
        },
        Overall::Partial | Overall::Major => match total {
            1 => "The service is down.".to_owned(),
            n => of_total(count(ServiceStatus::Down), n, "down"),
        },
        Overall::Degraded => match total {
            1 => "The service is degraded.".to_owned(),
            n => of_total(count(ServiceStatus::Degraded), n, "degraded"),
        },
        Overall::Maintenance => format!(
            "{} under scheduled maintenance.",
            plural(count(ServiceStatus::Maintenance), "service", "services")
        ),
        Overall::NoData => "Results appear here after the first checks.".to_owned(),
    };
    format!(
        "<div class=\"banner b-{css}\" role=\"status\">{icon}<div><strong>{}</strong><span>{}</span></div></div>",
        overall.headline(),
        escape(&detail),
        css = overall.css(),
        icon = icon(overall.css()),
    )
}

/// The maintenance notices of the page; empty when there are none. Takes the notices directly
/// so wiring the maintenance port is one call that fills `PageView::maintenance`.
pub(crate) fn maintenance_section(
    notices: &[MaintenanceNotice],
    services: &[ServiceView],
    now: DateTime<Utc>,
) -> String {
    let relevant: Vec<&MaintenanceNotice> = notices.iter().filter(|n| n.ends_at > now).collect();
    if relevant.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<section aria-labelledby=\"maint-h\"><h2 id=\"maint-h\">Maintenance</h2>");
    for n in relevant {
        let (pill, when) = if n.is_active(now) {
            (
                "In progress".to_owned(),
                format!("Until {}", time_tag(n.ends_at, &short_time(now, n.ends_at))),
            )
        } else {
            (
                "Scheduled".to_owned(),
                format!(
                    "{} to {}",
                    time_tag(n.starts_at, &short_time(now, n.starts_at)),
                    time_tag(n.ends_at, &short_time(now, n.ends_at))
                ),
            )
        };
        let affected: Vec<String> = if n.targets.is_empty() {
            vec!["All services".to_owned()]
        } else {
            services
                .iter()
                .filter(|s| n.affects(&s.id))
                .map(|s| format!("<bdi>{}</bdi>", escape(&s.name)))
                .collect()
        };
        let _ = write!(
            out,
            "<article class=\"card c-maint\"><div class=\"card-head\"><h3><bdi>{}</bdi></h3><span class=\"pill p-maint\">{pill}</span></div><p>{when}</p>",
            escape(&n.title)
        );
        if !affected.is_empty() {
            let _ = write!(
                out,
                "<p class=\"muted\">Affects {}</p>",
                affected.join(", ")
            );
        }
        if let Some(d) = &n.details {
            let _ = write!(out, "<p>{}</p>", escape(d));
        }
        out.push_str("</article>");
    }
    out.push_str("</section>");
    out
}

fn open_incidents(p: &PageView) -> String {
    if p.open_incidents.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<section aria-labelledby=\"inc-h\"><h2 id=\"inc-h\">Current incidents</h2>");
    for i in &p.open_incidents {
        let ongoing = view::span((p.now - i.opened_at).num_seconds());
        let _ = write!(
            out,
            "<article class=\"card c-down\"><div class=\"card-head\"><h3><bdi>{}</bdi></h3><span class=\"pill p-down\">Ongoing · {ongoing}</span></div><p>Down since {} · {}</p></article>",
            escape(&i.target_name),
            time_tag(i.opened_at, &short_time(p.now, i.opened_at)),
            escape(&i.cause),
        );
    }
    out.push_str("</section>");
    out
}

fn resolved_incidents(p: &PageView) -> String {
    if p.resolved_incidents.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section aria-labelledby=\"past-h\"><h2 id=\"past-h\">Past incidents</h2><ol class=\"panel past\">",
    );
    for i in &p.resolved_incidents {
        let lasted = i
            .resolved_at
            .map(|r| {
                format!(
                    " · resolved after {}",
                    view::span((r - i.opened_at).num_seconds())
                )
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li><div class=\"past-what\"><bdi class=\"past-name\">{}</bdi><span class=\"muted\">{}</span></div><div class=\"muted\">{}{lasted}</div></li>",
            escape(&i.target_name),
            escape(&i.cause),
            time_tag(i.opened_at, &short_time(p.now, i.opened_at)),
        );
    }
    out.push_str("</ol></section>");
    out
}

fn service_row(s: &ServiceView, now: DateTime<Utc>) -> String {
    let last_data = s.days.iter().rev().find(|d| d.probes > 0).map(|d| d.day);
    let checked = match (s.last_checked, s.status, last_data) {
        (Some(t), _, _) => format!(
            "Checked {} · {}",
            time_tag(t, &view::relative(now, t)),
            escape(&short_time(now, t))
        ),
        (None, ServiceStatus::Paused, Some(day)) => {
            format!("Checks paused · last data {}", day.format("%b %-d"))
        }
        (None, ServiceStatus::Paused, None) => "Checks paused".to_owned(),
        (None, _, Some(day)) => format!("No recent checks · last data {}", day.format("%b %-d")),
        (None, _, None) => "Not checked yet".to_owned(),
    };
    let (up, probes) = s.period_counts();
    let pct = view::format_uptime(up, probes)
        .map(|p| format!("{p} uptime"))
        .unwrap_or_else(|| "No data".to_owned());
    let spark_label = match (s.latency_24h.quantile(0.5), s.latency_24h.quantile(0.95)) {
        (Some(a), Some(b)) => format!(
            "{}: response time over the last 24 hours, median {}, 95th percentile {}",
            s.name,
            view::format_ms(a),
            view::format_ms(b)
        ),
        _ => String::new(),
    };
    let response = match (
        svg::sparkline(&spark_label, &s.hours),
        s.latency_24h.quantile(0.5),
        s.latency_24h.quantile(0.95),
    ) {
        (Some(spark), Some(p50), Some(p95)) => format!(
            "<div class=\"rt\"><span class=\"rt-label\">Response time · 24 h</span>{spark}<span class=\"rt-num\">p50 <b>{}</b> · p95 <b>{}</b></span></div>",
            view::format_ms(p50),
            view::format_ms(p95)
        ),
        _ => "<div class=\"rt\"><span class=\"rt-label\">Response time · 24 h</span><span class=\"rt-num\">No data in the last 24 h</span></div>".to_owned(),
    };
    format!(
        "<article class=\"svc s-{css}\" id=\"svc-{id}\"><div class=\"svc-head\"><span class=\"dot\" aria-hidden=\"true\"></span><h3 class=\"name\" title=\"{name}\"><bdi>{name}</bdi></h3><span class=\"state\">{state}</span></div>\
<p class=\"meta\">{checked}</p>{bars}<div class=\"axis\" aria-hidden=\"true\"><span>{days} days ago</span><span class=\"pct\">{pct}</span><span>Today</span></div>{response}</article>",
        css = s.status.css(),
        id = escape(s.id.as_str()),
        name = escape(&s.name),
        state = s.status.label(),
        bars = svg::uptime_bars(&s.name, &s.days),
        days = s.days.len(),
    )
}

pub fn render_page(p: &PageView) -> String {
    let mut body = format!(
        "<header class=\"top\"><h1><bdi>{slug}</bdi> status</h1><p class=\"updated\">Updated {}</p></header>",
        time_tag(p.now, &p.now.format("%H:%M:%S UTC").to_string()),
        slug = escape(&p.slug),
    );
    body.push_str(&banner(p));
    body.push_str(&maintenance_section(&p.maintenance, &p.services, p.now));
    body.push_str(&open_incidents(p));
    body.push_str("<section aria-labelledby=\"svc-h\"><div class=\"section-head\"><h2 id=\"svc-h\">Services</h2><span class=\"legend\" aria-hidden=\"true\">");
    for (level, permille) in UptimeLevel::STEPS {
        let _ = write!(
            body,
            "<i class=\"{}\"></i>≥ {}",
            level.css(),
            UptimeLevel::threshold_label(permille)
        );
    }
    let _ = write!(
        body,
        "<i class=\"{}\"></i>lower<i class=\"{}\"></i>no data</span></div><div class=\"panel\">",
        UptimeLevel::Bad.css(),
        UptimeLevel::NoData.css()
    );
    for s in &p.services {
        body.push_str(&service_row(s, p.now));
    }
    body.push_str("</div>");
    if p.hidden > 0 {
        let _ = write!(
            body,
            "<p class=\"note\">Showing the first {} of {} public services.</p>",
            p.services.len(),
            p.services.len() + p.hidden
        );
    }
    body.push_str("</section>");
    body.push_str(&resolved_incidents(p));
    body.push_str(
        "<footer><p>Uptime is the share of successful checks per UTC day. Times are in UTC. \
         This page may be up to 30 seconds old.</p><p>Monitored by netmon</p></footer>",
    );
    document(&format!("{} status", p.slug), &body)
}

/// The same page for an unknown tenant and a tenant without public targets, so the page does
/// not tell which tenants exist.
pub(crate) fn render_not_found() -> String {
    document(
        "Status page not found",
        "<main class=\"empty\"><h1>Status page not found</h1><p>There is no public status page at this address.</p>\
<p class=\"muted\">If you run this service: a status page lists the targets marked <code>public: true</code>.</p></main>",
    )
}

pub fn render_unavailable() -> String {
    document(
        "Status temporarily unavailable",
        "<main class=\"empty\"><h1>Status temporarily unavailable</h1><p>The status data could not be read just now. Please try again in a minute.</p></main>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::view::IncidentView;
    use chrono::TimeZone;
    use netmon_core::TargetId;
    use netmon_core::history::LatencyHistogram;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn service(id: &str, status: ServiceStatus) -> ServiceView {
        ServiceView {
            id: TargetId::parse(id).unwrap(),
            name: format!("Service {id}"),
            status,
            last_checked: Some(now() - chrono::Duration::seconds(42)),
            days: view::day_bars(&[], now().date_naive()),
            hours: Vec::new(),
            latency_24h: LatencyHistogram::default(),
        }
    }

    fn page(services: Vec<ServiceView>, maintenance: Vec<MaintenanceNotice>) -> PageView {
        PageView {
            slug: "acme".into(),
            now: now(),
            services,
            open_incidents: Vec::new(),
            resolved_incidents: Vec::new(),
            maintenance,
            hidden: 0,
        }
    }

    fn parse(html: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(html, opts)
            .unwrap_or_else(|e| panic!("not well-formed: {e}"))
    }

    #[test]
    fn maintenance_is_rendered_from_notices_only() {
        let services = vec![
            service("api", ServiceStatus::Maintenance),
            service("web", ServiceStatus::Operational),
        ];
        assert_eq!(maintenance_section(&[], &services, now()), "");
        let notices = vec![
            MaintenanceNotice {
                title: "Database upgrade <v17>".into(),
                starts_at: now() - chrono::Duration::minutes(10),
                ends_at: now() + chrono::Duration::minutes(50),
                targets: vec![TargetId::parse("api").unwrap()],
                details: Some("Writes are paused.".into()),
            },
            MaintenanceNotice {
                title: "Over".into(),
                starts_at: now() - chrono::Duration::hours(3),
                ends_at: now() - chrono::Duration::hours(2),
                targets: Vec::new(),
                details: None,
            },
        ];
        let html = render_page(&page(services, notices));
        let doc = parse(&html);
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("Maintenance in progress"), "banner");
        assert!(text.contains("Database upgrade <v17>"));
        assert!(text.contains("In progress"));
        assert!(text.contains("Affects Service api"), "{text}");
        assert!(!text.contains("Over"), "finished windows are not shown");
    }

    #[test]
    fn truncation_is_stated() {
        let mut p = page(vec![service("a", ServiceStatus::Operational)], Vec::new());
        p.hidden = 7;
        let html = render_page(&p);
        assert!(html.contains("Showing the first 1 of 8 public services."));
        parse(&html);
    }

    #[test]
    fn every_page_is_well_formed() {
        let mut p = page(
            vec![
                service("a", ServiceStatus::Down),
                service("b", ServiceStatus::NoData),
            ],
            Vec::new(),
        );
        p.open_incidents.push(IncidentView {
            target_name: "A & B".into(),
            opened_at: now() - chrono::Duration::minutes(38),
            resolved_at: None,
            cause: "Timed out".into(),
        });
        p.resolved_incidents.push(IncidentView {
            target_name: "C".into(),
            opened_at: now() - chrono::Duration::days(2),
            resolved_at: Some(now() - chrono::Duration::days(2) + chrono::Duration::minutes(12)),
            cause: "HTTP 503".into(),
        });
        let html = render_page(&p);
        let doc = parse(&html);
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("Major outage"));
        assert!(text.contains("Ongoing · 38 min"));
        assert!(text.contains("resolved after 12 min"));
        assert!(text.contains("42 s ago"));
        parse(&render_not_found());
        parse(&render_unavailable());
    }
}
