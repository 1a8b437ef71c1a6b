//! `HistoryStore`: batches recorded together, queried per target oldest first.

use std::future::Future;

use netmon_core::ports::HistoryStore;
use netmon_core::result::Outcome;

use super::fixtures::{at, result, target_id, tenant};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: HistoryStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    results_since_is_per_target_oldest_first_and_limited(&new_store().await).await;
    redelivered_results_are_recorded_once(&new_store().await).await;
    buckets_aggregate_per_hour_and_day(&new_store().await).await;
}

/// Hours and days are UTC; `[from, to)`; only this tenant's target; down probes count for uptime
/// but not latency; every adapter gives the same numbers (the shared histogram).
pub(crate) async fn buckets_aggregate_per_hour_and_day<S: HistoryStore + ?Sized>(store: &S) {
    use netmon_core::history::Granularity;
    let (a, b) = (tenant("hb"), tenant("hb"));
    let x = target_id("x");
    // `at(0)` is 2026-11-28T10:00:00Z, an hour boundary.
    let day0 = Granularity::Day.floor(at(0));
    let mut batch = Vec::new();
    for (i, (secs, outcome, ms)) in [
        (0, Outcome::Up, 10.0),
        (60, Outcome::Up, 30.0),
        (120, Outcome::Down, 9_000.0),
        (3_600, Outcome::Up, 100.0),
        (86_400, Outcome::Up, 5.0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = result(
            &a,
            "x",
            if i % 2 == 0 { "eu" } else { "us" },
            at(secs),
            outcome,
        );
        r.duration_ms = ms;
        batch.push(r);
    }
    batch.push(result(&b, "x", "eu", at(30), Outcome::Down));
    batch.push(result(&a, "y", "eu", at(30), Outcome::Down));
    store.record(&batch).await.expect("record");

    let hours = store
        .buckets(&a, &x, at(0), at(2 * 86_400), Granularity::Hour)
        .await
        .expect("hour buckets");
    let shape: Vec<_> = hours.iter().map(|h| (h.start, h.probes, h.up)).collect();
    assert_eq!(
        shape,
        [(at(0), 3, 2), (at(3_600), 1, 1), (at(86_400), 1, 1)],
        "hourly buckets, empty hours left out"
    );
    assert_eq!(hours[0].latency.count(), 2, "down probes carry no latency");
    let p50 = hours[0].p50_ms().expect("p50");
    assert!((7.0..=30.0).contains(&p50), "p50 {p50}");

    let days = store
        .buckets(
            &a,
            &x,
            day0,
            day0 + chrono::Duration::days(3),
            Granularity::Day,
        )
        .await
        .expect("day buckets");
    let shape: Vec<_> = days.iter().map(|d| (d.start, d.probes, d.up)).collect();
    assert_eq!(
        shape,
        [(day0, 4, 3), (day0 + chrono::Duration::days(1), 1, 1)]
    );

    let window = store
        .buckets(&a, &x, at(60), at(3_600), Granularity::Hour)
        .await
        .expect("window");
    assert_eq!(window.len(), 1);
    assert_eq!(
        (window[0].probes, window[0].up),
        (2, 1),
        "from is inclusive, to exclusive"
    );
}

pub async fn results_since_is_per_target_oldest_first_and_limited<S: HistoryStore + ?Sized>(
    store: &S,
) {
    let (a, b) = (tenant("hi"), tenant("hi"));
    let x = target_id("x");
    let mine = [
        result(&a, "x", "eu", at(0), Outcome::Up),
        result(&a, "x", "us", at(60), Outcome::Down),
        result(&a, "x", "eu", at(120), Outcome::Up),
        result(&a, "x", "eu", at(180), Outcome::Down),
    ];
    // Recorded out of order and mixed with other targets and tenants, in one batch.
    let batch = vec![
        mine[2].clone(),
        result(&a, "y", "eu", at(90), Outcome::Up),
        mine[0].clone(),
        result(&b, "x", "eu", at(100), Outcome::Up),
        mine[3].clone(),
        mine[1].clone(),
    ];
    store.record(&batch).await.expect("record");
    store.record(&[]).await.expect("recording nothing is fine");

    let all = store
        .results_since(&a, &x, at(0), 100)
        .await
        .expect("query");
    assert_eq!(
        all,
        mine.to_vec(),
        "only this target's, oldest first, intact"
    );
    let since = store
        .results_since(&a, &x, at(60), 100)
        .await
        .expect("query");
    assert_eq!(since, mine[1..].to_vec(), "`since` is inclusive");
    let limited = store.results_since(&a, &x, at(0), 2).await.expect("query");
    assert_eq!(limited, mine[..2].to_vec(), "a limit keeps the oldest");
    let later = store
        .results_since(&a, &x, at(181), 100)
        .await
        .expect("query");
    assert!(later.is_empty());
    let theirs = store
        .results_since(&b, &x, at(0), 100)
        .await
        .expect("query");
    assert_eq!(theirs, vec![batch[3].clone()], "tenants are isolated");
}

pub async fn redelivered_results_are_recorded_once<S: HistoryStore + ?Sized>(store: &S) {
    let t = tenant("hi");
    let batch = vec![
        result(&t, "x", "eu", at(0), Outcome::Up),
        result(&t, "x", "eu", at(60), Outcome::Up),
    ];
    store.record(&batch).await.expect("record");
    store
        .record(&batch)
        .await
        .expect("record the same batch again");
    let got = store
        .results_since(&t, &target_id("x"), at(0), 100)
        .await
        .expect("query");
    assert_eq!(got, batch, "a redelivered batch does not duplicate history");
}
