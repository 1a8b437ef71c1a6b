//! The whole single-process pipeline against a local HTTP target that switches between 200, 500
//! and hanging, under a manual clock. No sleeps: each step waits for the work it caused.

mod common;

use std::time::Duration;

use chrono::DateTime;
use common::{Harness, WAIT};
use netmon_core::incident::Status;
use netmon_core::ports::{Outbox, StateStore};
use netmon_core::{TargetId, TenantId};
use netmon_testkit::servers::Mode;

const TARGET: &str = "  - id: api\n    name: Example API\n    http: {url: '{target}'}\n    interval: 60s\n    timeout: 500ms\n    failure_threshold: 3\n    success_threshold: 2\n    conditions: ['[STATUS] == 200', '[BODY].status == UP']\n";

async fn status(h: &Harness) -> Status {
    h.running()
        .store()
        .load_state(
            &TenantId::default_tenant(),
            &TargetId::parse("api").unwrap(),
        )
        .await
        .unwrap()
        .map(|v| v.value.status)
        .unwrap_or_default()
}

async fn incidents(h: &Harness) -> usize {
    h.running()
        .store()
        .list_incidents(&TenantId::default_tenant(), 100)
        .await
        .unwrap()
        .len()
}

async fn outbox_drained(h: &Harness) {
    let store = h.running().store();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !store.pending(10).await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox never drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_opens_after_threshold_notifies_once_and_resolves() {
    let mut h = Harness::new("lifecycle", TARGET).await;
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();

    // Healthy: nothing recorded, nothing sent.
    for _ in 0..2 {
        h.round(&mut jobs).await;
    }
    assert_eq!(status(&h).await, Status::Up);

    // Two failures (a 500, then a hang past the timeout): below the threshold of 3.
    h.target.set_mode(Mode::Error);
    h.round(&mut jobs).await;
    let failing_since = h.clock.as_ref().now_for_test();
    h.target.set_mode(Mode::Hang);
    h.round(&mut jobs).await;
    assert_eq!(status(&h).await, Status::Up);
    assert_eq!(incidents(&h).await, 0, "no incident before the threshold");

    // Third failure opens the incident; exactly one notification names target, cause and times.
    h.target.set_mode(Mode::Error);
    h.round(&mut jobs).await;
    let opened_at = h.clock.as_ref().now_for_test();
    assert_eq!(status(&h).await, Status::Down);
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let body = &got[0].body;
    assert_eq!(body["type"], "incident.opened");
    assert_eq!(body["payload"]["target_name"], "Example API");
    assert_eq!(body["payload"]["target_id"], "api");
    let failed: Vec<&str> = body["payload"]["cause"]["failed_conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["condition"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["[STATUS] == 200", "[BODY].status == UP"]);
    assert_eq!(
        body["payload"]["cause"]["failed_conditions"][0]["actual"],
        "500"
    );
    assert_eq!(
        body["payload"]["opened_at"],
        opened_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert_eq!(
        body["payload"]["cause"]["failing_since"],
        failing_since.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert_eq!(got[0].headers["x-netmon-event"], "incident.opened");
    assert_eq!(
        got[0].headers["x-netmon-event-id"].to_str().unwrap(),
        body["id"].as_str().unwrap()
    );
    let lines = h.log.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DOWN Example API") && l.contains("[STATUS] == 200 (got 500)")),
        "{lines:?}"
    );

    // Still failing: no second notification.
    h.round(&mut jobs).await;
    outbox_drained(&h).await;
    assert_eq!(h.hook.received().len(), 1);

    // One success is not enough; the second resolves.
    h.target.set_mode(Mode::Ok);
    h.round(&mut jobs).await;
    assert_eq!(status(&h).await, Status::Down);
    h.round(&mut jobs).await;
    let got = h.hook.wait_for(2, WAIT).await;
    assert_eq!(got[1].body["type"], "incident.resolved");
    assert_eq!(
        got[1].body["payload"]["incident_id"],
        got[0].body["payload"]["incident_id"]
    );
    assert_eq!(status(&h).await, Status::Up);

    // Healthy again: nothing more.
    for _ in 0..3 {
        h.round(&mut jobs).await;
    }
    outbox_drained(&h).await;
    assert_eq!(h.hook.received().len(), 2);
    let recorded = h
        .running()
        .store()
        .list_incidents(&TenantId::default_tenant(), 10)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].resolved_at.is_some());

    let events = h.captured();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type().as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "incident.opened").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "incident.resolved").count(),
        1
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "probe.completed").count() as u64,
        jobs
    );
    netmon_testkit::contracts::assert_valid_all(&events);
    // The console told the story one line per change, steady rounds printing nothing.
    let changes: Vec<String> = h
        .console
        .lines()
        .iter()
        .filter_map(|l| l.split("  ").nth(2))
        .filter_map(|w| w.split([' ', ':']).next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        changes,
        ["up", "failing", "DOWN", "recovering", "UP"],
        "{:?}",
        h.console.lines()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_neither_duplicate_nor_lose_notifications() {
    let mut h = Harness::new("restart", TARGET).await;

    // Run 1: stop cleanly mid-incident, after `opened` was delivered.
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    h.target.set_mode(Mode::Error);
    for _ in 0..3 {
        h.round(&mut jobs).await;
    }
    h.hook.wait_for(1, WAIT).await;
    h.stop().await;

    // Run 2: still failing after the restart; the incident is the same one, nothing new is sent.
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    h.round(&mut jobs).await;
    outbox_drained(&h).await;
    assert_eq!(h.hook.of_type("incident.opened").len(), 1);
    assert_eq!(incidents(&h).await, 1);

    // Resolve it, but crash while the `resolved` notification is in flight: the webhook hangs.
    h.hook.hang_next(1);
    h.target.set_mode(Mode::Ok);
    h.round(&mut jobs).await;
    h.round(&mut jobs).await;
    assert_eq!(status(&h).await, Status::Up);
    // Wait until the delivery is hanging inside the receiver, then die without any cleanup.
    wait_until(|| async { h.hook.hung() == 1 }).await;
    assert!(!h.running().store().pending(10).await.unwrap().is_empty());
    h.kill();

    // Run 3: the relay retries on start and then every few (manual) seconds; once the dead
    // process's claim lease (2 min) lapses, the `resolved` goes out exactly once.
    h.start().await;
    h.running().wait_jobs(1, WAIT).await.unwrap();
    let mut waited = 0;
    while h.hook.received().len() < 2 {
        assert!(
            waited < 600,
            "resolved not delivered within 10 manual minutes"
        );
        h.clock.advance(Duration::from_secs(5));
        waited += 5;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        waited >= 100,
        "delivered after {waited}s, before the lease lapsed"
    );
    let got = h.hook.received();
    assert_eq!(h.hook.of_type("incident.opened").len(), 1);
    assert_eq!(h.hook.of_type("incident.resolved").len(), 1);
    assert_eq!(got.len(), 2);
    outbox_drained(&h).await;
    netmon_testkit::contracts::assert_valid_all(&h.captured());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_opened_and_sent_delivers_after_restart() {
    let mut h = Harness::new("crash-open", TARGET).await;
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    // The receiver is down when the incident opens, and the process dies before it recovers.
    h.hook.fail_next(1_000);
    h.target.set_mode(Mode::Error);
    for _ in 0..3 {
        h.round(&mut jobs).await;
    }
    assert_eq!(status(&h).await, Status::Down);
    h.kill();
    assert!(h.hook.received().is_empty());

    // Restart with the receiver back: `opened` is delivered once, and not opened again.
    h.hook.fail_next(0);
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    h.clock.advance(Duration::from_secs(180));
    jobs += 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].body["type"], "incident.opened");
    outbox_drained(&h).await;
    assert_eq!(h.hook.received().len(), 1);
    assert_eq!(incidents(&h).await, 1);
    h.stop().await;
}

/// A receiver that fails the first attempt: `/v1/notifications` shows the channel retrying, with
/// the reason and the next attempt, then delivered after the retry; a tenant key of another
/// tenant sees none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_notification_is_visible_in_the_api_until_it_goes_through() {
    let mut h = Harness::new("notifications", TARGET).await;
    h.start().await;
    let mut jobs = 1;
    h.running().wait_jobs(jobs, WAIT).await.unwrap();
    h.hook.fail_next(1);
    h.target.set_mode(Mode::Error);
    for _ in 0..3 {
        h.round(&mut jobs).await;
    }
    assert_eq!(status(&h).await, Status::Down);
    let api = h.api();
    let retrying = hook_record(&api, "/v1/notifications?outcome=retrying", |_| true).await;
    assert_eq!(retrying["event_type"], "incident.opened");
    assert_eq!(retrying["target_id"], "api");
    assert_eq!(retrying["attempts"], 1);
    assert!(
        retrying["reason"].as_str().unwrap().contains("500"),
        "{retrying}"
    );
    assert!(retrying["next_attempt_at"].is_string(), "{retrying}");
    let incident = retrying["incident_id"].as_str().unwrap().to_owned();

    // The relay retries once the backoff has passed: delivered, on the second attempt.
    h.clock.advance(Duration::from_secs(60));
    h.hook.wait_for(1, WAIT).await;
    let delivered = hook_record(
        &api,
        &format!("/v1/notifications?incident={incident}"),
        |r| r["outcome"] == "delivered",
    )
    .await;
    assert_eq!(delivered["attempts"], 2);
    let failed = api.get("/v1/notifications?outcome=failed").await;
    assert_eq!(failed.json["items"], serde_json::json!([]));

    let other = api.tenant_client("elsewhere", "admin").await;
    let theirs = other.get("/v1/notifications").await;
    assert_eq!(theirs.status, 200);
    assert_eq!(
        theirs.json["items"],
        serde_json::json!([]),
        "tenant isolation"
    );
    let bad = api.get("/v1/notifications?incident=a%23b").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    h.stop().await;
}

/// The `hook` channel's record in a `/v1/notifications` listing, once one matches `pred`.
async fn hook_record(
    api: &common::Api,
    path: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let found = reply.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["channel_id"] == "hook" && pred(r))
            .cloned();
        if let Some(record) = found {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching record at {path}: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never became true"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

trait NowForTest {
    fn now_for_test(&self) -> DateTime<chrono::Utc>;
}

impl NowForTest for netmon_testkit::clock::ManualClock {
    fn now_for_test(&self) -> DateTime<chrono::Utc> {
        netmon_core::ports::Clock::now(self)
    }
}
