//! The HTTP API over real HTTP (port 0): every route, its bad input, auth and tenants,
//! maintenance windows, history, "check now" over the in-process EventRPC, keys, rate limits,
//! and `/openapi.json` against the router.

mod common;

use std::time::Duration;

use common::{Api, Harness, WAIT, conforms};
use netmon_core::incident::Status;
use netmon_core::ports::{Clock, StateStore};
use netmon_core::{TargetId, TenantId};
use reqwest::Method as M;
use serde_json::{Value, json};

async fn openapi(api: &Api) -> Value {
    let r = api.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    r.json
}

fn assert_problem(r: &common::Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_eq!(r.ctype, "application/problem+json", "{what}");
    assert_eq!(r.json["status"], status, "{what}");
    let detail = r.json["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "{what}: no detail");
    // Debug text of Rust values never reaches a client.
    for leak in ["Error(", "Some(", "None", "StoreError", "{ "] {
        assert!(!r.text.contains(leak), "{what}: {leak:?} in {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_crud_and_bad_input() {
    let mut h = Harness::new("api-crud", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;

    let r = api.get("/v1/targets").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    conforms(&doc, "/v1/targets", "get", 200, &r.json);

    let new = r#"{"id":"web","http":{"url":"http://127.0.0.1:9/"},"interval":"30s","tags":["prod","eu"]}"#;
    let r = api.post("/v1/targets", new).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["version"], 1);
    conforms(&doc, "/v1/targets", "post", 201, &r.json);
    let r = api.post("/v1/targets", new).await;
    assert_problem(&r, 409, "duplicate");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    let r = api.get("/v1/targets/web").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["spec"]["interval"], "30s");
    conforms(&doc, "/v1/targets/{id}", "get", 200, &r.json);

    // Tag filters: every listed tag must match; pages stay full across non-matching targets.
    for (q, want) in [
        ("tag=prod", vec!["web"]),
        ("tag=prod,eu", vec!["web"]),
        ("tag=prod,us", vec![]),
        ("limit=1", vec!["api"]),
        ("limit=1&after=api", vec!["web"]),
    ] {
        let r = api.get(&format!("/v1/targets?{q}")).await;
        assert_eq!(r.status, 200, "{q}");
        let ids: Vec<&str> = r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["spec"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "{q}");
    }
    let r = api.get("/v1/targets?limit=1").await;
    assert_eq!(r.json["next"], "api");

    let upd = r#"{"id":"web","http":{"url":"http://127.0.0.1:9/"},"interval":"45s"}"#;
    let r = api.put("/v1/targets/web", upd).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"], 2);
    let r = api.put("/v1/targets/web", upd).await;
    assert_eq!(r.json["version"], 2, "same body: no new version");
    let r = api
        .raw(
            M::PUT,
            "/v1/targets/web",
            Some(upd.replace("45s", "50s").as_str()),
            &[("if-match", "1")],
        )
        .await;
    assert_problem(&r, 409, "stale If-Match");
    let r = api
        .raw(M::PUT, "/v1/targets/web", Some(upd), &[("if-match", "x")])
        .await;
    assert_problem(&r, 400, "bad If-Match");
    let r = api
        .raw(
            M::PUT,
            "/v1/targets/new",
            Some(&upd.replace("web", "new")),
            &[("if-match", "3")],
        )
        .await;
    assert_problem(&r, 412, "If-Match on a missing target");
    let r = api.put("/v1/targets/other", upd).await;
    assert_problem(&r, 400, "id mismatch");
    assert_eq!(r.json["errors"][0]["field"], "id");

    let r = api
        .post(
            "/v1/targets",
            r#"{"id":"x","http":{"url":"http://a/"},"channels":["nope"]}"#,
        )
        .await;
    assert_problem(&r, 400, "unknown channel");
    assert_eq!(r.json["errors"][0]["field"], "channels[0]");

    let r = api.delete("/v1/targets/web").await;
    assert_eq!(r.status, 204);
    assert_problem(&api.delete("/v1/targets/web").await, 404, "deleted twice");
    assert_problem(&api.get("/v1/targets/no%20such").await, 404, "bad id");
    assert_problem(&api.get("/nope").await, 404, "no route");
    assert_problem(
        &api.raw(M::PATCH, "/v1/targets", None, &[]).await,
        405,
        "method",
    );

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

/// A request body and the field its error must name.
type BadBody = (String, &'static str);

/// Every route that takes a body refuses malformed JSON, wrong types, unknown fields, bad
/// values and oversized bodies with a 400/413 problem naming the field; routes with query
/// parameters refuse bad ones; none of it is ever a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_bad_input_with_field_level_problems() {
    let mut h = Harness::new("api-bad", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let api = h.api();
    let big = "n".repeat(70_000);
    // (method, path, wrong type body + its field, unknown field body + its field, bad value + field)
    let cases: Vec<(M, &str, BadBody, BadBody, BadBody)> = vec![
        (
            M::POST,
            "/v1/targets",
            (r#"{"id":"x","http":{"url":"http://a/"},"failure_threshold":"three"}"#.into(), "failure_threshold"),
            (r#"{"id":"x","http":{"url":"http://a/"},"bogus":1}"#.into(), "bogus"),
            (r#"{"id":"x","http":{"url":"http://a/"},"interval":"2s"}"#.into(), "interval"),
        ),
        (
            M::PUT,
            "/v1/targets/api",
            (r#"{"id":"api","http":{"url":"http://a/"},"enabled":"yes"}"#.into(), "enabled"),
            (r#"{"id":"api","http":{"url":"http://a/","bogus":1}}"#.into(), "http.bogus"),
            (r#"{"id":"api","tcp":{"host":"x","port":0}}"#.into(), "tcp.port"),
        ),
        (
            M::POST,
            "/v1/channels",
            (r#"{"id":"c","webhook":{"url":7}}"#.into(), "webhook.url"),
            (r#"{"id":"c","log":{},"colour":"red"}"#.into(), "colour"),
            (r#"{"id":"c","webhook":{"url":"ftp://x/"}}"#.into(), "body"),
        ),
        (
            M::PUT,
            "/v1/channels/c",
            (r#"{"id":"c","log":"yes"}"#.into(), "log"),
            (r#"{"id":"c","log":{"x":1}}"#.into(), "log.x"),
            (r#"{"id":"c d","log":{}}"#.into(), "id"),
        ),
        (
            M::POST,
            "/v1/maintenance",
            (r#"{"id":"m","starts_at":5,"ends_at":"2026-01-01T00:00:00Z"}"#.into(), "starts_at"),
            (r#"{"id":"m","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","why":1}"#.into(), "why"),
            (r#"{"id":"m","starts_at":"2026-01-02T00:00:00Z","ends_at":"2026-01-01T00:00:00Z"}"#.into(), "body"),
        ),
        (
            M::PUT,
            "/v1/maintenance/m",
            (r#"{"id":"m","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","targets":"api"}"#.into(), "targets"),
            (r#"{"id":"m","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","target":["api"]}"#.into(), "target"),
            (r#"{"id":"m","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z","tags":["a b"]}"#.into(), "tags"),
        ),
        (
            M::POST,
            "/v1/keys",
            (r#"{"name":5}"#.into(), "name"),
            (r#"{"name":"ci","scopes":[]}"#.into(), "scopes"),
            (r#"{"name":"ci","role":"root"}"#.into(), "role"),
        ),
    ];
    for (method, path, wrong_type, unknown, bad_value) in cases {
        let what = format!("{method} {path}");
        let r = api.raw(method.clone(), path, Some("{not json"), &[]).await;
        assert_problem(&r, 400, &format!("{what} malformed"));
        assert_eq!(r.json["errors"][0]["field"], "body", "{what}");
        assert!(
            r.json["detail"].as_str().unwrap().contains("column"),
            "{what}: {}",
            r.text
        );
        for ((body, field), kind) in [
            (wrong_type, "wrong type"),
            (unknown, "unknown field"),
            (bad_value, "bad value"),
        ] {
            let r = api.raw(method.clone(), path, Some(&body), &[]).await;
            assert_problem(&r, 400, &format!("{what} {kind}: {body}"));
            assert_eq!(
                r.json["errors"][0]["field"], field,
                "{what} {kind}: {}",
                r.text
            );
        }
        let oversized = format!(r#"{{"id":"x","name":"{big}"}}"#);
        let r = api.raw(method.clone(), path, Some(&oversized), &[]).await;
        assert_problem(&r, 413, &format!("{what} oversized"));
        let r = api
            .raw(
                method.clone(),
                path,
                None,
                &[("content-type", "text/plain")],
            )
            .await;
        assert_problem(&r, 415, &format!("{what} not JSON"));
    }

    // A bad condition expression: the error gives the column inside the expression.
    let r = api
        .post("/v1/targets", r#"{"id":"x","http":{"url":"http://a/"},"conditions":["[STATUS] == 200","[STATUS] === 200"]}"#)
        .await;
    assert_problem(&r, 400, "bad condition");
    assert_eq!(r.json["errors"][0]["field"], "conditions[1]");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("column 12: expected a value"),
        "{}",
        r.text
    );
    let r = api
        .post(
            "/v1/targets",
            r#"{"id":"x","http":{"url":"http://a/"},"conditions":["[STAUTS] == 200"]}"#,
        )
        .await;
    assert!(
        r.json["detail"].as_str().unwrap().contains("column 1"),
        "{}",
        r.text
    );

    // Query parameters: unknown, wrong type, out of range.
    for (path, field) in [
        ("/v1/targets?limit=ten", "query"),
        ("/v1/targets?limit=0", "limit"),
        ("/v1/targets?colour=red", "query"),
        ("/v1/incidents?limit=9999", "limit"),
        ("/v1/incidents?status=closed", "query"),
        ("/v1/keys?tenant=a%20b", "query"),
    ] {
        let r = api.get(path).await;
        assert_problem(&r, 400, path);
        assert_eq!(r.json["errors"][0]["field"], field, "{path}");
    }
    // Ids that cannot exist are simply not found.
    for path in [
        "/v1/targets/a%20b",
        "/v1/targets/a%20b/history",
        "/v1/channels/-x",
        "/v1/maintenance/%2e",
    ] {
        assert_problem(&api.get(path).await, 404, path);
    }
    assert_problem(
        &api.post("/v1/targets/-x/check", "{}").await,
        404,
        "check bad id",
    );
    assert_problem(&api.delete("/v1/keys/zzz").await, 404, "revoke unknown");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_authenticate_and_revoke() {
    let mut h = Harness::new("api-keys", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let admin = h.api();
    let doc = openapi(&admin).await;

    // No key, a malformed key, a well-formed unknown key: 401 with a challenge.
    for (key, want) in [
        (None, "needs an API key"),
        (Some("hunter2"), "is not `Bearer nmk_"),
        (
            Some(
                "nmk_0123456789ab_0000000000000000000000000000000000000000000000000000000000000000",
            ),
            "not valid",
        ),
    ] {
        let r = admin.with_key(key).get("/v1/targets").await;
        assert_problem(&r, 401, &format!("{key:?}"));
        assert!(
            r.json["detail"].as_str().unwrap().contains(want),
            "{}",
            r.text
        );
        assert!(r.headers.get("www-authenticate").is_some());
    }
    let r = admin
        .raw(
            M::GET,
            "/v1/targets",
            None,
            &[("authorization", "Basic dXNlcjpwdw==")],
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the client's own bearer header wins here; Basic alone is refused below"
    );
    let r = Api::new(&admin.base, None)
        .raw(
            M::GET,
            "/v1/targets",
            None,
            &[("authorization", "Basic dXNlcjpwdw==")],
        )
        .await;
    assert_problem(&r, 401, "basic auth");

    // Public routes need no key.
    assert_eq!(admin.with_key(None).get("/healthz").await.status, 200);
    assert_eq!(admin.with_key(None).get("/openapi.json").await.status, 200);

    let r = admin.post("/v1/keys", r#"{"name":"ci"}"#).await;
    assert_eq!(r.status, 201, "{}", r.text);
    conforms(&doc, "/v1/keys", "post", 201, &r.json);
    let secret = r.json["key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("nmk_{id}_")));
    assert_eq!(r.json["role"], "tenant");
    let ci = admin.with_key(Some(&secret));
    assert_eq!(ci.get("/v1/targets").await.status, 200);

    let r = admin.get("/v1/keys").await;
    conforms(&doc, "/v1/keys", "get", 200, &r.json);
    assert!(!r.text.contains("secret_hash") && !r.text.contains(&secret[17..]));
    let listed: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&id.as_str()) && listed.len() == 2,
        "{listed:?}"
    );

    // A tenant key cannot mint an admin key nor one for another tenant.
    assert_problem(
        &ci.post("/v1/keys", r#"{"name":"x","role":"admin"}"#).await,
        403,
        "admin by tenant",
    );
    assert_problem(
        &ci.post("/v1/keys", r#"{"name":"x","tenant":"other"}"#)
            .await,
        403,
        "other tenant",
    );
    assert_problem(&ci.get("/v1/keys?tenant=other").await, 403, "list other");
    assert_problem(
        &ci.post("/v1/keys", r#"{"name":"  "}"#).await,
        400,
        "blank name",
    );

    let r = admin.delete(&format!("/v1/keys/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&doc, "/v1/keys/{id}", "delete", 200, &r.json);
    assert_eq!(r.json["active"], false);
    let r = ci.get("/v1/targets").await;
    assert_problem(&r, 401, "revoked");
    assert!(r.json["detail"].as_str().unwrap().contains("revoked"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_nothing_of_another() {
    let mut h = Harness::new(
        "api-tenants",
        "  - id: shared-name\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let admin = h.api();
    let a = admin.tenant_client("tenant-a", "tenant").await;
    let b = admin.tenant_client("tenant-b", "tenant").await;

    // B builds a target, a channel, a window, and (through a failing probe) an incident.
    let r = b.post("/v1/channels", r#"{"id":"b-hook","log":{}}"#).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = b
        .post("/v1/targets", &json!({"id": "secret-b", "http": {"url": h.target.url()}, "failure_threshold": 1, "channels": ["b-hook"]}).to_string())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = b
        .post("/v1/maintenance", r#"{"id":"b-window","starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-02T00:00:00Z"}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    h.target.set_mode(netmon_testkit::servers::Mode::Error);
    let r = b.post("/v1/targets/secret-b/check", "{}").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The reply can overtake the alerter (both consume the same probe.completed): poll.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let incidents = b.get("/v1/incidents").await;
        if incidents.json["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no incident: {}",
            incidents.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b_key = b.get("/v1/keys").await.json["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A: the same ids are "not found", listings are empty, nothing can be changed or probed.
    for path in [
        "/v1/targets/secret-b",
        "/v1/targets/secret-b/history",
        "/v1/channels/b-hook",
        "/v1/maintenance/b-window",
    ] {
        assert_problem(&a.get(path).await, 404, path);
    }
    assert_problem(
        &a.post("/v1/targets/secret-b/check", "{}").await,
        404,
        "probe",
    );
    assert_problem(
        &a.post("/v1/channels/b-hook/test", "{}").await,
        404,
        "test send",
    );
    assert_problem(
        &a.delete("/v1/targets/secret-b").await,
        404,
        "delete target",
    );
    assert_problem(
        &a.delete("/v1/channels/b-hook").await,
        404,
        "delete channel",
    );
    assert_problem(
        &a.delete("/v1/maintenance/b-window").await,
        404,
        "delete window",
    );
    assert_problem(
        &a.delete(&format!("/v1/keys/{b_key}")).await,
        404,
        "revoke b's key",
    );
    let r = a
        .put(
            "/v1/targets/secret-b",
            &json!({"id": "secret-b", "http": {"url": "http://127.0.0.1:9/"}, "If-Match": 1})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "unknown field first: {}", r.text);
    // A PUT of the same id creates A's own target; B's is untouched.
    let r = a
        .put(
            "/v1/targets/secret-b",
            r#"{"id":"secret-b","http":{"url":"http://127.0.0.1:9/"}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["tenant"], "tenant-a");
    let theirs = b.get("/v1/targets/secret-b").await;
    assert_eq!(
        theirs.json["spec"]["http"]["url"],
        h.target.url(),
        "{}",
        theirs.text
    );
    for path in ["/v1/channels", "/v1/maintenance", "/v1/incidents"] {
        let r = a.get(path).await;
        assert_eq!(r.json["items"], json!([]), "{path}: {}", r.text);
    }
    let r = a.get("/v1/targets").await;
    let ids: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["spec"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["secret-b"]);
    assert_eq!(
        a.get("/v1/targets/secret-b").await.json["tenant"],
        "tenant-a"
    );
    let overview = a.get("/v1/overview").await;
    assert_eq!(overview.json["counts"]["total"], 1);
    assert_eq!(overview.json["open_incidents"], 0);
    let keys = a.get("/v1/keys").await;
    assert!(
        keys.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["tenant"] == "tenant-a")
    );
    // And the config's own tenant (the admin's) never saw B's target either.
    assert_problem(
        &admin.get("/v1/targets/secret-b").await,
        404,
        "admin's tenant",
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_crud_and_test_send() {
    let mut h = Harness::new(
        "api-channels",
        "  - id: api\n    http: {url: '{target}'}\n    channels: [hook]\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;

    let r = api.get("/v1/channels").await;
    conforms(&doc, "/v1/channels", "get", 200, &r.json);
    assert_eq!(
        r.json["items"].as_array().unwrap().len(),
        2,
        "the config's two channels"
    );

    let spec =
        json!({"id": "signed", "webhook": {"url": h.hook.url(), "secret": "s3cr3t"}}).to_string();
    let r = api.post("/v1/channels", &spec).await;
    assert_eq!(r.status, 201, "{}", r.text);
    conforms(&doc, "/v1/channels", "post", 201, &r.json);
    assert_problem(
        &api.post("/v1/channels", &spec).await,
        409,
        "duplicate channel",
    );
    let r = api.get("/v1/channels/signed").await;
    conforms(&doc, "/v1/channels/{id}", "get", 200, &r.json);

    let r = api.post("/v1/channels/signed/test", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&doc, "/v1/channels/{id}/test", "post", 200, &r.json);
    assert_eq!(r.json["delivered"], true, "{}", r.text);
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].body["type"], "channel.test");
    assert_eq!(got[0].body["payload"]["channel_id"], "signed");
    netmon_testkit::contracts::validate_json(&got[0].body)
        .expect("channel.test matches its schema");

    // A channel that refuses is reported, not a server error.
    let dead = json!({"id": "dead", "webhook": {"url": "http://127.0.0.1:9/hook"}}).to_string();
    assert_eq!(api.post("/v1/channels", &dead).await.status, 201);
    let r = api.post("/v1/channels/dead/test", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["delivered"], false);
    assert!(
        r.json["error"].as_str().unwrap().contains("127.0.0.1:9"),
        "{}",
        r.text
    );

    let r = api
        .put(
            "/v1/channels/dead",
            r#"{"id":"dead","name":"Dead","log":{}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"], 2);
    conforms(&doc, "/v1/channels/{id}", "put", 200, &r.json);
    assert_eq!(
        api.post("/v1/channels/dead/test", "").await.json["delivered"],
        true
    );
    assert!(
        h.log
            .lines()
            .iter()
            .any(|l| l.contains("TEST Test notification")),
        "{:?}",
        h.log.lines()
    );

    let r = api.delete("/v1/channels/hook").await;
    assert_problem(&r, 409, "channel in use");
    assert!(
        r.json["detail"].as_str().unwrap().contains("api"),
        "{}",
        r.text
    );
    assert_eq!(api.delete("/v1/channels/dead").await.status, 204);
    assert_problem(&api.delete("/v1/channels/dead").await, 404, "deleted twice");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_records_state_but_holds_back_notifications() {
    let mut h = Harness::new(
        "api-maint",
        "  - id: api\n    http: {url: '{target}'}\n    failure_threshold: 2\n    tags: [db]\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;
    let mut jobs = 0;
    h.running().wait_jobs(1, WAIT).await.unwrap();
    jobs += 1;
    let now = h.clock.now();
    let window = json!({
        "id": "db-upgrade",
        "name": "DB upgrade",
        "starts_at": now,
        "ends_at": now + chrono::Duration::minutes(5),
        "tags": ["db"],
    });
    let r = api.post("/v1/maintenance", &window.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["active"], true);
    conforms(&doc, "/v1/maintenance", "post", 201, &r.json);
    let r = api.get("/v1/overview").await;
    conforms(&doc, "/v1/overview", "get", 200, &r.json);
    assert_eq!(r.json["counts"]["in_maintenance"], 1);

    // Down for three rounds inside the window: state says down, no incident, no notification.
    h.target.set_mode(netmon_testkit::servers::Mode::Error);
    for _ in 0..3 {
        h.round(&mut jobs).await;
    }
    let store = h.running().store();
    let state = store
        .load_state(
            &TenantId::default_tenant(),
            &TargetId::parse("api").unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(state.status, Status::Down);
    assert!(state.incident.is_none());
    assert!(
        h.hook.received().is_empty(),
        "nothing sent during the window"
    );
    assert_eq!(
        api.get("/v1/incidents?status=open").await.json["items"],
        json!([])
    );

    // The window ends with the target still down: the next failure opens and notifies.
    h.round(&mut jobs).await;
    h.round(&mut jobs).await;
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].body["type"], "incident.opened");
    let r = api.get("/v1/incidents?status=open").await;
    conforms(&doc, "/v1/incidents", "get", 200, &r.json);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);

    let r = api.get("/v1/maintenance").await;
    conforms(&doc, "/v1/maintenance", "get", 200, &r.json);
    assert_eq!(r.json["items"][0]["active"], false);
    let changed =
        json!({"id": "db-upgrade", "starts_at": now, "ends_at": now + chrono::Duration::hours(1)});
    let r = api
        .put("/v1/maintenance/db-upgrade", &changed.to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"], 2);
    conforms(&doc, "/v1/maintenance/{id}", "put", 200, &r.json);
    assert_eq!(
        api.get("/v1/maintenance/db-upgrade").await.json["spec"]["name"],
        "db-upgrade"
    );
    assert_eq!(api.delete("/v1/maintenance/db-upgrade").await.status, 204);
    assert_problem(&api.get("/v1/maintenance/db-upgrade").await, 404, "deleted");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_gives_uptime_and_percentiles() {
    let mut h = Harness::new("api-history", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;
    let mut jobs = 0;
    h.running().wait_jobs(1, WAIT).await.unwrap();
    jobs += 1;
    for _ in 0..2 {
        h.round(&mut jobs).await;
    }
    h.target.set_mode(netmon_testkit::servers::Mode::Error);
    h.round(&mut jobs).await;

    let r = api.get("/v1/targets/api/history").await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&doc, "/v1/targets/{id}/history", "get", 200, &r.json);
    for window in ["24h", "7d", "30d"] {
        assert_eq!(
            r.json["uptime"][window]["probes"], 4,
            "{window}: {}",
            r.text
        );
        assert_eq!(r.json["uptime"][window]["up"], 3, "{window}");
        assert_eq!(r.json["uptime"][window]["percent"], 75.0, "{window}");
    }
    let probes: u64 = r.json["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["probes"].as_u64().unwrap())
        .sum();
    assert_eq!(probes, 4);
    let day = &r.json["daily"][0];
    assert!(
        day["p50_ms"].as_f64().unwrap() > 0.0
            && day["p95_ms"].as_f64().unwrap() >= day["p50_ms"].as_f64().unwrap(),
        "{day}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_now_answers_over_the_event_bus() {
    let mut h = Harness::new(
        "api-check",
        "  - id: api\n    http: {url: '{target}'}\n  - id: cron\n    heartbeat: {period: 1h}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;
    h.running().wait_jobs(1, WAIT).await.unwrap();

    let r = api.post("/v1/targets/api/check", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    conforms(&doc, "/v1/targets/{id}/check", "post", 200, &r.json);
    assert_eq!(r.json["result"]["target"], "api");
    assert_eq!(r.json["result"]["outcome"], "up");
    let correlation = r.json["correlation_id"].as_str().unwrap().to_owned();
    // The reply is the prober's probe.completed with that correlation id, and the alerter
    // applied it like any other result.
    let published = h.captured();
    assert!(
        published
            .iter()
            .any(|e| e.correlation_id.as_deref() == Some(correlation.as_str())),
        "no probe.completed carried {correlation}"
    );
    netmon_testkit::contracts::assert_valid_all(&published);

    h.target.set_mode(netmon_testkit::servers::Mode::Error);
    let r = api.post("/v1/targets/api/check", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["result"]["outcome"], "down");
    assert_eq!(r.json["result"]["status_code"], 500);

    assert_problem(
        &api.post("/v1/targets/cron/check", "").await,
        409,
        "heartbeat",
    );
    assert_problem(
        &api.post("/v1/targets/nope/check", "").await,
        404,
        "unknown",
    );
    h.stop().await;

    // A probe that outlives the wait: 504 saying so.
    let mut h = Harness::new(
        "api-check-timeout",
        "  - id: slow\n    http: {url: '{target}'}\n    timeout: 5s\n",
    )
    .await;
    h.check_timeout = Some(Duration::from_millis(300));
    h.start().await;
    h.target.set_mode(netmon_testkit::servers::Mode::Hang);
    let api = h.api();
    let r = api.post("/v1/targets/slow/check", "").await;
    assert_problem(&r, 504, "timeout");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("no probe result within 300ms"),
        "{}",
        r.text
    );
    h.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_per_key_and_per_ip() {
    let mut h = Harness::with_settings(
        "api-limit",
        "api:\n  rate_limit: {per_second: 0.01, burst: 3}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    for _ in 0..3 {
        assert_eq!(api.get("/v1/targets").await.status, 200);
    }
    let r = api.get("/v1/targets").await;
    assert_problem(&r, 429, "key over its burst");
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.json["detail"].as_str().unwrap().contains("bursts of 3"));
    // Requests without a key count per client IP, separately from the key.
    let anon = api.with_key(None);
    for _ in 0..3 {
        assert_eq!(anon.get("/openapi.json").await.status, 200);
    }
    assert_problem(&anon.get("/openapi.json").await, 429, "IP over its burst");
    h.stop().await;
}

/// `/openapi.json` names exactly the routes the router serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_only_those() {
    let mut h = Harness::new("api-openapi", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let api = h.api();
    let doc = openapi(&api).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let table: std::collections::BTreeSet<(String, String)> = netmon_app::api::routes()
        .iter()
        .map(|r| (r.path.to_owned(), r.verb.as_str().to_owned()))
        .collect();
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |verb| (path.clone(), verb.clone()))
        })
        .collect();
    assert_eq!(documented, table);
    assert!(documented.len() >= 34, "{documented:?}");

    // Every documented operation is served (it never reaches the fallback or a 405) ...
    for (path, verb) in &documented {
        let concrete = path
            .replace("{id}", "zz-none")
            .replace("{token}", "zz-none");
        let method = M::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
        let body = matches!(verb.as_str(), "post" | "put").then_some("{}");
        let r = api.raw(method, &concrete, body, &[]).await;
        assert_ne!(r.status, 405, "{verb} {path}");
        assert!(
            !r.text.contains("no such route"),
            "{verb} {path} is not routed"
        );
        assert!(r.status < 500, "{verb} {path}: {}", r.text);
        let op = &doc["paths"][path][verb];
        assert!(
            op["responses"][r.status.to_string()].is_object(),
            "{verb} {path} answered {} which it does not document",
            r.status
        );
    }
    // ... and what is not documented is not served.
    for (method, path) in [
        (M::GET, "/v1/nothing"),
        (M::DELETE, "/v1/incidents"),
        (M::PUT, "/v1/overview"),
        (M::GET, "/v1/targets/api/nothing"),
        (M::POST, "/healthz"),
    ] {
        let r = api.raw(method.clone(), path, Some("{}"), &[]).await;
        assert!(
            matches!(r.status, 404 | 405),
            "{method} {path}: {}",
            r.status
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_missed_opens_and_a_ping_resolves() {
    let mut h = Harness::new(
        "heartbeat",
        "  - id: backup\n    name: Nightly backup\n    heartbeat: {period: 1h, grace: 5m, token: tok-backup-00000001}\n",
    )
    .await;
    h.start().await;
    let ping = h.api().with_key(None);
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

    let r = ping
        .raw(M::POST, "/ping/tok-backup-00000001", None, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(state(&h).await, Status::Up);
    assert_problem(&ping.get("/ping/wrong-token").await, 404, "wrong token");

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
    assert_eq!(ping.get("/ping/tok-backup-00000001").await.status, 200);
    let got = h.hook.wait_for(2, WAIT).await;
    assert_eq!(got[1].body["type"], "incident.resolved");

    // A reported failure opens immediately. (One second later: results are ordered by time,
    // and one no newer than the last applied is ignored.)
    h.clock.advance(Duration::from_secs(1));
    let r = ping
        .raw(M::HEAD, "/ping/tok-backup-00000001/fail", None, &[])
        .await;
    assert_eq!(r.status, 200);
    let got = h.hook.wait_for(3, WAIT).await;
    assert_eq!(got[2].body["type"], "incident.opened");
    assert_eq!(got[2].body["payload"]["cause"]["error"]["kind"], "reported");
    assert_eq!(
        ping.get("/ping/tok-backup-00000001/start").await.status,
        200
    );
    netmon_testkit::contracts::assert_valid_all(&h.captured());
    h.stop().await;
}

/// One process reports a missed heartbeat at its deadline, not at the next minute: with only a
/// heartbeat target the scheduler used to sleep a whole minute (46 s late for `period: 10s`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_heartbeat_is_reported_within_two_seconds_of_its_deadline() {
    let mut h = Harness::new(
        "heartbeat-deadline",
        "  - id: job\n    heartbeat: {period: 10s, grace: 5s, token: tok-deadline-0001}\n",
    )
    .await;
    h.start().await;
    let ping = h.api().with_key(None);
    let pinged_at = h.clock.now();
    assert_eq!(ping.get("/ping/tok-deadline-0001").await.status, 200);
    // Let the scheduler take the ping into account before time moves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = pinged_at + chrono::Duration::seconds(15);
    h.clock.advance(Duration::from_secs(14));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.hook.received().is_empty(),
        "nothing is due before the deadline"
    );
    // Then half-second steps up to two seconds past the deadline; the report must have come by
    // then.
    let mut reported_at = None;
    while h.clock.now() < deadline + chrono::Duration::seconds(2) {
        h.clock.advance(Duration::from_millis(500));
        // Real time for the woken loops to run; the clock stands still meanwhile.
        for _ in 0..20 {
            if !h.hook.received().is_empty() {
                reported_at = Some(h.clock.now());
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if reported_at.is_some() {
            break;
        }
    }
    let reported_at = reported_at.expect("the miss was reported within 2 s of the deadline");
    let got = h.hook.wait_for(1, WAIT).await;
    assert_eq!(got[0].body["type"], "incident.opened");
    assert!(
        reported_at > deadline && reported_at <= deadline + chrono::Duration::seconds(2),
        "reported at {reported_at}, deadline {deadline}"
    );
    h.stop().await;
}
