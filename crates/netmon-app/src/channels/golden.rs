//! Golden files per kind and event (`golden/<kind>.<event>.json`, rewritten with
//! `UPDATE_GOLDEN=1`), and each provider's documented constraints checked on every rendering,
//! including one whose values are far beyond every limit.

use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::channel::{ChannelKind, ChannelSpec};
use netmon_core::events::{
    ChannelTest, Envelope, Event, IncidentCause, IncidentOpened, IncidentReminder,
    IncidentResolved, Subject,
};
use netmon_core::observation::ConditionResult;
use serde_json::{Value, json};

use super::{Notice, Request, provider};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn subject(name: &str) -> Subject {
    Subject {
        target_id: netmon_core::TargetId::parse("shop-api").unwrap(),
        target_name: name.to_owned(),
        check: "GET https://shop.example.com/health".to_owned(),
    }
}

fn cause(detail: &str) -> IncidentCause {
    IncidentCause {
        location: "eu-west-1".into(),
        failing_since: t("2026-03-01T10:00:00Z"),
        status_code: Some(503),
        error: None,
        failed_conditions: vec![ConditionResult {
            condition: "[STATUS] == 200".into(),
            passed: false,
            actual: Some(detail.into()),
        }],
    }
}

fn envelope(event: Event) -> Envelope {
    Envelope::with_id(
        "evt-1".into(),
        event,
        TenantId::default_tenant(),
        "alerter",
        t("2026-03-01T10:02:00Z"),
    )
}

/// Opened, resolved, reminder and a test send for a target named `name` whose cause says
/// `detail`.
pub(super) fn samples(name: &str, detail: &str) -> Vec<(&'static str, Envelope)> {
    let id = "01J0000000000000000000INC1".to_owned();
    vec![
        (
            "opened",
            envelope(Event::IncidentOpened(IncidentOpened {
                incident_id: id.clone(),
                subject: subject(name),
                opened_at: t("2026-03-01T10:02:00Z"),
                cause: cause(detail),
            })),
        ),
        (
            "resolved",
            envelope(Event::IncidentResolved(IncidentResolved {
                incident_id: id.clone(),
                subject: subject(name),
                opened_at: t("2026-03-01T10:02:00Z"),
                resolved_at: t("2026-03-01T10:17:30Z"),
                duration_s: 930,
                cause: None,
            })),
        ),
        (
            "reminder",
            envelope(Event::IncidentReminder(IncidentReminder {
                incident_id: id,
                subject: subject(name),
                opened_at: t("2026-03-01T10:02:00Z"),
                reminder: 1,
                ongoing_s: 3_600,
                cause: cause(detail),
            })),
        ),
        (
            "test",
            envelope(Event::ChannelTest(ChannelTest {
                channel_id: netmon_core::ChannelId::parse("ops").unwrap(),
                message: "Test notification from netmon for channel \"ops\"".into(),
            })),
        ),
    ]
}

/// One channel of every provider kind, with fake credentials.
pub(super) fn specs() -> Vec<ChannelSpec> {
    let kinds = json!([
        {"id": "slack", "slack": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"}},
        {"id": "discord", "discord": {"url": "https://discord.com/api/webhooks/1/tok"}},
        {"id": "teams", "teams": {"url": "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s1g"}},
        {"id": "pagerduty", "pagerduty": {"routing_key": "R0UT1NGKEY00000000000000000000000", "severity": "error"}},
        {"id": "opsgenie", "opsgenie": {"api_key": "0000-genie-key", "priority": "P2", "region": "eu"}},
        {"id": "telegram", "telegram": {"bot_token": "123456:ABC-def_ghi", "chat_id": -1001234567890i64, "thread_id": 7}},
        {"id": "ntfy", "ntfy": {"topic": "netmon-alerts", "token": "tk_secret", "tags": ["prod"]}},
        {"id": "pushover", "pushover": {"token": "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "user": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "priority": 1}},
        {"id": "google_chat", "google_chat": {"url": "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k3y&token=t0k"}},
        {"id": "mattermost", "mattermost": {"url": "https://mm.example.com/hooks/xyz", "username": "netmon"}},
    ]);
    serde_json::from_value(kinds).unwrap()
}

fn constraints(kind: &ChannelKind, r: &Request) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.headers["Content-Type"], "application/json");
    match kind {
        ChannelKind::Slack(_) => super::slack::constraints(r),
        ChannelKind::Discord(_) => super::discord::constraints(r),
        ChannelKind::Teams(_) => super::teams::constraints(r),
        ChannelKind::PagerDuty(_) => super::pagerduty::constraints(r),
        ChannelKind::Opsgenie(_) => super::opsgenie::constraints(r),
        ChannelKind::Telegram(_) => super::telegram::constraints(r),
        ChannelKind::Ntfy(_) => super::ntfy::constraints(r),
        ChannelKind::Pushover(_) => super::pushover::constraints(r),
        ChannelKind::GoogleChat(_) => super::google_chat::constraints(r),
        ChannelKind::Mattermost(_) => super::mattermost::constraints(r),
        ChannelKind::Webhook(_) | ChannelKind::Log(_) | ChannelKind::Email(_) => unreachable!(),
    }
}

fn render(spec: &ChannelSpec, env: &Envelope, link: Option<&url::Url>) -> Request {
    let notice = Notice::of(env, link).expect("a notification event");
    provider(&spec.kind)
        .expect("a provider kind")
        .render(&notice)
        .unwrap_or_else(|e| panic!("{}: {e}", spec.id))
}

fn as_json(r: &Request) -> Value {
    json!({
        "method": r.method,
        "url": r.url.as_str(),
        "headers": r.headers,
        "body": serde_json::from_str::<Value>(&r.body).unwrap(),
    })
}

/// Compares each `(file name, rendering)` with `golden/<file name>`, or rewrites the files with
/// `UPDATE_GOLDEN=1`; fails naming every file that differs.
pub(super) fn check_golden(renderings: Vec<(String, Value)>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/channels/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, rendering) in renderings {
        let path = dir.join(name);
        let got = serde_json::to_string_pretty(&rendering).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        } else if std::fs::read_to_string(&path).unwrap_or_default() != got {
            mismatches.push(format!("{}:\n{got}", path.display()));
        }
    }
    assert!(
        mismatches.is_empty(),
        "renderings differ from golden files (UPDATE_GOLDEN=1 rewrites them):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn renderings_match_the_golden_files_and_the_provider_constraints() {
    let link = url::Url::parse("https://netmon.example.com/").unwrap();
    let mut renderings = Vec::new();
    for spec in specs() {
        for (event, env) in samples("Shop <API> & \"checkout\"", "503") {
            let req = render(&spec, &env, Some(&link));
            constraints(&spec.kind, &req);
            renderings.push((format!("{}.{event}.json", spec.id), as_json(&req)));
        }
    }
    check_golden(renderings);
}

#[test]
fn oversized_values_stay_within_every_limit() {
    let name = "N&<".repeat(400);
    let detail = "x<&>\u{1F525}".repeat(5_000);
    let link =
        url::Url::parse(&format!("https://netmon.example.com/{}/", "p".repeat(600))).unwrap();
    for spec in specs() {
        for (_, env) in samples(&name, &detail) {
            for l in [None, Some(&link)] {
                constraints(&spec.kind, &render(&spec, &env, l));
            }
        }
    }
}

#[test]
fn every_message_names_target_state_time_cause_and_location() {
    for spec in specs() {
        for (event, env) in samples("Shop API", "503") {
            let body = render(&spec, &env, None).body;
            if spec.id.as_str() == "pagerduty" && event == "resolved" {
                continue; // a resolve carries the dedup key only
            }
            let name = if event == "test" {
                "TEST DOWN: netmon test target"
            } else {
                "Shop API"
            };
            assert!(body.contains(name), "{} {event}", spec.id);
            let state = match event {
                "opened" | "test" => "DOWN",
                "resolved" => "RESOLVED",
                _ => "STILL DOWN",
            };
            assert!(body.contains(state), "{} {event}", spec.id);
            if event == "opened" || event == "reminder" {
                for must in [
                    "2026-03-01 10:00:00 UTC",
                    "[STATUS] == 200 (got 503)",
                    "eu-west-1",
                ] {
                    assert!(body.contains(must), "{} {event}: {must} in {body}", spec.id);
                }
            }
        }
    }
}

#[test]
fn incidents_dedupe_on_a_key_derived_from_the_incident_id() {
    let specs = specs();
    let samples = samples("Shop API", "503");
    for id in ["pagerduty", "opsgenie"] {
        let spec = specs.iter().find(|s| s.id.as_str() == id).unwrap();
        let keys: Vec<String> = samples[..3]
            .iter()
            .map(|(_, env)| {
                let r = render(spec, env, None);
                let v: Value = serde_json::from_str(&r.body).unwrap();
                v.get("dedup_key")
                    .or_else(|| v.get("alias"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| r.url.path().to_owned())
            })
            .collect();
        assert!(
            keys.iter()
                .all(|k| k.contains("netmon-01J0000000000000000000INC1")),
            "{keys:?}"
        );
    }
}
