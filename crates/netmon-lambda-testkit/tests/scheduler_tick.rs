//! The scheduler function's outbox sweep does not depend on its tick: events an alerter could
//! not publish go out even when planning fails or the tick is a duplicate.

use std::sync::{Arc, Mutex};

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
}

#[async_trait]
impl EventBus for Recorder {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
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
