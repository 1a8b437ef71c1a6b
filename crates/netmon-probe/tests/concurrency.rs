//! The application's probe loop (`probe_all`) over the real engine: bounded concurrency, and a
//! hanging target holds up nobody else.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use netmon_app::services::prober::probe_all;
use netmon_core::observation::ErrorKind;
use netmon_core::target::CheckSpec;
use netmon_probe::ProbeConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hanging_target_does_not_hold_up_the_others() {
    let fast = serve(|_| ok("fast")).await;
    let slow = serve(|_| Reply::Hang).await;
    let hang_timeout = Duration::from_millis(1500);
    let prober = Arc::new(prober(ProbeConfig::new(true, false)));

    let mut jobs = vec![(
        tenant(),
        spec(
            "slow",
            CheckSpec::Http(http_check(&slow.url("/"))),
            hang_timeout,
            &[],
        ),
    )];
    for i in 0..19 {
        jobs.push((
            tenant(),
            spec(
                &format!("fast-{i}"),
                CheckSpec::Http(http_check(&fast.url(&format!("/{i}")))),
                Duration::from_secs(5),
                &[],
            ),
        ));
    }

    let started = Instant::now();
    let results = probe_all(prober.as_ref(), jobs, "test-loc", 4, fixed_start).await;
    let elapsed = started.elapsed();

    assert_eq!(results.len(), 20);
    assert_eq!(fast.hits(), 19);
    let fast_results: Vec<_> = results
        .iter()
        .filter(|r| r.target.as_str() != "slow")
        .collect();
    assert_eq!(fast_results.len(), 19);
    for r in &fast_results {
        assert_eq!(r.status_code, Some(200), "{}", r.target);
        assert_eq!(r.error, None);
        assert_eq!(r.location, "test-loc");
        assert_eq!(r.started_at, fixed_start());
    }
    let slow_result = results
        .iter()
        .find(|r| r.target.as_str() == "slow")
        .unwrap();
    assert_eq!(
        slow_result.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Timeout)
    );
    assert!(elapsed >= hang_timeout, "{elapsed:?}");
    assert!(
        elapsed < hang_timeout + Duration::from_millis(800),
        "{elapsed:?}"
    );
    // The fast ones finished long before the slow one gave up (completion order).
    assert_eq!(results.last().unwrap().target.as_str(), "slow");
}

#[tokio::test]
async fn each_probe_is_stamped_when_it_starts() {
    let server = serve(|_| ok("fine")).await;
    let prober = prober(ProbeConfig::new(true, false));
    let jobs = (0..3)
        .map(|i| {
            (
                tenant(),
                spec(
                    &format!("t{i}"),
                    CheckSpec::Http(http_check(&server.url("/"))),
                    Duration::from_secs(5),
                    &[],
                ),
            )
        })
        .collect();
    let stamp = fixed_start() + chrono::Duration::seconds(7);
    let results = probe_all(&prober, jobs, "loc", 0, || stamp).await;
    assert_eq!(
        results.len(),
        3,
        "concurrency 0 is treated as 1, not as a stall"
    );
    for r in results {
        assert_eq!(r.started_at, stamp);
        assert_eq!(r.status_code, Some(200));
    }
}
