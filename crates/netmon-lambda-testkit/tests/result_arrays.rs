//! Probe results travel as one message per prober bundle: `SnsBus` packs a message's
//! `probe.completed` events into a JSON array, and the alerter and recorder handle every event
//! of it. In memory: a redelivery after a partial failure alerts each result once and loses
//! none. On the emulator: a bundle of jobs of several tenants reaches the alerter's and the
//! recorder's queues as one message each, every result is alerted on and recorded, and the
//! incidents it opens still travel one per message.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use netmon_app::services::relay::OutboxRelay;
use netmon_aws::dynamo::history::DynamoHistoryStore;
use netmon_aws::resources::ENV_HISTORY_TABLE;
use netmon_core::events::{AlertContext, Envelope, Event, EventType, ProbeBatch};
use netmon_core::incident::Status;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, EventBus, Expect, HistoryStore, StateStore, TargetStore};
use netmon_core::result::Outcome;
use netmon_core::target::Target;
use netmon_core::{TargetId, TenantId};
use netmon_lambda::functions::alerter::alerter_over;
use netmon_lambda::functions::recorder::recorder_over;
use netmon_lambda::runtime::SqsFunction;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::{Fault, MemoryStore, Op};
use netmon_testkit::servers::{Mode, TargetServer};
use netmon_testkit::suites::fixtures;
use serde_json::json;
use support::Stack;

/// Every envelope published, in order.
#[derive(Default)]
struct RecordingBus(Mutex<Vec<Envelope>>);

impl RecordingBus {
    fn ids_of(&self, t: EventType) -> Vec<String> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|e| e.event_type() == t)
            .map(|e| e.id.clone())
            .collect()
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        self.0.lock().unwrap().extend(events);
        Ok(())
    }
}

fn record(id: &str, body: &str, receives: u32) -> SqsEvent {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.to_owned());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    let mut e = SqsEvent::default();
    e.records = vec![m];
    e
}

/// One tenant's target `web`, opening an incident on its first failure.
fn web(tenant: &TenantId) -> Target {
    let mut target = fixtures::target(tenant, "web", "Web");
    target.spec.failure_threshold = 1;
    target
}

/// A job's `probe.completed` as the prober builds it: one down result for `target`'s slot,
/// carrying its alert context.
fn down(target: &Target, job: &str) -> Envelope {
    let mut result = fixtures::result(&target.tenant, "web", "eu", fixtures::at(61), Outcome::Down);
    result.slot = Some(fixtures::at(60));
    Envelope::with_id(
        format!("probe:{job}:eu"),
        Event::ProbeCompleted(ProbeBatch {
            job_id: job.into(),
            location: "eu".into(),
            results: vec![result],
            group_level: None,
            group_size: None,
            targets: AlertContext::of(&target.spec).into_iter().collect(),
        }),
        target.tenant.clone(),
        "prober",
        fixtures::at(62),
    )
}

/// Three new tenants' `web` targets, and a message of an array of their jobs' down results
/// (jobs `j0`, `j1`, `j2`).
fn three_tenants(prefix: &str) -> (Vec<Target>, String) {
    let targets: Vec<Target> = (0..3).map(|_| web(&fixtures::tenant(prefix))).collect();
    let envs: Vec<Envelope> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| down(t, &format!("j{i}")))
        .collect();
    let body = serde_json::to_string(&envs).expect("envelopes encode");
    (targets, body)
}

/// Three tenants' results in one array message; the second one's state commit fails on the
/// first delivery (before it lands, or after it landed with its answer lost). The record fails
/// retryably, the other two are alerted on at once; the redelivery redoes only the failed one.
/// Each incident is opened and published exactly once, and no result is lost.
#[tokio::test]
async fn a_redelivered_array_after_a_partial_failure_alerts_each_result_once() {
    for fault in [Fault::Before, Fault::After] {
        let clock = Arc::new(ManualClock::at_fixed_start());
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let bus = Arc::new(RecordingBus::default());
        let alerter = alerter_over(store.clone(), bus.clone(), clock);
        let (targets, body) = three_tenants("arr");
        for t in &targets {
            store.put_target(t.clone(), Expect::Absent).await.unwrap();
        }

        store.set_fault_hook(move |call| {
            if call.op == Op::CommitState && call.nth == 2 {
                fault
            } else {
                Fault::None
            }
        });
        let first = alerter.handle(record("m1", &body, 1)).await.unwrap();
        let failed: Vec<(&str, bool)> = first
            .failures
            .iter()
            .map(|f| (f.message_id.as_str(), f.retryable))
            .collect();
        assert_eq!(failed, vec![("m1", true)], "{fault:?}");
        assert!(
            first.failures[0].reason.contains("probe:j1:eu"),
            "{}",
            first.failures[0].reason
        );
        assert_eq!(
            bus.ids_of(EventType::IncidentOpened).len(),
            2,
            "{fault:?}: the results around the failed one are alerted on at once"
        );

        store.clear_fault_hook();
        let again = alerter.handle(record("m1", &body, 2)).await.unwrap();
        assert!(again.failures.is_empty(), "{fault:?}: {:?}", again.failures);
        // A commit that landed but was reported failed left its event in the outbox (the
        // redelivery finds the result applied); the scheduler's outbox sweep publishes it.
        OutboxRelay::new(store.clone(), bus.clone())
            .sweep()
            .await
            .unwrap();

        for t in &targets {
            let state = store
                .load_state(&t.tenant, &t.spec.id)
                .await
                .unwrap()
                .expect("a state for every result");
            assert_eq!(state.value.status, Status::Down, "{fault:?} {}", t.tenant);
            assert!(state.value.incident.is_some(), "{fault:?} {}", t.tenant);
        }
        let mut opened = bus.ids_of(EventType::IncidentOpened);
        assert_eq!(opened.len(), 3, "{fault:?}: {opened:?}");
        opened.sort();
        opened.dedup();
        assert_eq!(opened.len(), 3, "{fault:?}: one opened event per tenant");
        // A third delivery (SQS is at least once) changes nothing.
        let third = alerter.handle(record("m1", &body, 3)).await.unwrap();
        assert!(third.failures.is_empty());
        assert_eq!(bus.ids_of(EventType::IncidentOpened).len(), 3, "{fault:?}");
    }
}

/// The recorder records every result of an array message, and a failed write fails the record
/// so its redelivery records what was missed.
#[tokio::test]
async fn the_recorder_records_every_envelope_of_an_array() {
    let store = Arc::new(MemoryStore::new());
    let recorder = recorder_over(store.clone());
    let (targets, body) = three_tenants("rec");
    store.set_fault_hook(|call| {
        if call.nth == 2 && matches!(call.op, Op::Record) {
            Fault::Before
        } else {
            Fault::None
        }
    });
    let first = recorder.handle(record("m1", &body, 1)).await.unwrap();
    assert_eq!(first.failures.len(), 1);
    assert!(first.failures[0].retryable);
    store.clear_fault_hook();
    let again = recorder.handle(record("m1", &body, 2)).await.unwrap();
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    for t in &targets {
        let got = store
            .results_since(&t.tenant, &t.spec.id, fixtures::at(0), 10)
            .await
            .unwrap();
        assert!(!got.is_empty(), "{}: its result was recorded", t.tenant);
    }
}

/// A message body from the emulator: its envelopes (one object or an array of them).
fn envelopes_of(body: &str) -> Vec<Envelope> {
    if body.trim_start().starts_with('[') {
        serde_json::from_str(body).expect("an array of envelopes")
    } else {
        vec![serde_json::from_str(body).expect("an envelope")]
    }
}

/// Peeks at a queue's messages without consuming them (visibility timeout 0).
async fn peek(stack: &Stack, url: &str) -> Vec<String> {
    let out = stack
        .harness
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    out.messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.body.unwrap_or_default())
        .collect()
}

const JOBS: usize = 6;

/// A prober message of six small tenants' jobs becomes one message on the alerter's queue and
/// one on the recorder's (an array of six envelopes); every tenant's failing target opens its
/// incident, every result is recorded, and every queue drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bundle_of_jobs_reaches_the_consumers_as_one_message_and_every_result_counts() {
    let stack = Stack::new("arrays").await;
    let server = TargetServer::start().await;
    server.set_mode(Mode::Error);
    let tenants: Vec<TenantId> = (0..JOBS).map(|_| fixtures::tenant("arr")).collect();
    let mut jobs = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let target = stack
            .put_target_in(
                tenant,
                json!({
                    "id": "web", "http": {"url": format!("{}?{i}", server.url())},
                    "interval": "1m", "timeout": "2s", "conditions": ["[STATUS] == 200"],
                    "failure_threshold": 1,
                }),
            )
            .await;
        jobs.push(ProbeJob {
            job_id: format!("bundle-{i}"),
            tenant: tenant.clone(),
            scheduled_for: Utc::now(),
            targets: vec![target.spec],
            correlation_id: None,
            group_level: None,
            group_size: None,
        });
    }
    stack
        .send(
            "NETMON_PROBE_JOBS_QUEUE_URL",
            &[serde_json::to_string(&jobs).unwrap()],
        )
        .await;

    let prober = stack.runner(&["prober"], false).await;
    let alerter_in = stack.var("NETMON_ALERTER_IN_QUEUE_URL");
    let recorder_in = stack.var("NETMON_RECORDER_IN_QUEUE_URL");
    support::eventually(Duration::from_secs(60), "the prober publishes", || async {
        stack.depth(&alerter_in).await > 0 && stack.depth(&recorder_in).await > 0
    })
    .await;
    prober.wait_idle(Duration::from_secs(60)).await.unwrap();
    prober.stop().await;

    for url in [&alerter_in, &recorder_in] {
        let bodies = peek(&stack, url).await;
        assert_eq!(bodies.len(), 1, "{url}: one message for the bundle");
        assert!(bodies[0].starts_with('['), "{url}: an array");
        let envs = envelopes_of(&bodies[0]);
        let mut got: Vec<String> = envs.iter().map(|e| e.tenant.to_string()).collect();
        got.sort();
        let mut want: Vec<String> = tenants.iter().map(ToString::to_string).collect();
        want.sort();
        assert_eq!(got, want, "{url}: one envelope per job, each its tenant's");
    }

    // The alerter reads its queue as an event source; the recorder drains its own on schedule.
    let consumers = stack.runner(&["alerter"], false).await;
    consumers.wait_idle(Duration::from_secs(60)).await.unwrap();
    let drained = stack.flush_history(&consumers).await;
    assert_eq!(
        (drained.received, drained.results),
        (1, JOBS),
        "{drained:?}"
    );
    let invocations = consumers.invocations();
    consumers.stop().await;
    assert!(
        invocations
            .iter()
            .all(|i| i.failures.is_empty() && i.error.is_none()),
        "{invocations:#?}"
    );

    let history = DynamoHistoryStore::new(
        stack.harness.dynamodb.clone(),
        stack.var(ENV_HISTORY_TABLE),
        Arc::new(netmon_app::clock::SystemClock),
    );
    let web = TargetId::parse("web").unwrap();
    for tenant in &tenants {
        let state = stack
            .store
            .load_state(tenant, &web)
            .await
            .unwrap()
            .expect("alerted on");
        assert_eq!(state.value.status, Status::Down, "{tenant}");
        assert!(state.value.incident.is_some(), "{tenant}: incident opened");
        let recorded = history
            .results_since(tenant, &web, Utc::now() - chrono::Duration::hours(1), 10)
            .await
            .unwrap();
        assert_eq!(recorded.len(), 1, "{tenant}: its result recorded");
    }
    // Incident events are not packed: one message per incident on the notifier's queue.
    let incidents = stack
        .drain(&stack.var("NETMON_NOTIFIER_IN_QUEUE_URL"))
        .await;
    assert_eq!(incidents.len(), JOBS, "{incidents:#?}");
    for body in &incidents {
        let env: Envelope = serde_json::from_str(body).expect("one envelope per message");
        assert_eq!(env.event_type(), EventType::IncidentOpened);
    }
    stack.assert_drained().await;
}
