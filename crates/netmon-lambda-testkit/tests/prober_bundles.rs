//! The Lambda prober over messages of several jobs (`SqsJobQueue` packs jobs of one slot): one
//! `probe.completed` per job, each with its own id and tenant, all in one publish; an old
//! single-job message still runs; a failed publish fails its message (retryable) and no other.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use netmon_core::TenantId;
use netmon_core::events::{Envelope, Event};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, EventBus};
use netmon_core::target::TargetSpec;
use netmon_lambda::functions::prober::{ProberFunction, prober_over};
use netmon_lambda::runtime::SqsFunction;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::CountingEngine;

/// Records each publish call's envelopes; refuses calls holding an envelope of a tenant in
/// `refuse`.
#[derive(Default)]
struct RecordingBus {
    calls: Mutex<Vec<Vec<Envelope>>>,
    refuse: Option<String>,
}

impl RecordingBus {
    fn calls(&self) -> Vec<Vec<Envelope>> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let refused = |e: &Envelope| self.refuse.as_deref() == Some(e.tenant.as_str());
        if events.iter().any(refused) {
            return Err(BusError::Unavailable("injected: SNS unavailable".into()));
        }
        self.calls.lock().unwrap().push(events);
        Ok(())
    }
}

/// The Lambda prober over a counting engine and `bus`, at a fixed instant.
fn lambda_prober(
    bus: RecordingBus,
) -> (
    Arc<ManualClock>,
    Arc<CountingEngine>,
    Arc<RecordingBus>,
    ProberFunction,
) {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let engine = Arc::new(CountingEngine::default());
    let bus = Arc::new(bus);
    let prober = prober_over(engine.clone(), bus.clone(), clock.clone(), "eu".into());
    (clock, engine, bus, prober)
}

fn spec(id: &str) -> TargetSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "http": {"url": "https://example.com/"}, "interval": "1m"
    }))
    .unwrap()
}

fn job(id: &str, tenant: &str, targets: &[&str], late_s: i64, clock: &ManualClock) -> ProbeJob {
    ProbeJob {
        job_id: id.into(),
        tenant: TenantId::parse(tenant).unwrap(),
        scheduled_for: clock.now() - chrono::Duration::seconds(late_s),
        targets: targets.iter().map(|t| spec(t)).collect(),
        correlation_id: None,
        group_level: Some(0),
        group_size: Some(targets.len() as u32),
    }
}

fn record(id: &str, body: String, receives: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body);
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    m
}

fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records;
    e
}

fn bundle(jobs: &[ProbeJob]) -> String {
    serde_json::to_string(jobs).unwrap()
}

/// (envelope id, tenant, job id, result targets) of each envelope.
fn summary(envs: &[Envelope]) -> Vec<(String, String, String, Vec<String>)> {
    envs.iter()
        .map(|e| match &e.event {
            Event::ProbeCompleted(b) => {
                let mut targets: Vec<String> =
                    b.results.iter().map(|r| r.target.to_string()).collect();
                targets.sort();
                (
                    e.id.clone(),
                    e.tenant.to_string(),
                    b.job_id.clone(),
                    targets,
                )
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_message_of_n_jobs_publishes_n_events_in_one_call() {
    let (clock, engine, bus, prober) = lambda_prober(RecordingBus::default());
    let jobs = [
        job("j1", "small-a", &["a1", "a2"], 0, &clock),
        job("j2", "small-b", &["b1"], 0, &clock),
        job("j3", "small-c", &["c1", "c2", "c3"], 0, &clock),
    ];
    let out = prober
        .handle(event(vec![record("m1", bundle(&jobs), 1)]))
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(engine.probes(), 6);
    let calls = bus.calls();
    assert_eq!(calls.len(), 1, "one publish call for the message");
    let got = summary(&calls[0]);
    let want = [
        ("probe:j1:eu", "small-a", "j1", vec!["a1", "a2"]),
        ("probe:j2:eu", "small-b", "j2", vec!["b1"]),
        ("probe:j3:eu", "small-c", "j3", vec!["c1", "c2", "c3"]),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), (w.0, w.1, w.2));
        assert_eq!(g.3, w.3, "each job's results stay in its own event");
    }
    for env in &calls[0] {
        let Event::ProbeCompleted(b) = &env.event else {
            unreachable!()
        };
        assert!(b.results.iter().all(|r| r.tenant == env.tenant));
        assert_eq!(b.group_level, Some(0));
    }
    // Publishing it again (a redelivery) reuses the same envelope ids: consumers dedupe.
    prober
        .handle(event(vec![record("m1", bundle(&jobs), 2)]))
        .await
        .unwrap();
    let again: Vec<String> = summary(&bus.calls()[1]).into_iter().map(|s| s.0).collect();
    let first: Vec<String> = got.into_iter().map(|s| s.0).collect();
    assert_eq!(again, first);
}

#[tokio::test]
async fn an_old_single_job_message_still_runs() {
    let (clock, engine, bus, prober) = lambda_prober(RecordingBus::default());
    let one = job("solo", "t", &["x", "y"], 0, &clock);
    let body = serde_json::to_string(&one).unwrap();
    let out = prober
        .handle(event(vec![record("m1", body, 1)]))
        .await
        .unwrap();
    assert!(out.failures.is_empty());
    assert_eq!(engine.probes(), 2);
    let calls = bus.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(summary(&calls[0])[0].0, "probe:solo:eu");
}

#[tokio::test]
async fn a_failed_publish_fails_its_message_only_and_retryably() {
    let (clock, _engine, bus, prober) = lambda_prober(RecordingBus {
        refuse: Some("down".into()),
        ..RecordingBus::default()
    });
    let failing = [
        job("f1", "fine", &["a"], 0, &clock),
        job("f2", "down", &["b"], 0, &clock),
    ];
    let passing = [
        job("p1", "fine", &["c"], 0, &clock),
        job("p2", "other", &["d"], 0, &clock),
    ];
    let out = prober
        .handle(event(vec![
            record("bad", bundle(&failing), 1),
            record("good", bundle(&passing), 1),
            record("junk", "[]".into(), 1),
        ]))
        .await
        .unwrap();
    let failed: Vec<(&str, bool)> = out
        .failures
        .iter()
        .map(|f| (f.message_id.as_str(), f.retryable))
        .collect();
    assert_eq!(failed, vec![("bad", true), ("junk", false)]);
    let published: Vec<String> = bus
        .calls()
        .iter()
        .flat_map(|c| summary(c))
        .map(|s| s.2)
        .collect();
    assert_eq!(
        published,
        vec!["p1", "p2"],
        "nothing of the failed message is published"
    );
}

#[tokio::test]
async fn a_redelivered_message_skips_late_probes_job_by_job() {
    let (clock, engine, bus, prober) = lambda_prober(RecordingBus::default());
    // One job 40 s past its slot (past half of its 1-minute interval), one on time.
    let jobs = [
        job("late", "t", &["a"], 40, &clock),
        job("fresh", "t", &["b"], 5, &clock),
    ];
    let out = prober
        .handle(event(vec![record("m1", bundle(&jobs), 2)]))
        .await
        .unwrap();
    assert!(out.failures.is_empty());
    assert_eq!(engine.probes(), 1);
    let got = summary(&bus.calls()[0]);
    assert_eq!(got[0].2, "late");
    assert!(got[0].3.is_empty(), "the late job's probe is skipped");
    assert_eq!(got[1].3, vec!["b"]);
}
