mod common;

use std::time::{Duration, Instant};

use common::*;
use netmon_core::observation::ErrorKind;
use netmon_core::result::Outcome;
use netmon_core::target::{CheckSpec, TcpCheck};
use netmon_probe::{ProbeConfig, StaticResolver};

#[tokio::test]
async fn a_redirect_to_the_metadata_service_is_blocked() {
    let server = serve(|_| redirect(302, "http://169.254.169.254/latest/meta-data/")).await;
    let prober = prober(ProbeConfig::new(true, false));
    let check = CheckSpec::Http(http_check(&server.url("/innocent")));
    let started = Instant::now();
    let obs = prober.observe(&check, T).await;

    let e = obs.error.clone().expect("blocked");
    assert_eq!(e.kind, ErrorKind::Blocked);
    assert_eq!(
        e.message,
        "refused to connect to 169.254.169.254 (cloud metadata endpoint); \
         set allow_link_local to permit"
    );
    // The refusal happens before any connection attempt to the metadata address.
    assert!(!obs.connected);
    assert_eq!(obs.ip, None);
    assert_eq!(obs.timings.connect_ms, None);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.hits(), 1);

    let result = prober
        .probe(
            &tenant(),
            &spec("meta", check, T, &[]),
            "test",
            fixed_start(),
        )
        .await;
    assert_eq!(result.outcome, Outcome::Down);
    assert_eq!(result.error.map(|e| e.kind), Some(ErrorKind::Blocked));
}

#[tokio::test]
async fn a_name_resolving_to_the_metadata_service_is_blocked() {
    let resolver = StaticResolver::new().with("metadata.evil.test", [ip("169.254.169.254")]);
    let prober = prober_with(ProbeConfig::new(false, false), resolver);
    let obs = prober
        .observe(
            &CheckSpec::Http(http_check("http://metadata.evil.test/latest/meta-data/")),
            T,
        )
        .await;
    let e = obs.error.expect("blocked");
    assert_eq!(e.kind, ErrorKind::Blocked);
    assert!(e.message.contains("169.254.169.254"), "{}", e.message);
    assert!(obs.timings.dns_ms.is_some());
    assert!(!obs.connected);
}

#[tokio::test]
async fn loopback_is_refused_in_the_cloud_and_allowed_embedded() {
    let server = serve(|_| ok("local")).await;
    let check = CheckSpec::Http(http_check(&server.url("/")));

    let cloud = prober(ProbeConfig::new(false, false))
        .observe(&check, T)
        .await;
    let e = cloud.error.expect("blocked");
    assert_eq!(e.kind, ErrorKind::Blocked);
    assert_eq!(
        e.message,
        "refused to connect to 127.0.0.1 (loopback address); set allow_private to permit"
    );
    assert_eq!(server.hits(), 0, "nothing reached the server");

    let embedded = prober(ProbeConfig::new(true, false))
        .observe(&check, T)
        .await;
    assert_eq!(embedded.error, None);
    assert_eq!(embedded.status, Some(200));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn ipv4_mapped_ipv6_metadata_is_refused() {
    let prober = prober_with(
        ProbeConfig::new(true, false),
        StaticResolver::new().with("mapped.test", [ip("::ffff:169.254.169.254")]),
    );
    for url in [
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://mapped.test/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ] {
        let obs = prober.observe(&CheckSpec::Http(http_check(url)), T).await;
        let e = obs.error.expect("blocked");
        assert_eq!(e.kind, ErrorKind::Blocked, "{url}");
        assert!(e.message.contains("cloud metadata"), "{url}: {}", e.message);
    }
}

#[tokio::test]
async fn only_allowed_addresses_of_a_name_are_tried() {
    let server = serve(|_| ok("fine")).await;
    let resolver =
        StaticResolver::new().with("mixed.test", [ip("169.254.169.254"), ip("127.0.0.1")]);
    let prober = prober_with(ProbeConfig::new(true, false), resolver);
    let url = format!("http://mixed.test:{}/", server.addr.port());
    let obs = prober.observe(&CheckSpec::Http(http_check(&url)), T).await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.ip, Some(ip("127.0.0.1")));

    let all_refused = prober_with(
        ProbeConfig::new(false, false),
        StaticResolver::new().with("mixed.test", [ip("10.0.0.1"), ip("127.0.0.1")]),
    )
    .observe(&CheckSpec::Http(http_check(&url)), T)
    .await;
    let e = all_refused.error.expect("blocked");
    assert_eq!(e.kind, ErrorKind::Blocked);
    assert!(
        e.message.contains("10.0.0.1") && e.message.contains("127.0.0.1"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn tcp_checks_are_guarded_too() {
    let obs = prober(ProbeConfig::new(false, false))
        .observe(
            &CheckSpec::Tcp(TcpCheck {
                host: "169.254.169.254".into(),
                port: 80,
            }),
            T,
        )
        .await;
    assert_eq!(obs.error.expect("blocked").kind, ErrorKind::Blocked);
    assert!(!obs.connected);
}
