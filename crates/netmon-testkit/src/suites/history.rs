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
