//! The cloud EventRPC path without the cloud: `PolledRpc` sends a probe job through a job queue,
//! a stand-in prober answers with `probe.completed` carrying the correlation id, the real
//! alerter writes the reply record (`with_replies`), and the caller's poll finds it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use netmon_app::rpc::{CheckReply, PolledRpc};
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::relay::OutboxRelay;
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, EventBus, Expect, JobQueue, ReplyStore, TargetStore};
use netmon_core::ports::{EventRpc, RpcError};
use netmon_core::result::Outcome;
use netmon_core::rpc::RpcOutcome;
use netmon_embedded::SqliteStore;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::suites::fixtures;

struct NoBus;
#[async_trait]
impl EventBus for NoBus {
    async fn publish(&self, _: Vec<Envelope>) -> Result<(), BusError> {
        Ok(())
    }
}

/// Plays SQS + prober + SNS: each job becomes a `probe.completed` handed to the alerter.
struct ProberStandIn {
    alerter: Arc<Alerter>,
    answer: bool,
}

#[async_trait]
impl JobQueue for ProberStandIn {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        for job in jobs {
            if !self.answer {
                continue;
            }
            let results = job
                .targets
                .iter()
                .map(|t| {
                    fixtures::result(
                        &job.tenant,
                        t.id.as_str(),
                        "eu-west-1",
                        fixtures::at(5),
                        Outcome::Up,
                    )
                })
                .collect();
            let mut env = Envelope::new(
                Event::ProbeCompleted(ProbeBatch {
                    job_id: job.job_id.clone(),
                    location: "eu-west-1".into(),
                    results,
                    group_level: None,
                    group_size: None,
                    targets: Vec::new(),
                }),
                job.tenant.clone(),
                "prober",
                fixtures::at(5),
            );
            env.correlation_id = job.correlation_id.clone();
            let alerter = self.alerter.clone();
            // Asynchronously, as the real path is: the caller is already polling.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                alerter
                    .handle(&env)
                    .await
                    .expect("alerter handles the batch");
            });
        }
        Ok(())
    }
}

#[tokio::test]
async fn polled_rpc_gets_the_reply_record_the_alerter_writes() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let t = fixtures::tenant("rpc");
    let target = fixtures::target(&t, "api", "API");
    store
        .put_target(target.clone(), Expect::Absent)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::at_fixed_start());
    let relay = Arc::new(OutboxRelay::new(store.clone(), Arc::new(NoBus)));
    let alerter = Arc::new(
        Alerter::new(
            store.clone(),
            store.clone(),
            clock,
            relay,
            RelayMode::Inline,
        )
        .with_replies(store.clone()),
    );
    let job = ProbeJob {
        job_id: "job-1".into(),
        tenant: t.clone(),
        scheduled_for: fixtures::at(0),
        targets: vec![target.spec.clone()],
        correlation_id: None,
        group_level: None,
        group_size: None,
    };

    let rpc = PolledRpc::new(
        Arc::new(ProberStandIn {
            alerter: alerter.clone(),
            answer: true,
        }),
        store.clone(),
    )
    .with_poll_interval(Duration::from_millis(10));
    let reply = rpc
        .call(job.clone(), Duration::from_secs(5))
        .await
        .expect("reply");
    assert_eq!(reply.tenant, t);
    let RpcOutcome::Success { body } = &reply.outcome else {
        panic!("{reply:?}")
    };
    let check: CheckReply = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(check.results.len(), 1);
    assert_eq!(check.results[0].target.as_str(), "api");
    // The record is in the store under the correlation id, and the state was applied first.
    let stored = store.get_reply(&reply.correlation_id).await.unwrap();
    assert_eq!(stored, Some(reply.clone()));
    let state = netmon_core::ports::StateStore::load_state(store.as_ref(), &t, &target.spec.id)
        .await
        .unwrap();
    assert!(
        state.is_some(),
        "the check's result was applied like any other"
    );

    // Nobody answers: a timeout, not a hang.
    let silent = PolledRpc::new(
        Arc::new(ProberStandIn {
            alerter,
            answer: false,
        }),
        store.clone(),
    )
    .with_poll_interval(Duration::from_millis(10));
    let err = silent
        .call(job, Duration::from_millis(100))
        .await
        .expect_err("no reply");
    assert!(matches!(err, RpcError::Timeout(_)), "{err}");
    assert_eq!(err.to_string(), "no reply within 100ms");
}
