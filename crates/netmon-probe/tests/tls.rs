mod common;

use chrono::{TimeZone, Utc};
use common::*;
use netmon_core::observation::ErrorKind;
use netmon_core::target::CheckSpec;
use netmon_probe::{ProbeConfig, StaticResolver};

fn resolver() -> StaticResolver {
    StaticResolver::new().with("selfsigned.test", [ip("127.0.0.1")])
}

#[tokio::test]
async fn verification_refuses_a_self_signed_certificate() {
    let server = serve_tls(tls_acceptor(&["selfsigned.test"], (2031, 5, 17)), |_| {
        ok("secret")
    })
    .await;
    let prober = prober_with(ProbeConfig::new(true, false), resolver());
    let obs = prober
        .observe(
            &CheckSpec::Http(http_check(&server.https_url("selfsigned.test", "/"))),
            T,
        )
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(e.message.contains("unknown issuer"), "{}", e.message);
    assert!(obs.connected, "TCP connected before TLS failed");
    assert_eq!(obs.status, None);
    assert_eq!(obs.timings.tls_ms, None);
    assert_eq!(
        server.hits(),
        0,
        "no request is sent over an unverified connection"
    );
}

#[tokio::test]
async fn without_verification_the_probe_succeeds_and_reports_expiry() {
    // 2031 is written as UTCTime, 2051 as GeneralizedTime: both encodings are read.
    for (y, m, d) in [(2031, 5, 17), (2051, 2, 3)] {
        let server = serve_tls(tls_acceptor(&["selfsigned.test"], (y, m, d)), |_| ok("hi")).await;
        let prober = prober_with(ProbeConfig::new(true, false), resolver());
        let mut check = http_check(&server.https_url("selfsigned.test", "/tls"));
        check.verify_tls = false;
        let obs = prober.observe(&CheckSpec::Http(check), T).await;

        assert_eq!(obs.error, None);
        assert_eq!(obs.status, Some(200));
        assert_eq!(obs.body.as_deref(), Some("hi"));
        assert_eq!(
            obs.certificate_expires_at,
            Some(
                Utc.with_ymd_and_hms(y, m.into(), d.into(), 0, 0, 0)
                    .unwrap()
            )
        );
        let t = obs.timings;
        assert!(t.dns_ms.is_some() && t.connect_ms.is_some() && t.tls_ms.is_some());
        assert!(t.first_byte_ms.is_some());
        let req = &server.requests()[0];
        assert_eq!(
            req.header("host"),
            Some(format!("selfsigned.test:{}", server.addr.port()).as_str())
        );
    }
}

#[tokio::test]
async fn tls_to_an_ip_literal_works_without_verification() {
    let server = serve_tls(tls_acceptor(&["127.0.0.1"], (2030, 1, 1)), |_| ok("ip")).await;
    let mut check = http_check(&server.https_url("127.0.0.1", "/"));
    check.verify_tls = false;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(
        obs.certificate_expires_at,
        Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn plain_http_server_behind_https_url_is_a_tls_error() {
    // Like a real plain-HTTP server: answers a ClientHello with a 400 and closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let mut check = http_check(&format!("https://{addr}/"));
    check.verify_tls = false;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Tls, "{}", e.message);
    assert!(obs.connected);
}
