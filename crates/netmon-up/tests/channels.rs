//! Every provider channel kind delivered through the real notifier, the real delivery and the
//! real probe engine (so the SSRF guard) to a local fake of the provider on port 0: accepted once,
//! throttled (429 with Retry-After), refused for good (4xx), routed by its event filter; and no
//! credential in any error or log line along the way. Email the same way, over SMTP to a local
//! fake SMTP server: a 4xx reply is retried, a 5xx one is final.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_app::delivery::{ChannelDelivery, MemorySink};
use netmon_app::services::notifier::{Notifier, NotifyReport};
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::events::{
    Envelope, Event, IncidentCause, IncidentOpened, IncidentReminder, IncidentResolved, Subject,
};
use netmon_core::observation::ConditionResult;
use netmon_core::ports::{ChannelStore, Deliver, DeliveryError, Expect};
use netmon_core::{TargetId, TenantId};
use netmon_probe::{ProbeConfig, Prober, SystemResolver};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::MemoryStore;
use netmon_testkit::providers::{Answer, Call, FakeProvider};
use serde_json::{Value, json};

const INCIDENT: &str = "01JINCIDENT0000000000000001";

/// Every credential the channels below are given; none may show anywhere.
const SECRETS: &[&str] = &[
    "s3cr3t-slack",
    "s3cr3t-discord",
    "s3cr3t-teams",
    "s3cr3t-gchat",
    "s3cr3t-mm",
    "s3cr3t-pd",
    "s3cr3t-og",
    "s3cr3t-tg",
    "s3cr3t-ntfy",
    "s3cr3t-po-app",
    "s3cr3t-po-user",
    "s3cr3t-smtp",
];

/// The channel of `kind` pointed at `fake`, and the path (with query) its sends go to.
fn spec_for(kind: &str, fake: &FakeProvider) -> (ChannelSpec, &'static str) {
    let base = fake.url("");
    let (settings, path) = match kind {
        "slack" => (
            json!({"url": fake.url("services/T1/B1/s3cr3t-slack")}),
            "/services/T1/B1/s3cr3t-slack",
        ),
        "discord" => (
            json!({"url": fake.url("api/webhooks/1/s3cr3t-discord")}),
            "/api/webhooks/1/s3cr3t-discord",
        ),
        "teams" => (
            json!({"url": fake.url("workflows/w1/invoke?sig=s3cr3t-teams")}),
            "/workflows/w1/invoke?sig=s3cr3t-teams",
        ),
        "google_chat" => (
            json!({"url": fake.url("v1/spaces/A/messages?key=s3cr3t-gchat")}),
            "/v1/spaces/A/messages?key=s3cr3t-gchat",
        ),
        "mattermost" => (
            json!({"url": fake.url("hooks/s3cr3t-mm")}),
            "/hooks/s3cr3t-mm",
        ),
        "pagerduty" => (
            json!({"routing_key": "s3cr3t-pd", "endpoint": base}),
            "/v2/enqueue",
        ),
        "opsgenie" => (
            json!({"api_key": "s3cr3t-og", "endpoint": base}),
            "/v2/alerts",
        ),
        "telegram" => (
            json!({"bot_token": "42:s3cr3t-tg", "chat_id": -100_123, "endpoint": base}),
            "/bot42:s3cr3t-tg/sendMessage",
        ),
        "ntfy" => (
            json!({"server": base, "topic": "alerts", "token": "s3cr3t-ntfy"}),
            "/",
        ),
        "pushover" => (
            json!({"token": "s3cr3t-po-app", "user": "s3cr3t-po-user", "endpoint": base}),
            "/1/messages.json",
        ),
        other => panic!("no such kind {other}"),
    };
    let spec = serde_json::from_value(json!({"id": "ops", kind: settings})).expect("valid spec");
    (spec, path)
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn subject() -> Subject {
    Subject {
        target_id: TargetId::parse("shop").expect("id"),
        target_name: "Shop API".into(),
        check: "GET https://shop.example.com/health".into(),
    }
}

fn cause() -> IncidentCause {
    IncidentCause {
        location: "lab".into(),
        failing_since: t("2026-03-01T10:00:00Z"),
        status_code: Some(503),
        error: None,
        failed_conditions: vec![ConditionResult {
            condition: "[STATUS] == 200".into(),
            passed: false,
            actual: Some("503".into()),
        }],
    }
}

fn envelope(id: &str, event: Event) -> Envelope {
    Envelope::with_id(
        id.into(),
        event,
        TenantId::default_tenant(),
        "alerter",
        // Recent: the notifier gives up on events older than its retry horizon.
        Utc::now(),
    )
}

fn opened() -> Envelope {
    envelope(
        // The alerter's id for it: the notifier recognises an opening already sent by it.
        &format!("default:{INCIDENT}:opened"),
        Event::IncidentOpened(IncidentOpened {
            incident_id: INCIDENT.into(),
            subject: subject(),
            opened_at: t("2026-03-01T10:02:00Z"),
            cause: cause(),
        }),
    )
}

fn resolved() -> Envelope {
    envelope(
        "e-resolved",
        Event::IncidentResolved(IncidentResolved {
            incident_id: INCIDENT.into(),
            subject: subject(),
            opened_at: t("2026-03-01T10:02:00Z"),
            resolved_at: t("2026-03-01T10:20:00Z"),
            duration_s: 1_080,
            cause: None,
        }),
    )
}

fn reminder() -> Envelope {
    envelope(
        "e-reminder",
        Event::IncidentReminder(IncidentReminder {
            incident_id: INCIDENT.into(),
            subject: subject(),
            opened_at: t("2026-03-01T10:02:00Z"),
            reminder: 1,
            ongoing_s: 3_600,
            cause: cause(),
        }),
    )
}

/// Log lines written while the test runs (the notifier's `warn!` on failures included).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

struct Rig {
    fake: FakeProvider,
    spec: ChannelSpec,
    path: &'static str,
    delivery: Arc<ChannelDelivery>,
    notifier: Notifier,
    clock: Arc<ManualClock>,
}

async fn rig(kind: &str, allow_private: bool, edit: impl FnOnce(&mut ChannelSpec)) -> Rig {
    let fake = FakeProvider::start().await;
    let (mut spec, path) = spec_for(kind, &fake);
    edit(&mut spec);
    let store = Arc::new(MemoryStore::new());
    let now = Utc::now();
    store
        .put_channel(
            Channel {
                tenant: TenantId::default_tenant(),
                spec: spec.clone(),
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .expect("put channel");
    let prober = Arc::new(Prober::new(
        ProbeConfig::new(allow_private, false),
        Arc::new(SystemResolver),
    ));
    let delivery = Arc::new(ChannelDelivery::new(
        prober,
        Arc::new(MemorySink::default()),
        Duration::from_secs(5),
    ));
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let notifier = Notifier::new(
        store.clone(),
        store.clone(),
        store,
        delivery.clone(),
        clock.clone(),
    );
    Rig {
        fake,
        spec,
        path,
        delivery,
        notifier,
        clock,
    }
}

fn no_secret_in(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the credential {s}: {text}");
    }
}

fn report(delivered: usize, already_done: usize) -> NotifyReport {
    NotifyReport {
        delivered,
        already_done,
        ..NotifyReport::default()
    }
}

/// The acceptance run of one kind.
async fn exercise(kind: &str) {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let r = rig(kind, true, |_| {}).await;

    // Opened: sent once, to the provider's path, saying what happened.
    assert_eq!(
        r.notifier.handle(&opened()).await.expect("opened"),
        report(1, 0)
    );
    assert_eq!(
        r.notifier.handle(&opened()).await.expect("again"),
        report(0, 1)
    );
    let calls = r.fake.calls();
    assert_eq!(calls.len(), 1, "{kind}: exactly once");
    let first = &calls[0];
    assert_eq!(
        (first.method.as_str(), first.target.as_str()),
        ("POST", r.path),
        "{kind}"
    );
    assert!(
        first.body.contains("Shop API") && first.body.contains("DOWN"),
        "{kind}: {}",
        first.body
    );
    check_provider_request(kind, first);

    // Throttled: retryable, with the provider's wait; the resolution goes out on the next try.
    r.fake
        .then(Answer::new(429, r#"{"retry_after": 3}"#).header("Retry-After", "7"));
    let err = r.notifier.handle(&resolved()).await.expect_err("throttled");
    no_secret_in("a notifier error", &err.to_string());
    r.fake
        .then(Answer::new(429, "slow down").header("Retry-After", "7"));
    match r.delivery.deliver(&r.spec, &resolved()).await {
        Err(DeliveryError::Retryable {
            retry_after,
            reason,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)), "{kind}");
            no_secret_in("a retry reason", &reason);
        }
        other => panic!("{kind}: a 429 must be retryable, got {other:?}"),
    }
    // The notifier holds the claim through its backoff (never shorter than Retry-After).
    r.clock.advance(Duration::from_secs(3_600));
    assert_eq!(
        r.notifier.handle(&resolved()).await.expect("resolved"),
        report(1, 0)
    );
    let calls = r.fake.calls();
    assert_eq!(
        calls.len(),
        4,
        "{kind}: opened, two throttled tries, resolved"
    );
    assert!(
        calls[3].body.contains("RESOLVED")
            || calls[3].target.contains("close")
            || calls[3].body.contains("resolve"),
        "{kind}"
    );

    // Refused for good: final, with the provider's reason and without the credential.
    r.fake
        .then(Answer::new(400, r#"{"message":"invalid payload"}"#));
    match r.delivery.deliver(&r.spec, &reminder()).await {
        Err(DeliveryError::Final { reason }) => {
            assert!(
                reason.contains("HTTP 400") && reason.contains("invalid payload"),
                "{kind}: {reason}"
            );
            no_secret_in("a final reason", &reason);
        }
        other => panic!("{kind}: a 400 must be final, got {other:?}"),
    }
    // A final refusal is recorded and logged, not retried.
    r.fake.then(Answer::new(401, "unauthorized"));
    let refused = r
        .notifier
        .handle(&reminder())
        .await
        .expect("refused for good");
    assert_eq!(refused.failed, 1, "{kind}");

    let logged = logs.text();
    assert!(
        logged.contains("notification failed") && logged.contains("refused for good"),
        "{kind}: the failures were logged: {logged}"
    );
    no_secret_in("the log", &logged);
}

/// What the provider's documentation requires of the request, beyond the rendering tests.
fn check_provider_request(kind: &str, call: &Call) {
    assert_eq!(
        call.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{kind}"
    );
    let v: Value = call.json();
    match kind {
        "pagerduty" => {
            assert_eq!(v["event_action"], "trigger");
            assert_eq!(v["dedup_key"], format!("netmon-{INCIDENT}"));
        }
        "opsgenie" => {
            assert_eq!(
                call.headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok()),
                Some("GenieKey s3cr3t-og")
            );
            assert_eq!(v["alias"], format!("netmon-{INCIDENT}"));
        }
        "ntfy" => assert_eq!(
            call.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer s3cr3t-ntfy")
        ),
        "telegram" => assert_eq!(v["parse_mode"], "HTML"),
        _ => {}
    }
}

macro_rules! kinds {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            exercise(stringify!($name)).await;
        }
    )*};
}

kinds!(
    slack,
    discord,
    teams,
    pagerduty,
    opsgenie,
    telegram,
    ntfy,
    pushover,
    google_chat,
    mattermost
);

#[tokio::test]
async fn resolutions_close_by_the_key_the_opening_used() {
    let r = rig("opsgenie", true, |_| {}).await;
    r.notifier.handle(&opened()).await.expect("opened");
    r.notifier.handle(&resolved()).await.expect("resolved");
    let calls = r.fake.calls();
    assert_eq!(
        calls[1].target,
        format!("/v2/alerts/netmon-{INCIDENT}/close?identifierType=alias")
    );
    let r = rig("pagerduty", true, |_| {}).await;
    r.notifier.handle(&opened()).await.expect("opened");
    r.notifier.handle(&resolved()).await.expect("resolved");
    let bodies: Vec<Value> = r.fake.calls().iter().map(Call::json).collect();
    assert_eq!(bodies[1]["event_action"], "resolve");
    assert_eq!(bodies[0]["dedup_key"], bodies[1]["dedup_key"]);
}

#[tokio::test]
async fn a_channel_gets_only_the_events_it_chose() {
    let r = rig("slack", true, |s| {
        s.events = Some([netmon_core::channel::ChannelEvent::Opened].into());
    })
    .await;
    r.notifier.handle(&opened()).await.expect("opened");
    r.notifier
        .handle(&reminder())
        .await
        .expect("reminder skipped");
    r.notifier
        .handle(&resolved())
        .await
        .expect("resolved skipped");
    let calls = r.fake.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].body.contains("DOWN"));
}

#[tokio::test]
async fn provider_sends_go_through_the_ssrf_guard() {
    // The fake listens on loopback; a deployment that refuses private addresses refuses it too.
    for kind in ["slack", "pagerduty", "telegram", "ntfy"] {
        let r = rig(kind, false, |_| {}).await;
        match r.delivery.deliver(&r.spec, &opened()).await {
            Err(DeliveryError::Final { reason }) => no_secret_in("a blocked reason", &reason),
            other => panic!("{kind}: a blocked address must be final, got {other:?}"),
        }
        assert!(r.fake.calls().is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn a_test_send_leaves_no_alert_open() {
    let test = Envelope::new(
        Event::ChannelTest(netmon_core::events::ChannelTest {
            channel_id: netmon_core::ChannelId::parse("ops").expect("id"),
            message: "Test notification".into(),
        }),
        TenantId::default_tenant(),
        "api",
        Utc::now(),
    );
    for kind in ["pagerduty", "opsgenie"] {
        let r = rig(kind, true, |_| {}).await;
        r.delivery.deliver(&r.spec, &test).await.expect("test send");
        let calls = r.fake.calls();
        assert_eq!(calls.len(), 2, "{kind}: opened, then resolved");
        let opened = calls[0].json();
        assert!(opened.to_string().contains("TEST"), "{kind}: {opened}");
        if kind == "pagerduty" {
            let resolved = calls[1].json();
            assert_eq!(resolved["event_action"], "resolve");
            assert_eq!(resolved["dedup_key"], opened["dedup_key"]);
        } else {
            let alias = opened["alias"].as_str().expect("alias");
            assert!(alias.starts_with("netmon-test-ops-"), "{alias}");
            assert_eq!(
                calls[1].target,
                format!("/v2/alerts/{alias}/close?identifierType=alias")
            );
        }
    }
    // Providers without open alerts get one message.
    let r = rig("slack", true, |_| {}).await;
    r.delivery.deliver(&r.spec, &test).await.expect("test send");
    assert_eq!(r.fake.calls().len(), 1);
}

/// An email channel on the fake SMTP server at `smtp`, through a real `SmtpMailer`.
async fn email_rig(
    smtp: &netmon_testkit::smtp::FakeSmtp,
    allow_private: bool,
) -> (
    ChannelSpec,
    Arc<ChannelDelivery>,
    Notifier,
    Arc<ManualClock>,
) {
    let spec: ChannelSpec = serde_json::from_value(json!({
        "id": "mail",
        "email": {
            "from": "netmon@example.com",
            "to": ["ops@example.com", "oncall@example.com"],
            "smtp": {"host": "127.0.0.1", "port": smtp.addr.port(), "tls": "none",
                     "username": "netmon", "password": "s3cr3t-smtp"}
        }
    }))
    .expect("email spec");
    let store = Arc::new(MemoryStore::new());
    let now = Utc::now();
    store
        .put_channel(
            Channel {
                tenant: TenantId::default_tenant(),
                spec: spec.clone(),
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .expect("put channel");
    let prober = Arc::new(Prober::new(
        ProbeConfig::new(allow_private, false),
        Arc::new(SystemResolver),
    ));
    let mailer = netmon_probe::smtp::SmtpMailer::new(prober.clone(), Duration::from_secs(5))
        .expect("mailer");
    let delivery = Arc::new(
        ChannelDelivery::new(
            prober,
            Arc::new(MemorySink::default()),
            Duration::from_secs(5),
        )
        .with_mailer(Arc::new(mailer)),
    );
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let notifier = Notifier::new(
        store.clone(),
        store.clone(),
        store,
        delivery.clone(),
        clock.clone(),
    );
    (spec, delivery, notifier, clock)
}

#[tokio::test]
async fn email() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let smtp = netmon_testkit::smtp::FakeSmtp::start().await;
    let (spec, delivery, notifier, clock) = email_rig(&smtp, true).await;

    // Opened: one message, authenticated, to every recipient, with both parts.
    assert_eq!(
        notifier.handle(&opened()).await.expect("opened"),
        report(1, 0)
    );
    assert_eq!(
        notifier.handle(&opened()).await.expect("again"),
        report(0, 1)
    );
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1, "exactly once");
    let m = &sent[0];
    assert_eq!(m.mail_from, "netmon@example.com");
    assert_eq!(m.rcpt_to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(m.auth, Some(("netmon".into(), "s3cr3t-smtp".into())));
    assert!(
        m.subject().starts_with("[netmon] DOWN: Shop API"),
        "{}",
        m.subject()
    );
    for part in ["multipart/alternative", "text/plain", "text/html"] {
        assert!(m.data.contains(part), "{part} in {}", m.data);
    }

    // A 4xx reply is transient: retried, and the resolution goes out on the next try.
    smtp.then("451 4.7.1 greylisted, try again later");
    let err = notifier.handle(&resolved()).await.expect_err("greylisted");
    no_secret_in("a notifier error", &err.to_string());
    smtp.then("452 4.2.2 mailbox full");
    match delivery.deliver(&spec, &resolved()).await {
        Err(DeliveryError::Retryable { reason, .. }) => {
            assert!(reason.contains("452"), "{reason}");
            no_secret_in("a retry reason", &reason);
        }
        other => panic!("a 4xx reply must be retryable, got {other:?}"),
    }
    clock.advance(Duration::from_secs(3_600));
    assert_eq!(
        notifier.handle(&resolved()).await.expect("resolved"),
        report(1, 0)
    );
    let sent = smtp.messages();
    assert_eq!(sent.len(), 2, "the refused tries were not accepted");
    assert!(
        sent[1].subject().contains("RESOLVED: Shop API"),
        "{}",
        sent[1].subject()
    );

    // A 5xx reply is permanent: final, with the server's reason, recorded and not retried.
    smtp.then("550 5.1.1 mailbox unavailable");
    match delivery.deliver(&spec, &reminder()).await {
        Err(DeliveryError::Final { reason }) => {
            assert!(
                reason.contains("550") && reason.contains("mailbox unavailable"),
                "{reason}"
            );
            no_secret_in("a final reason", &reason);
        }
        other => panic!("a 5xx reply must be final, got {other:?}"),
    }
    smtp.then("554 5.7.1 rejected");
    let refused = notifier
        .handle(&reminder())
        .await
        .expect("refused for good");
    assert_eq!(refused.failed, 1);
    assert_eq!(smtp.messages().len(), 2);

    let logged = logs.text();
    assert!(
        logged.contains("notification failed") && logged.contains("refused for good"),
        "the failures were logged: {logged}"
    );
    no_secret_in("the log", &logged);
}

#[tokio::test]
async fn smtp_connections_go_through_the_ssrf_guard() {
    let smtp = netmon_testkit::smtp::FakeSmtp::start().await;
    let (spec, delivery, _, _) = email_rig(&smtp, false).await;
    match delivery.deliver(&spec, &opened()).await {
        Err(DeliveryError::Final { reason }) => {
            assert!(
                reason.contains("refused to connect to 127.0.0.1"),
                "{reason}"
            );
            no_secret_in("a blocked reason", &reason);
        }
        other => panic!("a blocked SMTP server must be final, got {other:?}"),
    }
    assert!(smtp.messages().is_empty());
}
