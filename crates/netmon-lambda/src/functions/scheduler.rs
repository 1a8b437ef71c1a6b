//! The scheduler, invoked by the `rate(1 minute)` schedule: sweeps the outbox first (whatever
//! becomes of the rest of the tick) and reports its age as a metric, then plans the next
//! minute's probe jobs onto probe-jobs (a tick up to a minute late still sends every probe on
//! time) and turns missed heartbeats into failed results.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use netmon_app::clock::SystemClock;
use netmon_app::error::HandleError;
use netmon_app::services::relay::OutboxRelay;
use netmon_app::services::scheduler::Scheduler;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{
    ENV_INCIDENTS_TOPIC_ARN, ENV_PROBE_JOBS_QUEUE_URL, ENV_PROBE_RESULTS_TOPIC_ARN, ENV_STATE_TABLE,
};
use netmon_aws::sns::{Routes, SnsBus, Topic};
use netmon_aws::sqs::SqsJobQueue;
use netmon_core::ports::{
    Claim, Clock, EventBus, HeartbeatStore, Idempotency, JobQueue, Outbox, TargetStore,
};
use netmon_core::schedule::floor_minute;
use serde::Serialize;
use tracing::{info, warn};

use crate::env::{Env, EnvError};
use crate::error::{FunctionError, InitError};
use crate::metrics;
use crate::policy::{PROBES_PER_MESSAGE, SHARD_SIZE, SLOT, TICK_LEASE};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub state_table: String,
    pub probe_jobs_queue_url: String,
    pub probe_results_topic_arn: String,
    pub incidents_topic_arn: String,
}

impl SchedulerConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env.required(ENV_STATE_TABLE)?,
            probe_jobs_queue_url: env.required(ENV_PROBE_JOBS_QUEUE_URL)?,
            probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
            incidents_topic_arn: env.required(ENV_INCIDENTS_TOPIC_ARN)?,
        })
    }
}

/// What one tick did (the scheduler's response).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickOutput {
    /// The tick's minute: the probes planned are the next minute's.
    pub minute: DateTime<Utc>,
    /// The tick was handled before (a duplicate or retried scheduled event): nothing done.
    pub duplicate: bool,
    pub targets: usize,
    pub jobs: usize,
    pub probes: usize,
    pub missed_heartbeats: usize,
    /// Incident events left in the outbox by an alerter that could not publish them.
    pub outbox_published: usize,
    /// Seconds the oldest event still unpublished after the sweep has waited (0: none); `None`
    /// when the outbox could not be read. Written as the `OutboxOldestAgeSeconds` metric, which
    /// an alarm watches.
    pub outbox_oldest_age_s: Option<u64>,
}

/// What a tick reads and writes: the targets, its claim, heartbeat pings and the outbox.
pub trait TickStore: TargetStore + Idempotency + HeartbeatStore + Outbox {}

impl<T: TargetStore + Idempotency + HeartbeatStore + Outbox> TickStore for T {}

/// Once a minute: sweeps the outbox, reads every target (one Query over the schedule shards),
/// sends the next minute's probe jobs delayed to their slots and turns overdue heartbeats into
/// failed results.
pub struct SchedulerFunction {
    store: Arc<dyn TickStore>,
    scheduler: Scheduler,
    relay: OutboxRelay,
    clock: Arc<dyn Clock>,
    /// The metric's dimension, the deployed function's name; no metric lines without one (a
    /// simulation or test over [`SchedulerFunction::over`]).
    function_name: Option<String>,
}

/// The sweep's share of the tick: a slow bus must not eat the planning's time (the function's
/// timeout is 30 s); what is left waits for the next tick.
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

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
            PROBES_PER_MESSAGE,
        ));
        let mut function = Self::over(store, jobs, bus, clock);
        function.function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        function
    }

    /// The scheduler over any store, job queue and bus (probe results and incidents): what
    /// [`SchedulerFunction::new`] wires to DynamoDB, SQS and SNS, and what the simulation wires
    /// to its models.
    pub fn over(
        store: Arc<dyn TickStore>,
        jobs: Arc<dyn JobQueue>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            scheduler: Scheduler::new(jobs, store.clone(), bus.clone(), SHARD_SIZE).with_slot(SLOT),
            relay: OutboxRelay::new(store.clone(), bus),
            store,
            clock,
            function_name: None,
        }
    }

    /// Replaces the clock a tick reads "now" from (its claim, which slots are already too late
    /// to plan, the metric's time), not the job queue's. Tests that fire minutes long past set
    /// it to the minute fired, so a round takes as long as the pipeline rather than a real
    /// minute and its slots are not late.
    pub fn with_tick_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The scheduled event's `time` is the minute it stands for (a late or retried delivery
    /// still plans the minute after it, so consecutive ticks cover time exactly once).
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
        // First, so that events waiting in the outbox depend on no other part of the tick.
        (out.outbox_published, out.outbox_oldest_age_s) = self.sweep().await;
        // One conditional put per tick, never completed: a duplicate within the lease skips,
        // and a tick that fails releases it so its retry runs.
        let key = format!("scheduler:tick:{}", minute.to_rfc3339());
        let claim = self
            .store
            .claim(&key, self.clock.now(), TICK_LEASE)
            .await
            .map_err(HandleError::from)?;
        if claim != Claim::Acquired {
            info!(%minute, "tick already handled; skipped planning");
            out.duplicate = true;
            return Ok(out);
        }
        let planned = self
            .scheduler
            .plan_ahead_from(self.store.as_ref(), minute, self.clock.as_ref())
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
        info!(%minute, targets, jobs = out.jobs, probes = out.probes,
            missed_heartbeats = out.missed_heartbeats, outbox_published = out.outbox_published, "tick planned");
        Ok(out)
    }

    /// Publishes what alerters left in the outbox, within [`SWEEP_BUDGET`], and writes the
    /// age of what is left as a metric; what fails waits for the next tick. Returns how many
    /// events went out and that age (`None` when the outbox could not be read: no datapoint,
    /// which the alarm counts as breaching).
    async fn sweep(&self) -> (usize, Option<u64>) {
        let swept = match tokio::time::timeout(SWEEP_BUDGET, self.relay.sweep()).await {
            Ok(Ok(swept)) => swept,
            Ok(Err(e)) => {
                warn!(error = %e, "outbox sweep failed; the next tick retries");
                return (0, None);
            }
            Err(_) => {
                warn!(
                    budget_s = SWEEP_BUDGET.as_secs(),
                    "outbox sweep ran out of time; the next tick goes on"
                );
                return (0, None);
            }
        };
        let now = self.clock.now();
        let age = swept
            .oldest_unpublished
            .map_or(0, |at| u64::try_from((now - at).num_seconds()).unwrap_or(0));
        // Lambda sends stdout to CloudWatch Logs, which reads the line as a datapoint.
        if let Some(function) = &self.function_name {
            println!(
                "{}",
                metrics::line(function, metrics::OUTBOX_OLDEST_AGE, age, now)
            );
        }
        (swept.published, Some(age))
    }

    /// Runs under the Lambda runtime until the process ends: one EventBridge scheduled event
    /// per minute.
    pub async fn serve(self) -> Result<(), InitError> {
        crate::runtime::serve_scheduled(|event| self.handle(event)).await
    }
}
