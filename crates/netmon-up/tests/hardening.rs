//! Findings of the attack review (issue 12), each over real HTTP against `netmon up`: no tenant
//! can stall the monitor, the SSRF guard has no side door, keys and inputs are checked, and
//! nothing secret leaks.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Harness;
use reqwest::Method as M;
use serde_json::json;
use tokio::task::JoinSet;

/// An HTTP server on 127.0.0.1:0 answering every request with `body`.
async fn serve_body(body: String) -> SocketAddr {
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { body }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Three "check now" calls whose `pat()` would backtrack (a 1,000-character run against a
/// 64 KiB body) leave `/healthz` answering in under 100 ms, and the checks answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_patterns_do_not_stall_the_api() {
    let body_addr = serve_body("a".repeat(64 * 1024)).await;
    // A rate limit that the polling below never reaches.
    let mut h = Harness::with_settings(
        "harden-pat",
        "api:\n  rate_limit: {per_second: 1000, burst: 1000}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let condition = format!("[BODY] == pat(*{}b)", "a".repeat(1000));
    for i in 0..3 {
        let spec = json!({
            "id": format!("slow{i}"),
            "http": {"url": format!("http://{body_addr}/")},
            "conditions": [condition],
        });
        let r = api.post("/v1/targets", &spec.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    let mut checks = JoinSet::new();
    let started = Instant::now();
    for i in 0..3 {
        let api = api.clone();
        checks.spawn(async move {
            let r = api.post(&format!("/v1/targets/slow{i}/check"), "").await;
            (r.status, r.json["result"]["outcome"].clone())
        });
    }
    let mut slowest = Duration::ZERO;
    let mut samples = 0;
    while !checks.is_empty() {
        let t = Instant::now();
        let r = api.get("/healthz").await;
        slowest = slowest.max(t.elapsed());
        samples += 1;
        assert_eq!(r.status, 200, "{}", r.text);
        while let Some(done) = checks.try_join_next() {
            let (status, outcome) = done.expect("check task");
            assert_eq!(status, 200);
            assert_eq!(outcome, "down", "the pattern does not match");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        slowest < Duration::from_millis(100),
        "/healthz took {slowest:?} (slowest of {samples}) while the checks ran"
    );
    // Linear matching answers in milliseconds; a backtracking one took seconds even here.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "the checks took {took:?}");
    h.stop().await;
}

/// A DNS check naming a loopback resolver, on a deployment that denies private addresses, is
/// refused by the SSRF guard: the resolver receives nothing, and the result says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_check_cannot_name_a_private_resolver_where_private_is_denied() {
    let resolver = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let resolver_addr = resolver.local_addr().expect("addr");
    let mut h = Harness::with_settings(
        "harden-dns",
        "probe:\n  allow_private: false\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let tenant = api.tenant_client("acme", "tenant").await;
    let spec = json!({
        "id": "internal-names",
        "dns": {"name": "db.internal.example", "resolver": resolver_addr.to_string()},
    });
    let r = tenant.post("/v1/targets", &spec.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = tenant.post("/v1/targets/internal-names/check", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let result = &r.json["result"];
    assert_eq!(result["outcome"], "down");
    assert_eq!(result["error"]["kind"], "blocked", "{result}");
    assert_eq!(
        result["error"]["message"],
        format!("refused to connect to 127.0.0.1 (loopback address); set allow_private to permit")
    );
    let mut buf = [0u8; 512];
    let got = tokio::time::timeout(Duration::from_millis(300), resolver.recv_from(&mut buf)).await;
    assert!(got.is_err(), "the resolver was sent a query: {got:?}");
    h.stop().await;
}

/// Cloud metadata endpoints are refused even where private addresses are allowed (the default of
/// `netmon up`): Alibaba's 100.100.100.200 sits in the CGNAT range but is metadata, as are the
/// IPv6 and IPv4-mapped forms. For probes and for webhooks alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_endpoints_are_refused_where_private_is_allowed() {
    let mut h = Harness::new(
        "harden-metadata",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    for (i, url) in [
        "http://100.100.100.200/latest/meta-data/",
        "http://[::ffff:100.100.100.200]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ]
    .into_iter()
    .enumerate()
    {
        let spec = json!({"id": format!("m{i}"), "http": {"url": url}, "timeout": "2s"});
        let r = api.post("/v1/targets", &spec.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = api.post(&format!("/v1/targets/m{i}/check"), "").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let result = &r.json["result"];
        assert_eq!(result["error"]["kind"], "blocked", "{url}: {result}");
        assert!(
            result["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("metadata"),
            "{url}: {result}"
        );
        let hook = json!({"id": format!("h{i}"), "webhook": {"url": url}});
        assert_eq!(
            api.post("/v1/channels", &hook.to_string()).await.status,
            201
        );
        let r = api.post(&format!("/v1/channels/h{i}/test"), "").await;
        assert_eq!(r.json["delivered"], false, "{url}: {}", r.text);
        assert!(r.text.contains("metadata"), "{url}: {}", r.text);
    }
    h.stop().await;
}

/// `/ping/{token}` finds its target by index: over HTTP, pings against a store of 10,000
/// heartbeat targets of 100 tenants cost about what they cost against one, and the API keeps
/// answering while four clients ping (a scan decoded every target per ping: 25 ms each at 3,000
/// targets, and four clients delayed the API by 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_against_ten_thousand_targets_stay_fast() {
    use netmon_core::ports::{Expect, TargetStore};
    const N: usize = 10_000;
    let mut h = Harness::with_settings(
        "harden-pings",
        "api:\n  rate_limit: {per_second: 100000, burst: 100000}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    let token = |i: usize| format!("ping-token-{i:06}-0123456789");
    let store = netmon_embedded::SqliteStore::open(&h.store)
        .await
        .expect("store");
    let now = chrono::Utc::now();
    let filled = Instant::now();
    for i in 0..N {
        let spec = serde_json::from_value(json!({
            "id": format!("job-{i}"),
            "heartbeat": {"period": "1h", "token": token(i)},
        }))
        .expect("spec");
        store
            .put_target(
                netmon_core::target::Target {
                    tenant: netmon_core::TenantId::parse(format!("t{}", i % 100)).expect("tenant"),
                    spec,
                    version: 0,
                    created_at: now,
                    updated_at: now,
                },
                Expect::Absent,
            )
            .await
            .expect("stored");
    }
    println!("{N} heartbeat targets stored in {:?}", filled.elapsed());
    store.close().await;
    h.start().await;
    let api = h.api();

    // About 1 s in a debug build; a scan took 140 s (it stops at the budget instead).
    const PINGS: usize = 1_000;
    let budget = Duration::from_secs(5);
    let started = Instant::now();
    let mut pingers = JoinSet::new();
    for c in 0..4 {
        let anon = api.with_key(None);
        pingers.spawn(async move {
            let mut done = 0;
            for i in (c..PINGS).step_by(4) {
                if started.elapsed() > budget {
                    break;
                }
                let r = anon.get(&format!("/ping/{}", token((i * 7919) % N))).await;
                assert_eq!(r.status, 200, "{}", r.text);
                done += 1;
            }
            done
        });
    }
    let (mut slowest, mut pinged) = (Duration::ZERO, 0);
    while !pingers.is_empty() {
        let t = Instant::now();
        let r = api.get("/v1/targets?limit=1").await;
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.text);
        while let Some(done) = pingers.try_join_next() {
            pinged += done.expect("pinger");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    println!("{pinged} pings over HTTP in {took:?}; slowest API call meanwhile {slowest:?}");
    assert!(
        pinged == PINGS && took < budget,
        "{pinged} of {PINGS} pings in {took:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "an API call took {slowest:?} during the pings"
    );
    assert_eq!(
        api.with_key(None)
            .get("/ping/no-such-token-000000")
            .await
            .status,
        404
    );
    h.stop().await;
}

/// A tenant key manages its tenant's keys, but revoking an admin key (the first admin key
/// included) needs an admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_key_cannot_revoke_an_admin_key() {
    let mut h = Harness::new(
        "harden-revoke",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let admin = h.api();
    let first_admin_id = admin.get("/v1/keys").await.json["items"][0]["id"]
        .as_str()
        .expect("the first admin key is listed")
        .to_owned();
    let tenant = admin.tenant_client("default", "tenant").await;
    let r = tenant.delete(&format!("/v1/keys/{first_admin_id}")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("needs an admin key"), "{}", r.text);
    assert_eq!(admin.get("/v1/targets").await.status, 200, "still valid");

    // Its own tenant's non-admin keys it may revoke; an admin key may revoke admin keys.
    let other = admin.tenant_client("default", "tenant").await;
    let other_id = own_key_id(&other).await;
    assert_eq!(
        tenant.delete(&format!("/v1/keys/{other_id}")).await.status,
        200
    );
    let second_admin = admin.tenant_client("default", "admin").await;
    let second_id = own_key_id(&second_admin).await;
    assert_eq!(
        tenant.delete(&format!("/v1/keys/{second_id}")).await.status,
        403
    );
    assert_eq!(
        admin.delete(&format!("/v1/keys/{second_id}")).await.status,
        200
    );
    h.stop().await;
}

/// The id of the key a client uses (`nmk_<id>_<secret>`).
async fn own_key_id(api: &common::Api) -> String {
    let key = api.key.as_deref().expect("a key");
    key["nmk_".len()..]
        .split('_')
        .next()
        .expect("id")
        .to_owned()
}

/// A read-only key reads its tenant's targets and channels with every secret redacted, and
/// every change, check or test send is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_reads_without_secrets_and_changes_nothing() {
    let mut h = Harness::new(
        "harden-readonly",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let admin = h.api();
    let writer = admin.tenant_client("acme", "tenant").await;
    let reader = admin.tenant_client("acme", "read_only").await;
    let r = writer
        .post(
            "/v1/targets",
            r#"{"id":"web","http":{"url":"https://bob:hunter2@example.com/a?apikey=k1","headers":{"Authorization":"Bearer s3cret"},"method":"POST","body":"pw=body-secret"}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = writer
        .post(
            "/v1/targets",
            r#"{"id":"cron","heartbeat":{"period":"1h","token":"tok-0123456789abcdef"}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = writer
        .post(
            "/v1/channels",
            r#"{"id":"hook","webhook":{"url":"https://hooks.example.com/T0/B1/hook-path-secret","secret":"hmac-secret","headers":{"X-Api-Key":"hdr-secret"}}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let secrets = [
        "hunter2",
        "k1",
        "s3cret",
        "body-secret",
        "tok-0123456789abcdef",
        "hook-path-secret",
        "hmac-secret",
        "hdr-secret",
    ];
    for path in [
        "/v1/targets",
        "/v1/targets/web",
        "/v1/targets/cron",
        "/v1/channels",
        "/v1/channels/hook",
    ] {
        let r = reader.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        for s in secrets {
            assert!(!r.text.contains(s), "{path} shows {s}: {}", r.text);
        }
        // The writer sees the targets' secrets it wrote; channel credentials are write-only
        // for every key.
        let w = writer.get(path).await;
        assert_eq!(
            secrets.iter().any(|s| w.text.contains(s)),
            path.starts_with("/v1/targets"),
            "{path}: {}",
            w.text
        );
    }
    assert_eq!(
        reader.get("/v1/targets/web").await.json["spec"]["http"]["headers"]["Authorization"],
        "<redacted>"
    );

    let refused = [
        (
            M::POST,
            "/v1/targets",
            Some(r#"{"id":"x","tcp":{"host":"a","port":1}}"#),
        ),
        (
            M::PUT,
            "/v1/targets/web",
            Some(r#"{"id":"web","tcp":{"host":"a","port":1}}"#),
        ),
        (M::DELETE, "/v1/targets/web", None),
        (M::POST, "/v1/targets/web/check", None),
        (M::POST, "/v1/channels/hook/test", None),
        (M::DELETE, "/v1/channels/hook", None),
        (M::POST, "/v1/keys", Some(r#"{"name":"more"}"#)),
    ];
    for (method, path, body) in refused {
        let r = reader.raw(method.clone(), path, body, &[]).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert!(r.text.contains("read-only"), "{}", r.text);
    }
    assert_eq!(
        writer.get("/v1/targets/web").await.status,
        200,
        "nothing was deleted"
    );
    h.stop().await;
}

/// A body is one JSON value: data after it is refused, not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_data_after_a_json_body_is_refused() {
    let mut h = Harness::new(
        "harden-trailing",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let spec = r#"{"id":"t","tcp":{"host":"example.com","port":443}}"#;
    for (body, what) in [
        (format!("{spec}{{\"id\":\"u\"}}"), "a second value"),
        (format!("{spec} x"), "a stray word"),
        (format!("{spec}]"), "a stray bracket"),
    ] {
        let r = api.post("/v1/targets", &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.json["errors"][0]["field"], "body", "{what}");
        assert!(r.text.contains("after the JSON value"), "{}", r.text);
    }
    assert_eq!(
        api.get("/v1/targets/t").await.status,
        404,
        "nothing was created"
    );
    let r = api.post("/v1/targets", &format!("{spec}\n\t ")).await;
    assert_eq!(r.status, 201, "trailing white space is fine: {}", r.text);
    h.stop().await;
}

/// Names end up in log lines, notifications and pages: control characters are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_are_refused() {
    let mut h = Harness::new("harden-names", "  - id: api\n    http: {url: '{target}'}\n").await;
    h.start().await;
    let api = h.api();
    for bad in [
        "two\nlines",
        "\u{1b}[31mred",
        "nul\u{0}",
        "rtl\u{202e}txt.exe",
        "cr\r",
        "line\u{2028}separator",
    ] {
        let name = json!(bad);
        let cases = [
            (
                "/v1/targets",
                json!({"id": "t", "name": name, "tcp": {"host": "a", "port": 1}}),
            ),
            ("/v1/channels", json!({"id": "c", "name": name, "log": {}})),
            (
                "/v1/maintenance",
                json!({"id": "m", "name": name, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}),
            ),
            ("/v1/keys", json!({"name": name})),
        ];
        for (path, body) in cases {
            let r = api.post(path, &body.to_string()).await;
            assert_eq!(r.status, 400, "{path} {bad:?}: {}", r.text);
            assert_eq!(r.json["errors"][0]["field"], "name", "{path}: {}", r.text);
        }
    }
    let r = api
        .post(
            "/v1/targets",
            r#"{"id":"t","name":"Web – Prod (ünïcode ok)","tcp":{"host":"a","port":1}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    h.stop().await;
}

/// A name stored before names were checked (here written to the store directly) still gives one
/// log line per notification, its control characters escaped: no forged line, no live ANSI code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_channel_escapes_control_characters_in_stored_names() {
    use netmon_core::ports::{Expect, TargetStore};
    let mut h = Harness::new(
        "harden-log-names",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.target.set_mode(netmon_testkit::servers::Mode::Error);
    let forged = "evil\n[netmon] UP api — recovered\u{1b}[2J\r\u{202e}";
    let spec: netmon_core::target::TargetSpec = serde_json::from_value(json!({
        "id": "evil",
        "name": forged,
        "http": {"url": h.target.url()},
        "failure_threshold": 1,
    }))
    .expect("the spec decodes: names are checked at the API and config, not in decoding");
    let store = netmon_embedded::SqliteStore::open(&h.store)
        .await
        .expect("store");
    let now = chrono::Utc::now();
    store
        .put_target(
            netmon_core::target::Target {
                tenant: netmon_core::TenantId::default_tenant(),
                spec,
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .expect("stored");
    store.close().await;

    h.start().await;
    let started = Instant::now();
    let line = loop {
        if let Some(l) = h.log.lines().into_iter().find(|l| l.contains("DOWN evil")) {
            break l;
        }
        assert!(
            started.elapsed() < common::WAIT,
            "no DOWN notice: {:?}",
            h.log.lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        line.contains(r"evil\n[netmon] UP api — recovered\u{1b}[2J\r\u{202e}"),
        "{line:?}"
    );
    for l in h.log.lines() {
        assert!(
            !l.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "a raw control character in {l:?}"
        );
    }
    h.stop().await;
}

/// A custom heartbeat token is 16+ URL-safe characters, and a token another tenant holds is
/// answered exactly as one the caller's own tenant holds, naming neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_tokens_are_checked_and_clashes_reveal_no_owner() {
    let mut h = Harness::new(
        "harden-tokens",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let admin = h.api();
    let hb = |id: &str, token: &str| {
        json!({"id": id, "heartbeat": {"period": "1h", "token": token}}).to_string()
    };
    for bad in [
        "a",
        "",
        "../../v1/targets",
        "short-token-15c",
        "has space 0123456789",
        "é-0123456789abcdef",
    ] {
        let r = admin.post("/v1/targets", &hb("cron", bad)).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        assert_eq!(
            r.json["errors"][0]["field"], "heartbeat.token",
            "{}",
            r.text
        );
    }
    let victim = admin.tenant_client("victim-co", "tenant").await;
    let r = victim
        .post("/v1/targets", &hb("secret-job", "victim-token-0123456789"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let own = admin.tenant_client("acme", "tenant").await;
    let r = own
        .post("/v1/targets", &hb("mine", "acme-token-0123456789"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let theirs = own
        .post("/v1/targets", &hb("probe", "victim-token-0123456789"))
        .await;
    let ours = own
        .post("/v1/targets", &hb("probe", "acme-token-0123456789"))
        .await;
    assert_eq!(theirs.status, 409, "{}", theirs.text);
    assert_eq!((ours.status, &ours.json), (theirs.status, &theirs.json));
    for leak in ["victim", "secret-job", "mine"] {
        assert!(!theirs.text.contains(leak), "{leak} in {}", theirs.text);
    }
    // Moving an existing target onto a taken token answers the same way too.
    let r = own
        .post("/v1/targets", &hb("probe", "acme-token-probe-0001"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let theirs = own
        .put("/v1/targets/probe", &hb("probe", "victim-token-0123456789"))
        .await;
    let ours = own
        .put("/v1/targets/probe", &hb("probe", "acme-token-0123456789"))
        .await;
    assert_eq!(theirs.status, 409, "{}", theirs.text);
    assert_eq!((ours.status, &ours.json), (theirs.status, &theirs.json));
    h.stop().await;
}

/// Reads until the server closes the connection (or `within` passes); returns how long that
/// took, `None` if it stayed open.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // a response; keep reading until the close
        }
    }
}

/// Idle connections (new ones that send nothing, keep-alive ones between requests, and ones
/// trickling their headers) are closed after the header-read timeout; past the per-IP cap a
/// new connection is closed at once, and the API answers again when the holders are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_excess_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let mut h = Harness::with_settings(
        "harden-conns",
        "api:\n  server: {header_read_timeout: 1s, max_connections_per_ip: 3}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let addr = h.running().api_addr();
    let limit = Duration::from_secs(4);

    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let took = closed_within(&mut silent, limit)
        .await
        .expect("a silent connection is closed");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");

    let mut keep_alive = TcpStream::connect(addr).await.expect("connect");
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let took = closed_within(&mut keep_alive, limit)
        .await
        .expect("an idle keep-alive is closed");
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");

    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
    {
        if trickle.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > limit {
            break;
        }
    }
    assert!(
        closed
            || closed_within(&mut trickle, Duration::from_millis(200))
                .await
                .is_some(),
        "a header trickled byte by byte is cut off ({:?})",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Three idle connections from this IP fill its share; a fourth is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.expect("the kernel accepts");
    let took = closed_within(&mut extra, Duration::from_millis(800))
        .await
        .expect("closed before any timeout");
    assert!(took < Duration::from_millis(800), "{took:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.api().get("/healthz").await.status, 200);
    h.stop().await;
}

/// `/healthz` is never rate-limited (a load balancer polling it must not read a 429 as down),
/// while the rest of the API is, per IP without a key and per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_not_rate_limited() {
    let mut h = Harness::with_settings(
        "harden-healthz",
        "api:\n  rate_limit: {per_second: 0.01, burst: 3}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let admin = h.api();
    let anon = admin.with_key(None);
    for _ in 0..3 {
        assert_eq!(anon.get("/openapi.json").await.status, 200);
    }
    assert_eq!(anon.get("/openapi.json").await.status, 429);
    for _ in 0..3 {
        assert_eq!(admin.get("/v1/targets").await.status, 200);
    }
    assert_eq!(admin.get("/v1/targets").await.status, 429);
    for client in [&anon, &admin] {
        for i in 0..20 {
            let r = client.get("/healthz").await;
            assert_eq!(r.status, 200, "request {i}: {}", r.text);
        }
    }
    h.stop().await;
}

/// Log output of this test process, captured (each test runs in its own process under nextest).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for Captured {
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

/// A webhook's URL path, query and user info are often its credential: a failed delivery shows
/// scheme, host and port only, in the test send's answer and in the log (WARN for a retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_show_no_url_path_query_or_credentials() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut h = Harness::new(
        "harden-hook-url",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let secrets = ["pw-secret", "path-secret", "q-secret"];
    let channel = json!({"id": "leaky", "webhook": {
        "url": "http://user:pw-secret@127.0.0.1:9/T0/B1/path-secret?token=q-secret"}});
    let r = api.post("/v1/channels", &channel.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post("/v1/channels/leaky/test", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["delivered"], false, "{}", r.text);
    let error = r.json["error"].as_str().unwrap_or_default();
    assert!(error.contains("http://127.0.0.1:9/"), "{error}");
    for s in secrets {
        assert!(!error.contains(s), "{s} in {error}");
    }

    // An incident notification to it fails and is retried, with a WARN line saying why.
    let spec = json!({"id": "down", "tcp": {"host": "127.0.0.1", "port": 9},
        "failure_threshold": 1, "channels": ["leaky"]});
    let r = api.post("/v1/targets", &spec.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post("/v1/targets/down/check", "").await;
    assert_eq!(r.json["result"]["outcome"], "down", "{}", r.text);
    let started = Instant::now();
    while !logs
        .text()
        .contains("notification failed; retried after the wait")
    {
        assert!(
            started.elapsed() < common::WAIT,
            "no failed delivery logged:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    assert!(text.contains("http://127.0.0.1:9/"), "{text}");
    for s in secrets {
        assert!(!text.contains(s), "{s} in the log:\n{text}");
    }
    h.stop().await;
}

/// Pages cannot be framed by another site; answers are not content-sniffed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refuse_to_be_framed() {
    let mut h = Harness::new(
        "harden-frames",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    for path in ["/status", "/healthz", "/v1/targets", "/nope"] {
        let r = api.get(path).await;
        let header = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert!(
            header("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    h.stop().await;
}

/// One tenant cannot fill the probe queue with "check now" calls: past a few waiting at once it
/// gets 429 straight away, and another tenant's check still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_now_calls_waiting_per_tenant_are_bounded() {
    let mut h = Harness::with_settings(
        "harden-checks",
        "api:\n  rate_limit: {per_second: 1000, burst: 1000}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.check_timeout = Some(Duration::from_secs(2));
    h.start().await;
    h.target.set_mode(netmon_testkit::servers::Mode::Hang);
    let admin = h.api();
    let mut waiting = JoinSet::new();
    for _ in 0..4 {
        let api = admin.clone();
        waiting.spawn(async move { api.post("/v1/targets/api/check", "").await.status });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let r = admin.post("/v1/targets/api/check", "").await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    let other = admin.tenant_client("acme", "tenant").await;
    let r = other
        .post(
            "/v1/targets",
            r#"{"id":"x","tcp":{"host":"127.0.0.1","port":9}}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = other.post("/v1/targets/x/check", "").await;
    assert_eq!(r.status, 200, "another tenant is not held up: {}", r.text);
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.expect("task"), 504, "the hung checks time out");
    }
    h.kill();
}

/// A fake target on 127.0.0.1:0 that reads each request and then answers with `head` (a status
/// line and headers) and nothing more, or not at all when `head` is `None`. It reports on
/// `requests` when a request arrived and on `closed` when the prober closed that connection.
async fn fake_target(
    head: Option<String>,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (requests_tx, requests) = tokio::sync::mpsc::unbounded_channel();
    let (closed_tx, closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (head, requests_tx, closed_tx) =
                (head.clone(), requests_tx.clone(), closed_tx.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = requests_tx.send(());
                if let Some(head) = head {
                    let _ = stream.write_all(head.as_bytes()).await;
                }
                // Whatever the prober sends or not, wait for it to close the connection.
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                let _ = closed_tx.send(());
            });
        }
    });
    (addr, requests, closed)
}

/// Sends a "check now" of `id` on a raw connection and returns it, so a test can go away mid-call.
async fn start_check(api: &common::Api, addr: SocketAddr, id: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let key = api.key.as_deref().expect("a key");
    let request = format!(
        "POST /v1/targets/{id}/check HTTP/1.1\r\nHost: netmon\r\nAuthorization: Bearer {key}\r\nContent-Length: 0\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    stream
}

/// A "check now" whose client goes away stops probing: the hung target sees its connection
/// closed at once, not when the probe's 30 s timeout would have ended it, and the API still
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_now_whose_client_leaves_stops_probing() {
    let (target, mut requests, mut closed) = fake_target(None).await;
    let mut h = Harness::new(
        "harden-cancel-probe",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let spec =
        json!({"id": "hung", "http": {"url": format!("http://{target}/")}, "timeout": "30s"});
    let r = api.post("/v1/targets", &spec.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let client = start_check(&api, h.running().api_addr(), "hung").await;
    tokio::time::timeout(Duration::from_secs(5), requests.recv())
        .await
        .expect("the probe reached the target");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left = Instant::now();
    drop(client);
    tokio::time::timeout(Duration::from_secs(3), closed.recv())
        .await
        .expect("the probe's connection is closed soon after its caller left");
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "{:?}",
        left.elapsed()
    );
    assert_eq!(api.get("/healthz").await.status, 200);
    // A check that stays to the end still gets its answer.
    let (quick, _requests, _closed) = fake_target(Some(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    ))
    .await;
    let spec = json!({"id": "quick", "http": {"url": format!("http://{quick}/")}});
    assert_eq!(api.post("/v1/targets", &spec.to_string()).await.status, 201);
    let r = api.post("/v1/targets/quick/check", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["result"]["outcome"], "up", "{}", r.text);
    h.stop().await;
}

/// A "check now" that times out (`504`) stops its probe too: the hung target sees the
/// connection closed right after the answer, not when the probe's 30 s timeout ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_now_that_times_out_stops_probing() {
    let (target, mut requests, mut closed) = fake_target(None).await;
    let mut h = Harness::new(
        "harden-cancel-timeout",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.check_timeout = Some(Duration::from_secs(1));
    h.start().await;
    let api = h.api();
    let spec =
        json!({"id": "hung", "http": {"url": format!("http://{target}/")}, "timeout": "30s"});
    let r = api.post("/v1/targets", &spec.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post("/v1/targets/hung/check", "").await;
    assert_eq!(r.status, 504, "{}", r.text);
    let answered = Instant::now();
    assert!(
        requests.try_recv().is_ok(),
        "the probe reached the target before the timeout"
    );
    tokio::time::timeout(Duration::from_secs(3), closed.recv())
        .await
        .expect("the probe's connection is closed soon after the 504");
    assert!(
        answered.elapsed() < Duration::from_secs(3),
        "{:?}",
        answered.elapsed()
    );
    h.stop().await;
}

/// A "check now" whose client goes away while its conditions are evaluated (50 costly `pat()`
/// matches over a 300 KiB header, run on the blocking pool) stops evaluating at the next
/// condition, rather than running on to the 1 s evaluation budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_now_whose_client_leaves_stops_evaluating() {
    use netmon_app::services::prober::evaluations_running;
    let head = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(300 * 1024)
    );
    let (target, _requests, _closed) = fake_target(Some(head)).await;
    let mut h = Harness::new(
        "harden-cancel-eval",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    h.start().await;
    let api = h.api();
    let condition = format!("[HEADERS].X-Big == pat(*{}b)", "a?".repeat(490));
    let spec = json!({
        "id": "costly",
        "http": {"url": format!("http://{target}/")},
        "conditions": vec![condition; 50],
    });
    let r = api.post("/v1/targets", &spec.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let client = start_check(&api, h.running().api_addr(), "costly").await;
    let started = Instant::now();
    while evaluations_running() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the evaluation never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let left = Instant::now();
    drop(client);
    while evaluations_running() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopped_after = left.elapsed();
    eprintln!(
        "evaluating for {:?} before the client left; stopped {stopped_after:?} after",
        left - started
    );
    assert!(
        stopped_after < Duration::from_millis(250),
        "the evaluation went on {stopped_after:?} after its caller left"
    );
    h.stop().await;
}
