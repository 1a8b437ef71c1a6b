//! `MaintenanceStore`: versioned writes, listing per tenant by id, delete semantics.

use std::future::Future;

use netmon_core::ids::WindowId;
use netmon_core::ports::{Expect, MaintenanceStore, StoreError};

use super::fixtures::{at, tenant, window};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: MaintenanceStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    crud_and_versions(&new_store().await).await;
    tenant_isolation(&new_store().await).await;
}

fn wid(id: &str) -> WindowId {
    WindowId::parse(id).expect("window id")
}

pub async fn crud_and_versions<S: MaintenanceStore + ?Sized>(store: &S) {
    let t = tenant("mw");
    assert!(store.list_windows(&t).await.expect("list empty").is_empty());
    let w = window(&t, "upgrade", at(100), at(200), &["db"]);
    let stored = store
        .put_window(w.clone(), Expect::Absent)
        .await
        .expect("create");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.spec, w.spec);
    assert_eq!(
        store.get_window(&t, &wid("upgrade")).await.expect("get"),
        Some(stored.clone())
    );
    let err = store
        .put_window(w.clone(), Expect::Absent)
        .await
        .expect_err("create twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store
        .put_window(window(&t, "after", at(300), at(400), &[]), Expect::Absent)
        .await
        .expect("second");

    let longer = window(&t, "upgrade", at(100), at(250), &["db", "web"]);
    let updated = store
        .put_window(longer.clone(), Expect::Version(1))
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    let err = store
        .put_window(longer.clone(), Expect::Version(1))
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let listed = store.list_windows(&t).await.expect("list");
    let summary: Vec<(String, u64)> = listed
        .iter()
        .map(|w| (w.spec.id.to_string(), w.version))
        .collect();
    assert_eq!(
        summary,
        [("after".to_owned(), 1), ("upgrade".to_owned(), 2)]
    );
    assert_eq!(listed[1].spec, longer.spec);

    assert!(
        store
            .delete_window(&t, &wid("upgrade"))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_window(&t, &wid("upgrade"))
            .await
            .expect("delete again")
    );
    assert_eq!(
        store
            .get_window(&t, &wid("upgrade"))
            .await
            .expect("get gone"),
        None
    );
    assert_eq!(store.list_windows(&t).await.expect("list").len(), 1);
}

pub async fn tenant_isolation<S: MaintenanceStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("mwa"), tenant("mwb"));
    store
        .put_window(window(&a, "w", at(0), at(10), &[]), Expect::Absent)
        .await
        .expect("a");
    store
        .put_window(window(&b, "w", at(5), at(15), &[]), Expect::Absent)
        .await
        .expect("same id, other tenant");
    assert_eq!(store.list_windows(&a).await.expect("list a").len(), 1);
    assert!(store.delete_window(&a, &wid("w")).await.expect("delete a"));
    let left = store
        .get_window(&b, &wid("w"))
        .await
        .expect("get b")
        .expect("b kept");
    assert_eq!(
        left.spec.starts_at,
        at(5),
        "deleting in one tenant leaves the other alone"
    );
}
