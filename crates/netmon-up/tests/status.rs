//! The public status page and badges over real HTTP: the API router on port 0 over an isolated
//! SQLite store and a manual clock, with history recorded through the `HistoryStore` port.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use common::{Harness, temp_store};
use netmon_app::api::router;
use netmon_app::http::ApiContext;
use netmon_app::status::view;
use netmon_core::events::IncidentCause;
use netmon_core::history::{Granularity, aggregate};
use netmon_core::incident::{CheckState, LocationState, OpenIncident, Status};
use netmon_core::observation::{ErrorKind, ProbeError};
use netmon_core::ports::{Clock, Expect, HistoryStore, MaintenanceStore, StateStore, TargetStore};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::{TargetId, TenantId};
use netmon_embedded::{MemoryBus, SqliteStore};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::suites::fixtures;

const HOSTILE: &str = "Web <b>&amp;</b>\"'<script>alert(1)</script>";

struct App {
    base: String,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    server: tokio::task::JoinHandle<()>,
}

impl App {
    fn maintenance_store(&self) -> &dyn MaintenanceStore {
        self.store.as_ref()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn app(name: &str) -> App {
    let store = Arc::new(
        SqliteStore::open(temp_store(name))
            .await
            .expect("store opens"),
    );
    // 2026-11-22T10:00:00Z.
    let clock = Arc::new(ManualClock::at_fixed_start());
    let ctx = ApiContext::builder(
        store.clone(),
        store.clone(),
        Arc::new(MemoryBus::new()),
        clock.clone(),
        TenantId::default_tenant(),
    )
    .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router(ctx)).await;
    });
    App {
        base,
        store,
        clock,
        server,
    }
}

struct Got {
    status: u16,
    content_type: String,
    cache: String,
    body: String,
}

async fn get(url: &str) -> Got {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client.get(url).send().await.expect("request sent");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    Got {
        status,
        content_type,
        cache,
        body,
    }
}

fn parse(doc: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(doc, opts)
        .unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{doc}"))
}

fn text_of(node: roxmltree::Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

fn by_id<'a>(doc: &'a roxmltree::Document, id: &str) -> Option<roxmltree::Node<'a, 'a>> {
    doc.descendants().find(|n| n.attribute("id") == Some(id))
}

async fn put_target(store: &SqliteStore, tenant: &TenantId, id: &str, name: &str, public: bool) {
    let mut t = fixtures::target(tenant, id, name);
    t.spec.public = public;
    store
        .put_target(t, Expect::Absent)
        .await
        .expect("target stored");
}

fn result(tenant: &TenantId, id: &str, at: DateTime<Utc>, up: bool, ms: f64) -> ProbeResult {
    let outcome = if up { Outcome::Up } else { Outcome::Down };
    let mut r = fixtures::result(tenant, id, "test", at, outcome);
    r.duration_ms = ms;
    r
}

fn location(down: bool, at: DateTime<Utc>) -> LocationState {
    LocationState {
        down,
        consecutive_failures: u32::from(down),
        consecutive_successes: u32::from(!down),
        failing_since: None,
        watermark: at,
    }
}

fn up_state(at: DateTime<Utc>) -> CheckState {
    let mut s = fixtures::state(Status::Up, at);
    s.locations.insert("test".into(), location(false, at));
    s
}

struct Seeded {
    /// Results of `web` in the last 24 hours (all up), for the expected latency.
    web_today: Vec<ProbeResult>,
    web_last: DateTime<Utc>,
}

/// Tenant `default`: `web` (public, hostile name) with three days of history, `api` (public,
/// down with an open incident), `secret` (not public, with history).
async fn seed_default(app: &App) -> Seeded {
    let tenant = TenantId::default_tenant();
    let store = &app.store;
    let now = app.clock.now();
    let today = Granularity::Day.floor(now);
    put_target(store, &tenant, "web", HOSTILE, true).await;
    put_target(store, &tenant, "api", "Public API", true).await;
    put_target(store, &tenant, "secret", "Secret DB", false).await;

    let mut batch = Vec::new();
    // Two days ago: 100 of 100 up. Yesterday (before the 24 h window): 96 of 100.
    for i in 0..100 {
        let t = today - Duration::days(2) + Duration::minutes(5 * i);
        batch.push(result(&tenant, "web", t, true, 20.0));
        let t = today - Duration::days(1) + Duration::minutes(5 * i);
        batch.push(result(&tenant, "web", t, i % 25 != 0, 20.0));
    }
    // Today 08:00 to 09:35: 20 up, 40 to 59 ms.
    let mut web_today = Vec::new();
    for i in 0..20 {
        let t = today + Duration::hours(8) + Duration::minutes(5 * i);
        web_today.push(result(&tenant, "web", t, true, 40.0 + i as f64));
    }
    batch.extend(web_today.iter().cloned());
    for i in 0..10 {
        let t = today + Duration::hours(9) + Duration::minutes(i);
        batch.push(result(&tenant, "secret", t, true, 3.0));
        batch.push(result(&tenant, "api", t, i < 4, 100.0));
    }
    store.record(&batch).await.expect("history recorded");
    let web_last = web_today.last().expect("results").started_at;

    store
        .commit_state(
            &tenant,
            &TargetId::parse("web").expect("id"),
            Expect::Absent,
            &up_state(web_last),
            &[],
            &[],
        )
        .await
        .expect("web state");
    let opened = today + Duration::hours(9) + Duration::minutes(6);
    let cause = IncidentCause {
        location: "test".into(),
        failing_since: today + Duration::hours(9) + Duration::minutes(4),
        status_code: None,
        error: Some(ProbeError::new(
            ErrorKind::Timeout,
            "connect to 10.0.3.7:443 timed out",
        )),
        failed_conditions: Vec::new(),
    };
    let mut down = fixtures::state(Status::Down, opened);
    down.locations.insert(
        "test".into(),
        location(true, today + Duration::hours(9) + Duration::minutes(9)),
    );
    down.incident = Some(OpenIncident {
        id: "api-1".into(),
        opened_at: opened,
        cause: cause.clone(),
        last_notified_at: opened,
        reminders_sent: 0,
    });
    let mut open = fixtures::incident(&tenant, "api", "api-1", opened, None);
    open.cause = cause;
    // A resolved incident yesterday, and one of the private target that must not show.
    let resolved = fixtures::incident(
        &tenant,
        "api",
        "api-0",
        today - Duration::hours(20),
        Some(today - Duration::hours(19)),
    );
    store
        .commit_state(
            &tenant,
            &TargetId::parse("api").expect("id"),
            Expect::Absent,
            &down,
            &[open, resolved],
            &[],
        )
        .await
        .expect("api state");
    let private = fixtures::incident(
        &tenant,
        "secret",
        "secret-0",
        today - Duration::hours(30),
        Some(today - Duration::hours(29)),
    );
    store
        .commit_state(
            &tenant,
            &TargetId::parse("secret").expect("id"),
            Expect::Absent,
            &up_state(now),
            &[private],
            &[],
        )
        .await
        .expect("secret state");
    Seeded {
        web_today,
        web_last,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_public_targets_with_numbers_from_recorded_history() {
    let app = app("status-page").await;
    let seeded = seed_default(&app).await;
    let got = get(&format!("{}/status/default", app.base)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.content_type, "text/html; charset=utf-8");
    assert_eq!(got.cache, "public, max-age=30");
    let doc = parse(&got.body);
    let all = text_of(doc.root());

    // Only public targets; the private one's name, id and incident appear nowhere.
    assert!(by_id(&doc, "svc-web").is_some() && by_id(&doc, "svc-api").is_some());
    assert!(by_id(&doc, "svc-secret").is_none());
    assert!(!got.body.contains("Secret DB") && !got.body.contains("secret"));

    // The hostile name is text, never markup.
    assert!(!got.body.contains("<script>alert"), "unescaped name");
    let web = by_id(&doc, "svc-web").expect("web row");
    let heading = web
        .descendants()
        .find(|n| n.has_tag_name("h3"))
        .expect("name");
    assert_eq!(text_of(heading), HOSTILE);

    // 90 bars; numbers from what was recorded: 100/100, 96/100, 20/20 → 216/220.
    let bars = web
        .descendants()
        .find(|n| n.attribute("class") == Some("bars"))
        .expect("bars");
    let rects: Vec<_> = bars.children().filter(|n| n.has_tag_name("rect")).collect();
    assert_eq!(rects.len(), 90);
    let today = app.clock.now().date_naive();
    let bar = |back: u64| {
        let r = rects[89 - back as usize];
        (r.attribute("class").unwrap_or("").to_owned(), text_of(r))
    };
    let day = |back: u64| today - chrono::Days::new(back);
    assert_eq!(
        bar(0),
        (
            "u-full".into(),
            format!("{}: 100% uptime (20 of 20 checks up)", day(0))
        )
    );
    assert_eq!(
        bar(1),
        (
            "u-fair".into(),
            format!("{}: 96% uptime (96 of 100 checks up)", day(1))
        )
    );
    assert_eq!(
        bar(2),
        (
            "u-full".into(),
            format!("{}: 100% uptime (100 of 100 checks up)", day(2))
        )
    );
    assert_eq!(bar(3), ("u-none".into(), format!("{}: no data", day(3))));
    let web_text = text_of(web);
    assert!(web_text.contains("98.18% uptime"), "{web_text}");
    assert!(
        bars.attribute("aria-label").is_some_and(
            |l| l.starts_with(HOSTILE) && l.contains("98.18% uptime over the last 90 days")
        ),
        "{:?}",
        bars.attribute("aria-label")
    );

    // Response time: the median of today's recorded latencies, via the shared histogram.
    let hours = aggregate(
        seeded.web_today.iter().map(netmon_core::history::sample),
        Granularity::Hour,
    );
    let p50 = view::merged_latency(&hours).quantile(0.5).expect("p50");
    assert!((30.0..=70.0).contains(&p50), "{p50}");
    assert!(
        web_text.contains(&format!("p50 {}", view::format_ms(p50))),
        "{web_text}"
    );
    assert!(web.descendants().any(|n| n.has_tag_name("polyline")));

    // Last checked: the newest recorded result, relative and absolute.
    let time = web
        .descendants()
        .find(|n| n.has_tag_name("time"))
        .expect("last checked");
    assert_eq!(
        time.attribute("datetime"),
        Some(view::iso(seeded.web_last).as_str())
    );
    assert_eq!(text_of(time), "25 min ago");

    // The open incident with a public cause (not the probe's error text), the banner, and the
    // resolved one of the public target.
    assert!(
        all.contains("Major outage") && all.contains("1 of 2 services is down."),
        "{all}"
    );
    let incidents = by_id(&doc, "inc-h")
        .and_then(|h| h.parent())
        .expect("incidents");
    let inc_text = text_of(incidents);
    assert!(
        inc_text.contains("Public API") && inc_text.contains("Timed out"),
        "{inc_text}"
    );
    assert!(inc_text.contains("Ongoing · 54 min"), "{inc_text}");
    assert!(!got.body.contains("10.0.3.7"), "probe error text leaked");
    let past = by_id(&doc, "past-h")
        .and_then(|h| h.parent())
        .expect("past incidents");
    let past_text = text_of(past);
    assert!(past_text.contains("resolved after 1 h"), "{past_text}");
    assert_eq!(
        past.descendants().filter(|n| n.has_tag_name("li")).count(),
        1
    );
    let api = text_of(by_id(&doc, "svc-api").expect("api row"));
    assert!(api.contains("Down") && api.contains("40% uptime"), "{api}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_slugs_and_tenants_without_public_targets_get_one_friendly_404() {
    let app = app("status-404").await;
    let private = TenantId::parse("private-only").expect("tenant");
    put_target(&app.store, &private, "db", "Database", false).await;
    let mut bodies = Vec::new();
    for slug in ["nobody", "private-only", "not%20a%20slug"] {
        let got = get(&format!("{}/status/{slug}", app.base)).await;
        assert_eq!(got.status, 404, "{slug}");
        assert_eq!(got.content_type, "text/html; charset=utf-8", "{slug}");
        let doc = parse(&got.body);
        assert!(text_of(doc.root()).contains("Status page not found"));
        bodies.push(got.body);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "404s do not tell tenants apart"
    );
    assert!(!bodies[1].contains("Database"));

    let got = get(&format!("{}/status", app.base)).await;
    assert_eq!(got.status, 303);
}

fn badge_texts(svg: &str) -> (String, Vec<String>, Option<String>) {
    let doc = parse(svg);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let label = root.attribute("aria-label").unwrap_or("").to_owned();
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(text_of)
        .collect();
    let colour = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .nth(2)
        .and_then(|n| n.attribute("fill"))
        .map(str::to_owned);
    (label, texts, colour)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_show_public_targets_only() {
    let app = app("status-badges").await;
    let seeded = seed_default(&app).await;
    let b = &app.base;
    let ok = |got: &Got| {
        assert_eq!(got.content_type, "image/svg+xml");
        assert_eq!(got.cache, "public, max-age=30");
    };

    let got = get(&format!("{b}/badge/web/status")).await;
    assert_eq!(got.status, 200);
    ok(&got);
    let (label, texts, colour) = badge_texts(&got.body);
    assert_eq!(label, "status: up");
    assert_eq!(texts, ["status", "status", "up", "up"]);
    assert_eq!(colour.as_deref(), Some(view::colour::BRIGHT_GREEN));
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/api/status")).await.body);
    assert_eq!(label, "status: down");

    // Uptime over the default 30 days, 7 days and 24 hours, from the recorded results.
    let cases = [
        ("", "uptime 30d: 98.18%", view::colour::YELLOW),
        ("?period=7d", "uptime 7d: 98.18%", view::colour::YELLOW),
        (
            "?period=24h",
            "uptime 24h: 100%",
            view::colour::BRIGHT_GREEN,
        ),
    ];
    for (query, want, want_colour) in cases {
        let got = get(&format!("{b}/badge/web/uptime.svg{query}")).await;
        assert_eq!(got.status, 200, "{query}");
        let (label, _, colour) = badge_texts(&got.body);
        assert_eq!(label, want);
        assert_eq!(colour.as_deref(), Some(want_colour), "{query}");
    }
    let hours = aggregate(
        seeded.web_today.iter().map(netmon_core::history::sample),
        Granularity::Hour,
    );
    let p50 = view::merged_latency(&hours).quantile(0.5).expect("p50");
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/web/response-time")).await.body);
    assert_eq!(label, format!("response time: {}", view::format_ms(p50)));

    // The tenant may be explicit.
    let explicit = get(&format!("{b}/badge/default/web/status")).await;
    assert_eq!(explicit.status, 200);
    assert_eq!(badge_texts(&explicit.body).0, "status: up");

    // Private, unknown and malformed: one 404 badge, no data.
    let private = get(&format!("{b}/badge/secret/uptime")).await;
    assert_eq!(private.status, 404);
    ok(&private);
    assert_eq!(badge_texts(&private.body).0, "uptime 30d: not found");
    for url in [
        format!("{b}/badge/nope/uptime"),
        format!("{b}/badge/default/secret/uptime"),
        format!("{b}/badge/nobody/web/uptime"),
        format!("{b}/badge/bad%20id/uptime"),
    ] {
        let got = get(&url).await;
        assert_eq!((got.status, &got.body), (404, &private.body), "{url}");
    }
    let got = get(&format!("{b}/badge/web/colour")).await;
    assert_eq!(got.status, 404);
    assert_eq!(badge_texts(&got.body).0, "badge: not found");

    // Bad input is a 400 badge that says what to do.
    let got = get(&format!("{b}/badge/web/uptime?period=2w")).await;
    assert_eq!(got.status, 400);
    assert!(
        badge_texts(&got.body)
            .0
            .contains("use period 24h, 7d, 30d or 90d")
    );
    let long = "x".repeat(65);
    assert_eq!(
        get(&format!("{b}/badge/web/status?label={long}"))
            .await
            .status,
        400
    );

    // A custom label is escaped: the parsed text is exactly what was asked for.
    let hostile = "<b>\"up'&</b>";
    let got = get(&format!(
        "{b}/badge/web/status?label=%3Cb%3E%22up%27%26%3C%2Fb%3E&cache=1"
    ))
    .await;
    assert_eq!(got.status, 200);
    let (label, texts, _) = badge_texts(&got.body);
    assert_eq!(label, format!("{hostile}: up"));
    assert_eq!(texts[0], hostile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_other() {
    let app = app("status-tenants").await;
    seed_default(&app).await;
    let other = TenantId::parse("other").expect("tenant");
    // Same target id as the default tenant's, plus one only the other tenant has.
    put_target(&app.store, &other, "web", "Other Web", true).await;
    put_target(&app.store, &other, "beta", "Beta Only", true).await;
    let now = app.clock.now();
    let batch: Vec<_> = (1..=10)
        .map(|i| result(&other, "web", now - Duration::minutes(i), false, 0.0))
        .collect();
    app.store.record(&batch).await.expect("history");
    let b = &app.base;

    let mine = get(&format!("{b}/status/default")).await;
    assert_eq!(mine.status, 200);
    assert!(!mine.body.contains("Other Web") && !mine.body.contains("Beta Only"));
    assert!(text_of(parse(&mine.body).root()).contains("98.18% uptime"));
    let theirs = get(&format!("{b}/status/other")).await;
    assert_eq!(theirs.status, 200);
    let doc = parse(&theirs.body);
    let text = text_of(doc.root());
    assert!(text.contains("Other Web") && text.contains("Beta Only"));
    assert!(!text.contains("Public API") && !theirs.body.contains("alert(1)"));
    let web = text_of(by_id(&doc, "svc-web").expect("their web"));
    assert!(
        web.contains("0% uptime") && !web.contains("98.18%"),
        "{web}"
    );

    // Badges: each tenant's own numbers; the other tenant's target is 404 under mine.
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/other/web/uptime")).await.body);
    assert_eq!(label, "uptime 30d: 0%");
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/web/uptime")).await.body);
    assert_eq!(label, "uptime 30d: 98.18%");
    for url in [
        format!("{b}/badge/beta/status"),
        format!("{b}/badge/default/beta/status"),
    ] {
        let got = get(&url).await;
        assert_eq!(got.status, 404, "{url}");
        assert_eq!(badge_texts(&got.body).0, "status: not found");
    }
    assert_eq!(
        get(&format!("{b}/badge/other/beta/status")).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_badges_are_served_from_memory_for_30_seconds() {
    let app = app("status-cache").await;
    seed_default(&app).await;
    let b = &app.base;
    let page = get(&format!("{b}/status/default")).await.body;
    let badge = get(&format!("{b}/badge/web/uptime?period=24h")).await.body;
    assert!(badge.contains("100%"));
    // A failure now: not visible until the cached copies expire.
    let tenant = TenantId::default_tenant();
    let now = app.clock.now();
    app.store
        .record(&[result(
            &tenant,
            "web",
            now - Duration::seconds(1),
            false,
            0.0,
        )])
        .await
        .expect("history");
    app.clock.advance(StdDuration::from_secs(29));
    assert_eq!(get(&format!("{b}/status/default")).await.body, page);
    assert_eq!(
        get(&format!("{b}/badge/web/uptime?period=24h")).await.body,
        badge
    );
    app.clock.advance(StdDuration::from_secs(1));
    let fresh = get(&format!("{b}/status/default")).await.body;
    assert!(fresh.contains("97.73% uptime"), "216 of 221");
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/web/uptime?period=24h")).await.body);
    assert_eq!(label, "uptime 24h: 95.23%", "20 of 21");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netmon_up_serves_the_status_page_from_its_own_probes() {
    let mut h = Harness::new(
        "status-embedded",
        "  - id: site\n    name: Our site\n    public: true\n    http: {url: '{target}'}\n  - id: hidden\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    h.running()
        .wait_jobs(1, common::WAIT)
        .await
        .expect("first round");
    let b = format!("http://{}", h.running().api_addr());
    let got = get(&format!("{b}/status/default")).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let doc = parse(&got.body);
    let site = text_of(by_id(&doc, "svc-site").expect("public target"));
    assert!(
        site.contains("Our site") && site.contains("Operational"),
        "{site}"
    );
    assert!(
        site.contains("100% uptime") && site.contains("Checked just now"),
        "{site}"
    );
    assert!(by_id(&doc, "svc-hidden").is_none());
    let (label, ..) = badge_texts(&get(&format!("{b}/badge/site/status")).await.body);
    assert_eq!(label, "status: up");
    assert_eq!(get(&format!("{b}/badge/hidden/status")).await.status, 404);
    h.stop().await;
}

/// Maintenance windows from the store: an active one covering `web` by id and a scheduled one
/// for every service are announced; one covering only a private target is not; `web` shows
/// (and badges) as in maintenance while `api` keeps its own status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_are_announced_for_public_targets_only() {
    let app = app("status-maintenance").await;
    seed_default(&app).await;
    let tenant = TenantId::default_tenant();
    let now = app.clock.now();
    let mut windows = [
        fixtures::window(
            &tenant,
            "db-upgrade",
            now - Duration::minutes(10),
            now + Duration::hours(1),
            &["web"],
        ),
        fixtures::window(
            &tenant,
            "network",
            now + Duration::days(2),
            now + Duration::days(2) + Duration::hours(2),
            &[],
        ),
        fixtures::window(
            &tenant,
            "secret-move",
            now - Duration::minutes(5),
            now + Duration::hours(3),
            &["secret"],
        ),
        // Over, and too far ahead: neither is shown.
        fixtures::window(
            &tenant,
            "last-week",
            now - Duration::days(7),
            now - Duration::days(6),
            &[],
        ),
        fixtures::window(
            &tenant,
            "next-quarter",
            now + Duration::days(90),
            now + Duration::days(91),
            &[],
        ),
    ];
    for (w, name) in windows.iter_mut().zip([
        "Database upgrade",
        "Network work",
        "Secret move",
        "Old work",
        "Far work",
    ]) {
        w.spec.name = name.to_owned();
        app.maintenance_store()
            .put_window(w.clone(), Expect::Absent)
            .await
            .expect("window stored");
    }

    let got = get(&format!("{}/status/default", app.base)).await;
    assert_eq!(got.status, 200);
    let doc = parse(&got.body);
    let section = by_id(&doc, "maint-h")
        .and_then(|h| h.parent())
        .expect("a maintenance section");
    let text = text_of(section);
    assert!(
        text.contains("Database upgrade") && text.contains("In progress"),
        "{text}"
    );
    assert!(
        text.contains("Network work") && text.contains("Scheduled"),
        "{text}"
    );
    assert!(text.contains("All services"), "{text}");
    for hidden in ["Secret move", "Secret DB", "Old work", "Far work"] {
        assert!(!got.body.contains(hidden), "{hidden} must not be shown");
    }

    let (label, ..) = badge_texts(&get(&format!("{}/badge/web/status", app.base)).await.body);
    assert_eq!(label, "status: maintenance");
    let (label, ..) = badge_texts(&get(&format!("{}/badge/api/status", app.base)).await.body);
    assert_eq!(
        label, "status: down",
        "api is not covered by the active window"
    );
}
