//! The recorder's drain of recorder-in on the emulator: "nothing lost, nothing doubled in
//! reads" when a group write fails (its messages stay, the others are deleted), when a run
//! crashes after writing before deleting (the next run gets the messages again and writes them
//! grouped differently), and when a message never decodes (the redrive policy moves it to the
//! DLQ). History reads and hourly rollups must count every result exactly once throughout.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, TimeDelta, Utc};
use netmon_app::clock::SystemClock;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::{DynamoHistoryStore, hour_key, marker_pk};
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::history::Granularity;
use netmon_core::ports::HistoryStore;
use netmon_core::result::Outcome;
use netmon_core::{TargetId, TenantId};
use netmon_lambda::functions::recorder::{
    DrainLimits, DrainOutput, RecorderConfig, RecorderFunction, recorder,
};
use netmon_testkit::suites::fixtures;
use support::Stack;

const QUEUE: &str = "NETMON_RECORDER_IN_QUEUE_URL";
const DLQ: &str = "NETMON_RECORDER_IN_DLQ_URL";
const VISIBILITY_S: u32 = 3;

/// Faults on demand in the recorder's own calls: DeleteMessageBatch refused (the run "crashes"
/// after its writes, before its deletes), and history block writes of one tenant refused.
#[derive(Debug, Clone, Default)]
struct Switch(Arc<Mutex<Faults>>);

#[derive(Debug, Clone, Default)]
struct Faults {
    deletes: bool,
    blocks_of: Option<TenantId>,
}

impl Switch {
    fn set(&self, faults: Faults) {
        *self.0.lock().unwrap() = faults;
    }
}

impl Intercept for Switch {
    fn name(&self) -> &'static str {
        "test.RecorderFaults"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let faults = self.0.lock().unwrap().clone();
        let operation = cfg.load::<Metadata>().map(|m| m.name().to_owned());
        if faults.deletes && operation.as_deref() == Some("DeleteMessageBatch") {
            return Err("injected: the run ended before deleting".into());
        }
        if let (Some(tenant), Some(put)) = (
            &faults.blocks_of,
            context.input().downcast_ref::<PutItemInput>(),
        ) {
            let pk = put
                .item()
                .and_then(|i| i.get("pk"))
                .and_then(|v| v.as_s().ok());
            if pk.is_some_and(|pk| pk.starts_with(&format!("B#{tenant}#"))) {
                return Err(format!("injected: history block of {tenant} refused").into());
            }
        }
        Ok(())
    }
}

/// A fresh recorder instance (a cold start: its first run also sweeps pending hours).
fn instance(stack: &Stack, switch: &Switch, round_messages: usize) -> RecorderFunction {
    let clients = Clients::builder(&stack.sdk)
        .interceptor(Some(SharedInterceptor::new(switch.clone())))
        .build();
    recorder(
        &clients,
        RecorderConfig {
            history_table: stack.var("NETMON_HISTORY_TABLE"),
            queue_url: stack.var(QUEUE),
        },
    )
    .with_limits(DrainLimits {
        round_messages,
        ..DrainLimits::default()
    })
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// One job's event: `targets` of `tenant` probed at `at`, at group level 0.
fn batch(tenant: &TenantId, at: DateTime<Utc>, targets: &[&str]) -> Envelope {
    Envelope::new(
        Event::ProbeCompleted(ProbeBatch {
            job_id: format!("{tenant}-{}", at.timestamp()),
            location: "emulator".into(),
            results: targets
                .iter()
                .map(|t| fixtures::result(tenant, t, "emulator", at, Outcome::Up))
                .collect(),
            group_level: Some(0),
            group_size: Some(targets.len() as u32),
            targets: Vec::new(),
        }),
        tenant.clone(),
        "prober",
        at,
    )
}

fn json(env: &Envelope) -> String {
    serde_json::to_string(env).unwrap()
}

async fn run(function: &RecorderFunction) -> DrainOutput {
    function.drain().await.expect("the drain receives")
}

async fn wait_visibility() {
    tokio::time::sleep(Duration::from_secs(u64::from(VISIBILITY_S) + 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_groups_and_a_crash_before_deleting_lose_nothing_and_double_nothing() {
    let stack = Stack::with_visibility("drain", VISIBILITY_S).await;
    let (small, other) = (tenant("drain-small"), tenant("drain-other"));
    // An hour long settled, so the first instance's sweep rolls it up.
    let hour = Granularity::Hour.floor(Utc::now() - TimeDelta::hours(2));
    let at = |minute: i64| hour + TimeDelta::minutes(minute) + TimeDelta::milliseconds(125);
    // Five minutes of both tenants: a message per job, except minute 2, whose two jobs share
    // one message (an array of events).
    let mut bodies = Vec::new();
    for minute in 0..5 {
        let (a, b) = (
            batch(&small, at(minute), &["a", "b"]),
            batch(&other, at(minute), &["x"]),
        );
        if minute == 2 {
            bodies.push(format!("[{},{}]", json(&a), json(&b)));
        } else {
            bodies.push(json(&a));
            bodies.push(json(&b));
        }
    }
    stack.send(QUEUE, &bodies).await;
    let switch = Switch::default();

    // 1. Every block of `other` is refused: the four messages of `small` alone are deleted;
    // the five that hold `other`'s results stay, the mixed one although its `small` half is
    // stored.
    switch.set(Faults {
        blocks_of: Some(other.clone()),
        ..Faults::default()
    });
    let first = run(&instance(&stack, &switch, 1_000)).await;
    assert_eq!(
        (first.received, first.deleted, first.left, first.results),
        (9, 4, 5, 8),
        "{first:?}"
    );
    assert_eq!(stack.depth(&stack.var(QUEUE)).await, 5);

    // 2. Redelivered to a new instance in rounds of two, so `small`'s half of the mixed
    // message lands in another block than before; every write succeeds, then the run ends
    // before its deletes.
    wait_visibility().await;
    switch.set(Faults {
        deletes: true,
        ..Faults::default()
    });
    let second = run(&instance(&stack, &switch, 2)).await;
    assert_eq!(
        (second.received, second.deleted, second.left, second.rounds),
        (5, 0, 5, 3),
        "{second:?}"
    );

    // 3. Redelivered again, all in one round this time: written a third way, and deleted.
    wait_visibility().await;
    switch.set(Faults::default());
    let third = run(&instance(&stack, &switch, 1_000)).await;
    assert_eq!(
        (third.received, third.deleted, third.left),
        (5, 5, 0),
        "{third:?}"
    );
    assert_eq!(stack.depth(&stack.var(QUEUE)).await, 0);
    assert_eq!(stack.depth(&stack.var(DLQ)).await, 0);

    // Each result counted once: in raw reads and in the hour's rollup (both tenants' hours
    // were rolled up by a sweep, and rolled again for the late blocks).
    let history = DynamoHistoryStore::new(
        stack.harness.dynamodb.clone(),
        stack.var("NETMON_HISTORY_TABLE"),
        Arc::new(SystemClock),
    );
    for t in [&small, &other] {
        let marker = stack
            .harness
            .dynamodb
            .get_item()
            .table_name(stack.var("NETMON_HISTORY_TABLE"))
            .key("pk", AttributeValue::S(marker_pk(t)))
            .key("sk", AttributeValue::S(hour_key(hour)))
            .consistent_read(true)
            .send()
            .await
            .expect("read the hour marker")
            .item
            .expect("an hour marker");
        assert!(
            marker.contains_key("d"),
            "{t}'s hour is rolled up: {marker:?}"
        );
    }
    for (t, target) in [(&small, "a"), (&small, "b"), (&other, "x")] {
        let target = TargetId::parse(target).unwrap();
        let raw = history
            .results_since(t, &target, hour, 1_000)
            .await
            .expect("raw results");
        let starts: Vec<DateTime<Utc>> = raw.iter().map(|r| r.started_at).collect();
        assert_eq!(
            starts,
            (0..5).map(at).collect::<Vec<_>>(),
            "{t}/{target}: each minute once"
        );
        let rolled = history
            .buckets(
                t,
                &target,
                hour,
                hour + TimeDelta::hours(1),
                Granularity::Hour,
            )
            .await
            .expect("buckets");
        let probes: u32 = rolled.iter().map(|b| b.probes).sum();
        assert_eq!(
            probes, 5,
            "{t}/{target}: the rollup counts each result once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_never_decodes_goes_to_the_dead_letter_queue() {
    let stack = Stack::with_visibility("drain-poison", 2).await;
    let good = json(&batch(&tenant("drain-poison"), Utc::now(), &["a"]));
    stack.send(QUEUE, &["{not json".to_owned(), good]).await;
    let function = instance(&stack, &Switch::default(), 1_000);
    let first = run(&function).await;
    assert_eq!(
        (first.received, first.deleted, first.undecodable),
        (2, 1, 1),
        "{first:?}"
    );
    // SQS's redrive: after maxReceiveCount (5) receives, the next receive moves it.
    let mut runs = 1;
    while stack.depth(&stack.var(DLQ)).await == 0 {
        assert!(runs < 10, "still not in the DLQ after {runs} runs");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let out = run(&function).await;
        assert_eq!(out.deleted, 0, "{out:?}");
        runs += 1;
    }
    assert_eq!(stack.depth(&stack.var(QUEUE)).await, 0);
    assert_eq!(stack.drain(&stack.var(DLQ)).await, vec!["{not json"]);
}
