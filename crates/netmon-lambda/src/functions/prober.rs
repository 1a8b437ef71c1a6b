//! The prober, fed by probe-jobs: probes each job's targets and publishes one
//! `probe.completed` per job. It reads nothing from DynamoDB: jobs carry the target specs. A
//! message holds one job (as before bundles) or an array of jobs of one slot
//! (`netmon_aws::sqs::SqsJobQueue`); a message succeeds or fails whole.

use std::sync::Arc;

use async_trait::async_trait;
use netmon_app::clock::SystemClock;
use netmon_app::error::HandleError;
use netmon_app::services::prober::ProberService;
use netmon_aws::clients::Clients;
use netmon_aws::resources::{ENV_LOCATION, ENV_PROBE_RESULTS_TOPIC_ARN, function};
use netmon_aws::sns::{Routes, SnsBus, Topic};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{Clock, EventBus, ProbeEngine};

use crate::env::{Env, EnvError};
use crate::error::InitError;
use crate::policy::{AddressPolicy, PROBER_JOBS_IN_FLIGHT, PROBES_PER_MESSAGE};
use crate::runtime::{RecordHandler, SqsConsumer};

#[derive(Debug, Clone)]
pub struct ProberConfig {
    pub probe_results_topic_arn: String,
    /// The probing location on every result: `NETMON_LOCATION`, else the region.
    pub location: String,
    pub policy: AddressPolicy,
}

impl ProberConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        let location = match env.optional(ENV_LOCATION)? {
            Some(location) => location,
            None => env.required("AWS_REGION")?,
        };
        Ok(Self {
            probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
            location,
            policy: AddressPolicy::from_env(env)?,
        })
    }
}

pub type ProberFunction = SqsConsumer<ProbeJobs>;

pub struct ProbeJobs(ProberService);

pub fn prober(clients: &Clients, config: ProberConfig) -> Result<ProberFunction, InitError> {
    let bus = Arc::new(SnsBus::new(
        clients.sns.clone(),
        Routes::new().topic(Topic::ProbeResults, config.probe_results_topic_arn),
    ));
    Ok(prober_over(
        config.policy.prober()?,
        bus,
        Arc::new(SystemClock),
        config.location,
    ))
}

/// The prober over any engine and bus: what [`prober`] wires to the probe engine and SNS, and
/// what the simulation wires to its models.
pub fn prober_over(
    engine: Arc<dyn ProbeEngine>,
    probe_results: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    location: String,
) -> ProberFunction {
    // Every probe of a full message at once: each starts at its slot, whatever the other jobs'
    // targets do (policy::PROBES_PER_MESSAGE says why that fits in memory).
    let service = ProberService::new(engine, probe_results, clock, location, PROBES_PER_MESSAGE);
    SqsConsumer::new(function::PROBER, PROBER_JOBS_IN_FLIGHT, ProbeJobs(service))
}

#[async_trait]
impl RecordHandler for ProbeJobs {
    type Message = Vec<ProbeJob>;

    async fn handle(&self, jobs: Vec<ProbeJob>, receive_count: u32) -> Result<(), HandleError> {
        self.0.run_jobs(&jobs, receive_count > 1).await.map(|_| ())
    }
}
