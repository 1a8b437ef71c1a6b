mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use netmon_core::observation::ErrorKind;
use netmon_core::target::{CheckSpec, DnsCheck, DnsRecordType, TcpCheck};
use netmon_probe::{ProbeConfig, StaticResolver};

#[tokio::test]
async fn tcp_open_port_connects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let prober = prober_with(
        ProbeConfig::new(true, false),
        StaticResolver::new().with("db.test", [ip("127.0.0.1")]),
    );
    for host in ["127.0.0.1", "db.test"] {
        let obs = prober
            .observe(
                &CheckSpec::Tcp(TcpCheck {
                    host: host.into(),
                    port,
                }),
                T,
            )
            .await;
        assert_eq!(obs.error, None, "{host}");
        assert!(obs.connected);
        assert_eq!(obs.ip, Some(ip("127.0.0.1")));
        assert!(obs.timings.connect_ms.is_some());
        assert_eq!(obs.timings.dns_ms.is_some(), host == "db.test");
        assert_eq!(obs.timings.first_byte_ms, None);
    }
}

#[tokio::test]
async fn tcp_closed_port_is_a_connect_error() {
    let port = closed_port().await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(
            &CheckSpec::Tcp(TcpCheck {
                host: "127.0.0.1".into(),
                port,
            }),
            T,
        )
        .await;
    assert_eq!(obs.error.expect("error").kind, ErrorKind::Connect);
    assert!(!obs.connected);
}

fn zone(name: &str) -> DnsAnswer {
    match name {
        "ok.test." => DnsAnswer::Records(vec![RData::A(A::new(192, 0, 2, 1))]),
        "alias.test." => DnsAnswer::Records(vec![
            RData::CNAME(CNAME(common::name("ok.test."))),
            RData::A(A::new(192, 0, 2, 1)),
        ]),
        "mail.test." => {
            DnsAnswer::Records(vec![RData::MX(MX::new(10, common::name("mx.mail.test.")))])
        }
        "txt.test." => DnsAnswer::Records(vec![RData::TXT(TXT::new(vec!["v=spf1 -all".into()]))]),
        "big.test." => DnsAnswer::TruncatedThen(vec![RData::A(A::new(192, 0, 2, 7))]),
        "broken.test." => DnsAnswer::Rcode(ResponseCode::ServFail),
        "silent.test." => DnsAnswer::Silent,
        _ => DnsAnswer::Rcode(ResponseCode::NXDomain),
    }
}

fn dns(name: &str, record_type: DnsRecordType, resolver: &str, expected: &[&str]) -> CheckSpec {
    CheckSpec::Dns(DnsCheck {
        name: name.into(),
        record_type,
        resolver: Some(resolver.into()),
        expected: expected.iter().map(|s| s.to_string()).collect(),
    })
}

#[tokio::test]
async fn dns_answers_and_rcodes_are_observed() {
    let server = dns_server(zone).await;
    let at = server.addr.to_string();
    // DNS servers are operator-chosen and not guarded: even cloud_default may query 127.0.0.1.
    let prober = prober(ProbeConfig::new(true, false));

    let cases: &[(&str, DnsRecordType, &str, &[&str])] = &[
        ("ok.test", DnsRecordType::A, "NOERROR", &["192.0.2.1"]),
        (
            "alias.test",
            DnsRecordType::A,
            "NOERROR",
            &["ok.test.", "192.0.2.1"],
        ),
        (
            "mail.test",
            DnsRecordType::Mx,
            "NOERROR",
            &["10 mx.mail.test."],
        ),
        ("txt.test", DnsRecordType::Txt, "NOERROR", &["v=spf1 -all"]),
        ("missing.test", DnsRecordType::A, "NXDOMAIN", &[]),
        ("broken.test", DnsRecordType::A, "SERVFAIL", &[]),
        ("big.test", DnsRecordType::A, "NOERROR", &["192.0.2.7"]), // via the TCP retry
    ];
    for (name, rtype, rcode, answers) in cases {
        let obs = prober.observe(&dns(name, *rtype, &at, &[]), T).await;
        assert_eq!(obs.error, None, "{name}");
        assert!(obs.connected, "{name}");
        assert_eq!(obs.dns_rcode.as_deref(), Some(*rcode), "{name}");
        assert_eq!(obs.dns_answers, *answers, "{name}");
        assert!(obs.timings.dns_ms.is_some());
        assert_eq!(obs.ip, Some(server.addr.ip()));
    }
}

#[tokio::test]
async fn dns_expected_answers_must_all_be_present() {
    let server = dns_server(zone).await;
    let at = server.addr.to_string();
    let prober = prober(ProbeConfig::new(true, false));

    let ok = prober
        .observe(&dns("ok.test", DnsRecordType::A, &at, &["192.0.2.1"]), T)
        .await;
    assert_eq!(ok.error, None);

    let mx = prober
        .observe(
            &dns("mail.test", DnsRecordType::Mx, &at, &["10 MX.mail.test"]),
            T,
        )
        .await;
    assert_eq!(
        mx.error, None,
        "names compare case-insensitively, trailing dot optional"
    );

    let wrong = prober
        .observe(
            &dns(
                "ok.test",
                DnsRecordType::A,
                &at,
                &["192.0.2.1", "192.0.2.99"],
            ),
            T,
        )
        .await;
    let e = wrong.error.expect("mismatch");
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert_eq!(
        e.message,
        r#"expected answer "192.0.2.99" not in [192.0.2.1]"#
    );
    assert_eq!(wrong.dns_rcode.as_deref(), Some("NOERROR"));

    let nx = prober
        .observe(
            &dns("missing.test", DnsRecordType::A, &at, &["192.0.2.1"]),
            T,
        )
        .await;
    assert_eq!(nx.error.expect("mismatch").kind, ErrorKind::Protocol);
}

#[tokio::test]
async fn a_silent_dns_server_times_out() {
    let server = dns_server(zone).await;
    let timeout = Duration::from_millis(1500); // spans one UDP retransmission
    let started = Instant::now();
    let obs = prober(ProbeConfig::new(true, false))
        .observe(
            &dns(
                "silent.test",
                DnsRecordType::A,
                &server.addr.to_string(),
                &[],
            ),
            timeout,
        )
        .await;
    let e = obs.error.expect("timeout");
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(
        e.message,
        format!(
            "timed out after 1500ms waiting for a DNS response from {}",
            server.addr
        )
    );
    assert!(!obs.connected);
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
}

#[tokio::test]
async fn the_default_dns_server_is_used_when_none_is_named() {
    let server = dns_server(zone).await;
    let prober = prober(ProbeConfig::new(false, false)).with_default_dns_server(server.addr);
    let obs = prober
        .observe(
            &CheckSpec::Dns(DnsCheck {
                name: "ok.test".into(),
                record_type: DnsRecordType::A,
                resolver: None,
                expected: vec![],
            }),
            T,
        )
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.dns_answers, ["192.0.2.1"]);
}

/// The resolver a check names is a destination the tenant chose: the SSRF guard applies, so a
/// deployment that denies private and link-local addresses sends it nothing.
#[tokio::test]
async fn a_named_resolver_passes_the_ssrf_guard() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let server = dns_server(move |name| {
        counter.fetch_add(1, Ordering::SeqCst);
        zone(name)
    })
    .await;
    let check = dns("ok.test", DnsRecordType::A, &server.addr.to_string(), &[]);

    let cloud = prober(ProbeConfig::new(false, false))
        .observe(&check, T)
        .await;
    let e = cloud.error.expect("blocked");
    assert_eq!(e.kind, ErrorKind::Blocked);
    assert_eq!(
        e.message,
        "refused to connect to 127.0.0.1 (loopback address); set allow_private to permit"
    );
    assert!(!cloud.connected);
    assert_eq!(cloud.dns_rcode, None);
    assert_eq!(asked.load(Ordering::SeqCst), 0, "no query was sent");

    // Metadata and link-local resolvers stay refused where private ones are allowed.
    let embedded = prober(ProbeConfig::new(true, false));
    for resolver in [
        "169.254.169.253",
        "169.254.169.254",
        "[fd00:ec2::253]:53",
        "fd20:ce::254",
        "100.100.100.200",
        "fe80::1",
    ] {
        let obs = embedded
            .observe(&dns("ok.test", DnsRecordType::A, resolver, &[]), T)
            .await;
        let e = obs.error.expect(resolver);
        assert_eq!(e.kind, ErrorKind::Blocked, "{resolver}: {}", e.message);
        assert!(e.message.contains("allow_link_local"), "{}", e.message);
    }

    let local = embedded.observe(&check, T).await;
    assert_eq!(local.error, None);
    assert_eq!(local.dns_answers, vec!["192.0.2.1"]);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
