//! The alerter's handler time per result on the emulator (issue 14: its modelled throughput
//! must cover the 1,667 results/s of 100,000 one-minute targets), never part of the tests.
//!
//!     cargo bench -p netmon-lambda-testkit --bench alerter_throughput -- [--batches N]
//!
//! One tenant of 50 targets (one full job), states already set, then N `probe.completed`
//! batches of 50 steady results each, handled by `Alerter::handle` over `DynamoStateStore`, in
//! three ways:
//! - `read-target`: a batch carrying no target contexts and states read one `GetItem` at a time:
//!   the requests the alerter made before contexts (a target and a state read per result);
//! - `context`: contexts carried, states still read one at a time (a state read per result);
//! - `context+batch`: contexts carried, the batch's states in one `BatchGetItem` (as deployed).
//!
//! Prints, per way, the mean handler time per batch and per result and the DynamoDB requests
//! per batch; the emulator (moto behind a serialising proxy, on a shared machine) is far slower
//! per request than DynamoDB, so the request counts are what carries over to AWS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::relay::OutboxRelay;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_core::events::{AlertContext, Envelope, Event, ProbeBatch};
use netmon_core::incident::CheckState;
use netmon_core::observation::ConditionResult;
use netmon_core::ports::{Expect, IncidentRecord, StateStore, StoreError, TargetStore, Versioned};
use netmon_core::result::Outcome;
use netmon_core::target::Target;
use netmon_core::{TargetId, TenantId};
use netmon_lambda_testkit::emulator_clients;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::doubles::NoBus;
use netmon_testkit::emulator;
use netmon_testkit::suites::fixtures;

// The alerter's own work, since the emulator runs in another process. Not `support/measure.rs`:
// its counting allocator would add to the CPU measured here.
#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;

const TARGETS: usize = 50;

/// Counts the state store's round trips, and optionally hides `load_states` (the port's
/// default then reads one state at a time).
struct Counted {
    inner: Arc<DynamoStateStore>,
    batch_reads: bool,
    requests: AtomicUsize,
}

impl Counted {
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl StateStore for Counted {
    async fn load_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
    ) -> Result<Option<Versioned<CheckState>>, StoreError> {
        self.count();
        self.inner.load_state(tenant, target).await
    }
    async fn load_states(
        &self,
        tenant: &TenantId,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        if !self.batch_reads {
            let mut found = Vec::new();
            for t in targets {
                if let Some(v) = self.load_state(tenant, t).await? {
                    found.push((t.clone(), v));
                }
            }
            return Ok(found);
        }
        // One BatchGetItem per 100 keys.
        self.requests
            .fetch_add(targets.len().div_ceil(100), Ordering::Relaxed);
        self.inner.load_states(tenant, targets).await
    }
    async fn commit_state(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        expect: Expect,
        state: &CheckState,
        incidents: &[IncidentRecord],
        outbox: &[Envelope],
    ) -> Result<u64, StoreError> {
        self.count();
        self.inner
            .commit_state(tenant, target, expect, state, incidents, outbox)
            .await
    }
    async fn list_states(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(TargetId, Versioned<CheckState>)>, StoreError> {
        self.inner.list_states(tenant).await
    }
    async fn list_incidents(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.inner.list_incidents(tenant, limit).await
    }
}

/// Counts target reads.
struct CountedTargets {
    inner: Arc<DynamoStateStore>,
    reads: AtomicUsize,
}

#[async_trait]
impl TargetStore for CountedTargets {
    async fn get_target(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<Option<Target>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get_target(tenant, id).await
    }
    async fn list_targets(
        &self,
        tenant: &TenantId,
        page: netmon_core::ports::PageRequest,
    ) -> Result<netmon_core::ports::Page<Target>, StoreError> {
        self.inner.list_targets(tenant, page).await
    }
    async fn all_targets(&self) -> Result<Vec<Target>, StoreError> {
        self.inner.all_targets().await
    }
    async fn put_target(&self, target: Target, expect: Expect) -> Result<Target, StoreError> {
        self.inner.put_target(target, expect).await
    }
    async fn delete_target(&self, tenant: &TenantId, id: &TargetId) -> Result<bool, StoreError> {
        self.inner.delete_target(tenant, id).await
    }
}

fn batch(tenant: &TenantId, targets: &[Target], minute: i64, carry: bool) -> Envelope {
    let results = targets
        .iter()
        .map(|t| {
            let mut r = fixtures::result(
                tenant,
                t.spec.id.as_str(),
                "eu",
                fixtures::at(60 * minute),
                Outcome::Up,
            );
            // As the prober reports an HTTP target with one condition.
            r.ip = "203.0.113.10".parse().ok();
            r.conditions = vec![ConditionResult {
                condition: "[STATUS] == 200".into(),
                passed: true,
                actual: Some("200".into()),
            }];
            r
        })
        .collect();
    Envelope::new(
        Event::ProbeCompleted(ProbeBatch {
            job_id: format!("job-{minute}"),
            location: "eu".into(),
            results,
            group_level: None,
            group_size: None,
            targets: if carry {
                targets
                    .iter()
                    .filter_map(|t| AlertContext::of(&t.spec))
                    .collect()
            } else {
                Vec::new()
            },
        }),
        tenant.clone(),
        "prober",
        fixtures::at(60 * minute + 1),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batches: i64 = args
        .iter()
        .position(|a| a == "--batches")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(batches));
}

async fn run(batches: i64) {
    let emu = emulator::start();
    let res = emulator::provision_async(emulator::unique_prefix("alertbench"), 30).await;
    let sdk = emulator_clients(&emu.endpoint, &emu.region).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = Arc::new(DynamoStateStore::new(
        client,
        res.get("NETMON_STATE_TABLE").to_owned(),
    ));
    let tenant = fixtures::tenant("bench");
    let mut targets = Vec::new();
    for i in 0..TARGETS {
        let mut t = fixtures::target(&tenant, &format!("svc-{i:03}"), &format!("Service {i}"));
        t.spec.failure_threshold = 2;
        store
            .put_target(t.clone(), Expect::Absent)
            .await
            .expect("put target");
        targets.push(t);
    }
    // What the contexts add to the message (SNS and SQS bill per started 64 KB).
    let size = |carry: bool| {
        serde_json::to_string(&batch(&tenant, &targets, 1, carry)).map_or(0, |s| s.len())
    };
    let (without, with) = (size(false), size(true));
    println!(
        "probe.completed of {TARGETS} results: {without} B without contexts ({:.0} B a result), \
         {with} B with ({:.0} B a result, +{:.1} %)",
        without as f64 / TARGETS as f64,
        with as f64 / TARGETS as f64,
        (with as f64 / without as f64 - 1.0) * 100.0
    );
    // Decoding the SQS body is the batch driver's, outside `handle`.
    let body = serde_json::to_string(&batch(&tenant, &targets, 1, true)).unwrap_or_default();
    let started = Instant::now();
    for _ in 0..500 {
        let _ = std::hint::black_box(serde_json::from_str::<Envelope>(&body));
    }
    println!(
        "decoding it: {:.2} ms a batch",
        started.elapsed().as_secs_f64() * 1000.0 / 500.0
    );
    println!(
        "alerter handler time on the emulator: {TARGETS} steady results a batch, {batches} batches a way"
    );
    println!(
        "| way | ms a batch | ms a result | CPU ms a batch | state requests a batch | target reads a batch |"
    );
    println!("|---|---|---|---|---|---|");
    let mut minute = 0;
    for (way, carry, batch_reads) in [
        ("read-target", false, false),
        ("context", true, false),
        ("context+batch", true, true),
    ] {
        let states = Arc::new(Counted {
            inner: store.clone(),
            batch_reads,
            requests: AtomicUsize::new(0),
        });
        let reads = Arc::new(CountedTargets {
            inner: store.clone(),
            reads: AtomicUsize::new(0),
        });
        let clock = Arc::new(ManualClock::new(fixtures::at(0)));
        let relay = Arc::new(OutboxRelay::new(store.clone(), Arc::new(NoBus)));
        let alerter = Alerter::new(
            reads.clone(),
            states.clone(),
            clock.clone(),
            relay,
            RelayMode::Inline,
        );
        // Warm-up: the first result of each target writes its state (and warms connections).
        minute += 1;
        clock.set(fixtures::at(60 * minute + 2));
        alerter
            .handle(&batch(&tenant, &targets, minute, carry))
            .await
            .expect("warm-up batch");
        states.requests.store(0, Ordering::Relaxed);
        reads.reads.store(0, Ordering::Relaxed);
        let mut total = std::time::Duration::ZERO;
        let mut writes = 0;
        let cpu_before = cpu_seconds();
        for _ in 0..batches {
            minute += 1;
            clock.set(fixtures::at(60 * minute + 2));
            let env = batch(&tenant, &targets, minute, carry);
            let started = Instant::now();
            let report = alerter.handle(&env).await.expect("batch");
            total += started.elapsed();
            writes += report.state_writes;
        }
        let cpu = (cpu_seconds() - cpu_before) * 1000.0 / batches as f64;
        let per_batch = total.as_secs_f64() * 1000.0 / batches as f64;
        println!(
            "| {way} | {per_batch:.1} | {:.2} | {cpu:.1} | {:.1} | {:.1} |{}",
            per_batch / TARGETS as f64,
            states.requests.load(Ordering::Relaxed) as f64 / batches as f64,
            reads.reads.load(Ordering::Relaxed) as f64 / batches as f64,
            if writes > 0 {
                format!(" ({writes} state writes)")
            } else {
                String::new()
            }
        );
    }
}
