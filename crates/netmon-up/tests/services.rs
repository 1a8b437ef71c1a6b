//! Services of netmon-app over the SQLite store: API key authentication, and the alerter's
//! inline publishing when the outbox index lags.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use netmon_app::auth::{AuthError, authenticate, create, generate};
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::relay::OutboxRelay;
use netmon_core::TenantId;
use netmon_core::apikey::Role;
use netmon_core::events::{Envelope, Event, EventType};
use netmon_core::ports::{
    ApiKeyStore, BusError, EventBus, Expect, Outbox, OutboxEntry, StoreError, TargetStore,
};
use netmon_core::result::Outcome;
use netmon_embedded::SqliteStore;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::suites::fixtures;

#[tokio::test]
async fn keys_authenticate_until_revoked() {
    let store = SqliteStore::in_memory().await.unwrap();
    let t = TenantId::parse("acme").unwrap();
    let key = create(&store, t.clone(), Role::Tenant, "ci", Utc::now())
        .await
        .unwrap();
    assert!(key.secret.starts_with("nmk_") && key.secret.len() == 4 + 12 + 1 + 64);
    assert!(!key.record.secret_hash.contains(&key.secret[17..]));
    let p = authenticate(&store, &key.secret).await.unwrap();
    assert_eq!((p.tenant, p.role), (t, Role::Tenant));

    // Right id, wrong secret; unknown id; not a key at all.
    let mut wrong = key.secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert!(matches!(
        authenticate(&store, &wrong).await,
        Err(AuthError::Invalid)
    ));
    let other = generate(TenantId::default_tenant(), Role::Admin, "x", Utc::now());
    assert!(matches!(
        authenticate(&store, &other.secret).await,
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        authenticate(&store, "hunter2").await,
        Err(AuthError::Malformed)
    ));

    store.revoke_key(&key.record.id, Utc::now()).await.unwrap();
    assert!(matches!(
        authenticate(&store, &key.secret).await,
        Err(AuthError::Revoked)
    ));
}

/// An outbox whose index has not caught up yet: `pending` sees nothing.
struct LaggingIndex(Arc<SqliteStore>);

#[async_trait]
impl Outbox for LaggingIndex {
    async fn pending(&self, _limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }
    async fn mark_published(&self, ids: &[String]) -> Result<(), StoreError> {
        self.0.mark_published(ids).await
    }
}

#[derive(Default)]
struct Recorded(Mutex<Vec<Envelope>>);

#[async_trait]
impl EventBus for Recorded {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        self.0.lock().unwrap().extend(events);
        Ok(())
    }
}

#[tokio::test]
async fn inline_mode_publishes_what_it_committed_even_if_the_outbox_index_lags() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let tenant = TenantId::default_tenant();
    let mut target = fixtures::target(&tenant, "web", "Web");
    target.spec.failure_threshold = 1;
    store.put_target(target, Expect::Absent).await.unwrap();
    let bus = Arc::new(Recorded::default());
    let relay = Arc::new(OutboxRelay::new(
        Arc::new(LaggingIndex(store.clone())),
        bus.clone(),
    ));
    let clock = Arc::new(ManualClock::at_fixed_start());
    let alerter = Alerter::new(
        store.clone(),
        store.clone(),
        clock,
        relay,
        RelayMode::Inline,
    );
    let down = fixtures::result(&tenant, "web", "eu", fixtures::at(10), Outcome::Down);
    let env = Envelope::new(
        Event::ProbeCompleted(netmon_core::events::ProbeBatch {
            job_id: "j".into(),
            location: "eu".into(),
            results: vec![down],
            group_level: None,
            group_size: None,
            targets: Vec::new(),
        }),
        tenant.clone(),
        "prober",
        fixtures::at(11),
    );
    let report = alerter.handle(&env).await.unwrap();
    assert_eq!(report.events, 1);
    let published = bus.0.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_type(), EventType::IncidentOpened);
    assert!(
        store.pending(10).await.unwrap().is_empty(),
        "marked published in the real outbox"
    );
    // A steady result publishes nothing.
    let mut again = env.clone();
    again.id = "again".into();
    if let Event::ProbeCompleted(b) = &mut again.event {
        b.results[0].started_at = fixtures::at(20);
    }
    assert_eq!(alerter.handle(&again).await.unwrap().events, 0);
    assert_eq!(bus.0.lock().unwrap().len(), 1);
}
