//! `Idempotency`: claims, leases, completion and release, all driven by explicit instants.

use std::future::Future;

use chrono::Duration;
use netmon_core::ports::{Claim, Idempotency};

use super::fixtures::{at, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: Idempotency,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    lease_blocks_then_expires(&new_store().await).await;
    complete_is_done_until_keep_expires(&new_store().await).await;
    release_allows_reclaim(&new_store().await).await;
    concurrent_claims_have_one_winner(&new_store().await).await;
    late_release_keeps_completed_work(&new_store().await).await;
}

pub async fn lease_blocks_then_expires<S: Idempotency + ?Sized>(store: &S) {
    let (key, other) = (unique("idem"), unique("idem"));
    let lease = Duration::seconds(60);
    assert_eq!(
        store.claim(&key, at(0), lease).await.expect("claim"),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(&key, at(30), lease).await.expect("claim"),
        Claim::InProgress,
        "held within the lease"
    );
    assert_eq!(
        store.claim(&other, at(30), lease).await.expect("claim"),
        Claim::Acquired,
        "keys are independent"
    );
    assert_eq!(
        store.claim(&key, at(60), lease).await.expect("claim"),
        Claim::Acquired,
        "a lease is over at its end instant (the conditional put's `expires <= now`)"
    );
    assert_eq!(
        store.claim(&key, at(90), lease).await.expect("claim"),
        Claim::InProgress,
        "the takeover holds a fresh lease"
    );
}

pub async fn complete_is_done_until_keep_expires<S: Idempotency + ?Sized>(store: &S) {
    let key = unique("idem");
    let lease = Duration::seconds(60);
    let keep = Duration::hours(1);
    assert_eq!(
        store.claim(&key, at(0), lease).await.expect("claim"),
        Claim::Acquired
    );
    store.complete(&key, at(5), keep).await.expect("complete");
    assert_eq!(
        store.claim(&key, at(10), lease).await.expect("claim"),
        Claim::Done
    );
    assert_eq!(
        store.claim(&key, at(3_000), lease).await.expect("claim"),
        Claim::Done,
        "done outlives the lease"
    );
    assert_eq!(
        store
            .claim(&key, at(5 + 3_600 + 1), lease)
            .await
            .expect("claim"),
        Claim::Acquired,
        "the done record expires after keep"
    );
}

pub async fn release_allows_reclaim<S: Idempotency + ?Sized>(store: &S) {
    let key = unique("idem");
    let lease = Duration::minutes(5);
    assert_eq!(
        store.claim(&key, at(0), lease).await.expect("claim"),
        Claim::Acquired
    );
    store.release(&key).await.expect("release");
    assert_eq!(
        store.claim(&key, at(1), lease).await.expect("claim"),
        Claim::Acquired,
        "released work can be retried at once"
    );
    store
        .release(&unique("idem"))
        .await
        .expect("releasing an unknown key is fine");
}

/// A worker whose lease lapsed may release after another finished the work: the release must
/// not undo the completion.
pub(crate) async fn late_release_keeps_completed_work<S: Idempotency + ?Sized>(store: &S) {
    let key = unique("idem");
    let lease = Duration::seconds(60);
    assert_eq!(
        store.claim(&key, at(0), lease).await.expect("claim"),
        Claim::Acquired
    );
    store
        .complete(&key, at(5), Duration::hours(1))
        .await
        .expect("complete");
    store.release(&key).await.expect("late release");
    assert_eq!(
        store.claim(&key, at(10), lease).await.expect("claim"),
        Claim::Done,
        "still done after a late release"
    );
}

pub async fn concurrent_claims_have_one_winner<S: Idempotency + ?Sized>(store: &S) {
    let key = unique("idem");
    let lease = Duration::seconds(60);
    let c = || store.claim(&key, at(0), lease);
    let all = tokio::join!(c(), c(), c(), c(), c(), c(), c(), c());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    let outcomes: Vec<Claim> = all.into_iter().map(|r| r.expect("claim")).collect();
    let won = outcomes.iter().filter(|c| **c == Claim::Acquired).count();
    assert_eq!(won, 1, "exactly one concurrent claim wins: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|c| matches!(c, Claim::Acquired | Claim::InProgress)),
        "{outcomes:?}"
    );
}
