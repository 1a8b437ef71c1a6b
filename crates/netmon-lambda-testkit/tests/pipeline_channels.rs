//! Provider channels in the serverless pipeline on the emulator: a target goes down and comes
//! back, and the Slack and PagerDuty fakes and an email channel (SES on moto, read back from its
//! sent-mail store) each get the opening and then the resolution, exactly once each, PagerDuty
//! resolving with the key it triggered with; messages link under the notifier's public URL.

mod support;

use std::time::Duration;

use netmon_testkit::providers::FakeProvider;
use netmon_testkit::servers::{Mode, TargetServer};
use serde_json::{Value, json};
use support::{PUBLIC_URL, Stack, minute, sent_emails};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_pagerduty_and_email_get_each_transition_once_opened_before_resolved() {
    let stack = Stack::new("channels").await;
    let target = TargetServer::start().await;
    let slack = FakeProvider::start().await;
    let pagerduty = FakeProvider::start().await;
    stack
        .put_target(json!({
            "id": "web", "name": "Web", "http": {"url": target.url()}, "interval": "1m",
            "timeout": "2s", "failure_threshold": 2, "success_threshold": 2,
        }))
        .await;
    stack
        .put_channel(json!({"id": "team", "slack": {"url": slack.url("services/T/B/s3cr3t")}}))
        .await;
    stack
        .put_channel(
            json!({"id": "pager", "pagerduty": {"routing_key": "s3cr3t-pd", "endpoint": pagerduty.url("")}}),
        )
        .await;
    let domain = stack.verified_ses_domain().await;
    let from = format!("alerts@{domain}");
    stack
        .put_channel(json!({"id": "mail", "email": {
            "from": from, "to": ["ops@example.com"],
            // netmon up's transport: ignored on AWS, where the notifier sends through SES.
            "smtp": {"host": "smtp.example.com", "password": "s3cr3t-smtp"},
        }}))
        .await;
    let runner = stack.runner(&[], false).await;
    let modes = [
        Mode::Ok,
        Mode::Error,
        Mode::Error,
        Mode::Error,
        Mode::Ok,
        Mode::Ok,
        Mode::Ok,
    ];
    for (n, mode) in modes.into_iter().enumerate() {
        target.set_mode(mode);
        runner.tick(minute(n as i64)).await.expect("tick");
        runner
            .wait_idle(Duration::from_secs(30))
            .await
            .expect("pipeline drains");
    }
    runner.stop().await;

    let slack_calls = slack.calls();
    assert_eq!(slack_calls.len(), 2, "{slack_calls:#?}");
    assert!(
        slack_calls[0].body.contains("DOWN: Web"),
        "{}",
        slack_calls[0].body
    );
    assert!(
        slack_calls[1].body.contains("RESOLVED: Web"),
        "{}",
        slack_calls[1].body
    );
    assert_eq!(slack_calls[0].target, "/services/T/B/s3cr3t");
    let link = format!("{PUBLIC_URL}status/default");
    assert!(
        slack_calls[0].body.contains(&link),
        "{}",
        slack_calls[0].body
    );

    let pd: Vec<Value> = pagerduty.calls().iter().map(|c| c.json()).collect();
    assert_eq!(pd.len(), 2, "{pd:#?}");
    assert_eq!(
        (
            pd[0]["event_action"].as_str(),
            pd[1]["event_action"].as_str()
        ),
        (Some("trigger"), Some("resolve"))
    );
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    assert!(
        pd[0]["dedup_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("netmon-")),
        "{pd:#?}"
    );

    let mails: Vec<Value> = sent_emails()
        .await
        .into_iter()
        .filter(|m| m["source"] == from.as_str())
        .collect();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let subjects: Vec<&str> = mails.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert!(
        subjects[0].starts_with("[netmon] DOWN: Web") && subjects[1] == "[netmon] RESOLVED: Web",
        "{subjects:?}"
    );
    assert_eq!(
        mails[0]["destinations"]["ToAddresses"],
        json!(["ops@example.com"])
    );
    let html = mails[0]["body"].as_str().unwrap_or_default();
    assert!(html.contains("<h2") && html.contains(&link), "{html}");
    stack.assert_drained().await;
}
