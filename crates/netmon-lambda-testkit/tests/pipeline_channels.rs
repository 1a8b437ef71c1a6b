//! Provider channels in the serverless pipeline on the emulator: a target goes down and comes
//! back, and the Slack and PagerDuty fakes each get the opening and then the resolution, exactly
//! once each, PagerDuty resolving with the key it triggered with.

mod support;

use std::time::Duration;

use netmon_testkit::providers::FakeProvider;
use netmon_testkit::servers::{Mode, TargetServer};
use serde_json::{Value, json};
use support::{Stack, minute};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_and_pagerduty_get_each_transition_once_opened_before_resolved() {
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
    stack.assert_drained().await;
}
