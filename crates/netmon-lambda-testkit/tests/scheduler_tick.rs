//! The scheduler function's outbox sweep does not depend on its tick: events an alerter could
//! not publish go out even when planning or the tick's claim fails or the tick is a duplicate,
//! and the age of what is left is reported for the alarm.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use netmon_core::events::Envelope;
use netmon_core::incident::CheckState;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, EventBus, Expect, JobQueue, StateStore};
use netmon_lambda::functions::scheduler::SchedulerFunction;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::{Fault, MemoryStore, Op};
use netmon_testkit::suites::fixtures;

#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<String>>,
    down: AtomicBool,
}

#[async_trait]
impl EventBus for Recorder {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("the topic is down".into()));
        }
        self.published
            .lock()
            .unwrap()
            .extend(events.into_iter().map(|e| e.id));
        Ok(())
    }
}

#[async_trait]
impl JobQueue for Recorder {
    async fn enqueue(&self, _: Vec<ProbeJob>) -> Result<(), BusError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_outbox_is_swept_when_planning_fails_and_on_duplicate_ticks() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let tenant = fixtures::tenant("sweep");
    let stuck = fixtures::event(&tenant, "left-by-an-alerter", clock.now());
    store
        .commit_state(
            &tenant,
            &fixtures::target_id("api"),
            Expect::Absent,
            &CheckState::default(),
            &[],
            std::slice::from_ref(&stuck),
        )
        .await
        .unwrap();
    // Every read of the targets fails: planning cannot work.
    store.set_fault_hook(|call| {
        if call.op == Op::AllTargets {
            Fault::Before
        } else {
            Fault::None
        }
    });
    let bus = Arc::new(Recorder::default());
    let scheduler = SchedulerFunction::over(store.clone(), bus.clone(), bus.clone(), clock.clone());
    assert!(scheduler.tick(clock.now()).await.is_err());
    assert_eq!(
        *bus.published.lock().unwrap(),
        std::slice::from_ref(&stuck.id)
    );

    // A second event, and a duplicate of a tick that did plan: swept too.
    store.clear_fault_hook();
    let minute = clock.now();
    assert!(!scheduler.tick(minute).await.unwrap().duplicate);
    let later = fixtures::event(&tenant, "left-later", clock.now());
    store
        .commit_state(
            &tenant,
            &fixtures::target_id("web"),
            Expect::Absent,
            &CheckState::default(),
            &[],
            std::slice::from_ref(&later),
        )
        .await
        .unwrap();
    let out = scheduler.tick(minute).await.unwrap();
    assert!(out.duplicate);
    assert_eq!(out.outbox_published, 1);
    assert_eq!(
        *bus.published.lock().unwrap(),
        [stuck.id.clone(), later.id.clone()]
    );
}

#[tokio::test]
async fn the_sweep_runs_before_the_claim_and_reports_the_age_of_what_it_left() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let tenant = fixtures::tenant("age");
    let bus = Arc::new(Recorder::default());
    let scheduler = SchedulerFunction::over(store.clone(), bus.clone(), bus.clone(), clock.clone());

    // The tick's claim cannot be written: the sweep has already run.
    let first = left_by_an_alerter(&store, &tenant, "first", clock.now()).await;
    store.set_fault_hook(|call| {
        if call.op == Op::Claim {
            Fault::Before
        } else {
            Fault::None
        }
    });
    assert!(scheduler.tick(clock.now()).await.is_err());
    assert_eq!(
        *bus.published.lock().unwrap(),
        std::slice::from_ref(&first.id)
    );
    store.clear_fault_hook();

    // The topic is down for five minutes: the event left behind ages, tick after tick.
    bus.down.store(true, Ordering::SeqCst);
    let waiting = left_by_an_alerter(&store, &tenant, "waiting", clock.now()).await;
    let out = scheduler.tick(clock.now()).await.unwrap();
    assert_eq!(
        (out.outbox_published, out.outbox_oldest_age_s),
        (0, Some(0))
    );
    clock.advance(Duration::from_secs(300));
    let out = scheduler.tick(clock.now()).await.unwrap();
    assert_eq!(out.outbox_oldest_age_s, Some(300));

    // An outbox that cannot be read reports no age (the alarm counts a missing datapoint).
    store.set_fault_hook(|call| {
        if call.op == Op::Pending {
            Fault::Before
        } else {
            Fault::None
        }
    });
    clock.advance(Duration::from_secs(60));
    let out = scheduler.tick(clock.now()).await.unwrap();
    assert_eq!(out.outbox_oldest_age_s, None);
    store.clear_fault_hook();

    // The topic is back: the event goes out and nothing waits.
    bus.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    let out = scheduler.tick(clock.now()).await.unwrap();
    assert_eq!(
        (out.outbox_published, out.outbox_oldest_age_s),
        (1, Some(0))
    );
    assert_eq!(*bus.published.lock().unwrap(), [first.id, waiting.id]);
}

/// An incident event committed to the outbox and not published.
async fn left_by_an_alerter(
    store: &MemoryStore,
    tenant: &netmon_core::ids::TenantId,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Envelope {
    let event = fixtures::event(tenant, name, at);
    store
        .commit_state(
            tenant,
            &fixtures::target_id(name),
            Expect::Absent,
            &CheckState::default(),
            &[],
            std::slice::from_ref(&event),
        )
        .await
        .unwrap();
    event
}
