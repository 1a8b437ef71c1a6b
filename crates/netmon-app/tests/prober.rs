//! A redelivered probe job must not observe a target at a time that belongs to a later slot:
//! such probes are skipped; "check now" never.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use netmon_app::services::prober::ProberService;
use netmon_core::events::{Envelope, Event};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, EventBus};
use netmon_core::target::TargetSpec;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::{CountingEngine, NoBus};
use netmon_testkit::suites::fixtures;

fn spec(id: &str, interval: &str) -> TargetSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "http": {"url": "https://example.com/"}, "interval": interval
    }))
    .unwrap()
}

fn results(env: &Envelope) -> Vec<String> {
    match &env.event {
        Event::ProbeCompleted(b) => b.results.iter().map(|r| r.target.to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn probes_started_too_late_for_their_slot_are_skipped() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let engine = Arc::new(CountingEngine::default());
    let service = ProberService::new(
        engine.clone(),
        Arc::new(NoBus),
        clock.clone(),
        "eu".into(),
        4,
    );
    let tenant = fixtures::tenant("late");
    // Redelivered 40 s after its slot: too late for the 1-minute target (limit 30 s), in time
    // for the hourly one.
    let mut job = ProbeJob {
        job_id: "j1".into(),
        tenant,
        scheduled_for: clock.now() - chrono::Duration::seconds(40),
        targets: vec![spec("minutely", "1m"), spec("hourly", "1h")],
        correlation_id: None,
        group_level: Some(3),
        group_size: Some(7),
    };
    let env = service.run_job_again(&job).await.unwrap();
    assert_eq!(results(&env), ["hourly"]);
    assert_eq!(engine.probes(), 1);
    let (r, level, size) = match &env.event {
        Event::ProbeCompleted(b) => (b.results[0].slot, b.group_level, b.group_size),
        _ => (None, None, None),
    };
    assert_eq!(r, Some(job.scheduled_for), "results count for their slot");
    assert_eq!(
        level,
        Some(3),
        "the recorder keys history by the job's group"
    );
    assert_eq!(
        size,
        Some(7),
        "the alerter sizes its state read by the job's group"
    );

    // Its first delivery, however late (a backlog), probes both.
    let env = service.run_job(&job).await.unwrap();
    assert_eq!(results(&env).len(), 2);

    // "Check now" is never late, and is not tied to a slot.
    job.correlation_id = Some("c1".into());
    let env = service.run_job_again(&job).await.unwrap();
    assert_eq!(results(&env).len(), 2);
    match &env.event {
        Event::ProbeCompleted(b) => assert!(b.results.iter().all(|r| r.slot.is_none())),
        _ => unreachable!(),
    }
}

/// A "check now" whose caller is already gone when its job comes up starts no probe and
/// publishes nothing; one still awaited runs as any job.
#[tokio::test]
async fn a_job_cancelled_before_it_starts_probes_nothing() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let engine = Arc::new(CountingEngine::default());
    let bus = Arc::new(Calls::default());
    let service = ProberService::new(engine.clone(), bus.clone(), clock.clone(), "eu".into(), 4);
    let job = ProbeJob {
        job_id: "j1".into(),
        tenant: fixtures::tenant("gone"),
        scheduled_for: clock.now(),
        targets: vec![spec("a", "1m"), spec("b", "1m")],
        correlation_id: Some("c1".into()),
        group_level: None,
        group_size: None,
    };
    let ran = service
        .run_job_unless(&job, std::future::ready(()))
        .await
        .unwrap();
    assert!(ran.is_none());
    assert_eq!(engine.probes(), 0, "no probe started");
    assert_eq!(bus.published(), 0, "nothing published");

    let ran = service
        .run_job_unless(&job, std::future::pending())
        .await
        .unwrap();
    assert_eq!(ran.map(|env| results(&env).len()), Some(2));
    assert_eq!(engine.probes(), 2);
    assert_eq!(bus.published(), 1);
}

/// Sleeps a little per probe and keeps the most probes it saw at once.
#[derive(Default)]
struct SlowEngine {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait]
impl netmon_core::ports::ProbeEngine for SlowEngine {
    async fn observe(
        &self,
        _: &netmon_core::target::CheckSpec,
        _: std::time::Duration,
    ) -> netmon_core::observation::Observation {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        netmon_core::observation::Observation {
            connected: true,
            status: Some(200),
            ..Default::default()
        }
    }
}

/// Keeps each publish call.
#[derive(Default)]
struct Calls(std::sync::Mutex<Vec<Vec<Envelope>>>);

impl Calls {
    /// Envelopes published, over all calls.
    fn published(&self) -> usize {
        self.0.lock().unwrap().iter().map(Vec::len).sum()
    }
}

#[async_trait]
impl EventBus for Calls {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        self.0.lock().unwrap().push(events);
        Ok(())
    }
}

/// The jobs of one message share one bound on probes in flight, and their events one publish.
#[tokio::test]
async fn jobs_of_a_message_share_the_probe_bound_and_one_publish() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let engine = Arc::new(SlowEngine::default());
    let bus = Arc::new(Calls::default());
    let service = ProberService::new(engine.clone(), bus.clone(), clock.clone(), "eu".into(), 3);
    let jobs: Vec<ProbeJob> = (0..3)
        .map(|i| ProbeJob {
            job_id: format!("j{i}"),
            tenant: fixtures::tenant("bundle"),
            scheduled_for: clock.now(),
            targets: (0..4).map(|t| spec(&format!("t{t}"), "1m")).collect(),
            correlation_id: None,
            group_level: None,
            group_size: None,
        })
        .collect();
    let envs = service.run_jobs(&jobs, false).await.unwrap();
    assert_eq!(
        engine.max.load(Ordering::SeqCst),
        3,
        "3 in flight for all 12"
    );
    let calls = bus.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0], envs);
    let ids: Vec<&str> = envs.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["probe:j0:eu", "probe:j1:eu", "probe:j2:eu"]);
    for (env, job) in envs.iter().zip(&jobs) {
        assert_eq!(results(env).len(), 4);
        assert_eq!(env.tenant, job.tenant);
    }
}
