//! The alerter, fed by alerter-in: applies probe results to check state; state, incident and
//! outbox event go in one transaction, and new incident events are published before the record
//! is acked. A record holds one `probe.completed` or an array of them (`SnsBus` packs a prober
//! message's events); each is applied in turn, and a redelivery after a partial failure finds
//! the ones already applied at or behind their slot's watermark, so it redoes only the rest.

use std::sync::Arc;

use async_trait::async_trait;
use netmon_app::clock::SystemClock;
use netmon_app::error::HandleError;
use netmon_app::services::alerter::{Alerter, RelayMode};
use netmon_app::services::relay::OutboxRelay;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{ENV_INCIDENTS_TOPIC_ARN, ENV_STATE_TABLE, function};
use netmon_aws::sns::{Routes, SnsBus, Topic};
use netmon_core::events::Envelope;
use netmon_core::ports::{
    Clock, EventBus, HeartbeatStore, MaintenanceStore, Outbox, ReplyStore, StateStore, TargetStore,
};

use crate::batch::each_envelope;
use crate::env::{Env, EnvError};
use crate::policy::ALERTER_IN_FLIGHT;
use crate::runtime::{RecordHandler, SqsConsumer};

#[derive(Debug, Clone)]
pub struct AlerterConfig {
    pub state_table: String,
    pub incidents_topic_arn: String,
}

impl AlerterConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env.required(ENV_STATE_TABLE)?,
            incidents_topic_arn: env.required(ENV_INCIDENTS_TOPIC_ARN)?,
        })
    }
}

pub type AlerterFunction = SqsConsumer<ProbeResults>;

pub struct ProbeResults(Alerter);

pub fn alerter(clients: &Clients, config: AlerterConfig) -> AlerterFunction {
    let store = Arc::new(DynamoStateStore::new(
        clients.dynamodb.clone(),
        config.state_table,
    ));
    let bus = Arc::new(SnsBus::new(
        clients.sns.clone(),
        Routes::new().topic(Topic::Incidents, config.incidents_topic_arn),
    ));
    alerter_over(store, bus, Arc::new(SystemClock))
}

/// The alerter over any state store and bus: what [`alerter`] wires to DynamoDB and SNS, and
/// what the simulation wires to its models.
pub fn alerter_over<S>(
    store: Arc<S>,
    incidents: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
) -> AlerterFunction
where
    S: TargetStore + StateStore + Outbox + MaintenanceStore + ReplyStore + HeartbeatStore + 'static,
{
    let relay = Arc::new(OutboxRelay::new(store.clone(), incidents));
    // Maintenance windows hold back incidents; reply records answer "check now".
    let alerter = Alerter::new(
        store.clone(),
        store.clone(),
        clock,
        relay,
        RelayMode::Inline,
    )
    .with_maintenance(store.clone())
    .with_replies(store);
    SqsConsumer::new(function::ALERTER, ALERTER_IN_FLIGHT, ProbeResults(alerter))
}

#[async_trait]
impl RecordHandler for ProbeResults {
    type Message = Vec<Envelope>;

    async fn handle(&self, envs: Vec<Envelope>, _receive_count: u32) -> Result<(), HandleError> {
        each_envelope(&envs, |env| self.0.handle(env)).await
    }
}
