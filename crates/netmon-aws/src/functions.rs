//! The six functions: netmon-app's handlers wired to the DynamoDB stores, the SNS bus and the
//! SQS job queue. Each `functions/<name>/src/main.rs` reads its config from the environment,
//! builds [`Clients`] once and serves one of these; the local runner and the tests build the
//! same structs from a provisioned emulator.
//!
//! Concurrency per batch: the prober probes up to its batch of jobs at once (probing is waiting
//! on the network); the alerter takes its records one by one, since records of one batch often
//! hold results of the same targets (redeliveries, sub-minute intervals) and evaluating one
//! target twice at once only produces version conflicts, while Lambda's own concurrency runs
//! batches in parallel; notifier and recorder records are independent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use netmon_app::api::limit::{RateLimiter, RateLimits};
use netmon_app::clock::SystemClock;
use netmon_app::delivery::{ChannelDelivery, StdoutSink};
use netmon_app::error::HandleError;
use netmon_app::rpc::PolledRpc;
use netmon_app::schedule::floor_minute;
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::notifier::Notifier;
use netmon_app::services::prober::ProberService;
use netmon_app::services::recorder::Recorder;
use netmon_app::services::relay::OutboxRelay;
use netmon_app::services::scheduler::Scheduler;
use netmon_core::TenantId;
use netmon_core::events::Envelope;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{Claim, Clock, Idempotency, TargetStore};
use netmon_probe::{ProbeConfig, Prober, SystemResolver};
use serde::Serialize;
use tracing::{info, warn};

use crate::batch::{BatchDriver, BatchOutcome};
use crate::clients::Clients;
use crate::dynamo::history::DynamoHistoryStore;
use crate::dynamo::state::DynamoStateStore;
use crate::lambda::{FunctionError, InitError, SqsFunction};
use crate::sns::{Routes, SnsBus, Topic};
use crate::sqs::SqsJobQueue;

/// Targets per probe job: one SQS message and one `probe.completed` each.
pub const SHARD_SIZE: usize = 50;
/// Due instants are floored to slots of this length, so a minute of one shard of targets is at
/// most six jobs; it must not exceed the shortest interval (10 s), or one job would list a
/// target twice.
pub const SLOT: Duration = Duration::from_secs(10);
/// How long a tick claim holds. Long enough to cover EventBridge's duplicate deliveries and
/// Lambda's asynchronous retries (1 and 2 minutes after a failure) of one scheduled event: a
/// tick that failed releases its claim so the retry runs; one that was killed mid-way (timeout)
/// keeps it, and its minute is not planned again (the next minutes are, normally), which beats
/// sending part of a minute's jobs twice.
pub const TICK_LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Jobs probed at once by one prober invocation (its event source's batch size is 5).
pub const PROBER_JOBS_IN_FLIGHT: usize = 5;
/// Notifications of one batch sent at once.
pub const NOTIFIER_IN_FLIGHT: usize = 4;
/// Probe batches of one recorder invocation written at once.
pub const RECORDER_IN_FLIGHT: usize = 8;
/// Per webhook delivery; the notifier's timeout (60 s) covers a batch of them.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn probe_config(allow_private: bool, allow_link_local: bool) -> ProbeConfig {
    let mut config = ProbeConfig::cloud_default();
    config.allow_private = allow_private;
    config.allow_link_local = allow_link_local;
    config
}

fn prober(allow_private: bool, allow_link_local: bool) -> Result<Arc<Prober>, InitError> {
    Prober::try_new(
        probe_config(allow_private, allow_link_local),
        Arc::new(SystemResolver),
    )
    .map(Arc::new)
    .map_err(|e| InitError::new(format!("cannot set up TLS for probes: {e}")))
}

// ---- scheduler ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub state_table: String,
    pub probe_jobs_queue_url: String,
    pub probe_results_topic_arn: String,
    pub incidents_topic_arn: String,
}

/// What one tick did (the scheduler's response).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickOutput {
    /// The minute planned.
    pub minute: DateTime<Utc>,
    /// The tick was handled before (a duplicate or retried scheduled event): nothing done.
    pub duplicate: bool,
    pub targets: usize,
    pub jobs: usize,
    pub probes: usize,
    pub missed_heartbeats: usize,
    /// Incident events left in the outbox by an alerter that could not publish them.
    pub outbox_published: usize,
}

/// Once a minute: reads every target (one Query over the schedule shards), sends the minute's
/// probe jobs delayed to their slots, turns the previous minute's missed heartbeats into
/// failed results, and sweeps the outbox.
pub struct SchedulerFunction {
    store: Arc<DynamoStateStore>,
    scheduler: Scheduler,
    relay: OutboxRelay,
    clock: Arc<dyn Clock>,
}

impl SchedulerFunction {
    pub fn new(clients: &Clients, config: SchedulerConfig) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Arc::new(DynamoStateStore::new(
            clients.dynamodb.clone(),
            config.state_table,
        ));
        let bus = Arc::new(SnsBus::new(
            clients.sns.clone(),
            Routes::new()
                .topic(Topic::ProbeResults, config.probe_results_topic_arn)
                .topic(Topic::Incidents, config.incidents_topic_arn),
        ));
        let jobs = Arc::new(SqsJobQueue::new(
            clients.sqs.clone(),
            config.probe_jobs_queue_url,
            clock.clone(),
        ));
        Self {
            scheduler: Scheduler::new(jobs, store.clone(), bus.clone(), SHARD_SIZE).with_slot(SLOT),
            relay: OutboxRelay::new(store.clone(), bus),
            store,
            clock,
        }
    }

    /// The scheduled event's `time` is the minute it stands for (a late or retried delivery
    /// still plans that minute, so consecutive ticks cover time exactly once).
    pub async fn handle(&self, event: EventBridgeEvent) -> Result<TickOutput, FunctionError> {
        let minute = event.time.unwrap_or_else(|| self.clock.now());
        self.tick(minute).await
    }

    pub async fn tick(&self, at: DateTime<Utc>) -> Result<TickOutput, FunctionError> {
        let minute = floor_minute(at);
        let mut out = TickOutput {
            minute,
            ..TickOutput::default()
        };
        // One conditional put per tick, never completed: a duplicate within the lease skips,
        // and a tick that fails releases it so its retry runs.
        let key = format!("scheduler:tick:{}", minute.to_rfc3339());
        let claim = self
            .store
            .claim(&key, self.clock.now(), TICK_LEASE)
            .await
            .map_err(HandleError::from)?;
        if claim != Claim::Acquired {
            info!(%minute, "tick already handled; skipped");
            out.duplicate = true;
            return Ok(out);
        }
        let planned = async {
            let targets = self.store.all_targets().await?;
            let report = self.scheduler.plan_minute(&targets, minute).await?;
            Ok::<_, HandleError>((targets.len(), report))
        }
        .await;
        let (targets, report) = match planned {
            Ok(done) => done,
            Err(e) => {
                if let Err(re) = self.store.release(&key).await {
                    warn!(error = %re, "could not release the tick claim; a retry waits for its lease");
                }
                return Err(e.into());
            }
        };
        out.targets = targets;
        out.jobs = report.jobs;
        out.probes = report.probes;
        out.missed_heartbeats = report.missed_heartbeats;
        // The jobs are out; a failed sweep is retried by the next tick.
        match self.relay.flush().await {
            Ok(flush) => out.outbox_published = flush.published,
            Err(e) => warn!(error = %e, "outbox sweep failed; the next tick retries"),
        }
        info!(%minute, targets, jobs = out.jobs, probes = out.probes,
            missed_heartbeats = out.missed_heartbeats, outbox_published = out.outbox_published, "tick planned");
        Ok(out)
    }
}

// ---- prober ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ProberConfig {
    pub probe_results_topic_arn: String,
    pub location: String,
    pub allow_private: bool,
    pub allow_link_local: bool,
}

/// Probes each job's targets and publishes one `probe.completed` per job. It reads nothing from
/// DynamoDB: jobs carry the target specs.
pub struct ProberFunction {
    driver: BatchDriver,
    service: ProberService,
}

impl ProberFunction {
    pub fn new(clients: &Clients, config: ProberConfig) -> Result<Self, InitError> {
        let bus = Arc::new(SnsBus::new(
            clients.sns.clone(),
            Routes::new().topic(Topic::ProbeResults, config.probe_results_topic_arn),
        ));
        let service = ProberService::new(
            prober(config.allow_private, config.allow_link_local)?,
            bus,
            Arc::new(SystemClock),
            config.location,
            SHARD_SIZE,
        );
        Ok(Self {
            driver: BatchDriver::new("prober", PROBER_JOBS_IN_FLIGHT),
            service,
        })
    }
}

#[async_trait]
impl SqsFunction for ProberFunction {
    fn name(&self) -> &'static str {
        "prober"
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        self.driver
            .run(event, |job: ProbeJob| async move {
                self.service.run_job(&job).await.map(|_| ())
            })
            .await
    }
}

// ---- alerter --------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AlerterConfig {
    pub state_table: String,
    pub incidents_topic_arn: String,
}

/// Applies probe results to check state; state, incident and outbox event go in one
/// transaction, and new incident events are published before the record is acked.
pub struct AlerterFunction {
    driver: BatchDriver,
    alerter: Alerter,
}

impl AlerterFunction {
    pub fn new(clients: &Clients, config: AlerterConfig) -> Self {
        let store = Arc::new(DynamoStateStore::new(
            clients.dynamodb.clone(),
            config.state_table,
        ));
        let bus = Arc::new(SnsBus::new(
            clients.sns.clone(),
            Routes::new().topic(Topic::Incidents, config.incidents_topic_arn),
        ));
        let relay = Arc::new(OutboxRelay::new(store.clone(), bus));
        Self {
            driver: BatchDriver::new("alerter", 1),
            // Maintenance windows hold back incidents; reply records answer "check now".
            alerter: Alerter::new(
                store.clone(),
                store.clone(),
                Arc::new(SystemClock),
                relay,
                RelayMode::Inline,
            )
            .with_maintenance(store.clone())
            .with_replies(store),
        }
    }
}

#[async_trait]
impl SqsFunction for AlerterFunction {
    fn name(&self) -> &'static str {
        "alerter"
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        self.driver
            .run(event, |env: Envelope| async move {
                self.alerter.handle(&env).await.map(|_| ())
            })
            .await
    }
}

// ---- notifier -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub state_table: String,
    pub allow_private: bool,
    pub allow_link_local: bool,
}

/// Delivers incident events to the tenant's channels, each (event, channel) once.
pub struct NotifierFunction {
    driver: BatchDriver,
    notifier: Notifier,
}

impl NotifierFunction {
    pub fn new(clients: &Clients, config: NotifierConfig) -> Result<Self, InitError> {
        let store = Arc::new(DynamoStateStore::new(
            clients.dynamodb.clone(),
            config.state_table,
        ));
        // Webhooks go through the probe engine: the same SSRF guard as probes.
        let delivery = ChannelDelivery::new(
            prober(config.allow_private, config.allow_link_local)?,
            Arc::new(StdoutSink),
            DELIVERY_TIMEOUT,
        );
        Ok(Self {
            driver: BatchDriver::new("notifier", NOTIFIER_IN_FLIGHT),
            notifier: Notifier::new(
                store.clone(),
                store.clone(),
                store,
                Arc::new(delivery),
                Arc::new(SystemClock),
            ),
        })
    }
}

#[async_trait]
impl SqsFunction for NotifierFunction {
    fn name(&self) -> &'static str {
        "notifier"
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        self.driver
            .run(event, |env: Envelope| async move {
                self.notifier.handle(&env).await.map(|_| ())
            })
            .await
    }
}

// ---- recorder -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub history_table: String,
}

/// Keeps probe history: one block per probe batch and tenant-hour, hourly rollups.
pub struct RecorderFunction {
    driver: BatchDriver,
    recorder: Recorder,
}

impl RecorderFunction {
    pub fn new(clients: &Clients, config: RecorderConfig) -> Self {
        let history = Arc::new(DynamoHistoryStore::new(
            clients.dynamodb.clone(),
            config.history_table,
        ));
        Self {
            driver: BatchDriver::new("recorder", RECORDER_IN_FLIGHT),
            recorder: Recorder::new(history),
        }
    }
}

#[async_trait]
impl SqsFunction for RecorderFunction {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        self.driver
            .run(event, |env: Envelope| async move {
                self.recorder.handle(&env).await.map(|_| ())
            })
            .await
    }
}

// ---- api ------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub state_table: String,
    pub history_table: String,
    pub probe_jobs_queue_url: String,
    pub probe_results_topic_arn: String,
    pub target_changes_topic_arn: String,
    /// For channel test sends, which go out through the same SSRF guard as the notifier's.
    pub allow_private: bool,
    pub allow_link_local: bool,
}

/// Longest a "check now" waits for its reply: under the api function's timeout (29 s in
/// infra/), itself under API Gateway's 30 s integration limit.
pub const API_CHECK_TIMEOUT: Duration = Duration::from_secs(25);

/// The router `netmon up` serves, over the DynamoDB stores and the SNS bus (heartbeat pings
/// publish `probe.completed`, target edits `target.*`). "Check now" sends a probe job with a
/// correlation id to the prober's queue and polls the reply record the alerter writes.
pub fn api_router(clients: &Clients, config: ApiConfig) -> Result<axum::Router, InitError> {
    let store = Arc::new(DynamoStateStore::new(
        clients.dynamodb.clone(),
        config.state_table,
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let history = Arc::new(
        DynamoHistoryStore::new(clients.dynamodb.clone(), config.history_table)
            .with_clock(clock.clone()),
    );
    let bus = Arc::new(SnsBus::new(
        clients.sns.clone(),
        Routes::new()
            .topic(Topic::ProbeResults, config.probe_results_topic_arn)
            .topic(Topic::TargetChanges, config.target_changes_topic_arn),
    ));
    let jobs = Arc::new(SqsJobQueue::new(
        clients.sqs.clone(),
        config.probe_jobs_queue_url,
        clock.clone(),
    ));
    let delivery = ChannelDelivery::new(
        prober(config.allow_private, config.allow_link_local)?,
        Arc::new(StdoutSink),
        DELIVERY_TIMEOUT,
    );
    Ok(netmon_app::api::router(Arc::new(
        netmon_app::api::ApiContext {
            targets: store.clone(),
            states: store.clone(),
            heartbeats: store.clone(),
            bus,
            clock,
            tenant: TenantId::default_tenant(),
            history,
            channels: store.clone(),
            keys: store.clone(),
            maintenance: store.clone(),
            rpc: Arc::new(PolledRpc::new(jobs, store)),
            delivery: Arc::new(delivery),
            check_timeout: API_CHECK_TIMEOUT,
            // Per instance: API Gateway's stage throttling is the deployment-wide limit.
            limiter: RateLimiter::new(RateLimits::default()),
        },
    )))
}
