//! The dashboard's live stream in `netmon up`: Server-Sent Events fed by the in-memory bus. A
//! client that reads gets its tenant's changes; a client that never reads does not slow the
//! pipeline and has its connection closed once its buffer is full.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::temp_store;
use netmon_core::events::{Envelope, Event, TargetDeleted};
use netmon_core::ports::EventBus;
use netmon_core::{TargetId, TenantId};
use netmon_embedded::MemoryBus;
use netmon_up::config;
use netmon_up::{Options, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(name: &str) -> (Running, MemoryBus) {
    let yaml = format!(
        // A long idle timeout, so only the live stream's own cut can close the slow client.
        "listen: 127.0.0.1:0\nstore: {}\napi:\n  server:\n    header_read_timeout: 120s\ntargets: []\n",
        temp_store(name).display()
    );
    let mut opts = Options::new(config::parse(&yaml, "test.yaml", Path::new("/")).expect("config"));
    let bus = MemoryBus::new();
    opts.bus = Some(bus.clone());
    (netmon_up::start(opts).await.expect("starts"), bus)
}

/// Signs in with the first admin key: the session cookie.
async fn cookie(running: &Running) -> String {
    let key = running
        .initial_admin_key()
        .expect("first start prints a key");
    let base = format!("http://{}", running.api_addr());
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}/signin"))
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(resp.status().as_u16(), 303);
    resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned()
}

/// A raw connection that asks for the stream and reads only the response head.
async fn open_stream(
    running: &Running,
    cookie: &str,
    recv_buffer: Option<u32>,
) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("small buffer");
    }
    let mut s = socket.connect(running.api_addr()).await.expect("connect");
    s.write_all(
        format!("GET /live HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n", running.api_addr())
            .as_bytes(),
    )
    .await
    .expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.expect("head"),
            1,
            "head ended early"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    s
}

/// Events only the scheduler and the dashboard subscribe to, with long ids so the stream's
/// bytes fill socket buffers quickly.
fn batch(tenant: &TenantId, from: usize, n: usize) -> Vec<Envelope> {
    (from..from + n)
        .map(|i| {
            Envelope::new(
                Event::TargetDeleted(TargetDeleted {
                    target_id: TargetId::parse(format!("gone-{i:06}-{}", "x".repeat(48)))
                        .expect("id"),
                }),
                tenant.clone(),
                "test",
                chrono::Utc::now(),
            )
        })
        .collect()
}

/// Publishes `n` events in batches of 200 and returns how long the bus took.
async fn publish(bus: &MemoryBus, tenant: &TenantId, n: usize) -> Duration {
    let started = Instant::now();
    for from in (0..n).step_by(200) {
        tokio::time::timeout(
            Duration::from_secs(10),
            bus.publish(batch(tenant, from, 200)),
        )
        .await
        .expect("the pipeline never waits for a browser")
        .expect("published");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_client_gets_its_tenants_changes_live() {
    let (running, bus) = start("live-read").await;
    let cookie = cookie(&running).await;
    let mut s = open_stream(&running, &cookie, None).await;
    let tenant = TenantId::default_tenant();
    bus.publish(batch(&TenantId::parse("other").expect("id"), 0, 1))
        .await
        .expect("published");
    bus.publish(batch(&tenant, 7, 1)).await.expect("published");
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !got.contains("event: change") && Instant::now() < deadline {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an event within 5 s")
            .expect("read");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("gone-000007"), "{got}");
    assert!(
        !got.contains("gone-000000"),
        "another tenant's event: {got}"
    );
    assert_eq!(running.live().open_connections(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_neither_slows_the_pipeline_nor_stays_connected() {
    let (running, bus) = start("live-slow").await;
    let tenant = TenantId::default_tenant();
    const EVENTS: usize = 40_000;
    // Warm up, then the baseline: no browser connected.
    publish(&bus, &tenant, 2_000).await;
    let baseline = publish(&bus, &tenant, EVENTS).await;

    let cookie = cookie(&running).await;
    let mut stalled = open_stream(&running, &cookie, Some(4096)).await;
    assert_eq!(running.live().open_connections(), 1);
    let with_stalled = publish(&bus, &tenant, EVENTS).await;
    eprintln!(
        "{EVENTS} events: {:.0} ms without a browser, {:.0} ms with one that never reads",
        baseline.as_secs_f64() * 1e3,
        with_stalled.as_secs_f64() * 1e3
    );
    // Two shared cores make timings noisy; a pipeline that waited for the browser would not
    // finish at all (the timeout in `publish`), one slowed by it would take many times longer.
    assert!(
        with_stalled < baseline * 2 + Duration::from_millis(500),
        "throughput changed: {baseline:?} without, {with_stalled:?} with a stalled browser"
    );
    assert_eq!(
        running.live().open_connections(),
        0,
        "the stalled browser was dropped from the feed when its buffer filled"
    );
    // Its TCP connection is closed after the grace period although it never read: reading now
    // drains what the kernel buffered and then finds the end at once (a connection left open
    // would idle for two minutes).
    tokio::time::sleep(netmon_app::http::live::OVERFLOW_GRACE + Duration::from_secs(1)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is still open");
    running.stop().await;
}
