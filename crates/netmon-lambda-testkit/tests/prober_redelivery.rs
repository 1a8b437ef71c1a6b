//! The Lambda prober skips a redelivered job's probes that are now too late for their slot
//! (SQS `ApproximateReceiveCount` > 1), and probes a first delivery however late it is.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::Clock;
use netmon_core::target::TargetSpec;
use netmon_lambda::functions::prober::prober_over;
use netmon_lambda::runtime::SqsFunction;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::{CountingEngine, NoBus};
use netmon_testkit::suites::fixtures;

fn record(job: &ProbeJob, receives: u32) -> SqsEvent {
    let mut m = SqsMessage::default();
    m.message_id = Some(format!("m{receives}"));
    m.body = Some(serde_json::to_string(job).unwrap());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    let mut e = SqsEvent::default();
    e.records = vec![m];
    e
}

#[tokio::test]
async fn a_redelivered_job_skips_probes_too_late_for_their_slot() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let engine = Arc::new(CountingEngine::default());
    let prober = prober_over(engine.clone(), Arc::new(NoBus), clock.clone(), "eu".into());
    let spec: TargetSpec = serde_json::from_value(serde_json::json!({
        "id": "web", "http": {"url": "https://example.com/"}, "interval": "1m"
    }))
    .unwrap();
    // 40 s after its slot: past half of the 1-minute interval.
    let job = ProbeJob {
        job_id: "j1".into(),
        tenant: fixtures::tenant("redelivery"),
        scheduled_for: clock.now() - chrono::Duration::seconds(40),
        targets: vec![spec],
        correlation_id: None,
        group_level: None,
        group_size: None,
    };
    let first = prober.handle(record(&job, 1)).await.unwrap();
    assert!(first.failures.is_empty());
    assert_eq!(engine.probes(), 1, "a first delivery probes");
    let again = prober.handle(record(&job, 2)).await.unwrap();
    assert!(again.failures.is_empty());
    assert_eq!(engine.probes(), 1, "a redelivery skips the late probe");
}
