//! A deployment without a session secret (the api Lambda when `NETMON_SESSION_SECRET` is
//! empty) signs nobody in to the dashboard and accepts no cookie, however well-formed: a MAC
//! keyed by the stored key hash alone could be made by anyone who reads the key table.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use netmon_app::auth;
use netmon_app::http::ApiContext;
use netmon_app::http::session::{COOKIE, Sessions};
use netmon_core::TenantId;
use netmon_core::apikey::Role;
use netmon_core::ports::{Clock, HistoryStore};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::NoBus;
use netmon_testkit::memory::MemoryStore;
use tower::ServiceExt;

async fn router_with(sessions: Sessions) -> (axum::Router, auth::NewKey) {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let key = auth::create(
        store.as_ref(),
        TenantId::default_tenant(),
        Role::Admin,
        "ops",
        clock.now(),
    )
    .await
    .unwrap();
    let bus = Arc::new(NoBus);
    let ctx = ApiContext::builder(
        store.clone(),
        store.clone() as Arc<dyn HistoryStore>,
        bus,
        clock as Arc<dyn Clock>,
        TenantId::default_tenant(),
    )
    .sessions(Arc::new(sessions))
    .build();
    (netmon_app::api::router(ctx), key)
}

async fn sign_in(router: &axum::Router, secret: &str) -> (StatusCode, Option<String>) {
    let response = router
        .clone()
        .oneshot(
            Request::post("/signin")
                .header(header::HOST, "mon.example")
                .header(header::ORIGIN, "http://mon.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("key={secret}")))
                .unwrap(),
        )
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    (response.status(), cookie)
}

async fn overview(router: &axum::Router, cookie: &str) -> StatusCode {
    router
        .clone()
        .oneshot(
            Request::get("/")
                .header(header::HOST, "mon.example")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn without_a_session_secret_nobody_is_signed_in() {
    // With a secret: signed in, and the cookie opens the overview.
    let (on, key) = router_with(Sessions::new(b"0123456789abcdef0123456789abcdef".to_vec())).await;
    let (status, cookie) = sign_in(&on, &key.secret).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
    assert_eq!(overview(&on, &cookie).await, StatusCode::OK);

    // Without: 503 and no cookie; and a cookie made the way an empty secret would sign it (the
    // key hash alone) is refused.
    let (off, key) = router_with(Sessions::new(Vec::new())).await;
    let (status, cookie) = sign_in(&off, &key.secret).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(cookie.is_none());
    let forged = Sessions::new(Vec::new()).issue(&key.record, chrono::Utc::now());
    assert_eq!(
        overview(&off, &format!("{COOKIE}={forged}")).await,
        StatusCode::SEE_OTHER,
        "sent to the sign-in page"
    );
}
