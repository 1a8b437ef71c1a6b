//! probe() = observe() + netmon_core::result::judge, with real conditions.

mod common;

use common::*;
use netmon_core::observation::ErrorKind;
use netmon_core::result::Outcome;
use netmon_core::target::{CheckSpec, TcpCheck};
use netmon_probe::ProbeConfig;

#[tokio::test]
async fn a_500_without_conditions_is_down() {
    let server = serve(|_| status(500)).await;
    let spec = spec("api", CheckSpec::Http(http_check(&server.url("/"))), T, &[]);
    let r = prober(ProbeConfig::new(true, false))
        .probe(&tenant(), &spec, "eu-west-1", fixed_start())
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.status_code, Some(500));
    assert_eq!(r.error, None);
    assert_eq!(r.started_at, fixed_start());
    assert_eq!(r.location, "eu-west-1");
    let failed: Vec<_> = r
        .failed_conditions()
        .map(|c| c.condition.as_str())
        .collect();
    assert_eq!(failed, ["[STATUS] < 400"]);
}

#[tokio::test]
async fn a_200_without_conditions_is_up() {
    let server = serve(|_| ok(r#"{"status":"UP"}"#)).await;
    let spec = spec("api", CheckSpec::Http(http_check(&server.url("/"))), T, &[]);
    let r = prober(ProbeConfig::new(true, false))
        .probe(&tenant(), &spec, "eu-west-1", fixed_start())
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{:?}", r.conditions);
    assert!(r.timings.connect_ms.is_some());
    assert_eq!(r.ip, Some(ip("127.0.0.1")));
}

#[tokio::test]
async fn explicit_conditions_are_applied() {
    let server = serve(|_| status(503)).await;
    let check = CheckSpec::Http(http_check(&server.url("/")));
    let prober = prober(ProbeConfig::new(true, false));
    let expect_503 = spec("maint", check.clone(), T, &["[STATUS] == 503"]);
    let r = prober
        .probe(&tenant(), &expect_503, "l", fixed_start())
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{:?}", r.conditions);
    let expect_200 = spec("maint", check, T, &["[STATUS] == 200"]);
    let r = prober
        .probe(&tenant(), &expect_200, "l", fixed_start())
        .await;
    assert_eq!(r.outcome, Outcome::Down);
}

#[tokio::test]
async fn a_port_that_must_stay_closed_is_up_when_refused() {
    let port = closed_port().await;
    let check = CheckSpec::Tcp(TcpCheck {
        host: "127.0.0.1".into(),
        port,
    });
    let s = spec("closed", check, T, &["[CONNECTED] == false"]);
    let r = prober(ProbeConfig::new(true, false))
        .probe(&tenant(), &s, "l", fixed_start())
        .await;
    assert_eq!(r.error.as_ref().map(|e| e.kind), Some(ErrorKind::Connect));
    assert_eq!(r.outcome, Outcome::Up, "{:?}", r.conditions);
}
