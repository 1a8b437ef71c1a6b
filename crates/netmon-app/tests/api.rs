//! The HTTP API over real HTTP, plus heartbeat monitors end to end.

mod common;

use std::time::Duration;

use common::{Harness, WAIT};
use netmon_core::incident::Status;
use netmon_core::ports::StateStore;
use netmon_core::{TargetId, TenantId};
use serde_json::Value;

fn base(h: &Harness) -> String {
    format!("http://{}", h.running().api_addr())
}

async fn send(method: reqwest::Method, url: &str, body: Option<&str>) -> (u16, String, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, ctype, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_crud_and_bad_input() {
    let mut h = Harness::new("api-crud", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let b = base(&h);
    use reqwest::Method as M;

    let (s, _, list) = send(M::GET, &format!("{b}/v1/targets"), None).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let new =
        r#"{"id":"web","http":{"url":"http://127.0.0.1:9/"},"interval":"30s","tags":["prod"]}"#;
    let (s, _, created) = send(M::POST, &format!("{b}/v1/targets"), Some(new)).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["version"], 1);
    let (s, ctype, p) = send(M::POST, &format!("{b}/v1/targets"), Some(new)).await;
    assert_eq!(s, 409);
    assert_eq!(ctype, "application/problem+json");
    assert!(p["detail"].as_str().unwrap().contains("already exists"));

    let (s, _, got) = send(M::GET, &format!("{b}/v1/targets/web"), None).await;
    assert_eq!(s, 200);
    assert_eq!(got["spec"]["interval"], "30s");

    let (s, _, tagged) = send(M::GET, &format!("{b}/v1/targets?tag=prod"), None).await;
    assert_eq!(s, 200);
    assert_eq!(tagged["items"].as_array().unwrap().len(), 1);

    let upd = r#"{"id":"web","http":{"url":"http://127.0.0.1:9/"},"interval":"45s"}"#;
    let (s, _, updated) = send(M::PUT, &format!("{b}/v1/targets/web"), Some(upd)).await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    // Same body again: no new version.
    let (_, _, same) = send(M::PUT, &format!("{b}/v1/targets/web"), Some(upd)).await;
    assert_eq!(same["version"], 2);

    // Bad input: every case is a 400 problem naming the field, never a 500.
    let cases: &[(&str, &str)] = &[
        ("{not json", "body"),
        (
            r#"{"id":"x","http":{"url":"http://a/"},"interval":5}"#,
            "interval",
        ),
        (
            r#"{"id":"x","http":{"url":"http://a/"},"bogus":1}"#,
            "bogus",
        ),
        (
            r#"{"id":"x","http":{"url":"http://a/"},"conditions":["[STATUS] === 200"]}"#,
            "conditions[0]",
        ),
        (
            r#"{"id":"x","http":{"url":"http://a/"},"failure_threshold":"three"}"#,
            "failure_threshold",
        ),
        (r#"{"id":"x y","http":{"url":"http://a/"}}"#, "id"),
    ];
    for (body, field) in cases {
        let (s, ctype, p) = send(M::POST, &format!("{b}/v1/targets"), Some(body)).await;
        assert_eq!(s, 400, "{body}: {p}");
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(p["errors"][0]["field"], *field, "{body}: {p}");
    }
    let (_, _, p) = send(
        M::POST,
        &format!("{b}/v1/targets"),
        Some(r#"{"id":"x","http":{"url":"http://a/"},"conditions":["[STATUS] === 200"]}"#),
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("column"), "{p}");

    let big = format!(
        r#"{{"id":"x","name":"{}","http":{{"url":"http://a/"}}}}"#,
        "n".repeat(70_000)
    );
    let (s, _, _) = send(M::POST, &format!("{b}/v1/targets"), Some(&big)).await;
    assert_eq!(s, 413);

    let (s, _, p) = send(M::PUT, &format!("{b}/v1/targets/other"), Some(upd)).await;
    assert_eq!(s, 400);
    assert_eq!(p["errors"][0]["field"], "id");

    let (s, _, _) = send(M::DELETE, &format!("{b}/v1/targets/web"), None).await;
    assert_eq!(s, 204);
    let (s, _, _) = send(M::DELETE, &format!("{b}/v1/targets/web"), None).await;
    assert_eq!(s, 404);
    let (s, _, _) = send(M::GET, &format!("{b}/v1/targets/no%20such"), None).await;
    assert_eq!(s, 404);
    let (s, _, _) = send(M::GET, &format!("{b}/nope"), None).await;
    assert_eq!(s, 404);

    let events = h.captured();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type().as_str()).collect();
    assert!(
        kinds.contains(&"target.created")
            && kinds.contains(&"target.updated")
            && kinds.contains(&"target.deleted"),
        "{kinds:?}"
    );
    netmon_testkit::contracts::assert_valid_all(&events);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_missed_opens_and_a_ping_resolves() {
    let mut h = Harness::new(
        "heartbeat",
        "  - id: backup\n    name: Nightly backup\n    heartbeat: {period: 1h, grace: 5m, token: tok-backup-1}\n",
    )
    .await;
    h.start().await;
    let b = base(&h);
    let state = |h: &Harness| {
        let store = h.running().store();
        async move {
            store
                .load_state(
                    &TenantId::default_tenant(),
                    &TargetId::parse("backup").unwrap(),
                )
                .await
                .unwrap()
                .map(|v| v.value.status)
                .unwrap_or_default()
        }
    };

    let (s, _, _) = send(
        reqwest::Method::POST,
        &format!("{b}/ping/tok-backup-1"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(state(&h).await, Status::Up);
    let (s, _, _) = send(reqwest::Method::GET, &format!("{b}/ping/wrong-token"), None).await;
    assert_eq!(s, 404);

    // Silent for period + grace: down, and notified.
    h.clock.advance(Duration::from_secs(3600 + 5 * 60 + 1));
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].body["type"], "incident.opened");
    assert!(
        got[0].body["payload"]["cause"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no ping since")
    );
    assert_eq!(state(&h).await, Status::Down);

    // The job pings again: resolved at once (heartbeats use 1/1 thresholds).
    let (s, _, _) = send(
        reqwest::Method::GET,
        &format!("{b}/ping/tok-backup-1"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let got = h.hook.wait_for(2, WAIT).await;
    assert_eq!(got[1].body["type"], "incident.resolved");

    // A reported failure opens immediately. (One second later: results are ordered by time,
    // and one no newer than the last applied is ignored.)
    h.clock.advance(Duration::from_secs(1));
    let (s, _, _) = send(
        reqwest::Method::HEAD,
        &format!("{b}/ping/tok-backup-1/fail"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let got = h.hook.wait_for(3, WAIT).await;
    assert_eq!(got[2].body["type"], "incident.opened");
    assert_eq!(got[2].body["payload"]["cause"]["error"]["kind"], "reported");
    netmon_testkit::contracts::assert_valid_all(&h.captured());
    h.stop().await;
}
