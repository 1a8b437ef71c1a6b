//! `/v1/overview` reads at most 20,000 targets; a bigger tenant is told its answer is partial
//! instead of being shown the first part's counts as the whole.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use netmon_app::auth;
use netmon_app::http::ApiContext;
use netmon_core::TenantId;
use netmon_core::apikey::Role;
use netmon_core::ports::{Clock, Expect, HistoryStore, TargetStore};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::NoBus;
use netmon_testkit::memory::MemoryStore;
use netmon_testkit::suites::fixtures::target;
use tower::ServiceExt;

async fn overview_of(targets: usize) -> serde_json::Value {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let tenant = TenantId::default_tenant();
    let key = auth::create(
        store.as_ref(),
        tenant.clone(),
        Role::Admin,
        "ops",
        clock.now(),
    )
    .await
    .unwrap();
    for i in 0..targets {
        store
            .put_target(target(&tenant, &format!("t{i:05}"), "t"), Expect::Absent)
            .await
            .unwrap();
    }
    let ctx = ApiContext::builder(
        store.clone(),
        store.clone() as Arc<dyn HistoryStore>,
        Arc::new(NoBus),
        clock as Arc<dyn Clock>,
        tenant,
    )
    .build();
    let response = netmon_app::api::router(ctx)
        .oneshot(
            Request::get("/v1/overview")
                .header(header::AUTHORIZATION, format!("Bearer {}", key.secret))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn an_overview_past_its_page_limit_says_it_is_truncated() {
    let whole = overview_of(20_000).await;
    assert_eq!(whole["counts"]["total"], 20_000);
    assert_eq!(whole["truncated"], false);
    let partial = overview_of(20_001).await;
    assert_eq!(partial["counts"]["total"], 20_000);
    assert_eq!(partial["truncated"], true);
}
