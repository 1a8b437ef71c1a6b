//! `/v1/overview` counts the tenant and lists its targets a page at a time. Over a store that
//! decodes each target to count it (here the in-memory one) it counts at most 20,000; a bigger
//! tenant is told its counts are partial instead of being shown the first part's as the whole.

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
    overview_pages(targets, "/v1/overview").await.remove(0)
}

/// Every page of the overview from `first`, following `next`.
async fn overview_pages(targets: usize, first: &str) -> Vec<serde_json::Value> {
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
    let router = netmon_app::api::router(ctx);
    let mut pages: Vec<serde_json::Value> = Vec::new();
    let mut uri = first.to_owned();
    loop {
        let response = router
            .clone()
            .oneshot(
                Request::get(&uri)
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
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let next = page["next"].as_str().map(str::to_owned);
        pages.push(page);
        match next {
            Some(next) if pages.len() < 100 => uri = format!("/v1/overview?limit=500&after={next}"),
            _ => return pages,
        }
    }
}

#[tokio::test]
async fn an_overview_past_its_page_limit_says_it_is_truncated() {
    let whole = overview_of(20_000).await;
    assert_eq!(whole["counts"]["total"], 20_000);
    assert_eq!(whole["counts"]["unknown"], 20_000);
    assert_eq!(whole["truncated"], false);
    assert_eq!(whole["targets"].as_array().map(Vec::len), Some(500));
    let partial = overview_of(20_001).await;
    assert_eq!(partial["counts"]["total"], 20_000);
    assert_eq!(partial["truncated"], true);
}

#[tokio::test]
async fn lines_come_a_page_at_a_time_and_counts_cover_the_tenant() {
    let pages = overview_pages(1_201, "/v1/overview?limit=500").await;
    assert_eq!(pages.len(), 3);
    let mut ids = Vec::new();
    for page in &pages {
        assert_eq!(
            page["counts"]["total"], 1_201,
            "every page counts the tenant"
        );
        ids.extend(
            page["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned()),
        );
    }
    let expected: Vec<String> = (0..1_201).map(|i| format!("t{i:05}")).collect();
    assert_eq!(ids, expected, "each target once, in id order");
    assert!(pages[2].get("next").is_none());
}
