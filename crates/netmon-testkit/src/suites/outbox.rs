//! `Outbox`: entries appended by `commit_state` come back oldest first until marked published;
//! event ids already present are ignored.

use std::future::Future;

use netmon_core::events::Envelope;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::Status;
use netmon_core::ports::{Expect, Outbox, StateStore};

use super::fixtures::{at, event, state, target_id, tenant, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: StateStore + Outbox,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    pending_oldest_first_until_published(&new_store().await).await;
    duplicate_ids_are_ignored(&new_store().await).await;
    published_ids_are_not_appended_again(&new_store().await).await;
}

/// Our pending entries (ids in `ours`), in the order the store returns them.
async fn pending_of<S: Outbox + ?Sized>(store: &S, ours: &[&Envelope]) -> Vec<Envelope> {
    store
        .pending(1_000)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| ours.iter().any(|o| o.id == e.id))
        .collect()
}

/// Commits `events` with a fresh state version of `target`.
async fn emit<S: StateStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    target: &TargetId,
    events: &[Envelope],
) {
    let current = store.load_state(tenant, target).await.expect("load");
    let expect = current.map_or(Expect::Absent, |v| Expect::Version(v.version));
    store
        .commit_state(
            tenant,
            target,
            expect,
            &state(Status::Down, at(0)),
            &[],
            events,
        )
        .await
        .expect("commit with events");
}

pub async fn pending_oldest_first_until_published<S: StateStore + Outbox + ?Sized>(store: &S) {
    let t = tenant("ob");
    let e1 = event(&t, &unique("ev"), at(1));
    let e2 = event(&t, &unique("ev"), at(2));
    let e3 = event(&t, &unique("ev"), at(3));
    let e4 = event(&t, &unique("ev"), at(4));
    emit(store, &t, &target_id("a"), std::slice::from_ref(&e1)).await;
    emit(store, &t, &target_id("b"), std::slice::from_ref(&e2)).await;
    emit(store, &t, &target_id("a"), &[e3.clone(), e4.clone()]).await;
    let ours = [&e1, &e2, &e3, &e4];

    let pending = pending_of(store, &ours).await;
    assert_eq!(pending.len(), 4, "{pending:?}");
    assert_eq!(
        pending[..2],
        [e1.clone(), e2.clone()],
        "earlier commits come first, envelopes intact"
    );
    assert!(pending[2..].contains(&e3) && pending[2..].contains(&e4));
    let entries = store.pending(2).await.expect("limited");
    assert!(entries.len() <= 2, "limit respected");

    store
        .mark_published(&[e2.id.clone(), e3.id.clone()])
        .await
        .expect("mark");
    assert_eq!(pending_of(store, &ours).await, vec![e1.clone(), e4.clone()]);

    // Unknown and already-published ids are fine.
    store
        .mark_published(&[e1.id.clone(), e2.id.clone(), e4.id.clone(), unique("never")])
        .await
        .expect("mark rest");
    store.mark_published(&[]).await.expect("mark nothing");
    assert!(pending_of(store, &ours).await.is_empty());
}

pub async fn duplicate_ids_are_ignored<S: StateStore + Outbox + ?Sized>(store: &S) {
    let t = tenant("ob");
    let x = target_id("api");
    let e1 = event(&t, &unique("ev"), at(1));
    let e2 = event(&t, &unique("ev"), at(2));
    emit(store, &t, &x, std::slice::from_ref(&e1)).await;
    // Re-emitting the same logical event (a retried evaluation) alongside a new one.
    let mut e1_again = e1.clone();
    e1_again.time = at(99);
    emit(store, &t, &x, &[e1_again, e2.clone()]).await;
    assert_eq!(
        pending_of(store, &[&e1, &e2]).await,
        vec![e1, e2],
        "one entry per event id; the first one written is kept"
    );
}

pub async fn published_ids_are_not_appended_again<S: StateStore + Outbox + ?Sized>(store: &S) {
    let t = tenant("ob");
    let x = target_id("api");
    let e1 = event(&t, &unique("ev"), at(1));
    emit(store, &t, &x, std::slice::from_ref(&e1)).await;
    store
        .mark_published(std::slice::from_ref(&e1.id))
        .await
        .expect("mark");
    emit(store, &t, &x, std::slice::from_ref(&e1)).await;
    assert!(
        pending_of(store, &[&e1]).await.is_empty(),
        "an event already published must not be sent again"
    );
}
