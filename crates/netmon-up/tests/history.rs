//! `netmon up`'s history task: at start it rolls up the hours it missed, then prunes raw results
//! older than `history.raw_retention`; the hourly numbers stay what the raw results said.

mod common;

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use common::{Harness, WAIT};
use netmon_core::history::Granularity;
use netmon_core::ports::HistoryStore;
use netmon_core::result::Outcome;
use netmon_core::{TargetId, TenantId};
use netmon_embedded::SqliteStore;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::suites::fixtures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_rolls_up_missed_hours_then_prunes_raw_results() {
    let mut h = Harness::with_settings(
        "history-start",
        "history: {raw_retention: 3h}\n",
        "  - id: api\n    http: {url: '{target}'}\n",
    )
    .await;
    // A clock ahead of the wall clock: the store (created now) has rolled nothing up there.
    let now = Granularity::Hour.floor(Utc::now()) + Duration::hours(30);
    h.clock = Arc::new(ManualClock::new(now));
    let tenant = TenantId::default_tenant();
    let old = TargetId::parse("old").unwrap();
    let first = now - Duration::hours(20);
    let results: Vec<_> = (0..19 * 60)
        .map(|m| {
            let mut r = fixtures::result(
                &tenant,
                "old",
                "test",
                first + Duration::minutes(m),
                if m % 10 == 0 {
                    Outcome::Down
                } else {
                    Outcome::Up
                },
            );
            r.duration_ms = 10.0 + (m % 50) as f64;
            r
        })
        .collect();
    let store = SqliteStore::open(&h.store).await.expect("store");
    store.record(&results).await.expect("record");
    store.close().await;
    drop(store);

    h.start().await;
    let store = h.running().store();
    let began = Instant::now();
    let raw = loop {
        let raw = store
            .results_since(&tenant, &old, first, 10_000)
            .await
            .expect("results");
        if raw.len() < results.len() || began.elapsed() > WAIT {
            break raw;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Raw results are kept from the hour holding now - 3h: hours now-3h and now-2h.
    assert_eq!(
        raw.len(),
        2 * 60,
        "raw results past the retention are pruned"
    );
    assert!(raw[0].started_at >= now - Duration::hours(3));
    let hours = store
        .buckets(&tenant, &old, first, now, Granularity::Hour)
        .await
        .expect("buckets");
    assert_eq!(hours.len(), 19);
    for b in &hours {
        assert_eq!((b.probes, b.up), (60, 54), "hour {}", b.start);
    }
    h.stop().await;
}
