//! `ChannelStore`: versioned writes, listing per tenant, delete semantics.

use std::future::Future;

use netmon_core::ports::{ChannelStore, Expect, StoreError};

use super::fixtures::{channel, tenant};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: ChannelStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    crud_roundtrip(&new_store().await).await;
    conflicts(&new_store().await).await;
    tenant_isolation(&new_store().await).await;
}

fn names(list: &[netmon_core::channel::Channel]) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|c| (c.spec.id.to_string(), c.spec.name.clone(), c.version))
        .collect();
    v.sort();
    v
}

pub async fn crud_roundtrip<S: ChannelStore + ?Sized>(store: &S) {
    let t = tenant("ch");
    assert!(
        store
            .list_channels(&t)
            .await
            .expect("list empty")
            .is_empty()
    );
    let input = channel(&t, "ops", "Ops");
    let stored = store
        .put_channel(input.clone(), Expect::Absent)
        .await
        .expect("create");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.spec, input.spec);
    store
        .put_channel(channel(&t, "dev", "Dev"), Expect::Absent)
        .await
        .expect("create second");
    let list = store.list_channels(&t).await.expect("list");
    assert!(list.contains(&stored), "listed exactly as stored: {list:?}");
    assert_eq!(
        names(&list),
        [
            ("dev".into(), "Dev".into(), 1),
            ("ops".into(), "Ops".into(), 1)
        ]
    );

    let updated = store
        .put_channel(channel(&t, "ops", "Ops v2"), Expect::Version(1))
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(
        names(&store.list_channels(&t).await.expect("list")),
        [
            ("dev".into(), "Dev".into(), 1),
            ("ops".into(), "Ops v2".into(), 2)
        ]
    );

    assert!(store.delete_channel(&t, "ops").await.expect("delete"));
    assert!(!store.delete_channel(&t, "ops").await.expect("delete again"));
    assert_eq!(
        names(&store.list_channels(&t).await.expect("list")),
        [("dev".into(), "Dev".into(), 1)]
    );
}

pub async fn conflicts<S: ChannelStore + ?Sized>(store: &S) {
    let t = tenant("ch");
    store
        .put_channel(channel(&t, "ops", "One"), Expect::Absent)
        .await
        .expect("create");
    let err = store
        .put_channel(channel(&t, "ops", "Dup"), Expect::Absent)
        .await
        .expect_err("create over existing");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store
        .put_channel(channel(&t, "ops", "Two"), Expect::Version(1))
        .await
        .expect("update");
    let err = store
        .put_channel(channel(&t, "ops", "Stale"), Expect::Version(1))
        .await
        .expect_err("stale version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let any = store
        .put_channel(channel(&t, "ops", "Any"), Expect::Any)
        .await
        .expect("upsert");
    assert_eq!(any.version, 3);
    assert_eq!(
        names(&store.list_channels(&t).await.expect("list")),
        [("ops".into(), "Any".into(), 3)]
    );
}

pub async fn tenant_isolation<S: ChannelStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("cha"), tenant("chb"));
    store
        .put_channel(channel(&a, "ops", "A"), Expect::Absent)
        .await
        .expect("a");
    store
        .put_channel(channel(&b, "ops", "B"), Expect::Absent)
        .await
        .expect("same id, other tenant");
    assert_eq!(
        names(&store.list_channels(&a).await.expect("list a")),
        [("ops".into(), "A".into(), 1)]
    );
    assert!(store.delete_channel(&a, "ops").await.expect("delete a"));
    assert_eq!(
        names(&store.list_channels(&b).await.expect("list b")),
        [("ops".into(), "B".into(), 1)],
        "deleting in one tenant leaves the other alone"
    );
}
