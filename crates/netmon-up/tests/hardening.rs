//! Findings of the attack review (issue 12), each over real HTTP against `netmon up`: no tenant
//! can stall the monitor, the SSRF guard has no side door, keys and inputs are checked, and
//! nothing secret leaks.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Harness;
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
