//! A realistic status page to look at: a dozen public targets with 90 days of history, a few
//! past incidents, one open incident and one degraded service, written through the store's
//! ports into a fresh SQLite file, then served by the real API router.
//!
//!   cargo run -p netmon-app --example status_demo -- [--listen 127.0.0.1:0] [--interval 60]
//!
//! Prints `dashboard http://ADDR/signin?once=…` lines (one-time dashboard sign-in links, for
//! an admin key of the demo tenant) and then `listening on http://ADDR` once ready;
//! `scripts/screenshots` uses them. History is
//! generated from a fixed seed relative to the current time, one result per `--interval`
//! seconds per target (60 by default, as a real 1-minute target records: 130k results each).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use netmon_app::api::router;
use netmon_app::clock::SystemClock;
use netmon_app::http::ApiContext;
use netmon_core::events::IncidentCause;
use netmon_core::incident::{CheckState, LocationState, OpenIncident, Status, incident_id};
use netmon_core::maintenance::{MaintenanceSpec, MaintenanceWindow};
use netmon_core::notification::{NotificationOutcome, NotificationRecord};
use netmon_core::observation::{ErrorKind, PhaseTimings, ProbeError};
use netmon_core::ports::{
    ChannelStore, Expect, HistoryStore, IncidentRecord, MaintenanceStore, NotificationLog,
    StateStore, TargetStore,
};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::{Target, TargetSpec};
use netmon_core::{ChannelId, TargetId, TenantId};
use netmon_embedded::{MemoryBus, SqliteStore};

/// SplitMix64: deterministic, good enough for plausible noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: i64) -> i64 {
        i64::try_from(self.next() % n.max(1).unsigned_abs()).unwrap_or(0)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A failure window: `start` ago, lasting `minutes`.
struct Outage {
    start: Duration,
    minutes: i64,
    kind: ErrorKind,
    status: Option<u16>,
}

struct Demo {
    id: &'static str,
    name: &'static str,
    check: serde_json::Value,
    public: bool,
    enabled: bool,
    /// Typical response time.
    base_ms: f64,
    /// Chance that a single probe fails outside outages.
    flake: f64,
    /// History starts this many days ago.
    age_days: i64,
    outages: Vec<Outage>,
    /// An outage still going on: minutes ago it began.
    open_since_min: Option<i64>,
    /// A second location that sees the target down right now.
    degraded: bool,
}

fn http(url: &str) -> serde_json::Value {
    serde_json::json!({ "http": { "url": url } })
}

fn ago(days: i64, hours: i64) -> Duration {
    Duration::days(days) + Duration::hours(hours)
}

fn demos() -> Vec<Demo> {
    let base = |id, name, check, base_ms| Demo {
        id,
        name,
        check,
        public: true,
        enabled: true,
        base_ms,
        flake: 0.0001,
        age_days: 90,
        outages: Vec::new(),
        open_since_min: None,
        degraded: false,
    };
    vec![
        base(
            "01-website",
            "Website",
            http("https://www.example.com/"),
            95.0,
        ),
        Demo {
            outages: vec![Outage {
                start: ago(41, 9),
                minutes: 47,
                kind: ErrorKind::Timeout,
                status: None,
            }],
            ..base(
                "02-api",
                "Public API",
                http("https://api.example.com/health"),
                120.0,
            )
        },
        Demo {
            outages: vec![
                Outage {
                    start: ago(12, 3),
                    minutes: 96,
                    kind: ErrorKind::Protocol,
                    status: Some(502),
                },
                Outage {
                    start: ago(63, 20),
                    minutes: 35,
                    kind: ErrorKind::Connect,
                    status: None,
                },
            ],
            open_since_min: Some(38),
            ..base(
                "03-checkout",
                "Checkout",
                http("https://shop.example.com/checkout/health"),
                240.0,
            )
        },
        base(
            "04-sso",
            "Sign-in (SSO)",
            http("https://login.example.com/.well-known/openid-configuration"),
            70.0,
        ),
        Demo {
            degraded: true,
            flake: 0.0015,
            outages: vec![Outage {
                start: ago(2, 5),
                minutes: 25,
                kind: ErrorKind::Timeout,
                status: None,
            }],
            ..base(
                "05-search",
                "Search",
                http("https://search.example.com/ping"),
                310.0,
            )
        },
        Demo {
            outages: vec![Outage {
                start: ago(27, 14),
                minutes: 180,
                kind: ErrorKind::Protocol,
                status: Some(503),
            }],
            ..base(
                "06-payments",
                "Payments webhooks",
                http("https://pay.example.com/hooks/health"),
                180.0,
            )
        },
        base(
            "07-cdn",
            "CDN · images & assets",
            http("https://cdn.example.com/pixel.gif"),
            22.0,
        ),
        base(
            "08-docs",
            "Documentation",
            http("https://docs.example.com/"),
            140.0,
        ),
        Demo {
            flake: 0.0025,
            outages: vec![Outage {
                start: ago(6, 2),
                minutes: 310,
                kind: ErrorKind::Connect,
                status: None,
            }],
            ..base(
                "09-smtp",
                "Outgoing mail (SMTP)",
                serde_json::json!({ "tcp": { "host": "smtp.example.com", "port": 587 } }),
                45.0,
            )
        },
        base(
            "10-dns",
            "DNS",
            serde_json::json!({ "dns": { "name": "example.com" } }),
            12.0,
        ),
        Demo {
            age_days: 23,
            ..base(
                "11-eu",
                "EU region gateway",
                http("https://eu.example.com/health"),
                60.0,
            )
        },
        Demo {
            enabled: false,
            age_days: 70,
            ..base(
                "12-legacy",
                "Legacy API (v1)",
                http("https://v1.example.com/health"),
                400.0,
            )
        },
        Demo {
            public: false,
            ..base(
                "internal-db",
                "Internal database (not public)",
                serde_json::json!({ "tcp": { "host": "10.0.3.7", "port": 5432 } }),
                3.0,
            )
        },
    ]
}

fn cause(kind: ErrorKind, status: Option<u16>, since: DateTime<Utc>) -> IncidentCause {
    IncidentCause {
        location: "eu-west".into(),
        failing_since: since,
        status_code: status,
        error: (status.is_none()).then(|| ProbeError::new(kind, "demo failure")),
        failed_conditions: Vec::new(),
    }
}

async fn seed(store: &SqliteStore, tenant: &TenantId, now: DateTime<Utc>, interval: i64) {
    let mut rng = Rng(0x5EED_2026);
    for d in demos() {
        let mut spec = serde_json::json!({
            "id": d.id, "name": d.name, "public": d.public, "enabled": d.enabled,
            "interval": interval, "timeout": "5s",
        });
        if let (Some(obj), Some(check)) = (spec.as_object_mut(), d.check.as_object()) {
            obj.extend(check.clone());
        }
        let spec: TargetSpec = serde_json::from_value(spec).expect("demo target spec");
        let created = now - Duration::days(d.age_days);
        let target = Target {
            tenant: tenant.clone(),
            spec,
            version: 0,
            created_at: created,
            updated_at: created,
        };
        store
            .put_target(target, Expect::Absent)
            .await
            .expect("demo target stored");
        let id = TargetId::parse(d.id).expect("demo id");

        let stop = if d.enabled {
            now
        } else {
            now - Duration::days(9)
        };
        let windows: Vec<(DateTime<Utc>, DateTime<Utc>, &Outage)> = d
            .outages
            .iter()
            .map(|o| {
                (
                    now - o.start,
                    now - o.start + Duration::minutes(o.minutes),
                    o,
                )
            })
            .collect();
        let open_from = d.open_since_min.map(|m| now - Duration::minutes(m));
        let mut batch = Vec::with_capacity(4096);
        let mut t = now - Duration::days(d.age_days) + Duration::seconds(rng.below(interval));
        while t < stop {
            let hour = f64::from(chrono::Timelike::hour(&t));
            // Busier (slower) in the European afternoon, plus long-tailed noise.
            let daily = 1.0 + 0.25 * ((hour - 15.0) / 24.0 * std::f64::consts::TAU).cos();
            let noise = -rng.unit().max(1e-9).ln() * 0.35 + 0.8;
            let ms = d.base_ms * daily * noise;
            let in_outage = windows.iter().find(|(a, b, _)| t >= *a && t < *b);
            let down =
                in_outage.is_some() || open_from.is_some_and(|f| t >= f) || rng.unit() < d.flake;
            let (status_code, error) = match (down, in_outage) {
                (false, _) => (Some(200), None),
                (true, Some((_, _, o))) => (
                    o.status,
                    o.status
                        .is_none()
                        .then(|| ProbeError::new(o.kind, "demo failure")),
                ),
                (true, None) => (
                    None,
                    Some(ProbeError::new(ErrorKind::Timeout, "demo timeout")),
                ),
            };
            batch.push(ProbeResult {
                tenant: tenant.clone(),
                target: id.clone(),
                location: "eu-west".into(),
                started_at: t,
                slot: None,
                duration_ms: if down && error.is_some() {
                    10_000.0
                } else {
                    ms
                },
                timings: PhaseTimings {
                    total_ms: ms,
                    ..PhaseTimings::default()
                },
                outcome: if down { Outcome::Down } else { Outcome::Up },
                status_code,
                ip: None,
                certificate_expires_at: None,
                conditions: Vec::new(),
                error,
            });
            if batch.len() == batch.capacity() {
                store.record(&batch).await.expect("demo history");
                batch.clear();
            }
            t += Duration::seconds(interval);
        }
        store.record(&batch).await.expect("demo history");

        let mut incidents: Vec<IncidentRecord> = windows
            .iter()
            .map(|(from, to, o)| IncidentRecord {
                tenant: tenant.clone(),
                incident_id: incident_id(d.id, *from),
                target_id: id.clone(),
                target_name: d.name.to_owned(),
                opened_at: *from,
                resolved_at: Some(*to),
                cause: cause(o.kind, o.status, *from),
            })
            .collect();
        let mut state = CheckState {
            status: if open_from.is_some() {
                Status::Down
            } else {
                Status::Up
            },
            status_since: Some(open_from.unwrap_or(created)),
            ..CheckState::default()
        };
        let mut location = |down: bool| LocationState {
            down,
            consecutive_failures: if down { 3 } else { 0 },
            consecutive_successes: if down { 0 } else { 2 },
            failing_since: None,
            watermark: stop - Duration::seconds(rng.below(interval)),
        };
        state
            .locations
            .insert("eu-west".into(), location(open_from.is_some()));
        if d.degraded {
            state.locations.insert("us-east".into(), location(true));
        }
        if let Some(from) = open_from {
            let c = cause(ErrorKind::Timeout, None, from);
            state.incident = Some(OpenIncident {
                id: incident_id(d.id, from),
                opened_at: from,
                cause: c.clone(),
                last_notified_at: from,
                reminders_sent: 0,
            });
            incidents.push(IncidentRecord {
                tenant: tenant.clone(),
                incident_id: incident_id(d.id, from),
                target_id: id.clone(),
                target_name: d.name.to_owned(),
                opened_at: from,
                resolved_at: None,
                cause: c,
            });
            // What the dashboard's incident timeline shows: one channel took it, one retries.
            for (channel, outcome, reason) in [
                ("oncall-slack", NotificationOutcome::Delivered, None),
                (
                    "ops-webhook",
                    NotificationOutcome::Retrying,
                    Some("HTTP 503 from hooks.example.com:443".to_owned()),
                ),
            ] {
                store
                    .record_attempt(
                        tenant,
                        &NotificationRecord {
                            incident_id: incident_id(d.id, from),
                            event_id: format!("{}-opened", incident_id(d.id, from)),
                            event_type: "incident.opened".into(),
                            target_id: id.clone(),
                            channel_id: ChannelId::parse(channel).expect("channel id"),
                            outcome,
                            next_attempt_at: reason.as_ref().map(|_| now + Duration::minutes(2)),
                            reason,
                            attempts: 1,
                            first_attempt_at: from + Duration::seconds(2),
                            last_attempt_at: from + Duration::seconds(2),
                        },
                    )
                    .await
                    .expect("demo notification");
            }
        }
        if d.enabled {
            store
                .commit_state(tenant, &id, Expect::Absent, &state, &incidents, &[])
                .await
                .expect("demo state");
        }
    }
    // An announced window: the page lists it under the banner, before it starts.
    let start = now
        .date_naive()
        .and_hms_opt(2, 0, 0)
        .expect("02:00")
        .and_utc()
        + Duration::days(1);
    let window: MaintenanceSpec = serde_json::from_value(serde_json::json!({
        "id": "mail-upgrade", "name": "Mail server upgrade",
        "starts_at": start, "ends_at": start + Duration::hours(2), "targets": ["09-smtp"],
    }))
    .expect("demo window");
    store
        .put_window(
            MaintenanceWindow {
                tenant: tenant.clone(),
                spec: window,
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .expect("demo window stored");
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One-time dashboard sign-in links printed (`scripts/screenshots` uses one per shot).
const DASHBOARD_LINKS: usize = 8;

#[tokio::main]
async fn main() {
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let interval: i64 = arg("--interval")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
        .clamp(10, 86_400);
    let dir = std::env::temp_dir().join(format!("netmon-status-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Arc::new(
        SqliteStore::open(dir.join("demo.db"))
            .await
            .expect("demo store opens"),
    );
    let tenant = TenantId::default_tenant();
    let started = std::time::Instant::now();
    seed(&store, &tenant, Utc::now(), interval).await;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    for (id, name, kind) in [
        (
            "oncall-slack",
            "On-call Slack",
            serde_json::json!({"slack": {"url": "https://hooks.slack.com/services/T0/B0/demo"}}),
        ),
        (
            "ops-webhook",
            "Ops webhook",
            serde_json::json!({"webhook": {"url": "https://hooks.example.com/netmon"}}),
        ),
    ] {
        let mut spec = kind;
        spec["id"] = id.into();
        spec["name"] = name.into();
        let channel = netmon_core::channel::Channel {
            tenant: tenant.clone(),
            spec: serde_json::from_value(spec).expect("demo channel"),
            version: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        store
            .put_channel(channel, Expect::Absent)
            .await
            .expect("demo channel stored");
    }
    let key = netmon_app::auth::create(
        store.as_ref(),
        tenant.clone(),
        netmon_core::apikey::Role::Admin,
        "demo",
        Utc::now(),
    )
    .await
    .expect("demo key");

    // The API alone over the store: no pipeline runs, so nothing consumes events.
    let ctx = ApiContext::builder(
        store.clone(),
        store.clone(),
        Arc::new(MemoryBus::new()),
        Arc::new(SystemClock),
        tenant,
    )
    .build();
    // One-time dashboard sign-in links, one per screenshot (each browser profile signs in).
    let links: Vec<String> = (0..DASHBOARD_LINKS)
        .map(|_| ctx.sessions.one_time_token(&key.record.id, Utc::now()))
        .collect();
    let app = router(ctx);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("demo listens");
    let addr = listener.local_addr().expect("bound address");
    for token in links {
        println!("dashboard http://{addr}/signin?once={token}");
    }
    println!("listening on http://{addr}");
    axum::serve(listener, app).await.expect("demo serves");
}
