//! `ApiKeyStore`: create once, look up by id, list per tenant, revoke keeps the first time.

use std::future::Future;

use netmon_core::apikey::{ApiKey, Role};
use netmon_core::ports::{ApiKeyStore, StoreError};

use super::fixtures::{api_key, at, tenant};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: ApiKeyStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    create_get_and_conflict(&new_store().await).await;
    list_per_tenant_and_all(&new_store().await).await;
    revoke(&new_store().await).await;
}

pub async fn create_get_and_conflict<S: ApiKeyStore + ?Sized>(store: &S) {
    let t = tenant("key");
    let key = api_key(&t, Role::Admin, "ops laptop", at(1));
    assert_eq!(store.get_key(&key.id).await.expect("get absent"), None);
    store.create_key(&key).await.expect("create");
    assert_eq!(
        store.get_key(&key.id).await.expect("get"),
        Some(key.clone())
    );
    let mut clash = api_key(&t, Role::Tenant, "other", at(2));
    clash.id = key.id.clone();
    let err = store.create_key(&clash).await.expect_err("same id twice");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.get_key(&key.id).await.expect("get after clash"),
        Some(key),
        "a refused create changes nothing"
    );
}

fn ids(keys: &[ApiKey]) -> Vec<String> {
    keys.iter().map(|k| k.id.clone()).collect()
}

pub async fn list_per_tenant_and_all<S: ApiKeyStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("keya"), tenant("keyb"));
    let a2 = api_key(&a, Role::Tenant, "second", at(20));
    let a1 = api_key(&a, Role::Tenant, "first", at(10));
    let b1 = api_key(&b, Role::Admin, "b", at(15));
    for k in [&a2, &a1, &b1] {
        store.create_key(k).await.expect("create");
    }
    let listed = store.list_keys(Some(&a)).await.expect("list a");
    assert_eq!(
        listed,
        vec![a1.clone(), a2.clone()],
        "oldest first, only tenant a"
    );
    let all: Vec<ApiKey> = store
        .list_keys(None)
        .await
        .expect("list all")
        .into_iter()
        .filter(|k| k.tenant == a || k.tenant == b)
        .collect();
    assert_eq!(ids(&all), ids(&[a1, b1, a2]), "every tenant, oldest first");
}

pub async fn revoke<S: ApiKeyStore + ?Sized>(store: &S) {
    let t = tenant("keyr");
    let key = api_key(&t, Role::Tenant, "ci", at(1));
    store.create_key(&key).await.expect("create");
    let revoked = store
        .revoke_key(&key.id, at(50))
        .await
        .expect("revoke")
        .expect("key exists");
    assert_eq!(revoked.revoked_at, Some(at(50)));
    assert!(!revoked.is_active());
    let again = store
        .revoke_key(&key.id, at(90))
        .await
        .expect("revoke again")
        .expect("still exists");
    assert_eq!(
        again.revoked_at,
        Some(at(50)),
        "the first revocation time stays"
    );
    let stored = store.get_key(&key.id).await.expect("get").expect("kept");
    assert_eq!(stored.revoked_at, Some(at(50)));
    assert_eq!(stored.secret_hash, key.secret_hash);
    assert_eq!(
        store.list_keys(Some(&t)).await.expect("list"),
        vec![stored],
        "revoked keys are still listed"
    );
    let unknown = api_key(&t, Role::Tenant, "never stored", at(1));
    assert_eq!(
        store
            .revoke_key(&unknown.id, at(1))
            .await
            .expect("revoke unknown"),
        None
    );
}
